//! What the soak saw: every job published (and when), every event the tap
//! delivered, and from them the per-job outcomes, the summary's counts and
//! the checks that need only the events.
//!
//! The tap may deliver one event twice after its own connection was cut
//! (a redelivery of an event it had not acked); those are dropped by event
//! id. A terminal event the worker published twice (a job redelivered after
//! its event went out) arrives as a new message and counts as a duplicate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

/// A published job or malformed message.
struct Published {
    at: Instant,
    malformed: bool,
}

/// One terminal event of a job.
struct Terminal {
    event_id: String,
    /// `succeeded`, or the failure's code.
    outcome: String,
    at: Instant,
}

#[derive(Default)]
pub struct Ledger {
    published: HashMap<String, Published>,
    terminal: HashMap<String, Vec<Terminal>>,
    retrying: HashMap<String, u32>,
    seen: HashSet<String>,
    /// Terminal events of ids this run never published.
    strangers: usize,
    /// How often the tap lost its connection (the broker restart, a cut).
    tap_errors: usize,
}

impl Ledger {
    pub fn published(&mut self, id: &str, malformed: bool) {
        self.published.insert(
            id.to_string(),
            Published {
                at: Instant::now(),
                malformed,
            },
        );
    }

    pub fn note_tap_error(&mut self) {
        self.tap_errors += 1;
    }

    pub fn record(&mut self, routing_key: &str, event: &Value, redelivered: bool) {
        let id = event.get("id").and_then(Value::as_str).unwrap_or_default();
        if !self.seen.insert(id.to_string()) && redelivered {
            return;
        }
        let job = event
            .pointer("/data/job_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let outcome = match routing_key {
            "deploy.succeeded" => "succeeded".to_string(),
            "deploy.failed" => event
                .pointer("/data/error/code")
                .and_then(Value::as_str)
                .unwrap_or("no code")
                .to_string(),
            "deploy.retrying" => {
                *self.retrying.entry(job).or_default() += 1;
                return;
            }
            _ => return,
        };
        if !self.published.contains_key(&job) {
            self.strangers += 1;
        }
        self.terminal.entry(job).or_default().push(Terminal {
            event_id: id.to_string(),
            outcome,
            at: Instant::now(),
        });
    }

    /// Published jobs and messages with at least one terminal event.
    pub fn ended(&self) -> usize {
        self.published
            .keys()
            .filter(|id| self.terminal.contains_key(*id))
            .count()
    }

    pub fn total(&self) -> usize {
        self.published.len()
    }

    /// The first outcome of `job`.
    pub fn outcome(&self, job: &str) -> Option<&str> {
        self.terminal.get(job)?.first().map(|t| t.outcome.as_str())
    }

    /// Counts and the checks on events alone.
    pub fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        let mut latencies = Vec::new();
        for (id, published) in &self.published {
            let Some(events) = self.terminal.get(id) else {
                tally.lost.push(id.clone());
                continue;
            };
            let outcomes: HashSet<&str> = events.iter().map(|t| t.outcome.as_str()).collect();
            let ids: HashSet<&str> = events.iter().map(|t| t.event_id.as_str()).collect();
            if outcomes.len() > 1 || ids.len() > 1 {
                tally.conflicting.push(format!("{id}: {outcomes:?}"));
            }
            tally.duplicates += events.len() - 1;
            let first = &events[0];
            if published.malformed {
                if first.outcome != "invalid_job" {
                    tally
                        .malformed_not_invalid
                        .push(format!("{id}: {}", first.outcome));
                }
                continue;
            }
            tally.jobs += 1;
            if self.retrying.contains_key(id) {
                tally.retried += 1;
            }
            if first.outcome == "succeeded" {
                tally.succeeded += 1;
            } else {
                *tally.failed.entry(first.outcome.clone()).or_default() += 1;
            }
            latencies.push(first.at.duration_since(published.at).as_millis() as u64);
        }
        tally.retrying_events = self.retrying.values().map(|n| u64::from(*n)).sum();
        tally.strangers = self.strangers;
        latencies.sort_unstable();
        tally.p50_ms = percentile(&latencies, 0.50);
        tally.p99_ms = percentile(&latencies, 0.99);
        tally.tap_errors = self.tap_errors;
        tally.lost.sort();
        tally
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The counts of the summary, over the jobs (malformed messages apart).
#[derive(Debug, Default, Serialize)]
pub struct Tally {
    pub jobs: usize,
    pub succeeded: usize,
    /// Failed jobs by error code (`superseded` included).
    pub failed: BTreeMap<String, usize>,
    /// Jobs with at least one `deploy.retrying`.
    pub retried: usize,
    pub retrying_events: u64,
    /// Terminal events beyond the first of a job (same id and result).
    pub duplicates: usize,
    /// Jobs and messages with no terminal event.
    pub lost: Vec<String>,
    /// Jobs with two different terminal events.
    pub conflicting: Vec<String>,
    pub malformed_not_invalid: Vec<String>,
    /// Terminal events naming a job this run never published.
    pub strangers: usize,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub tap_errors: usize,
}
