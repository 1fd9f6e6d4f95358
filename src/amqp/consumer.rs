//! The consuming side: the jobs channel with its prefetch, and what a
//! delivery's properties say about it.
//!
//! Consuming gets a channel of its own, apart from the publisher's confirm
//! channel, so a refused publish (which closes its channel) never takes the
//! unacked deliveries down with it.

use chrono::{DateTime, Utc};
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, Consumer};

use super::AmqpError;
use crate::config::AmqpSettings;
use crate::contract::names::{is_correlation_id, is_job_id};

/// The header quorum queues add to a message that was delivered before and
/// returned (nacked with requeue, or its consumer's channel closed).
pub const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";

/// The header the worker sets on a job it sends to a delay queue: the
/// attempt its next delivery is.
pub const ATTEMPT_HEADER: &str = "x-wfp-attempt";

/// The header the worker sets on a job it sends to a delay queue: when the
/// job first failed (RFC 3339), kept across its retries.
pub const FIRST_FAILURE_HEADER: &str = "x-wfp-first-failure";

/// Opens the consuming channel on the jobs queue.
///
/// `prefetch` bounds the deliveries the broker hands this consumer before any
/// is acked: the first of the worker's two concurrency bounds (the second is
/// its in-process semaphore). Per consumer, not global, because quorum queues
/// do not support a global prefetch.
pub async fn open_consumer(
    connection: &Connection,
    settings: &AmqpSettings,
    prefetch: u16,
    consumer_tag: &str,
) -> Result<(Channel, Consumer), AmqpError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|error| AmqpError::Channel {
            purpose: "consuming",
            error,
        })?;
    let consume_error = |error| AmqpError::Consume {
        queue: settings.jobs_queue.clone(),
        error,
    };
    channel
        .basic_qos(prefetch, BasicQosOptions { global: false })
        .await
        .map_err(consume_error)?;
    let consumer = channel
        .basic_consume(
            settings.jobs_queue.as_str().into(),
            consumer_tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(consume_error)?;
    Ok((channel, consumer))
}

/// A header as a non-negative integer, of any integer type (brokers and
/// versions differ); `None` when absent, negative or not an integer.
fn int_header(properties: &BasicProperties, name: &str) -> Option<u64> {
    let count = match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::ShortShortInt(v) => i64::from(*v),
        AMQPValue::ShortShortUInt(v) => i64::from(*v),
        AMQPValue::ShortInt(v) => i64::from(*v),
        AMQPValue::ShortUInt(v) => i64::from(*v),
        AMQPValue::LongInt(v) => i64::from(*v),
        AMQPValue::LongUInt(v) => i64::from(*v),
        AMQPValue::LongLongInt(v) => *v,
        AMQPValue::Timestamp(v) => return Some(*v),
        _ => return None,
    };
    u64::try_from(count).ok()
}

/// How many times the broker delivered this message before (quorum queues'
/// `x-delivery-count`); `None` on a first delivery, where the header is
/// absent.
pub fn delivery_count(properties: &BasicProperties) -> Option<u64> {
    int_header(properties, DELIVERY_COUNT_HEADER)
}

/// The attempt a delivery is: the attempt the worker wrote when it sent the
/// job to a delay queue ([`ATTEMPT_HEADER`], 1 when absent), plus the
/// deliveries of this message before this one.
///
/// Both headers can come from a producer as well as from the broker or the
/// worker, so neither is taken on trust: `x-delivery-count` counts only on
/// a redelivery (`redelivered`), which is when the quorum queue sets it; on
/// a first delivery whatever the producer wrote there is ignored. The
/// attempt header is clamped to `max_attempts`, past which nothing changes
/// (the job is parked on its next retryable failure). Saturates instead of
/// overflowing.
pub fn attempt(properties: &BasicProperties, redelivered: bool, max_attempts: u32) -> u32 {
    let written = int_header(properties, ATTEMPT_HEADER)
        .unwrap_or(1)
        .clamp(1, u64::from(max_attempts.max(1)));
    let before = if redelivered {
        delivery_count(properties).unwrap_or(0)
    } else {
        0
    };
    u32::try_from(written.saturating_add(before)).unwrap_or(u32::MAX)
}

/// The AMQP `timestamp` property (seconds since the epoch), when a
/// producer set one; 0 counts as unset. Stands in for a job's `created_at`.
pub fn timestamp(properties: &BasicProperties) -> Option<DateTime<Utc>> {
    let seconds = (*properties.timestamp()).filter(|s| *s > 0)?;
    DateTime::from_timestamp(i64::try_from(seconds).ok()?, 0)
}

