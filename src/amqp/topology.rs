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
//!                                                  │ delivery limit reached,
//!                                                  ▼ rejected without requeue
//!              wfp.deploy.dlx (fanout) ──────► wfp.deploy.jobs.dlq (quorum)
//! worker ────► wfp.deploy.events (topic): deploy.started|succeeded|failed
//! ```

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
}
