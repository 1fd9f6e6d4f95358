//! `wfp-deployer deploy TARGET`: one deploy now, without RabbitMQ, like
//! `wrangler deploy`.
//!
//! TARGET is a local directory or archive file, an S3 prefix or archive
//! object (`s3://...`), or a job file (`target.rs` decides which). For all
//! but a job the job is built from the same flags `enqueue` takes
//! (`job_flags.rs`); for a job file, the flags given override its fields.
//! The pipeline is the worker's own; local files (the site, `--code`) are
//! read from disk through [`LocalFiles`], never named by a job.
//! `--dry-run` runs the steps up to the manifest and asks Cloudflare
//! nothing.
//!
//! Output: a one-line summary on standard output (`--json`: the terminal
//! event, as the worker would publish it; for a dry run, the manifest
//! summary). A job file target implies `--json`: `deploy JOB.json` printed
//! the event before the command took other targets, and scripts read it.
//! Progress goes to standard error (`cli/progress.rs`): a live display on a
//! terminal, plain lines otherwise. Exit status: 0 deployed (or the dry run
//! found it valid), 1 the deploy failed (the error line says step, code,
//! message and what to do), 2 a usage error (clap's, or a target or flags
//! that cannot make a job).

mod summary;
mod target;

use std::path::PathBuf;

use anyhow::Context;

use super::UsageError;
use super::job_flags::JobFlags;
use super::progress::{Following, ProgressDisplay, follow_observer};
use crate::amqp::DeliveryMeta;
use crate::config::Settings;
use crate::contract::{DeployJob, decode_job};
use crate::events::EventBuilder;
use crate::pipeline::{self, DeployObserver, LocalCode, LocalFiles};
use target::Target;

#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    /// What to deploy: a directory (./public), an archive file
    /// (site.tar.gz; .tar .tgz .tar.zst .tzst .zip), every object under an
    /// S3 prefix (s3://sites/acme/42/: ends with /), an S3 archive object
    /// (s3://sites/acme/42.tar.gz), or a job (job.json; - reads standard
    /// input).
    #[arg(value_name = "TARGET")]
    pub target: String,
    #[command(flatten)]
    pub flags: JobFlags,
    /// Worker code: the main module's name, with --code (e.g.
    /// --main-module index.js --code ./worker).
    #[arg(long, value_name = "FILE", requires = "code")]
    pub main_module: Option<String>,
    /// Worker code: every file under this directory is a module, named by
    /// its path below it (e.g. --code ./worker); needs --main-module.
    /// Without it: an assets-only worker, or the job file's worker code.
    #[arg(long, value_name = "DIR", requires = "main_module")]
    pub code: Option<PathBuf>,
    /// With a job file: deploy the files of this local directory or
    /// archive instead of the job's bundle (e.g. job.json --bundle
    /// ./public).
    #[arg(long, value_name = "PATH")]
    pub bundle: Option<PathBuf>,
    /// Check without deploying: validate the job, list and hash every file
    /// and build the manifest (limits, _headers, _redirects,
    /// .assetsignore), then stop; Cloudflare is asked nothing (e.g.
    /// ./public --dry-run).
    #[arg(long)]
    pub dry_run: bool,
    /// Print the terminal event (contract v1 JSON) instead of the summary
    /// line; with --dry-run, the manifest summary as JSON (e.g. --json |
    /// jq .data.manifest). Implied for a job file target, as it always was.
    #[arg(long)]
    pub json: bool,
}

