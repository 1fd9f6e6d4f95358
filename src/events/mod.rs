//! The worker's events: built from a job (or an invalid message) and an
//! outcome, and published with the AMQP properties contract v1 promises.
//!
//! Kept apart from the worker loop so the exact shape of what other teams
//! consume (CloudEvent body, `message_id`, `type`, `correlation_id`, headers)
//! is defined, and unit-tested, in one place without a broker.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

use crate::amqp::{ConfirmedPublisher, DeliveryMeta, PublishError};
use crate::contract::{
    CloudEvent, DeployJob, ErrorCode, EventData, EventKind, FailureInfo, InvalidJob, JobFields,
    Step,
};
use crate::pipeline::Outcome;

/// `content_type` of every event: CloudEvents structured mode.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
/// `app_id` of every event.
pub const APP_ID: &str = "wfp-deployer";
/// AMQP `delivery_mode` for messages the broker writes to disk.
const PERSISTENT: u8 = 2;
/// Longest AMQP `message_id` the worker reuses as a job id; longer ones would
/// make event ids that do not fit AMQP's 255-byte short strings.
const MAX_FALLBACK_JOB_ID: usize = 128;

/// An event and the kind that decides its routing key.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub body: CloudEvent,
}

/// Builds events for one worker instance.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    instance: String,
    /// The configured account, reported for jobs that name none.
    default_account: Option<String>,
}

impl EventBuilder {
    pub fn new(instance: impl Into<String>, default_account: &str) -> Self {
        Self {
            instance: instance.into(),
            default_account: Some(default_account.to_string()).filter(|a| !a.is_empty()),
        }
    }

    fn fields(&self, job: &DeployJob, meta: &DeliveryMeta, account: Option<String>) -> JobFields {
        JobFields {
            job_id: job.job_id.clone(),
            // The job's own id wins; the AMQP one is the fallback, so event
            // body and properties always agree.
            correlation_id: job
                .correlation_id
                .clone()
                .or_else(|| meta.correlation_id.clone()),
            labels: job.labels.clone(),
            account_id: account,
            namespace: Some(job.namespace.clone()),
            script_name: Some(job.script_name.clone()),
        }
    }

    fn event(&self, kind: EventKind, data: EventData, now: DateTime<Utc>) -> Event {
        Event {
            kind,
            body: CloudEvent::new(kind, &self.instance, data, now),
        }
    }

    /// `deploy.started`: the job's fields and the attempt.
    pub fn started(&self, job: &DeployJob, meta: &DeliveryMeta, now: DateTime<Utc>) -> Event {
        let account = job
            .account_id
            .clone()
            .or_else(|| self.default_account.clone());
        let data = EventData {
            job: self.fields(job, meta, account),
            attempt: meta.attempt,
            duration_ms: None,
            manifest: None,
            upload: None,
            deployment: None,
            error: None,
        };
        self.event(EventKind::Started, data, now)
    }

    /// `deploy.succeeded` or `deploy.failed`, from the deploy's outcome; the
    /// account is the one the outcome reports.
    pub fn terminal(
        &self,
        job: &DeployJob,
        meta: &DeliveryMeta,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Event {
        // The account the deploy used; if it never got that far (a panic),
        // the one `deploy.started` named.
        let account = outcome
            .account_id
            .clone()
            .or_else(|| job.account_id.clone())
            .or_else(|| self.default_account.clone());
        let mut data = EventData {
            job: self.fields(job, meta, account),
            attempt: meta.attempt,
            duration_ms: Some(millis(outcome.duration)),
            manifest: None,
            upload: None,
            deployment: None,
            error: None,
        };
        let kind = match &outcome.result {
            Ok(success) => {
                data.manifest = Some(success.manifest.clone());
                data.upload = Some(success.upload.clone());
                data.deployment = Some(success.deployment.clone());
                EventKind::Succeeded
            }
            Err(failure) => {
                data.error = Some(failure.clone());
                EventKind::Failed
            }
        };
        self.event(kind, data, now)
    }

    /// `deploy.failed` for a message that is not a valid job: `invalid_job`
    /// at `validate`, not retryable, under the best id the message offers.
    pub fn invalid(
        &self,
        invalid: &InvalidJob,
        meta: &DeliveryMeta,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> Event {
        let data = EventData {
            job: JobFields {
                job_id: invalid_job_id(invalid, meta),
                correlation_id: invalid
                    .correlation_id
                    .clone()
                    .or_else(|| meta.correlation_id.clone()),
                labels: invalid.labels.clone(),
                account_id: None,
                namespace: invalid.namespace.clone(),
                script_name: invalid.script_name.clone(),
            },
            attempt: meta.attempt,
            duration_ms: Some(millis(duration)),
            manifest: None,
            upload: None,
            deployment: None,
            error: Some(invalid_failure(invalid)),
        };
        self.event(EventKind::Failed, data, now)
    }
}

/// The failure an invalid message is reported with.
pub fn invalid_failure(invalid: &InvalidJob) -> FailureInfo {
    FailureInfo {
        code: ErrorCode::InvalidJob,
        message: invalid.message.clone(),
        step: Step::Validate,
        retryable: false,
    }
}

/// The id an invalid message is reported under: its readable `job_id`, else
/// its AMQP `message_id`, else a fresh UUID so the event still has one.
pub fn invalid_job_id(invalid: &InvalidJob, meta: &DeliveryMeta) -> String {
    invalid
        .job_id
        .clone()
        .or_else(|| {
            meta.message_id
                .clone()
                .filter(|id| id.len() <= MAX_FALLBACK_JOB_ID)
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

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

/// Publishes events to the events exchange, terminal ones also to the job's
/// `reply_to` queue.
#[derive(Debug, Clone)]
pub struct EventPublisher {
    publisher: Arc<ConfirmedPublisher>,
    exchange: String,
}

impl EventPublisher {
    pub fn new(publisher: Arc<ConfirmedPublisher>, exchange: impl Into<String>) -> Self {
        Self {
            publisher,
            exchange: exchange.into(),
        }
    }

    /// Publishes `event` and waits for the broker's confirm; the result is
    /// what decides the job's ack. Then, for a terminal event with a
    /// `reply_to`, sends the copy there: its failure is logged, never
    /// returned, because the events exchange is the contract's record.
    pub async fn publish(&self, event: &Event, reply_to: Option<&str>) -> Result<(), EventError> {
        let id = || event.body.id.clone();
        let payload = serde_json::to_vec(&event.body)
            .map_err(|error| EventError::Encode { id: id(), error })?;
        let props = properties(&event.body, Utc::now());
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
        if let (true, Some(queue)) = (event.kind.is_terminal(), reply_to)
            && let Err(error) = self.publisher.publish("", queue, &payload, props).await
        {
            tracing::warn!(%error, event_id = %event.body.id, "reply_to copy not delivered");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
