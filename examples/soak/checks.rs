//! The soak's verdict: every job ended once (duplicates only the same
//! event), every job succeeded or was superseded by a newer build, each
//! script's live deployment is its newest job's build, every malformed
//! message is in the dead-letter queue byte for byte (its `message_id`
//! kept too) and nothing else is,
//! no message is left in the jobs or delay queues, and every worker stopped
//! with SIGTERM exited 0.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use wfp_deployer::amqp::Topology;

use crate::broker;
use crate::jobs::{JobSpec, Malformed};
use crate::ledger::{Ledger, Tally};
use crate::phases::Ctx;
use crate::sim;

/// One check's result.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &'static str, problems: &[String], fine: String) -> Check {
    let ok = problems.is_empty();
    let detail = if ok {
        fine
    } else {
        let shown: Vec<&str> = problems.iter().take(10).map(String::as_str).collect();
        format!("{} problem(s): {}", problems.len(), shown.join("; "))
    };
    println!("  {} {name}: {detail}", if ok { "PASS" } else { "FAIL" });
    Check { name, ok, detail }
}

/// What the broker and the fleet held at the end.
pub struct Found {
    /// Messages left in the jobs and delay queues, by queue.
    pub queues: BTreeMap<String, Option<u64>>,
    pub dlq: Vec<broker::Held>,
    pub bad_exits: Vec<String>,
}

/// The queues that must end empty: jobs and the delay queues.
fn work_queues(ctx: &Ctx<'_>) -> Vec<String> {
    let amqp = &ctx.settings.amqp;
    Topology::new(&ctx.settings)
        .own_queues()
        .into_iter()
        .filter(|q| *q != amqp.dead_letter_queue && *q != amqp.events_log_queue)
        .collect()
}

/// Waits (up to the longest delay and a minute) until the jobs and delay
/// queues are empty and the DLQ holds `parked` messages: a retry copy left
/// in a delay queue comes back and ends later. The management API's counts
/// lag a few seconds behind, so they must hold on two reads in a row.
pub async fn wait_queues_settled(ctx: &Ctx<'_>, parked: usize) -> BTreeMap<String, Option<u64>> {
    let queues = work_queues(ctx);
    let dlq = ctx.settings.amqp.dead_letter_queue.clone();
    let deadline = Instant::now() + Duration::from_secs(30 + 60) + crate::RETRY_DELAYS[2];
    let mut calm = 0;
    loop {
        let mut counts = BTreeMap::new();
        for q in &queues {
            counts.insert(q.clone(), broker::queue_messages(q).await);
        }
        let settled = counts.values().all(|c| *c == Some(0))
            && broker::queue_messages(&dlq).await == Some(parked as u64);
        calm = if settled { calm + 1 } else { 0 };
        if calm >= 2 || Instant::now() > deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// Waits (up to a minute) until the tap queue is empty: every event the
/// workers published has reached the ledger.
pub async fn wait_tap_drained(run: &str) {
    let tap = broker::tap_queue(run);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut calm = 0;
    while Instant::now() < deadline && calm < 2 {
        calm = if broker::queue_messages(&tap).await == Some(0) {
            calm + 1
        } else {
            0
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// Each script's newest job: the last built.
pub fn newest_per_script(jobs: &[JobSpec]) -> BTreeMap<String, JobSpec> {
    let mut newest: BTreeMap<String, JobSpec> = BTreeMap::new();
    for job in jobs {
        let entry = newest
            .entry(job.script.clone())
            .or_insert_with(|| job.clone());
        if job.build > entry.build {
            *entry = job.clone();
        }
    }
    newest
}

/// Scripts whose live build is not their newest job's, or whose newest job
/// did not succeed.
pub async fn live(
    ctx: &Ctx<'_>,
    newest: &BTreeMap<String, JobSpec>,
    ledger: &Arc<Mutex<Ledger>>,
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for (script, job) in newest {
        let outcome = ledger
            .lock()
            .expect("ledger")
            .outcome(&job.id)
            .map(str::to_string);
        if outcome.as_deref() != Some("succeeded") {
            problems.push(format!("{script}: newest job {} ended {outcome:?}", job.id));
        }
        let served =
            sim::live_asset(&ctx.stack.sim_url, &ctx.namespace, script, "index.html").await?;
        match served {
            None => problems.push(format!("{script}: nothing live")),
            Some(bytes) if bytes != job.index_html(&ctx.run) => {
                let text = String::from_utf8_lossy(&bytes);
                let head = text.lines().next().unwrap_or_default().to_string();
                problems.push(format!(
                    "{script}: live is {head:?}, newest is build {}",
                    job.build
                ));
            }
            Some(_) => {}
        }
    }
    Ok(problems)
}

/// Every check, printed as it is made.
pub fn run(tally: &Tally, found: &Found, malformed: &[Malformed], live: Vec<String>) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(check(
        "every job ended",
        &tally.lost,
        format!(
            "{} jobs and {} malformed messages",
            tally.jobs,
            malformed.len()
        ),
    ));
    let mut once = tally.conflicting.clone();
    if tally.strangers > 0 {
        once.push(format!(
            "{} terminal events of unknown jobs",
            tally.strangers
        ));
    }
    checks.push(check(
        "one outcome per job",
        &once,
        format!(
            "{} duplicate terminal events, each the same as the first",
            tally.duplicates
        ),
    ));
    let failed: Vec<String> = tally
        .failed
        .iter()
        .filter(|(code, _)| code.as_str() != "superseded")
        .map(|(code, n)| format!("{n} {code}"))
        .collect();
    checks.push(check(
        "every job succeeded or was superseded",
        &failed,
        format!("{} succeeded", tally.succeeded),
    ));
    checks.push(check(
        "each script's newest build is live",
        &live,
        "every script".into(),
    ));
    let mut dlq = tally.malformed_not_invalid.clone();
    for bad in malformed {
        let same = |(body, id): &&broker::Held| {
            *body == bad.body && id.as_deref() == Some(bad.id.as_str())
        };
        let copies = found.dlq.iter().filter(same).count();
        if copies != 1 {
            dlq.push(format!(
                "{} ({}): {copies} copies parked with its body and message_id",
                bad.id, bad.kind
            ));
        }
    }
    let strangers = found
        .dlq
        .iter()
        .filter(|(body, _)| !malformed.iter().any(|m| m.body == *body))
        .count();
    if strangers > 0 {
        dlq.push(format!("{strangers} other messages parked"));
    }
    checks.push(check(
        "malformed messages parked byte-exact, nothing else",
        &dlq,
        format!("{} parked, each invalid_job", malformed.len()),
    ));
    let left: Vec<String> = found
        .queues
        .iter()
        .filter(|(_, n)| **n != Some(0))
        .map(|(q, n)| format!("{q}: {n:?}"))
        .collect();
    checks.push(check(
        "jobs and delay queues empty",
        &left,
        format!("{} queues", found.queues.len()),
    ));
    checks.push(check(
        "SIGTERM exits 0",
        &found.bad_exits,
        "every graceful stop".into(),
    ));
    checks
}
