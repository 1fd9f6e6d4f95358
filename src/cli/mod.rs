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
mod docs;
mod enqueue;
mod event_line;
mod job_flags;
pub mod progress;
mod schema;
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
#[command(name = "wfp-deployer", version, about, long_about = None, after_help = TOP_EXAMPLES)]
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

const TOP_EXAMPLES: &str = "\
Examples:
  wfp-deployer worker                                   run a worker (settings: check-config)
  wfp-deployer deploy ./public --namespace ns --script site   deploy a directory now
  wfp-deployer enqueue job.json --wait                  publish a job and follow it
  wfp-deployer watch --type failed                      see failures as they happen
  wfp-deployer dlq list                                 what is parked, and why
  wfp-deployer console                                  the web console on 127.0.0.1:9465

Settings come from config/default.toml, --config, WFP__SECTION__KEY variables
and AMQP_URL, CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_BASE_URL.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume deploy jobs and run them until SIGINT/SIGTERM.
    #[command(after_help = "\
Example:
  CLOUDFLARE_API_TOKEN=... CLOUDFLARE_ACCOUNT_ID=... AMQP_URL=amqp://user:pass@broker/%2f \\
    wfp-deployer worker

A first SIGINT/SIGTERM lets running deploys finish; a second exits at once.")]
    Worker,
    /// Run the Cloudflare API simulator (for tests, demos and local development).
    #[command(after_help = "\
Example:
  wfp-deployer cloudflare-sim --listen 127.0.0.1:8787 --api-token my-token \\
    --account 0123456789abcdef0123456789abcdef --fault upload:503:rate=0.1
  export CLOUDFLARE_API_BASE_URL=http://127.0.0.1:8787/client/v4 CLOUDFLARE_API_TOKEN=my-token")]
    CloudflareSim(crate::sim::SimConfig),
    /// Deploy one site now, without RabbitMQ: a directory, an archive, an
    /// S3 prefix or archive object, or a job file.
    #[command(after_help = "\
Examples:
  wfp-deployer deploy ./public --namespace customers --script acme-site
  wfp-deployer deploy site.tar.gz --namespace customers --script acme-site --dry-run
  wfp-deployer deploy s3://sites/acme/builds/42/ --namespace customers --script acme-site \\
    --assets-config not_found_handling=404-page --label tenant=acme
  wfp-deployer deploy s3://sites/acme/builds/42.tar.gz --namespace customers --script acme-site \\
    --main-module index.js --code ./worker --compatibility-date 2025-01-24
  wfp-deployer deploy job.json --json
  wfp-deployer deploy job.json --bundle ./public
  cat job.json | wfp-deployer deploy - --script acme-staging

Prints one summary line (--json, or a job file: the terminal event). Exit status: 0 deployed
(or, with --dry-run, valid), 1 the deploy failed (the error says step, code,
message and what to do next), 2 a usage error.")]
    Deploy(deploy::DeployArgs),
    /// Publish a job, built from flags or read from a file, to the jobs
    /// exchange; with --wait, follow it to its outcome.
    #[command(
        alias = "publish",
        after_help = "\
Examples:
  wfp-deployer enqueue --namespace customers --script acme-site --bucket sites \\
    --prefix acme/builds/42/ --label tenant=acme --wait
  wfp-deployer enqueue job.json
  wfp-deployer enqueue - < job.json

Without --wait the job id is printed; with it, the terminal event, and the
exit status says whether the deploy succeeded."
    )]
    Enqueue(enqueue::EnqueueArgs),
    /// Upload a local directory to S3 as a bundle (bucket created if missing).
    #[command(after_help = "\
Example:
  wfp-deployer upload-bundle ./public --bucket sites --prefix acme/builds/42/")]
    UploadBundle(upload::UploadArgs),
    /// Print the effective settings (secrets redacted) and exit.
    #[command(after_help = "\
Example:
  WFP__WORKER__CONCURRENCY=8 wfp-deployer --config prod.toml check-config")]
    CheckConfig,
    /// Print the JSON Schema of the job or of the events (contract v1).
    #[command(after_help = "\
Examples:
  wfp-deployer schema job > job.schema.json
  wfp-deployer schema event")]
    Schema(schema::SchemaArgs),
    /// Follow the deploy events: live, or from the events log with --from.
    #[command(after_help = "\
Examples:
  wfp-deployer watch
  wfp-deployer watch --namespace customers --type failed,retrying
  wfp-deployer watch --job acme-site-42 --json
  wfp-deployer watch --from 1h --label tenant=acme")]
    Watch(watch::WatchArgs),
    /// The dead-letter queue: list, show, requeue and purge parked jobs.
    #[command(after_help = "\
Examples:
  wfp-deployer dlq list
  wfp-deployer dlq show acme-site-42
  wfp-deployer dlq requeue --code cloudflare_unavailable
  wfp-deployer dlq purge --older-than 7d")]
    Dlq(dlq::DlqArgs),
    /// Serve the web console: deploys in flight, outcomes, throughput,
    /// queue depths and the dead-letter queue, live.
    #[command(after_help = "\
Examples:
  wfp-deployer console                                  http://127.0.0.1:9465/
  WFP__CONSOLE__TOKEN=... wfp-deployer console --listen 0.0.0.0:9465

Off loopback the console needs console.token (a bearer token, or the
basic-auth password).")]
    Console(console::ConsoleArgs),
    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  wfp-deployer completions bash > /etc/bash_completion.d/wfp-deployer
  wfp-deployer completions zsh > \"${fpath[1]}/_wfp-deployer\"
  wfp-deployer completions fish > ~/.config/fish/completions/wfp-deployer.fish")]
    Completions(docs::CompletionsArgs),
    /// Print the man page, or write one per command with --dir.
    #[command(after_help = "\
Examples:
  wfp-deployer man | man -l -
  wfp-deployer man --dir target/man")]
    Man(docs::ManArgs),
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
        Command::Enqueue(args) => {
            let settings = cli.settings()?;
            enqueue::run(&settings, args).await
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
        Command::Completions(args) => {
            docs::completions(args);
            Ok(())
        }
        Command::Man(args) => docs::man(args),
    }
}

/// A command line that cannot run as given: exit status 2, like clap's own
/// usage errors, so scripts can tell it from a failed deploy (1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit status for an error `run` returned: 2 for a usage error, else 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.is::<UsageError>() { 2 } else { 1 }
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
