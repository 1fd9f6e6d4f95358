//! The delay queues of job-level retries.
//!
//! The delay queues are how a job comes back
//! later without a broker plugin: one quorum queue per delay, every message
//! in it with the same TTL (so the one at the head is always the first to
//! expire), dead-lettering back to the jobs exchange. Quorum rather than
//! classic because a classic queue dead-letters at most once (no
//! `at-least-once` strategy), and jobs whose delay ran out during a broker
//! restart were measured lost that way.

use std::time::Duration;

use lapin::types::{AMQPValue, FieldTable};

use super::{Declaration, text};
use crate::config::AmqpSettings;

/// The delay queue for `delay`: `<jobs_queue>.retry.<delay>`, the delay in
/// its largest whole unit (`10s`, `1m`, `5m`, `1h`, `1500ms`).
pub fn retry_queue_name(jobs_queue: &str, delay: Duration) -> String {
    let label = if delay.subsec_nanos() != 0 {
        format!("{}ms", delay.as_millis())
    } else {
        match delay.as_secs() {
            s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
            s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
            s => format!("{s}s"),
        }
    };
    format!("{jobs_queue}.retry.{label}")
}

/// A delay queue's arguments: its messages expire after `delay` and are
/// dead-lettered, at least once, to the jobs exchange with the jobs routing
/// key, so they reach the jobs queue again. `at-least-once` needs
/// `reject-publish`: a full delay queue refuses the worker's publish (the
/// job is then requeued), it never drops the oldest.
pub fn retry_queue_arguments(settings: &AmqpSettings, delay: Duration) -> FieldTable {
    let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
    args.insert(
        "x-dead-letter-exchange".into(),
        text(&settings.jobs_exchange),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        text(&settings.jobs_routing_key),
    );
    args.insert("x-dead-letter-strategy".into(), text("at-least-once"));
    args.insert("x-overflow".into(), text("reject-publish"));
    args
}

/// One delay queue per distinct delay in `delays` (see
/// [`retry_queue_arguments`]). The jobs exchange they dead-letter to is
/// among the contract's declarations, which come first.
pub(super) fn retry_declarations(settings: &AmqpSettings, delays: &[Duration]) -> Vec<Declaration> {
    let mut declared = Vec::new();
    delays
        .iter()
        .filter(|delay| {
            let first = !declared.contains(*delay);
            declared.push(**delay);
            first
        })
        .map(|&delay| {
            let name = retry_queue_name(&settings.jobs_queue, delay);
            Declaration::queue(&name, retry_queue_arguments(settings, delay))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::get;
    use super::*;

    #[test]
    fn delay_queues_are_named_by_their_delay() {
        let name = |d| retry_queue_name("wfp.deploy.jobs", d);
        assert_eq!(name(Duration::from_secs(10)), "wfp.deploy.jobs.retry.10s");
        assert_eq!(name(Duration::from_secs(60)), "wfp.deploy.jobs.retry.1m");
        assert_eq!(name(Duration::from_secs(90)), "wfp.deploy.jobs.retry.90s");
        assert_eq!(name(Duration::from_secs(300)), "wfp.deploy.jobs.retry.5m");
        assert_eq!(name(Duration::from_secs(7200)), "wfp.deploy.jobs.retry.2h");
        assert_eq!(
            name(Duration::from_millis(1500)),
            "wfp.deploy.jobs.retry.1500ms"
        );
    }

    #[test]
    fn a_delay_queue_dead_letters_back_to_the_jobs_exchange_when_its_ttl_runs_out() {
        let settings = AmqpSettings::default();
        let args = retry_queue_arguments(&settings, Duration::from_secs(60));
        assert_eq!(args.inner().len(), 6);
        assert_eq!(get(&args, "x-queue-type"), &text("quorum"));
        assert_eq!(get(&args, "x-message-ttl"), &AMQPValue::LongLongInt(60_000));
        assert_eq!(get(&args, "x-dead-letter-exchange"), &text("wfp.deploy"));
        assert_eq!(get(&args, "x-dead-letter-routing-key"), &text("deploy"));
        assert_eq!(get(&args, "x-dead-letter-strategy"), &text("at-least-once"));
        assert_eq!(get(&args, "x-overflow"), &text("reject-publish"));
    }
}
