//! `wfp-deployer watch`: follow the fleet's events as they happen.
//!
//! Live events come through a private queue bound to the events exchange;
//! `--from` reads the events log (a stream the worker keeps) from that
//! point on instead, then goes on live, so an operator can look at the last
//! hour and keep watching in one command. Filters apply here, on the
//! reader's side: the exchange routes by event kind only.

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::event_line::{ColorChoice, render};
use super::values;
use crate::config::Settings;
use crate::console::event::EventFilter;
use crate::console::feed::{EventFeed, FeedError, LogState};

#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Only this job (repeatable).
    #[arg(long = "job", value_name = "JOB_ID")]
    pub jobs: Vec<String>,
    /// Only this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only this script.
    #[arg(long)]
    pub script: Option<String>,
    /// Only these kinds: started, progress, retrying, succeeded, failed
    /// (repeatable or comma-separated).
    #[arg(long = "type", value_name = "KIND", value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// Only events carrying this label (KEY=VALUE; repeatable, all must match).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = values::pair)]
    pub labels: Vec<(String, String)>,
    /// Print each event as published: one CloudEvent JSON object a line.
    #[arg(long)]
    pub json: bool,
    /// Replay the events log from this long ago (`1h`, `30m`) or from this
    /// time (RFC 3339), then keep following.
    #[arg(long, value_name = "WHEN", value_parser = values::since)]
    pub from: Option<DateTime<Utc>>,
    /// Colour the event kinds.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

impl WatchArgs {
    fn filter(&self) -> EventFilter {
        EventFilter {
            jobs: self.jobs.clone(),
            namespace: self.namespace.clone(),
            script: self.script.clone(),
            kinds: self.kinds.clone(),
            labels: self.labels.clone(),
        }
    }
}

/// Prints matching events until SIGINT/SIGTERM.
pub async fn run(settings: &Settings, args: &WatchArgs) -> anyhow::Result<()> {
    let amqp = &settings.amqp;
    let mut feed = match args.from {
        None => EventFeed::live(amqp, "deploy.#").await,
        Some(since) => {
            let (feed, state) = EventFeed::replay(amqp, settings.events.log_max_age, since).await?;
            if state == LogState::Created {
                eprintln!(
                    "note: the events log {} did not exist; declared it now, so nothing \
                     before this moment can be replayed",
                    amqp.events_log_queue
                );
            }
            Ok(feed)
        }
    }
    .context("watching events")?;
    eprintln!(
        "watching events on {} (Ctrl-C to stop)",
        amqp.events_exchange
    );
    let filter = args.filter();
    let color = args.color.enabled(&std::io::stdout());
    let shutdown = super::shutdown_on_signal();
    let result = loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            next = feed.next() => next,
        };
        match next {
            Ok(event) if filter.matches(&event) => {
                if args.json {
                    println!("{}", event.raw);
                } else {
                    println!("{}", render(&event, color));
                }
            }
            Ok(_) => {}
            Err(unreadable @ FeedError::Unreadable { .. }) => eprintln!("warning: {unreadable}"),
            Err(error) => break Err(error).context("watching events"),
        }
    };
    feed.close().await;
    result
}
