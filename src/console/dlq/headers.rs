//! A parked message's properties: read as JSON for people, and cleaned of
//! the broker's and the worker's bookkeeping before a requeue.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Map, Value, json};

/// Headers the worker writes on a parked message (`x-wfp-park-*`), and the
/// retry bookkeeping (`x-wfp-attempt`, `x-wfp-first-failure`): all start so.
pub const WORKER_HEADER_PREFIX: &str = "x-wfp-";
pub const PARK_CODE: &str = "x-wfp-park-code";
pub const PARK_MESSAGE: &str = "x-wfp-park-message";
pub const PARK_STEP: &str = "x-wfp-park-step";
pub const PARK_ATTEMPTS: &str = "x-wfp-park-attempts";
pub const PARK_FIRST_FAILURE: &str = "x-wfp-park-first-failure";
pub const PARK_LAST_FAILURE: &str = "x-wfp-park-last-failure";
/// What the broker adds when it dead-letters a message (`x-first-death-*`
/// and `x-last-death-*` go with it) and counts on quorum queues.
pub const DEATH: &str = "x-death";
pub const DELIVERY_COUNT: &str = "x-delivery-count";

/// An AMQP value as JSON: numbers as numbers, text as text (bytes that are
/// not UTF-8 lossily), timestamps as RFC 3339, tables and arrays nested.
pub fn to_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(v) => json!(v),
        AMQPValue::ShortShortInt(v) => json!(v),
        AMQPValue::ShortShortUInt(v) => json!(v),
        AMQPValue::ShortInt(v) => json!(v),
        AMQPValue::ShortUInt(v) => json!(v),
        AMQPValue::LongInt(v) => json!(v),
        AMQPValue::LongUInt(v) => json!(v),
        AMQPValue::LongLongInt(v) => json!(v),
        AMQPValue::Float(v) => json!(v),
        AMQPValue::Double(v) => json!(v),
        AMQPValue::DecimalValue(v) => json!(format!("{v:?}")),
        AMQPValue::ShortString(v) => json!(v.as_str()),
        AMQPValue::LongString(v) => json!(String::from_utf8_lossy(v.as_bytes())),
        AMQPValue::FieldArray(v) => Value::Array(v.as_slice().iter().map(to_json).collect()),
        AMQPValue::Timestamp(v) => timestamp(*v).map_or(json!(v), |t| json!(rfc3339(t))),
        AMQPValue::FieldTable(v) => table_json(v),
        AMQPValue::ByteArray(v) => json!(String::from_utf8_lossy(v.as_slice())),
        AMQPValue::Void => Value::Null,
    }
}

/// A header table as a JSON object.
pub fn table_json(table: &FieldTable) -> Value {
    let map: Map<String, Value> = table
        .inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), to_json(v)))
        .collect();
    Value::Object(map)
}

pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// AMQP timestamps are whole seconds since the epoch.
pub fn timestamp(seconds: u64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(i64::try_from(seconds).ok()?, 0).single()
}

/// A header of `table` by name.
pub fn get<'a>(table: &'a FieldTable, name: &str) -> Option<&'a AMQPValue> {
    table.inner().get(name)
}