/// What a delivery says about itself besides its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryMeta {
    /// The AMQP `message_id`, when it is a valid job id (it names the
    /// failed event of a message without a readable `job_id`).
    pub message_id: Option<String>,
    /// The AMQP `correlation_id`, when it is a valid correlation id (it
    /// stands in for a job without one).
    pub correlation_id: Option<String>,
    /// A queue that also gets the terminal event.
    pub reply_to: Option<String>,
    /// Which attempt this delivery is, counting from 1 (see [`attempt`]).
    pub attempt: u32,
    /// When the job first failed with a retryable code, if it did before
    /// ([`FIRST_FAILURE_HEADER`]).
    pub first_failure: Option<DateTime<Utc>>,
}

impl DeliveryMeta {
    /// Reads a delivery's properties; empty strings count as absent.
    /// `redelivered` is the delivery's flag; `max_attempts` caps the attempt
    /// a header can claim (see [`attempt`]).
    ///
    /// `message_id` and `correlation_id` stand in for the body's `job_id`
    /// and `correlation_id`, so they must pass the same rules: one that
    /// does not (a CR/LF, an escape, a character a job id cannot hold) is
    /// ignored, as if absent, and never reaches an event or a log line.
    pub fn of(properties: &BasicProperties, redelivered: bool, max_attempts: u32) -> Self {
        let text = |v: &Option<ShortString>, valid: fn(&str) -> bool| {
            v.as_ref()
                .map(|s| s.as_str())
                .filter(|s| valid(s))
                .map(str::to_string)
        };
        Self {
            message_id: text(properties.message_id(), is_job_id),
            correlation_id: text(properties.correlation_id(), is_correlation_id),
            reply_to: properties
                .reply_to()
                .as_ref()
                .map(|s| s.as_str().to_string())
                .filter(|s| !s.is_empty()),
            attempt: attempt(properties, redelivered, max_attempts),
            first_failure: header_str(properties, FIRST_FAILURE_HEADER)
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

/// A header as text, when it is a string; other types are not guessed at.
/// Reads the worker's own retry headers back (`x-wfp-attempt`, ...).
pub fn header_str(properties: &BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_count(value: AMQPValue) -> BasicProperties {
        with(&[(DELIVERY_COUNT_HEADER, value)])
    }

    fn with(headers: &[(&str, AMQPValue)]) -> BasicProperties {
        let mut table = FieldTable::default();
        for (name, value) in headers {
            table.insert((*name).into(), value.clone());
        }
        BasicProperties::default().with_headers(table)
    }

    /// The attempt of a redelivery, up to 5 attempts by the header.
    fn redelivered(props: &BasicProperties) -> u32 {
        attempt(props, true, 5)
    }

    #[test]
    fn first_delivery_is_attempt_one() {
        assert_eq!(attempt(&BasicProperties::default(), false, 5), 1);
        let no_count = BasicProperties::default().with_headers(FieldTable::default());
        assert_eq!(redelivered(&no_count), 1);
    }

    #[test]
    fn attempt_counts_earlier_deliveries_of_any_integer_type() {
        assert_eq!(redelivered(&with_count(AMQPValue::LongLongInt(1))), 2);
        assert_eq!(redelivered(&with_count(AMQPValue::LongInt(4))), 5);
        assert_eq!(redelivered(&with_count(AMQPValue::ShortShortUInt(9))), 10);
        assert_eq!(redelivered(&with_count(AMQPValue::LongUInt(0))), 1);
    }

    #[test]
    fn a_strange_count_never_panics() {
        assert_eq!(redelivered(&with_count(AMQPValue::LongLongInt(-3))), 1);
        assert_eq!(
            redelivered(&with_count(AMQPValue::LongLongInt(i64::MAX))),
            u32::MAX
        );
        assert_eq!(redelivered(&with_count(AMQPValue::Boolean(true))), 1);
        assert_eq!(
            redelivered(&with_count(AMQPValue::LongString("2".into()))),
            1
        );
    }

    #[test]
    fn a_producer_set_delivery_count_on_a_first_delivery_is_ignored() {
        // Regression: a producer-set x-delivery-count of 1,000,000 made the
        // first delivery attempt 1000001.
        let forged = with_count(AMQPValue::LongLongInt(1_000_000));
        assert_eq!(attempt(&forged, false, 5), 1);
    }

    #[test]
    fn the_attempt_header_adds_to_the_redeliveries_and_is_clamped() {
        let retried = with(&[(ATTEMPT_HEADER, AMQPValue::LongLongInt(3))]);
        assert_eq!(attempt(&retried, false, 5), 3);
        let retried_then_crashed = with(&[
            (ATTEMPT_HEADER, AMQPValue::LongLongInt(3)),
            (DELIVERY_COUNT_HEADER, AMQPValue::LongLongInt(1)),
        ]);
        assert_eq!(attempt(&retried_then_crashed, true, 5), 4);
        let forged = with(&[(ATTEMPT_HEADER, AMQPValue::LongLongInt(1_000_000))]);
        assert_eq!(attempt(&forged, false, 5), 5, "clamped to max_attempts");
        let zero = with(&[(ATTEMPT_HEADER, AMQPValue::LongLongInt(0))]);
        assert_eq!(attempt(&zero, false, 5), 1);
    }

    #[test]
    fn the_first_failure_header_is_read_when_it_is_a_time() {
        let at = "2026-01-02T03:04:05.678Z";
        let props = with(&[(FIRST_FAILURE_HEADER, AMQPValue::LongString(at.into()))]);
        let meta = DeliveryMeta::of(&props, false, 5);
        assert_eq!(meta.first_failure, Some(at.parse().unwrap()));
        let junk = with(&[(FIRST_FAILURE_HEADER, AMQPValue::LongString("soon".into()))]);
        assert_eq!(DeliveryMeta::of(&junk, false, 5).first_failure, None);
    }

    #[test]
    fn the_timestamp_property_is_read_in_seconds_and_zero_is_unset() {
        let props = BasicProperties::default().with_timestamp(1_764_064_800);
        let at: DateTime<Utc> = "2025-11-25T10:00:00Z".parse().unwrap();
        assert_eq!(timestamp(&props), Some(at));
        assert_eq!(timestamp(&BasicProperties::default()), None);
        assert_eq!(
            timestamp(&BasicProperties::default().with_timestamp(0)),
            None
        );
        assert_eq!(
            timestamp(&BasicProperties::default().with_timestamp(u64::MAX)),
            None
        );
    }

    #[test]
    fn header_str_reads_strings_only() {
        let mut headers = FieldTable::default();
        headers.insert("job_id".into(), AMQPValue::LongString("j-1".into()));
        headers.insert("n".into(), AMQPValue::LongInt(1));
        let props = BasicProperties::default().with_headers(headers);
        assert_eq!(header_str(&props, "job_id").as_deref(), Some("j-1"));
        assert_eq!(header_str(&props, "n"), None);
        assert_eq!(header_str(&props, "missing"), None);
    }

    #[test]
    fn delivery_meta_reads_the_properties() {
        let props = BasicProperties::default()
            .with_message_id("m-1".into())
            .with_correlation_id("".into())
            .with_reply_to("replies".into());
        let meta = DeliveryMeta::of(&props, false, 5);
        assert_eq!(meta.message_id.as_deref(), Some("m-1"));
        assert_eq!(meta.correlation_id, None, "empty counts as absent");
        assert_eq!(meta.reply_to.as_deref(), Some("replies"));
        assert_eq!(meta.attempt, 1);
    }

    #[test]
    fn ids_breaking_the_contract_rules_are_ignored() {
        // Regression: CR/LF and escape characters in the AMQP ids reached
        // events unchecked.
        for (message_id, correlation_id) in [
            ("m-1\r\nx-forged: 1", "corr\r\nx-forged: 1"),
            ("m\u{1b}[31m", "c\u{1b}[31m"),
            ("has space", "c\u{7}"),
        ] {
            let props = BasicProperties::default()
                .with_message_id(message_id.into())
                .with_correlation_id(correlation_id.into());
            let meta = DeliveryMeta::of(&props, false, 5);
            assert_eq!(meta.message_id, None, "{message_id:?}");
            assert_eq!(meta.correlation_id, None, "{correlation_id:?}");
        }
        let long = BasicProperties::default().with_message_id("m".repeat(129).as_str().into());
        assert_eq!(DeliveryMeta::of(&long, false, 5).message_id, None);
        let fine = BasicProperties::default()
            .with_message_id("acme-42:v1.2".into())
            .with_correlation_id("req 7f3a/ü".into());
        let meta = DeliveryMeta::of(&fine, false, 5);
        assert_eq!(meta.message_id.as_deref(), Some("acme-42:v1.2"));
        assert_eq!(meta.correlation_id.as_deref(), Some("req 7f3a/ü"));
    }
}
