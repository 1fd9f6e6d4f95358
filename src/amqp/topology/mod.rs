//! The worker's topology: contract v1's exchanges, queues and bindings,
//! plus the delay queues of job-level retries ([`retry`]) and the events
//! log ([`log`]), declared by the worker on every (re)connection.
//!
//! Declarations are idempotent as long as nothing differs; a queue that
//! already exists with other arguments makes the broker answer
//! `PRECONDITION_FAILED`, which [`AmqpError::is_fatal`] turns into a clear
//! startup error instead of a retry loop. Queue arguments cannot change once a
//! queue exists, which is why they all come from settings at once.
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
//!                  └──── # ────► wfp.deploy.events.log (stream): replay
//! ```

mod log;
mod retry;

pub use log::{events_log_arguments, events_log_declarations};
pub use retry::{retry_queue_arguments, retry_queue_name};

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use super::AmqpError;
use crate::config::{AmqpSettings, Settings};

pub(super) fn text(value: &str) -> AMQPValue {
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

/// One thing the worker declares on the broker, as data: [`Topology`] runs
/// them in order, and the contract test compares them with
/// `contract/asyncapi.yaml`, so the document cannot drift from the code.
#[derive(Debug, Clone)]
pub enum Declaration {
    /// A durable exchange, no arguments.
    Exchange { name: String, kind: ExchangeKind },
    /// A durable queue with its arguments.
    Queue { name: String, arguments: FieldTable },
    /// `queue` bound to `exchange` with `routing_key`, no arguments.
    Binding {
        queue: String,
        exchange: String,
        routing_key: String,
    },
}

impl Declaration {
    fn exchange(name: &str, kind: ExchangeKind) -> Self {
        Self::Exchange {
            name: name.to_string(),
            kind,
        }
    }

    fn queue(name: &str, arguments: FieldTable) -> Self {
        Self::Queue {
            name: name.to_string(),
            arguments,
        }
    }

    fn binding(queue: &str, exchange: &str, routing_key: &str) -> Self {
        Self::Binding {
            queue: queue.to_string(),
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
        }
    }

    /// Declares it (durable), naming what was refused on error.
    pub async fn run(&self, channel: &Channel) -> Result<(), AmqpError> {
        match self {
            Self::Exchange { name, kind } => channel
                .exchange_declare(
                    name.as_str().into(),
                    kind.clone(),
                    durable_exchange(),
                    FieldTable::default(),
                )
                .await
                .map_err(|error| AmqpError::Exchange {
                    name: name.clone(),
                    error,
                }),
            Self::Queue { name, arguments } => channel
                .queue_declare(name.as_str().into(), durable_queue(), arguments.clone())
                .await
                .map(drop)
                .map_err(|error| AmqpError::Queue {
                    name: name.clone(),
                    error,
                }),
            Self::Binding {
                queue,
                exchange,
                routing_key,
            } => bind(channel, queue, exchange, routing_key).await,
        }
    }
}

/// Runs `declarations` in order on `channel`.
pub async fn declare_all(channel: &Channel, declarations: &[Declaration]) -> Result<(), AmqpError> {
    for declaration in declarations {
        declaration.run(channel).await?;
    }
    Ok(())
}

/// Binds `queue` to `exchange` with `routing_key`, naming all three on error.
pub(crate) async fn bind(
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

/// Contract v1's exchanges, queues and bindings (names from `settings`), in
/// the order they are declared: dead-lettering first, so the jobs queue
/// never points at a missing DLX.
pub fn contract_declarations(settings: &AmqpSettings) -> Vec<Declaration> {
    let s = settings;
    vec![
        Declaration::exchange(&s.dead_letter_exchange, ExchangeKind::Fanout),
        Declaration::queue(&s.dead_letter_queue, dead_letter_queue_arguments()),
        Declaration::binding(&s.dead_letter_queue, &s.dead_letter_exchange, ""),
        Declaration::exchange(&s.jobs_exchange, ExchangeKind::Direct),
        Declaration::queue(&s.jobs_queue, jobs_queue_arguments(s)),
        Declaration::binding(&s.jobs_queue, &s.jobs_exchange, &s.jobs_routing_key),
        events_exchange(s),
    ]
}

/// The events exchange, as the worker declares it: for a reader that may
/// start before any worker ever ran.
pub fn events_exchange(settings: &AmqpSettings) -> Declaration {
    Declaration::exchange(&settings.events_exchange, ExchangeKind::Topic)
}

/// Declares every exchange, queue and binding of contract v1 (durable; names
/// from `settings`). Safe to call again: the same declaration is a no-op.
///
/// A refused declaration closes `channel` (that is AMQP's rule), so callers
/// give it a channel they are prepared to lose.
pub async fn declare_topology(channel: &Channel, settings: &AmqpSettings) -> Result<(), AmqpError> {
    declare_all(channel, &contract_declarations(settings)).await
}

/// Everything the worker declares, with the settings it takes: contract
/// v1's topology, one delay queue per retry delay, the events log.
#[derive(Debug, Clone)]
pub struct Topology {
    amqp: AmqpSettings,
    retry_delays: Vec<Duration>,
    events_log_max_age: Duration,
}

impl Topology {
    pub fn new(settings: &Settings) -> Self {
        Self {
            amqp: settings.amqp.clone(),
            retry_delays: settings.worker.retry_delays.clone(),
            events_log_max_age: settings.events.log_max_age,
        }
    }

    /// Everything, in the order it is declared: the jobs exchange comes
    /// before the delay queues that dead-letter to it, the events exchange
    /// before the log bound to it.
    pub fn declarations(&self) -> Vec<Declaration> {
        let mut all = contract_declarations(&self.amqp);
        all.extend(retry::retry_declarations(&self.amqp, &self.retry_delays));
        all.extend(log::events_log_declarations(
            &self.amqp,
            self.events_log_max_age,
        ));
        all
    }

    /// Declares it all; safe to call again (see [`declare_topology`]).
    pub async fn declare(&self, channel: &Channel) -> Result<(), AmqpError> {
        declare_all(channel, &self.declarations()).await
    }

    /// The queues the worker feeds itself: jobs, dead letters, the delay
    /// queues and the events log. A job's `reply_to` must not name one.
    pub fn own_queues(&self) -> Vec<String> {
        let retry_queues = self
            .retry_delays
            .iter()
            .map(|delay| retry_queue_name(&self.amqp.jobs_queue, *delay));
        [
            self.amqp.jobs_queue.clone(),
            self.amqp.dead_letter_queue.clone(),
            self.amqp.events_log_queue.clone(),
        ]
        .into_iter()
        .chain(retry_queues)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn get<'a>(args: &'a FieldTable, key: &str) -> &'a AMQPValue {
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
    fn the_worker_knows_its_own_queues() {
        let mut settings = Settings::default();
        settings.worker.retry_delays = vec![Duration::from_secs(10), Duration::from_secs(60)];
        let own = Topology::new(&settings).own_queues();
        assert_eq!(
            own,
            [
                "wfp.deploy.jobs",
                "wfp.deploy.jobs.dlq",
                "wfp.deploy.events.log",
                "wfp.deploy.jobs.retry.10s",
                "wfp.deploy.jobs.retry.1m",
            ]
        );
    }
}
