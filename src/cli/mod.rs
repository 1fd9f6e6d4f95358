//! The command line: one subcommand per way of running the binary.
//!
//! `anyhow` lives here and in `main.rs` only: this is the edge where errors
//! become messages for a person. `main` prints them with `{:#}`, the whole
//! chain on one line, so each layer adds only its own words: a `.context`
//! says what this command was doing, and the errors below never repeat the
//! message of an error they hold (`errors_tests` checks it).

mod deploy;
mod publish;
mod schema;
mod upload;

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
    /// Publish a job file to the jobs exchange, optionally waiting for its outcome.
    Publish(publish::PublishArgs),
    /// Upload a local directory to S3 as a bundle (bucket created if missing).
    UploadBundle(upload::UploadArgs),
    /// Print the effective settings (secrets redacted) and exit.
    CheckConfig,
    /// Print the JSON Schema of the job or of the events (contract v1).
    Schema(schema::SchemaArgs),
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
                cloudflare = %crate::config::redact_url(&settings.cloudflare.api_base_url),
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
        Command::Publish(args) => {
            let settings = cli.settings()?;
            publish::run(&settings, args).await
        }
        Command::UploadBundle(args) => {
            let settings = cli.settings()?;
            upload::run(&settings, args).await
        }
        Command::Schema(args) => schema::run(args),
        Command::CheckConfig => {
            let settings = cli.settings()?;
            println!("{}", settings.redacted());
            match settings.check_worker_ready() {
                Ok(()) => println!("ready: the worker can start with these settings"),
                Err(e) => println!("not ready: {e}"),
            }
            Ok(())
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

/// A token cancelled on the first SIGINT or SIGTERM; a second signal exits
/// at once (an operator who presses Ctrl-C twice means it), with the code a
/// process supervisor expects of a process that signal ended: 130 for
/// SIGINT, 143 for SIGTERM. The broker redelivers whatever was running.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    // Listening starts here, before the task runs, so no signal is missed
    // between the first and the second.
    let mut signals = Signals::listen();
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("shutdown requested: finishing running deploys (signal again to exit now)");
        cancel.cancel();
        let second = signals.next().await;
        tracing::warn!(?second, "second signal: exiting now");
        std::process::exit(second.exit_code());
    });
    token
}

/// A shutdown signal.
#[derive(Debug, Clone, Copy)]
enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    /// 128 + the signal's number, the shell's convention.
    fn exit_code(self) -> i32 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// SIGINT and SIGTERM, listened to from [`Signals::listen`] on.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next signal.
    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = recv(&mut self.interrupt) => Signal::Interrupt,
                _ = recv(&mut self.terminate) => Signal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}

#[cfg(test)]
mod errors_tests;
