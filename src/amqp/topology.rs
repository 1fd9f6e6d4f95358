//! The contract v1 topology: exchanges, queues and bindings, declared by the
//! worker on every (re)connection.
//!
//! Declarations are idempotent as long as nothing differs; a queue that
//! already exists with other arguments makes the broker answer
//! `PRECONDITION_FAILED`, which [`AmqpError::is_fatal`] turns into a clear
//! startup error instead of a retry loop. Queue arguments cannot change once a
//! queue exists, which is why they all come from [`AmqpSettings`] at once.
//!
//! ```text
//! producers ─► wfp.deploy (direct) ──deploy──► wfp.deploy.jobs (quorum)
//!                  ▲                               │ delivery limit reached,
//!                  │                               ▼ rejected without requeue
//!                  │   wfp.deploy.dlx (fanout) ──► wfp.deploy.jobs.dlq (quorum)
//!                  │                               ▲ worker: parked jobs
//!                  └─ TTL ran out ─ wfp.deploy.jobs.retry.<delay> (quorum)
//!                                                  ▲ worker: retry later
//! worker ────► wfp.deploy.events (topic): deploy.started|retrying|succeeded|failed
//! ```
//!
//! The delay queues ([`declare_retry_queues`]) are how a job comes back
//! later without a broker plugin: one quorum queue per delay, every message
//! in it with the same TTL (so the one at the head is always the first to
//! expire), dead-lettering back to the jobs exchange. Quorum rather than
//! classic because a classic queue dead-letters at most once (no
//! `at-least-once` strategy), and jobs whose delay ran out during a broker
//! restart were measured lost that way.

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use super::AmqpError;
use crate::config::AmqpSettings;

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// The jobs queue's arguments, exactly as contract v1 gives them. Anyone who
/// declares the queue (a producer, a test, an operator's script) must use
/// these, or the broker refuses the second declaration.
pub fn jobs_queue_arguments(settings: &AmqpSettings) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(i64::from(settings.delivery_limit)),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        text(&settings.dead_letter_exchange),
    );
    args.insert("x-dead-letter-strategy".into(), text("at-least-once"));
    args.insert("x-overflow".into(), text("reject-publish"));
    args
}

/// The dead-letter queue's arguments: a quorum queue, like the jobs queue,
/// so a parked job survives a broker restart on any node.
pub fn dead_letter_queue_arguments() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args
}

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

async fn exchange(channel: &Channel, name: &str, kind: ExchangeKind) -> Result<(), AmqpError> {
    channel
        .exchange_declare(name.into(), kind, durable_exchange(), FieldTable::default())
        .await
        .map_err(|error| AmqpError::Exchange {
            name: name.to_string(),
            error,
        })
}

async fn queue(channel: &Channel, name: &str, args: FieldTable) -> Result<(), AmqpError> {
    channel
        .queue_declare(name.into(), durable_queue(), args)
        .await
        .map(drop)
        .map_err(|error| AmqpError::Queue {
            name: name.to_string(),
            error,
        })
}

async fn bind(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    routing_key: &str,
) -> Result<(), AmqpError> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|error| AmqpError::Bind {
            queue: queue.to_string(),
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
            error,
        })
}

/// Declares every exchange, queue and binding of contract v1 (durable; names
/// from `settings`). Safe to call again: the same declaration is a no-op.
///
/// A refused declaration closes `channel` (that is AMQP's rule), so callers
/// give it a channel they are prepared to lose.
pub async fn declare_topology(channel: &Channel, settings: &AmqpSettings) -> Result<(), AmqpError> {
    // Dead-lettering first, so the jobs queue never points at a missing DLX.
    exchange(
        channel,
        &settings.dead_letter_exchange,
        ExchangeKind::Fanout,
    )
    .await?;
    queue(
        channel,
        &settings.dead_letter_queue,
        dead_letter_queue_arguments(),
    )
    .await?;
    bind(
        channel,
        &settings.dead_letter_queue,
        &settings.dead_letter_exchange,
        "",
    )
    .await?;

    exchange(channel, &settings.jobs_exchange, ExchangeKind::Direct).await?;
    queue(
        channel,
        &settings.jobs_queue,
        jobs_queue_arguments(settings),
    )
    .await?;
    bind(
        channel,
        &settings.jobs_queue,
        &settings.jobs_exchange,
        &settings.jobs_routing_key,
    )
    .await?;

    exchange(channel, &settings.events_exchange, ExchangeKind::Topic).await
}

/// Declares one delay queue per distinct delay in `delays` (see
/// [`retry_queue_arguments`]). The jobs exchange they dead-letter to is
/// [`declare_topology`]'s, declared first.
pub async fn declare_retry_queues(
    channel: &Channel,
    settings: &AmqpSettings,
    delays: &[Duration],
) -> Result<(), AmqpError> {
    let mut declared = Vec::new();
    for &delay in delays {
        if declared.contains(&delay) {
            continue;
        }
        let name = retry_queue_name(&settings.jobs_queue, delay);
        queue(channel, &name, retry_queue_arguments(settings, delay)).await?;
        declared.push(delay);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(args: &'a FieldTable, key: &str) -> &'a AMQPValue {
        args.inner()
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing"))
    }

    #[test]
    fn jobs_queue_arguments_follow_the_contract() {
        let settings = AmqpSettings {
            delivery_limit: 7,
            dead_letter_exchange: "dlx-x".into(),
            ..AmqpSettings::default()
        };
        let args = jobs_queue_arguments(&settings);
        assert_eq!(args.inner().len(), 5);
        assert_eq!(get(&args, "x-queue-type"), &text("quorum"));
        assert_eq!(get(&args, "x-delivery-limit"), &AMQPValue::LongLongInt(7));
        assert_eq!(get(&args, "x-dead-letter-exchange"), &text("dlx-x"));
        assert_eq!(get(&args, "x-dead-letter-strategy"), &text("at-least-once"));
        assert_eq!(get(&args, "x-overflow"), &text("reject-publish"));
    }

    #[test]
    fn the_dead_letter_queue_is_a_quorum_queue() {
        let args = dead_letter_queue_arguments();
        assert_eq!(get(&args, "x-queue-type"), &text("quorum"));
    }

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
