//! Where a job's own message goes when it is not simply acked or requeued:
//! to a delay queue, to come back later, or to the dead-letter queue, kept.
//!
//! Both copies are the delivered message byte for byte — body and every
//! property — plus headers of the worker's own ([`retry_properties`],
//! [`park_properties`]), so a parked poison message can be studied exactly
//! as it arrived, and a retried job is the same job. Both are confirmed
//! before the original is acked.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, LongString};

use crate::amqp::{
    ATTEMPT_HEADER, ConfirmedPublisher, FIRST_FAILURE_HEADER, PublishError, retry_queue_name,
};
use crate::config::AmqpSettings;
use crate::contract::FailureInfo;
use crate::contract::quote::bounded;

/// Headers of a parked message, saying why it was parked.
pub const PARK_CODE_HEADER: &str = "x-wfp-park-code";
pub const PARK_MESSAGE_HEADER: &str = "x-wfp-park-message";
pub const PARK_STEP_HEADER: &str = "x-wfp-park-step";
pub const PARK_ATTEMPTS_HEADER: &str = "x-wfp-park-attempts";
pub const PARK_FIRST_FAILURE_HEADER: &str = "x-wfp-park-first-failure";
pub const PARK_LAST_FAILURE_HEADER: &str = "x-wfp-park-last-failure";

/// Longest error message a park header carries: the `deploy.failed` event
/// has it whole; a header is for a person skimming the queue.
const MAX_PARK_MESSAGE: usize = 1024;