/// The job, what to read from disk, and whether the target was a job file
/// (which prints the terminal event, as `deploy JOB.json` always has).
fn job_and_files(args: &DeployArgs) -> anyhow::Result<(DeployJob, LocalFiles, bool)> {
    let target = Target::parse(&args.target).map_err(UsageError)?;
    if args.bundle.is_some() && !matches!(target, Target::Job(_)) {
        return Err(UsageError(format!(
            "--bundle goes with a job file; {} is the site already",
            args.target
        ))
        .into());
    }
    let code = match (&args.main_module, &args.code) {
        (Some(main_module), Some(dir)) => Some(LocalCode {
            main_module: main_module.clone(),
            dir: dir.clone(),
        }),
        _ => None,
    };
    let (job, source) = match (&target, target.bundle()) {
        (Target::Job(path), _) => {
            let body = super::read_input(path)?;
            let source = path.display().to_string();
            let job = decode_job(&body).map_err(|e| UsageError(format!("{source}: {e}")))?;
            if !args.flags.any() {
                return Ok((job, local_files(&target, args, code), true));
            }
            let mut value = serde_json::to_value(&job)?;
            args.flags.apply(&mut value)?;
            (value, format!("{source} with the flags given"))
        }
        (_, Some(bundle)) => {
            let missing = format!(
                "deploying {} needs --namespace NS and --script NAME",
                args.target
            );
            let built = args.flags.build(bundle, None, &missing);
            (
                built.map_err(|e| UsageError(e.to_string()))?,
                "the flags".into(),
            )
        }
        (_, None) => unreachable!("only a job target has no bundle"),
    };
    let job = decode_job(&serde_json::to_vec(&job)?)
        .map_err(|e| UsageError(format!("the job from {source}: {e}")))?;
    let job_file = matches!(target, Target::Job(_));
    Ok((job, local_files(&target, args, code), job_file))
}

fn local_files(target: &Target, args: &DeployArgs, code: Option<LocalCode>) -> LocalFiles {
    let bundle = match target {
        Target::Local(path) => Some(path.clone()),
        _ => args.bundle.clone(),
    };
    LocalFiles { bundle, code }
}

/// The deploy's observer, followed on standard error by the progress
/// display (a live bar on a terminal, plain lines otherwise), so standard
/// output keeps only the result.
fn observed() -> (DeployObserver, Following) {
    let observer = DeployObserver::new();
    let following = follow_observer(&observer, ProgressDisplay::stderr());
    (observer, following)
}

/// Deploys (or, with `--dry-run`, checks) and reports; an error when it
/// failed (exit 1) or the arguments make no job (exit 2).
pub async fn run(settings: &Settings, args: &DeployArgs) -> anyhow::Result<()> {
    let (job, local, job_file) = job_and_files(args)?;
    let json = args.json || job_file;
    let mut settings = settings.clone();
    // The operator's own account, named on the command line, is one this
    // command may deploy into.
    if settings.cloudflare.account_id.trim().is_empty()
        && let Some(account) = &job.account_id
    {
        settings.cloudflare.account_id = account.clone();
    }
    let account_id = pipeline::account_for(&job, &settings.cloudflare.account_id);
    if args.dry_run {
        if account_id.trim().is_empty() {
            return Err(UsageError(
                "no account to hash the assets for: give --account or set CLOUDFLARE_ACCOUNT_ID"
                    .into(),
            )
            .into());
        }
        // The pipeline holds a Cloudflare client, which a dry run never
        // calls: without a token it gets one that could not authenticate.
        if settings.cloudflare.api_token.is_none() {
            settings.cloudflare.api_token = Some("dry-run: no token".into());
        }
    } else {
        settings.check_worker_ready()?;
    }
    let pipeline = crate::startup::build_pipeline(&settings)
        .await
        .context("building the pipeline")?;
    let (observer, following) = observed();
    if args.dry_run {
        let (took, planned) = pipeline.plan(&job, &account_id, &local, &observer).await;
        following.finish().await;
        let planned = planned.map_err(|f| anyhow::anyhow!(summary::failed("dry run", &f)))?;
        if json {
            let shown = summary::planned_json(&job, &account_id, &planned, took);
            println!("{}", serde_json::to_string_pretty(&shown)?);
        } else {
            println!("{}", summary::planned(&job, &planned, took));
        }
        return Ok(());
    }
    let outcome = pipeline
        .deploy_local(&job, &account_id, &local, &observer)
        .await;
    following.finish().await;
    if json {
        let meta = DeliveryMeta {
            attempt: 1,
            ..DeliveryMeta::default()
        };
        let event = EventBuilder::new(settings.worker.instance_name())
            .job(&job, &account_id, &meta)
            .terminal(&outcome.result, outcome.duration, chrono::Utc::now());
        println!("{}", serde_json::to_string_pretty(&event.body)?);
    }
    match &outcome.result {
        Ok(success) => {
            if !json {
                println!("{}", summary::succeeded(&job, success, outcome.duration));
            }
            Ok(())
        }
        Err(failure) => anyhow::bail!(summary::failed("deploy", failure)),
    }
}
