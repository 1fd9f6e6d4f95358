//! `wfp-deployer deploy JOB.json`: one deploy, without RabbitMQ.
//!
//! Runs the same pipeline the worker runs and prints the terminal event it
//! would have published. For platform teams trying the tool, for scripts that
//! deploy one site, and for `make bench`. `--bundle PATH` takes the site from
//! a local directory or archive file instead of S3.

use std::path::PathBuf;

use anyhow::Context;

use crate::amqp::DeliveryMeta;
use crate::config::Settings;
use crate::contract::decode_job;
use crate::events::EventBuilder;
use crate::pipeline::{self, Deploy, DeployObserver};

#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    /// The job (contract v1 JSON); `-` reads standard input.
    pub job: PathBuf,
    /// Deploy the files of this local directory or archive file (.tar,
    /// .tar.gz, .tgz, .tar.zst, .tzst, .zip) instead of the job's bundle.
    #[arg(long, value_name = "PATH")]
    pub bundle: Option<PathBuf>,
}

/// Deploys and prints the terminal event; fails (exit 1) when the deploy did.
pub async fn run(settings: &Settings, args: &DeployArgs) -> anyhow::Result<()> {
    settings.check_worker_ready()?;
    let body = super::read_input(&args.job)?;
    let job = decode_job(&body).map_err(|e| anyhow::anyhow!("{}: {e}", args.job.display()))?;
    let pipeline = crate::startup::build_pipeline(settings)
        .await
        .context("building the pipeline")?;
    let account_id = pipeline::account_for(&job, &settings.cloudflare.account_id);
    let observer = DeployObserver::new();
    let outcome = match &args.bundle {
        Some(path) => {
            pipeline
                .deploy_local(&job, &account_id, path, &observer)
                .await
        }
        None => pipeline.deploy(&job, &account_id, 1, &observer).await,
    };
    let meta = DeliveryMeta {
        attempt: 1,
        ..DeliveryMeta::default()
    };
    let event = EventBuilder::new(settings.worker.instance_name())
        .job(&job, &account_id, &meta)
        .terminal(&outcome.result, outcome.duration, chrono::Utc::now());
    println!("{}", serde_json::to_string_pretty(&event.body)?);
    match outcome.result {
        Ok(_) => Ok(()),
        Err(failure) => anyhow::bail!("deploy failed: {}: {}", failure.code, failure.message),
    }
}