/// Sends a job's message to a delay queue or the dead-letter queue. A trait
/// so a delivery's handling can be unit-tested with a scripted double (the
/// real one is [`BrokerReroute`]).
#[async_trait::async_trait]
pub trait Reroute: Send + Sync {
    /// Publishes the message to the delay queue of `delay`; `Ok` only once
    /// the broker confirmed it.
    async fn retry_later(
        &self,
        delay: Duration,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError>;

    /// Publishes the message to the dead-letter queue; `Ok` only once the
    /// broker confirmed it.
    async fn park(&self, body: &[u8], properties: BasicProperties) -> Result<(), PublishError>;
}

/// The broker's delay queues and dead-letter queue, through the confirmed
/// publisher. A queue that does not exist is an error, never a message
/// dropped.
pub struct BrokerReroute {
    publisher: Arc<ConfirmedPublisher>,
    jobs_queue: String,
    dead_letter_queue: String,
}

impl BrokerReroute {
    pub fn new(publisher: Arc<ConfirmedPublisher>, settings: &AmqpSettings) -> Self {
        Self {
            publisher,
            jobs_queue: settings.jobs_queue.clone(),
            dead_letter_queue: settings.dead_letter_queue.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Reroute for BrokerReroute {
    async fn retry_later(
        &self,
        delay: Duration,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let queue = retry_queue_name(&self.jobs_queue, delay);
        self.publisher
            .publish_to_queue(&queue, body, properties)
            .await
    }

    async fn park(&self, body: &[u8], properties: BasicProperties) -> Result<(), PublishError> {
        self.publisher
            .publish_to_queue(&self.dead_letter_queue, body, properties)
            .await
    }
}

/// Why a message is parked, for its headers.
#[derive(Debug, Clone, Copy)]
pub struct ParkReason<'a> {
    pub failure: &'a FailureInfo,
    /// The attempt that failed last.
    pub attempts: u32,
    pub first_failure: DateTime<Utc>,
    pub last_failure: DateTime<Utc>,
}

/// The delivered properties for a retry: unchanged but for the attempt the
/// next delivery is and when the job first failed.
pub fn retry_properties(
    delivered: &BasicProperties,
    next_attempt: u32,
    first_failure: DateTime<Utc>,
) -> BasicProperties {
    with_headers(
        delivered,
        [
            (ATTEMPT_HEADER, AMQPValue::LongLongInt(next_attempt.into())),
            (FIRST_FAILURE_HEADER, time(first_failure)),
        ],
    )
}

/// The delivered properties for the dead-letter queue: unchanged, plus the
/// `x-wfp-park-*` headers saying why.
pub fn park_properties(delivered: &BasicProperties, reason: &ParkReason<'_>) -> BasicProperties {
    let failure = reason.failure;
    with_headers(
        delivered,
        [
            (PARK_CODE_HEADER, text(failure.code.as_str())),
            (
                PARK_MESSAGE_HEADER,
                text(&bounded(&failure.message, MAX_PARK_MESSAGE)),
            ),
            (PARK_STEP_HEADER, text(failure.step.as_str())),
            (
                PARK_ATTEMPTS_HEADER,
                AMQPValue::LongLongInt(reason.attempts.into()),
            ),
            (PARK_FIRST_FAILURE_HEADER, time(reason.first_failure)),
            (PARK_LAST_FAILURE_HEADER, time(reason.last_failure)),
        ],
    )
}

/// `delivered` with `headers` set (replacing same-named ones), every other
/// property and header as it was.
fn with_headers<const N: usize>(
    delivered: &BasicProperties,
    headers: [(&str, AMQPValue); N],
) -> BasicProperties {
    let mut table = delivered.headers().clone().unwrap_or_default();
    for (name, value) in headers {
        table.insert(name.into(), value);
    }
    delivered.clone().with_headers(table)
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

fn time(at: DateTime<Utc>) -> AMQPValue {
    text(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use lapin::types::FieldTable;

    use super::*;
    use crate::amqp::header_str;
    use crate::contract::{ErrorCode, Step};

    fn delivered() -> BasicProperties {
        let mut headers = FieldTable::default();
        headers.insert("tenant".into(), text("acme"));
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongLongInt(2));
        BasicProperties::default()
            .with_content_type("application/json".into())
            .with_message_id("m-1".into())
            .with_priority(3)
            .with_headers(headers)
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn header(props: &BasicProperties, name: &str) -> Option<AMQPValue> {
        props.headers().as_ref()?.inner().get(name).cloned()
    }

    #[test]
    fn a_retry_keeps_every_property_and_sets_the_next_attempt() {
        let first = at("2026-01-02T03:04:05Z");
        let props = retry_properties(&delivered(), 3, first);
        assert_eq!(
            header(&props, ATTEMPT_HEADER),
            Some(AMQPValue::LongLongInt(3))
        );
        assert_eq!(
            header_str(&props, FIRST_FAILURE_HEADER).as_deref(),
            Some("2026-01-02T03:04:05.000Z")
        );
        assert_eq!(header_str(&props, "tenant").as_deref(), Some("acme"));
        let mut headers: FieldTable = props
            .headers()
            .as_ref()
            .unwrap()
            .inner()
            .iter()
            .filter(|(name, _)| name.as_str() != FIRST_FAILURE_HEADER)
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into();
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongLongInt(2));
        assert_eq!(
            props.with_headers(headers),
            delivered(),
            "nothing else changed"
        );
    }

    #[test]
    fn a_parked_message_says_why_and_keeps_the_rest() {
        let failure = FailureInfo::new(
            ErrorCode::CloudflareUnavailable,
            Step::Upload,
            true,
            "x".repeat(3000),
        );
        let reason = ParkReason {
            failure: &failure,
            attempts: 5,
            first_failure: at("2026-01-02T03:04:05Z"),
            last_failure: at("2026-01-02T03:10:00Z"),
        };
        let props = park_properties(&delivered(), &reason);
        let get = |name| header_str(&props, name).unwrap_or_default();
        assert_eq!(get(PARK_CODE_HEADER), "cloudflare_unavailable");
        assert_eq!(get(PARK_STEP_HEADER), "upload");
        assert!(get(PARK_MESSAGE_HEADER).ends_with("… (3000 bytes in all)"));
        assert!(get(PARK_MESSAGE_HEADER).len() < 1100);
        assert_eq!(
            header(&props, PARK_ATTEMPTS_HEADER),
            Some(AMQPValue::LongLongInt(5))
        );
        assert_eq!(get(PARK_FIRST_FAILURE_HEADER), "2026-01-02T03:04:05.000Z");
        assert_eq!(get(PARK_LAST_FAILURE_HEADER), "2026-01-02T03:10:00.000Z");
        assert_eq!(props.message_id(), delivered().message_id());
        assert_eq!(props.priority(), &Some(3));
        assert_eq!(get("tenant"), "acme");
    }
}
