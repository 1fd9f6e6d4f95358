//! `wfp-deployer dlq list | show | requeue | purge`: the parked jobs, from
//! the command line.
//!
//! Everything goes through [`DeadLetters`], which the console uses too; its
//! module doc says why a requeue loses nothing (a duplicate job at worst).
//! Actions need to be told what to act on (ids, `--code`, `--older-than`
//! or `--all`): a bare `requeue` or `purge` is refused, never "everything".

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;

use crate::config::Settings;
use crate::console::dlq::{Action, DEFAULT_LIMIT, DeadLetters, ParkedJob, Selection, Sweep};

#[derive(Debug, Clone, clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DlqCommand {
    /// List parked jobs: id, site, reason, attempts and age.
    #[command(
        after_help = "Examples:\n  wfp-deployer dlq list\n  wfp-deployer dlq list --json | jq '.[].id'"
    )]
    List {
        /// Print a JSON array of the parked jobs, every detail included.
        #[arg(long)]
        json: bool,
        /// Read at most this many messages.
        #[arg(long, default_value_t = DEFAULT_LIMIT)]
        limit: usize,
    },
    /// Show a parked job: why it was parked, its properties, headers and body.
    #[command(after_help = "Example:\n  wfp-deployer dlq show acme-site-42")]
    Show {
        /// Its id, as `dlq list` prints it.
        id: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Publish parked jobs to the jobs exchange again (confirmed), then
    /// remove them from the dead-letter queue.
    #[command(after_help = "Examples:\n  wfp-deployer dlq requeue acme-site-42\n  \
                            wfp-deployer dlq requeue --code cloudflare_unavailable\n  \
                            wfp-deployer dlq requeue --all")]
    Requeue(ActArgs),
    /// Delete parked jobs for good.
    #[command(after_help = "Examples:\n  wfp-deployer dlq purge --older-than 7d\n  \
                            wfp-deployer dlq purge bad-job-1 bad-job-2\n  wfp-deployer dlq purge --all")]
    Purge(ActArgs),
}

/// Which parked jobs an action takes: ids, or every job matching all the
/// criteria given, or `--all`.
#[derive(Debug, Clone, clap::Args)]
pub struct ActArgs {
    /// Ids as `dlq list` prints them.
    pub ids: Vec<String>,
    /// Only jobs parked with this error code (or dead-lettered for this
    /// broker reason, e.g. delivery_limit).
    #[arg(long)]
    pub code: Option<String>,
    /// Only jobs parked at least this long ago (e.g. 7d, 12h).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: Option<Duration>,
    /// Every parked job.
    #[arg(long, conflicts_with_all = ["ids", "code", "older_than"])]
    pub all: bool,
    /// Read at most this many messages.
    #[arg(long, default_value_t = DEFAULT_LIMIT)]
    pub limit: usize,
}

impl ActArgs {
    fn selection(&self, verb: &str) -> anyhow::Result<Selection> {
        let selection = Selection {
            all: self.all,
            ids: self.ids.clone(),
            code: self.code.clone(),
            older_than: self.older_than,
        };
        if selection == Selection::default() {
            bail!(
                "{verb} what? name ids, or use --code, --older-than or --all (dlq list shows the ids)"
            );
        }
        Ok(selection)
    }
}

pub async fn run(settings: &Settings, args: &DlqArgs) -> anyhow::Result<()> {
    let queue = &settings.amqp.dead_letter_queue;
    let dlq = DeadLetters::open(&settings.amqp)
        .await
        .with_context(|| format!("opening the dead-letter queue {queue}"))?;
    let result = match &args.command {
        DlqCommand::List { json, limit } => list(&dlq, queue, *json, *limit).await,
        DlqCommand::Show { id, json } => show(&dlq, id, *json).await,
        DlqCommand::Requeue(act) => {
            let selection = act.selection("requeue")?;
            let sweep = dlq.sweep(&selection, Action::Requeue, act.limit).await;
            report(sweep.context("requeueing")?, &selection, "requeued", queue)
        }
        DlqCommand::Purge(act) => {
            let selection = act.selection("purge")?;
            let sweep = dlq.sweep(&selection, Action::Purge, act.limit).await;
            report(sweep.context("purging")?, &selection, "purged", queue)
        }
    };
    dlq.close().await;
    result
}

