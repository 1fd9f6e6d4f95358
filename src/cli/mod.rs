//! The command line: one subcommand per way of running the binary.
//!
//! `anyhow` lives here and in `main.rs` only: this is the edge where errors
//! become messages for a person. `main` prints them with `{:#}`, the whole
//! chain on one line, so each layer adds only its own words: a `.context`
//! says what this command was doing, and the errors below never repeat the
//! message of an error they hold (`errors_tests` checks it).

mod console;
mod deploy;
mod dlq;
mod enqueue;
mod event_line;
mod upload;
mod values;
mod watch;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

/// Deploys Cloudflare Workers-for-Platforms user workers with static assets,
/// from jobs on RabbitMQ and site bundles in S3.
#[derive(Debug, Parser)]
#[command(name = "wfp-deployer", version, about, long_about = None)]
pub struct Cli {
    /// Directory holding `default.toml`.
    #[arg(long, global = true, env = "WFP_CONFIG_DIR", default_value = "config")]
    pub config_dir: PathBuf,
    /// A settings file layered over `default.toml` (TOML).
    #[arg(long, global = true, env = "WFP_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume deploy jobs and run them until SIGINT/SIGTERM.
    Worker,
    /// Run the Cloudflare API simulator (for tests, demos and local development).
    CloudflareSim(crate::sim::SimConfig),
    /// Run one job now, without RabbitMQ, and print its terminal event.
    Deploy(deploy::DeployArgs),
    /// Publish a job, built from flags or read from a file, to the jobs
    /// exchange; with --wait, follow it to its outcome.
    #[command(alias = "publish")]
    Enqueue(enqueue::EnqueueArgs),
    /// Upload a local directory to S3 as a bundle (bucket created if missing).
    UploadBundle(upload::UploadArgs),
    /// Print the effective settings (secrets redacted) and exit.
    CheckConfig,
    /// Follow the deploy events: live, or from the events log with --from.
    Watch(watch::WatchArgs),
    /// The dead-letter queue: list, show, requeue and purge parked jobs.
    Dlq(dlq::DlqArgs),
    /// Serve the web console: deploys in flight, outcomes, throughput,
    /// queue depths and the dead-letter queue, live.
    Console(console::ConsoleArgs),
}

impl Cli {
    /// Loads the layered settings this invocation points at.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        Settings::load(&self.config_dir, self.config.as_deref()).context("loading settings")
    }
}

/// Runs the chosen command until it finishes or a shutdown signal arrives.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Worker => {
            let settings = cli.settings()?;
            crate::telemetry::init(&settings.log).map_err(anyhow::Error::msg)?;
            settings.check_worker_ready()?;
            tracing::info!(
                version = env!("CARGO_PKG_VERSION"),
                instance = %settings.worker.instance_name(),
                concurrency = settings.worker.concurrency,
                cloudflare = %settings.cloudflare.api_base_url,
                jobs_queue = %settings.amqp.jobs_queue,
                "wfp-deployer worker starting"
            );
            let worker = crate::startup::build_worker(&settings).await?;
            // The ops server outlives the worker's drain, so probes answer
            // (`/readyz`: not ready) until running deploys are done.
            let ops_stop = CancellationToken::new();
            let _ops_guard = ops_stop.clone().drop_guard();
            crate::startup::start_ops(&settings, worker.ready(), ops_stop).await?;
            let shutdown = shutdown_on_signal();
            // No context: the error says "the worker cannot run" itself.
            worker.run(shutdown).await?;
            Ok(())
        }
        Command::CloudflareSim(config) => {
            crate::telemetry::init(&Default::default()).map_err(anyhow::Error::msg)?;
            crate::sim::run(config.clone(), shutdown_on_signal())
                .await
                .context("cloudflare-sim")
        }
        Command::Deploy(args) => {
            let settings = cli.settings()?;
            crate::telemetry::init(&settings.log).map_err(anyhow::Error::msg)?;
            deploy::run(&settings, args).await
        }
        Command::Enqueue(args) => {
            let settings = cli.settings()?;
            enqueue::run(&settings, args).await
        }
        Command::UploadBundle(args) => {
            let settings = cli.settings()?;
            upload::run(&settings, args).await
        }
        Command::CheckConfig => {
            let settings = cli.settings()?;
            println!("{settings:#?}");
            match settings.check_worker_ready() {
                Ok(()) => println!("ready: the worker can start with these settings"),
                Err(e) => println!("not ready: {e}"),
            }
            Ok(())
        }
        Command::Watch(args) => {
            let settings = cli.settings()?;
            watch::run(&settings, args).await
        }
        Command::Dlq(args) => {
            let settings = cli.settings()?;
            dlq::run(&settings, args).await
        }
        Command::Console(args) => {
            let settings = cli.settings()?;
            crate::telemetry::init(&settings.log).map_err(anyhow::Error::msg)?;
            console::run(&settings, args).await
        }
    }
}

/// Reads a job file, or standard input for `-`.
fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut body).context("reading stdin")?;
        Ok(body)
    } else {
        std::fs::read(path).with_context(|| format!("{}: reading", path.display()))
    }
}

/// A token cancelled on the first SIGINT or SIGTERM; a second signal exits at
/// once (an operator who presses Ctrl-C twice means it).
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested: finishing running deploys (signal again to exit now)");
        cancel.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod errors_tests;
