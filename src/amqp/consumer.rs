//! The consuming side: the jobs channel with its prefetch, and what a
//! delivery's properties say about it.
//!
//! Consuming gets a channel of its own, apart from the publisher's confirm
//! channel, so a refused publish (which closes its channel) never takes the
//! unacked deliveries down with it.

use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, Consumer};

use super::AmqpError;
use crate::config::AmqpSettings;

/// The header quorum queues add to a message that was delivered before and
/// returned (nacked with requeue, or its consumer's channel closed).
pub const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";

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

/// How many times the broker delivered this message before (quorum queues'
/// `x-delivery-count`); `None` on a first delivery, where the header is
/// absent. Any integer type is accepted: brokers and versions differ.
pub fn delivery_count(properties: &BasicProperties) -> Option<u64> {
    let value = properties
        .headers()
        .as_ref()?
        .inner()
        .get(DELIVERY_COUNT_HEADER)?;
    let count = match value {
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

/// The attempt a delivery is: 1 on the first delivery, then 1 + the number
/// of earlier deliveries. Saturates instead of overflowing.
pub fn attempt(properties: &BasicProperties) -> u32 {
    let before = delivery_count(properties).unwrap_or(0);
    u32::try_from(before.saturating_add(1)).unwrap_or(u32::MAX)
}

/// What a delivery says about itself besides its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryMeta {
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
    /// A queue that also gets the terminal event.
    pub reply_to: Option<String>,
    /// 1 + the quorum queue's `x-delivery-count`.
    pub attempt: u32,
}

impl DeliveryMeta {
    /// Reads a delivery's properties; empty strings count as absent.
    pub fn of(properties: &BasicProperties) -> Self {
        let text = |v: &Option<ShortString>| {
            v.as_ref()
                .map(|s| s.as_str().to_string())
                .filter(|s| !s.is_empty())
        };
        Self {
            message_id: text(properties.message_id()),
            correlation_id: text(properties.correlation_id()),
            reply_to: text(properties.reply_to()),
            attempt: attempt(properties),
        }
    }
}

/// A header as text, when it is a string; other types are not guessed at.
/// Only tests read headers back (the worker writes them, in `events`).
#[cfg(test)]
pub(crate) fn header_str(properties: &BasicProperties, name: &str) -> Option<String> {
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
        let mut headers = FieldTable::default();
        headers.insert(DELIVERY_COUNT_HEADER.into(), value);
        BasicProperties::default().with_headers(headers)
    }

    #[test]
    fn first_delivery_is_attempt_one() {
        assert_eq!(attempt(&BasicProperties::default()), 1);
        let no_count = BasicProperties::default().with_headers(FieldTable::default());
        assert_eq!(attempt(&no_count), 1);
    }

    #[test]
    fn attempt_counts_earlier_deliveries_of_any_integer_type() {
        assert_eq!(attempt(&with_count(AMQPValue::LongLongInt(1))), 2);
        assert_eq!(attempt(&with_count(AMQPValue::LongInt(4))), 5);
        assert_eq!(attempt(&with_count(AMQPValue::ShortShortUInt(9))), 10);
        assert_eq!(attempt(&with_count(AMQPValue::LongUInt(0))), 1);
    }

    #[test]
    fn a_strange_count_never_panics() {
        assert_eq!(attempt(&with_count(AMQPValue::LongLongInt(-3))), 1);
        assert_eq!(
            attempt(&with_count(AMQPValue::LongLongInt(i64::MAX))),
            u32::MAX
        );
        assert_eq!(attempt(&with_count(AMQPValue::Boolean(true))), 1);
        assert_eq!(attempt(&with_count(AMQPValue::LongString("2".into()))), 1);
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
        let meta = DeliveryMeta::of(&props);
        assert_eq!(meta.message_id.as_deref(), Some("m-1"));
        assert_eq!(meta.correlation_id, None, "empty counts as absent");
        assert_eq!(meta.reply_to.as_deref(), Some("replies"));
        assert_eq!(meta.attempt, 1);
    }
}