/// `3d 4h`, `2h 3m`, `5m 10s`, `12s`: an age at a glance.
pub fn short_age(age: chrono::Duration) -> String {
    let s = age.num_seconds().max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {}s", s % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max - 1).collect();
    format!("{kept}…")
}

async fn list(dlq: &DeadLetters, queue: &str, json: bool, limit: usize) -> anyhow::Result<()> {
    let sweep = dlq.list(limit).await.context("listing")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&sweep.kept)?);
    } else {
        let now = Utc::now();
        println!(
            "{:<28} {:<32} {:<56} {:>8} {:>8}",
            "ID", "SITE", "REASON", "ATTEMPTS", "AGE"
        );
        for job in &sweep.kept {
            let attempts = job.attempts.map_or("-".into(), |a| a.to_string());
            let age = job.age(now).map_or("-".into(), short_age);
            println!(
                "{:<28} {:<32} {:<56} {attempts:>8} {age:>8}",
                job.id,
                cut(&job.site(), 32),
                cut(&job.reason.summary(), 56)
            );
        }
    }
    let more = if sweep.more {
        " (limit reached: more remain)"
    } else {
        ""
    };
    eprintln!("{} parked in {queue}{more}", plural(sweep.kept.len()));
    Ok(())
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 job".into()
    } else {
        format!("{n} jobs")
    }
}

async fn show(dlq: &DeadLetters, id: &str, json: bool) -> anyhow::Result<()> {
    let sweep = dlq.list(DEFAULT_LIMIT).await.context("reading")?;
    let found: Vec<&ParkedJob> = sweep.kept.iter().filter(|job| job.id == id).collect();
    if found.is_empty() {
        bail!("no parked job {id} (dlq list shows the ids)");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    let now = Utc::now();
    for job in found {
        println!("id:            {}", job.id);
        println!("site:          {}", job.site());
        println!("reason:        {}", job.reason.summary());
        println!(
            "attempts:      {}",
            job.attempts.map_or("-".into(), |a| a.to_string())
        );
        if let Some(at) = job.parked_at {
            println!("parked:        {at} ({} ago)", short_age(now - at));
        }
        if let Some(at) = job.first_failure {
            println!("first failure: {at}");
        }
        println!(
            "properties:    {}",
            serde_json::to_string_pretty(&job.properties)?
        );
        println!("body ({} bytes):", job.body_bytes);
        match serde_json::from_str::<serde_json::Value>(&job.body) {
            Ok(body) => println!("{}", serde_json::to_string_pretty(&body)?),
            Err(_) => println!("{}", job.body),
        }
    }
    Ok(())
}

/// What an action did: one line per job on standard output, a summary on
/// standard error; an id that matched nothing is an error.
fn report(sweep: Sweep, selection: &Selection, verb: &str, queue: &str) -> anyhow::Result<()> {
    for job in &sweep.acted {
        println!("{verb} {} ({})", job.id, job.site());
    }
    let more = if sweep.more {
        "; the limit was reached: run again for the rest"
    } else {
        ""
    };
    eprintln!(
        "{verb} {}; {} left in {queue}{more}",
        plural(sweep.acted.len()),
        plural(sweep.kept.len())
    );
    let missing: Vec<&String> = selection
        .ids
        .iter()
        .filter(|id| !sweep.acted.iter().any(|job| &job.id == *id))
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        bail!(
            "no parked job {} (dlq list shows the ids)",
            names.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        let age = |s| short_age(chrono::Duration::seconds(s));
        assert_eq!(age(12), "12s");
        assert_eq!(age(310), "5m 10s");
        assert_eq!(age(2 * 3600 + 180), "2h 3m");
        assert_eq!(age(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