/// A header as text.
pub fn text(table: &FieldTable, name: &str) -> Option<String> {
    match get(table, name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// A header as a count; any integer type (brokers and clients differ).
pub fn count(table: &FieldTable, name: &str) -> Option<u64> {
    match to_json(get(table, name)?) {
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// A header as a time: an AMQP timestamp or RFC 3339 text.
pub fn time(table: &FieldTable, name: &str) -> Option<DateTime<Utc>> {
    match get(table, name)? {
        AMQPValue::Timestamp(t) => timestamp(*t),
        _ => DateTime::parse_from_rfc3339(&text(table, name)?)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// Whether a header is bookkeeping that must not follow a job back into
/// the jobs queue: the worker's (its old attempts would count against the
/// new run) and the broker's dead-lettering and delivery counts.
fn is_bookkeeping(name: &str) -> bool {
    name.starts_with(WORKER_HEADER_PREFIX)
        || name == DEATH
        || name.starts_with("x-first-death-")
        || name.starts_with("x-last-death-")
        || name == DELIVERY_COUNT
}

/// The properties a requeued job is published with: the parked ones, every
/// property and header kept but the bookkeeping ([`is_bookkeeping`]).
pub fn requeue_properties(parked: &BasicProperties) -> BasicProperties {
    without(parked, is_bookkeeping)
}

/// The properties of a parked message copied back into the dead-letter
/// queue: everything kept but the queue's delivery count, which starts
/// again with the copy.
pub fn refreshed_properties(parked: &BasicProperties) -> BasicProperties {
    without(parked, |name| name == DELIVERY_COUNT)
}

fn without(properties: &BasicProperties, drop: impl Fn(&str) -> bool) -> BasicProperties {
    let Some(headers) = properties.headers() else {
        return properties.clone();
    };
    let mut kept = FieldTable::default();
    for (name, value) in headers.inner() {
        if !drop(name.as_str()) {
            kept.insert(name.clone(), value.clone());
        }
    }
    properties.clone().with_headers(kept)
}

/// Every property a message has, as one JSON object (for `dlq show` and
/// the console's detail view); absent ones are left out.
pub fn properties_json(p: &BasicProperties) -> Value {
    let short = |v: &Option<lapin::types::ShortString>| v.as_ref().map(|s| json!(s.as_str()));
    let fields = [
        ("content_type", short(p.content_type())),
        ("content_encoding", short(p.content_encoding())),
        ("delivery_mode", p.delivery_mode().map(|v| json!(v))),
        ("priority", p.priority().map(|v| json!(v))),
        ("correlation_id", short(p.correlation_id())),
        ("reply_to", short(p.reply_to())),
        ("expiration", short(p.expiration())),
        ("message_id", short(p.message_id())),
        (
            "timestamp",
            p.timestamp().and_then(timestamp).map(|t| json!(rfc3339(t))),
        ),
        ("type", short(p.kind())),
        ("user_id", short(p.user_id())),
        ("app_id", short(p.app_id())),
        (
            "headers",
            Some(
                p.headers()
                    .as_ref()
                    .map(table_json)
                    .unwrap_or_else(|| json!({})),
            ),
        ),
    ];
    let present: Map<String, Value> = fields
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_string(), value?)))
        .collect();
    Value::Object(present)
}

#[cfg(test)]
mod tests {
    use lapin::types::{FieldArray, LongString};

    use super::*;

    fn s(v: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(v))
    }

    fn parked() -> BasicProperties {
        let mut death = FieldTable::default();
        death.insert("reason".into(), s("delivery_limit"));
        death.insert("count".into(), AMQPValue::LongLongInt(1));
        let mut headers = FieldTable::default();
        headers.insert("tenant".into(), s("acme"));
        headers.insert(PARK_CODE.into(), s("storage_error"));
        headers.insert("x-wfp-attempt".into(), AMQPValue::LongLongInt(5));
        headers.insert(
            DEATH.into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(death)])),
        );
        headers.insert("x-first-death-reason".into(), s("delivery_limit"));
        headers.insert("x-last-death-queue".into(), s("q"));
        headers.insert(DELIVERY_COUNT.into(), AMQPValue::LongLongInt(3));
        BasicProperties::default()
            .with_message_id("m-1".into())
            .with_reply_to("replies".into())
            .with_headers(headers)
    }

    #[test]
    fn a_requeued_job_keeps_everything_but_the_bookkeeping() {
        let props = requeue_properties(&parked());
        let headers = props.headers().clone().unwrap();
        let names: Vec<&str> = headers.inner().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["tenant"]);
        assert_eq!(props.message_id().as_ref().unwrap().as_str(), "m-1");
        assert_eq!(props.reply_to().as_ref().unwrap().as_str(), "replies");
    }

    #[test]
    fn a_refreshed_copy_only_loses_its_delivery_count() {
        let props = refreshed_properties(&parked());
        let headers = props.headers().clone().unwrap();
        assert!(get(&headers, DELIVERY_COUNT).is_none());
        assert_eq!(
            headers.inner().len(),
            parked().headers().clone().unwrap().inner().len() - 1
        );
    }

    #[test]
    fn headers_read_as_json_text_counts_and_times() {
        let mut table = FieldTable::default();
        table.insert("n".into(), AMQPValue::ShortUInt(7));
        table.insert("t".into(), AMQPValue::Timestamp(1_700_000_000));
        table.insert("r".into(), s("2026-11-25T10:00:00.000Z"));
        assert_eq!(count(&table, "n"), Some(7));
        assert_eq!(
            rfc3339(time(&table, "t").unwrap()),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(
            rfc3339(time(&table, "r").unwrap()),
            "2026-11-25T10:00:00.000Z"
        );
        assert_eq!(table_json(&table)["t"], "2023-11-14T22:13:20.000Z");
        let shown = properties_json(&parked());
        assert_eq!(shown["headers"]["x-death"][0]["reason"], "delivery_limit");
        assert_eq!(shown["message_id"], "m-1");
        assert!(
            shown.get("app_id").is_none(),
            "absent properties are left out"
        );
    }
}
