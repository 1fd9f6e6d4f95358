//! `wfp-deployer enqueue`: what a platform service does, from the command
//! line (`publish` is its old name, kept as an alias).
//!
//! The job comes from flags (`--namespace --script --bucket --prefix`, ...)
//! or from a file or standard input, and is checked with the contract's own
//! decoder before anything is published, so a bad job is refused here
//! rather than failed by a worker. It is published to the jobs exchange as
//! a mandatory message with a publisher confirm: `Ok` means a queue holds
//! it. Without `--wait` the job id is printed on standard output.
//!
//! `--wait` subscribes to the events (a private queue bound to the events
//! exchange) *before* publishing, so not even a fast deploy's events can be
//! missed; it shows the job's events on standard error as they come (its
//! `deploy.progress` events through the progress display: live on a
//! terminal, plain lines otherwise), prints the terminal event on standard
//! output, and exits non-zero with the error code and message unless the
//! deploy succeeded.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use lapin::BasicProperties;
use lapin::options::ConfirmSelectOptions;
use serde_json::{Value, json};

use super::event_line::{ColorChoice, render};
use super::job_flags::JobFlags;
use super::progress::{ProgressDisplay, apply_event};
use crate::amqp::{Message, Target, connect, declare_topology, publish_confirmed};
use crate::config::Settings;
use crate::console::event::FeedEvent;
use crate::console::feed::{EventFeed, FeedError};
use crate::contract::{CloudEvent, decode_job};
use crate::pipeline::ProgressSnapshot;

#[derive(Debug, Clone, clap::Args)]
pub struct EnqueueArgs {
    /// A job file (contract v1 JSON), `-` for standard input; instead of
    /// the flags that build one.
    #[arg(value_name = "JOB.json")]
    pub job: Option<PathBuf>,
    /// The same as the JOB.json argument.
    #[arg(long, value_name = "JOB.json", conflicts_with = "job")]
    pub file: Option<PathBuf>,
    /// Who the job deploys to and what travels with it.
    #[command(flatten)]
    pub flags: JobFlags,
    /// The bucket holding the bundle (e.g. --bucket sites).
    #[arg(long)]
    pub bucket: Option<String>,
    /// The bundle: every object under this prefix (e.g. --prefix
    /// acme/builds/42/).
    #[arg(long, conflicts_with = "key")]
    pub prefix: Option<String>,
    /// The bundle: this archive object, tar, tar.gz, tar.zst or zip (e.g.
    /// --key acme/builds/42.tar.gz).
    #[arg(long)]
    pub key: Option<String>,
    /// Worker code: the main module's name, with --code-prefix (e.g.
    /// --main-module index.js).
    #[arg(long, requires = "code_prefix")]
    pub main_module: Option<String>,
    /// Worker code: every object under this prefix (of --bucket) is a
    /// module (e.g. --code-prefix acme/builds/42-worker/).
    #[arg(long, requires = "main_module")]
    pub code_prefix: Option<String>,
    /// Follow the job's events and wait for its outcome, at most this long.
    #[arg(long, value_name = "TIMEOUT", num_args = 0..=1, default_missing_value = "30m",
          value_parser = humantime::parse_duration)]
    pub wait: Option<Duration>,
    /// Colour the events shown while waiting.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

impl EnqueueArgs {
    fn flags_given(&self) -> bool {
        self.flags.any()
            || self.bucket.is_some()
            || self.prefix.is_some()
            || self.key.is_some()
            || self.main_module.is_some()
    }

    /// The job's bytes, from the file or built from the flags.
    fn body(&self) -> anyhow::Result<(Vec<u8>, String)> {
        if let Some(path) = self.job.as_ref().or(self.file.as_ref()) {
            if self.flags_given() {
                bail!("give a job file or the flags that build one, not both");
            }
            return Ok((super::read_input(path)?, path.display().to_string()));
        }
        let job = self.build()?;
        Ok((
            serde_json::to_vec(&job)?,
            "the job built from the flags".into(),
        ))
    }

    /// A contract v1 job from the flags; the decoder checks it after.
    fn build(&self) -> anyhow::Result<Value> {
        const MISSING: &str = "no job: give a job file (or - for standard input), or \
             --namespace, --script, --bucket and --prefix (or --key)";
        let Some(bucket) = &self.bucket else {
            bail!("{MISSING}");
        };
        let bundle = match (&self.prefix, &self.key) {
            (Some(prefix), None) => json!({"bucket": bucket, "prefix": prefix}),
            (None, Some(key)) => json!({"bucket": bucket, "key": key}),
            _ => bail!("say where the bundle is: --prefix (a folder) or --key (an archive)"),
        };
        let worker = match (&self.main_module, &self.code_prefix) {
            (Some(main), Some(prefix)) => Some(json!({"main_module": main, "prefix": prefix})),
            _ => None,
        };
        self.flags.build(bundle, worker, MISSING)
    }
}

