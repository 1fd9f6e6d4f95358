//! `wfp-deployer console`: serve the web console until SIGINT/SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;

use crate::config::Settings;

#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// Listen here instead of console.listen (e.g. 0.0.0.0:9465, which
    /// needs console.token).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

pub async fn run(settings: &Settings, args: &ConsoleArgs) -> anyhow::Result<()> {
    let listen = match args.listen {
        Some(listen) => listen,
        None => settings.console.listen_addr().map_err(anyhow::Error::msg)?,
    };
    let shutdown = super::shutdown_on_signal();
    let (bound, serve) = crate::console::server::bind(settings, listen, shutdown)
        .await
        .context("starting the console")?;
    tracing::info!(listen = %bound, jobs_exchange = %settings.amqp.jobs_exchange, "console: serving");
    eprintln!("console: http://{bound}/ (Ctrl-C to stop)");
    serve.await;
    Ok(())
}
