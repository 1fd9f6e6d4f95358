//! Publishing events: the AMQP properties contract v1 promises, the
//! publisher confirm that decides a job's ack, and the `reply_to` copy.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

use super::Event;
use crate::amqp::{ConfirmedPublisher, PublishError};
use crate::contract::{CloudEvent, EventKind};
use crate::internal_events::{EventPublished, ReplyToNotDelivered, emit};

/// `content_type` of every event: CloudEvents structured mode.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
/// `app_id` of every event.
pub const APP_ID: &str = "wfp-deployer";
/// AMQP `delivery_mode` for messages the broker writes to disk.
const PERSISTENT: u8 = 2;

/// A short string, or nothing when it does not fit AMQP's 255 bytes (the
/// body still carries the full value).
fn short(value: &str) -> Option<ShortString> {
    ShortString::try_new(value).ok()
}

/// The AMQP properties of an event: CloudEvents content type, persistent,
/// `message_id` = event id, `type` = event type, `correlation_id`,
/// `timestamp`, `app_id`, and the headers consumers route and filter on.
pub fn properties(event: &CloudEvent, now: DateTime<Utc>) -> BasicProperties {
    let job = &event.data.job;
    let mut headers = FieldTable::default();
    let mut header = |name: &str, value: &Option<String>| {
        if let Some(value) = value {
            headers.insert(
                name.into(),
                AMQPValue::LongString(LongString::from(value.as_str())),
            );
        }
    };
    header("job_id", &Some(job.job_id.clone()));
    header("namespace", &job.namespace);
    header("script_name", &job.script_name);

    let mut props = BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(PERSISTENT)
        .with_timestamp(u64::try_from(now.timestamp()).unwrap_or(0))
        .with_app_id(APP_ID.into())
        .with_headers(headers);
    if let Some(id) = short(&event.id) {
        props = props.with_message_id(id);
    }
    if let Some(kind) = short(&event.event_type) {
        props = props.with_type(kind);
    }
    if let Some(id) = job.correlation_id.as_deref().and_then(short) {
        props = props.with_correlation_id(id);
    }
    props
}

/// Why an event is not known to be safe with the broker.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("event {id}: cannot encode: {error}")]
    Encode {
        id: String,
        error: serde_json::Error,
    },
    #[error("event {id}: {error}")]
    Publish {
        id: String,
        error: Box<PublishError>,
    },
}

/// Where the worker's events go. A trait so the worker's handling of one job
/// can be unit-tested with a scripted publisher (the real one is
/// [`EventPublisher`]).
#[async_trait::async_trait]
pub trait Publish: Send + Sync {
    /// Publishes `event`; `Ok` only once the broker confirmed it, since the
    /// result decides the job's ack. Terminal events are also copied to
    /// `reply_to` when there is one.
    async fn publish(&self, event: &Event, reply_to: Option<&str>) -> Result<(), EventError>;
}

/// Publishes events to the events exchange, terminal ones also to the job's
/// `reply_to` queue.
#[derive(Debug, Clone)]
pub struct EventPublisher {
    publisher: Arc<ConfirmedPublisher>,
    exchange: String,
    /// Queues a `reply_to` may not name (see [`reply_target`]).
    own_queues: Vec<String>,
}

impl EventPublisher {
    pub fn new(publisher: Arc<ConfirmedPublisher>, exchange: impl Into<String>) -> Self {
        Self {
            publisher,
            exchange: exchange.into(),
            own_queues: Vec::new(),
        }
    }

    /// Refuses `reply_to` copies to these queues: the worker's own (jobs,
    /// dead letters, delays, the events log).
    pub fn refusing_reply_to(mut self, own_queues: Vec<String>) -> Self {
        self.own_queues = own_queues;
        self
    }
}

/// Where the `reply_to` copy of an event of `kind` goes: the job's
/// `reply_to` for a terminal event, unless it names one of `own_queues`.
/// A copy in the jobs queue would come back as a (broken) job, one in a
/// delay queue as a job later, one in the dead-letter queue as a parked
/// job, and one in the events log as a second event: so none is sent, and
/// the refusal is logged. The events exchange has the event anyway.
pub fn reply_target<'a>(
    kind: EventKind,
    reply_to: Option<&'a str>,
    own_queues: &[String],
) -> Option<&'a str> {
    let queue = reply_to.filter(|_| kind.is_terminal())?;
    if own_queues.iter().any(|own| own == queue) {
        tracing::warn!(
            reply_to = queue,
            "reply_to names one of the worker's own queues: no copy sent there"
        );
        return None;
    }
    Some(queue)
}

#[async_trait::async_trait]
impl Publish for EventPublisher {
    /// Publishes `event` and waits for the broker's confirm. Then, for a
    /// terminal event with a `reply_to` ([`reply_target`]), sends the copy
    /// there: its failure is logged, never returned, because the events
    /// exchange is the contract's record.
    async fn publish(&self, event: &Event, reply_to: Option<&str>) -> Result<(), EventError> {
        let id = || event.body.id.clone();
        let payload = serde_json::to_vec(&event.body)
            .map_err(|error| EventError::Encode { id: id(), error })?;
        let props = properties(&event.body, Utc::now());
        let sent = Instant::now();
        self.publisher
            .publish(
                &self.exchange,
                event.kind.routing_key(),
                &payload,
                props.clone(),
            )
            .await
            .map_err(|error| EventError::Publish {
                id: id(),
                error: Box::new(error),
            })?;
        emit(EventPublished {
            routing_key: event.kind.routing_key(),
            confirm_latency: sent.elapsed(),
        });
        if let Some(queue) = reply_target(event.kind, reply_to, &self.own_queues)
            && let Err(error) = self.publisher.publish("", queue, &payload, props).await
        {
            emit(ReplyToNotDelivered {
                event_id: &event.body.id,
                error: &error,
            });
        }
        Ok(())
    }
}