pub async fn run(settings: &Settings, args: &EnqueueArgs) -> anyhow::Result<()> {
    let (body, source) = args.body()?;
    // Checked here: a producer should learn of a bad job before it is queued.
    let job =
        decode_job(&body).map_err(|e| anyhow::anyhow!("{source}: {e} (nothing was published)"))?;
    let amqp = &settings.amqp;
    let connection = connect(amqp).await?;
    let channel = connection
        .create_channel()
        .await
        .context("opening a channel")?;
    declare_topology(&channel, amqp).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .context("putting the channel in confirm mode")?;

    // Subscribed before publishing: a fast deploy's events cannot be missed.
    let waiting = match args.wait {
        Some(wait) => {
            let feed = EventFeed::live(amqp, "deploy.#").await;
            Some((wait, feed.context("following the job's events")?))
        }
        None => None,
    };
    let mut properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(job.job_id.as_str().into());
    if let Some(id) = &job.correlation_id {
        properties = properties.with_correlation_id(id.as_str().into());
    }
    let (exchange, key) = (&amqp.jobs_exchange, &amqp.jobs_routing_key);
    let message = Message::mandatory(&body, properties);
    let target = Target::new(exchange, key);
    publish_confirmed(&channel, target, message, amqp.confirm_timeout)
        .await
        .with_context(|| format!("publishing job {}", job.job_id))?;
    let _ = connection.close(200, "done".into()).await;
    eprintln!("published job {} to {exchange}", job.job_id);

    let Some((wait, feed)) = waiting else {
        println!("{}", job.job_id);
        return Ok(());
    };
    let color = args.color.enabled(&std::io::stderr());
    let event = follow(feed, &job.job_id, wait, color).await?;
    // In the contract's field order when it is a v1 event, as published.
    let shown = match serde_json::from_value::<CloudEvent>(event.raw.clone()) {
        Ok(contract) => serde_json::to_string_pretty(&contract)?,
        Err(_) => serde_json::to_string_pretty(&event.raw)?,
    };
    println!("{shown}");
    match event.error() {
        None => Ok(()),
        Some(error) => bail!(
            "job {} failed: {}: {}",
            job.job_id,
            error.code,
            error.message
        ),
    }
}

/// Shows `job_id`'s events on standard error until its terminal one, which
/// it returns; at most `wait`. Progress events feed the progress display,
/// the others are a line each.
async fn follow(
    mut feed: EventFeed,
    job_id: &str,
    wait: Duration,
    color: bool,
) -> anyhow::Result<FeedEvent> {
    let mut display = ProgressDisplay::stderr();
    let mut snapshot = ProgressSnapshot::default();
    let outcome = tokio::time::timeout(wait, async {
        loop {
            match feed.next().await {
                Ok(event) if event.job_id == job_id && event.kind == "progress" => {
                    apply_event(&mut snapshot, &event);
                    display.show(&snapshot);
                }
                Ok(event) if event.job_id == job_id => {
                    if event.kind == "started" {
                        // A new attempt starts from nothing.
                        snapshot = ProgressSnapshot::default();
                    }
                    display.println(&render(&event, color));
                    if event.is_terminal() {
                        return Ok(event);
                    }
                }
                Ok(_) | Err(FeedError::Unreadable { .. }) => {}
                Err(error) => return Err(error),
            }
        }
    })
    .await;
    display.finish();
    feed.close().await;
    let Ok(outcome) = outcome else {
        bail!(
            "no outcome for job {job_id} within {} (it may still be queued or running: \
             wfp-deployer watch --job {job_id})",
            humantime::format_duration(wait)
        );
    };
    outcome.context("following the job's events")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: EnqueueArgs,
    }

    fn parse(args: &[&str]) -> EnqueueArgs {
        let mut argv = vec!["enqueue"];
        argv.extend_from_slice(args);
        Wrapper::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn flags_build_a_job_the_contract_accepts() {
        let args = parse(&[
            "--namespace",
            "customers",
            "--script",
            "acme",
            "--bucket",
            "sites",
            "--prefix",
            "acme/1/",
            "--label",
            "tenant=acme",
            "--assets-config",
            "html_handling=none",
            "--assets-config",
            "serve_directly=true",
            "--compatibility-date",
            "2025-01-24",
            "--main-module",
            "index.js",
            "--code-prefix",
            "acme/1-worker/",
        ]);
        let (body, _) = args.body().unwrap();
        let job = decode_job(&body).unwrap();
        assert!(job.job_id.starts_with("acme-"), "{}", job.job_id);
        assert_eq!(job.labels["tenant"], "acme");
        let config = job.assets_config.unwrap();
        assert_eq!(config.html_handling.as_deref(), Some("none"));
        assert_eq!(config.serve_directly, Some(true));
        assert_eq!(job.worker.unwrap().main_module, "index.js");
    }

    #[test]
    fn a_job_needs_a_file_or_enough_flags_not_both() {
        let err = parse(&["--namespace", "ns"])
            .body()
            .unwrap_err()
            .to_string();
        assert!(err.contains("give a job file"), "{err}");
        let err = parse(&["--namespace", "ns", "--script", "s", "--bucket", "b"])
            .body()
            .unwrap_err();
        assert!(
            err.to_string().contains("--prefix (a folder) or --key"),
            "{err}"
        );
        let err = parse(&["job.json", "--script", "s"]).body().unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
    }

    #[test]
    fn wait_takes_an_optional_timeout() {
        assert_eq!(
            parse(&["job.json", "--wait"]).wait,
            Some(Duration::from_secs(1800))
        );
        assert_eq!(
            parse(&["job.json", "--wait", "2m"]).wait,
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse(&["job.json"]).wait, None);
    }
}
