//! What a parked message says about itself: which job, why it was parked,
//! after how many attempts, and when.
//!
//! Two kinds of message end up in the dead-letter queue. Jobs the worker
//! parked carry the `x-wfp-park-*` headers (code, message, step, attempts,
//! first and last failure). Messages the broker dead-lettered itself (a job
//! that kept crashing workers reached the jobs queue's `x-delivery-limit`)
//! carry only the broker's `x-death` table: its reason, queue, count and
//! time stand in for the worker's headers.

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::headers::{self, DEATH};

/// Bytes of a body shown in full; longer ones are cut (the parked message
/// itself keeps them all).
const MAX_SHOWN_BODY: usize = 64 * 1024;

/// Why a message is in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The worker parked it after its last attempt (`x-wfp-park-*`).
    Parked {
        code: String,
        message: String,
        step: Option<String>,
    },
    /// The broker dead-lettered it (`x-death`): `delivery_limit`,
    /// `rejected`, `expired` or `maxlen`, from `queue`, `count` times.
    DeadLettered {
        reason: String,
        queue: Option<String>,
        count: Option<u64>,
    },
    /// Published to the queue by hand, saying nothing.
    Unknown,
}

impl Reason {
    /// The code `requeue --code` matches: the worker's error code, or the
    /// broker's dead-letter reason.
    pub fn code(&self) -> Option<&str> {
        match self {
            Reason::Parked { code, .. } => Some(code),
            Reason::DeadLettered { reason, .. } => Some(reason),
            Reason::Unknown => None,
        }
    }

    /// One line for a table.
    pub fn summary(&self) -> String {
        match self {
            Reason::Parked {
                code,
                message,
                step,
            } => match step {
                Some(step) => format!("{code} at {step}: {message}"),
                None => format!("{code}: {message}"),
            },
            Reason::DeadLettered { reason, queue, .. } => match queue {
                Some(queue) => format!("{reason} (dead-lettered from {queue})"),
                None => format!("{reason} (dead-lettered)"),
            },
            Reason::Unknown => "no reason recorded".into(),
        }
    }
}

/// One parked message, as `dlq list`/`show` and the console present it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParkedJob {
    /// How to name it to `show` and `requeue`: the job id when the body has
    /// one, else the AMQP `message_id`, else `sha256:` and the start of the
    /// body's digest. Several copies of one job share it.
    pub id: String,
    pub job_id: Option<String>,
    pub namespace: Option<String>,
    pub script_name: Option<String>,
    pub reason: Reason,
    /// Attempts the job had (`x-wfp-park-attempts`), when the worker said.
    pub attempts: Option<u64>,
    /// When it was parked: the last failure, else the dead-lettering time,
    /// else the message's own timestamp.
    pub parked_at: Option<DateTime<Utc>>,
    pub first_failure: Option<DateTime<Utc>>,
    /// Every property and header, as JSON.
    pub properties: Value,
    /// The body as text (lossy for bytes that are not UTF-8), cut at 64 KiB.
    pub body: String,
    pub body_bytes: usize,
}

fn body_field(body: &Value, key: &str, valid: fn(&str) -> bool) -> Option<String> {
    body.get(key)?
        .as_str()
        .filter(|v| valid(v))
        .map(str::to_string)
}

/// Whether a body's `job_id` can name the entry: something an operator can
/// type back (looser than the contract's rule on purpose: an invalid job
/// parked for its bad id is still best named by it).
fn nameable(id: &str) -> bool {
    (1..=128).contains(&id.len()) && !id.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// The first `x-death` entry (the broker puts the latest first).
fn first_death(headers: &FieldTable) -> Option<&FieldTable> {
    match headers::get(headers, DEATH)? {
        AMQPValue::FieldArray(deaths) => match deaths.as_slice().first()? {
            AMQPValue::FieldTable(death) => Some(death),
            _ => None,
        },
        _ => None,
    }
}

impl ParkedJob {
    /// Reads a parked message. Never fails: a message that says nothing of
    /// itself is still listed (by its digest) and can be requeued or purged.
    pub fn read(body: &[u8], properties: &BasicProperties) -> Self {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let job_id = body_field(&json, "job_id", nameable);
        let message_id = properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str().to_string())
            .filter(|m| !m.is_empty());
        let id = job_id.clone().or(message_id).unwrap_or_else(|| {
            let digest = Sha256::digest(body);
            format!("sha256:{}", &hex(&digest)[..12])
        });
        let empty = FieldTable::default();
        let headers = properties.headers().as_ref().unwrap_or(&empty);
        let death = first_death(headers);
        let reason = match (headers::text(headers, headers::PARK_CODE), death) {
            (Some(code), _) => Reason::Parked {
                code,
                message: headers::text(headers, headers::PARK_MESSAGE).unwrap_or_default(),
                step: headers::text(headers, headers::PARK_STEP),
            },
            (None, Some(death)) => Reason::DeadLettered {
                reason: headers::text(death, "reason").unwrap_or_else(|| "unknown".into()),
                queue: headers::text(death, "queue"),
                count: headers::count(death, "count"),
            },
            (None, None) => Reason::Unknown,
        };
        let parked_at = headers::time(headers, headers::PARK_LAST_FAILURE)
            .or_else(|| death.and_then(|d| headers::time(d, "time")))
            .or_else(|| properties.timestamp().and_then(headers::timestamp));
        let shown = &body[..body.len().min(MAX_SHOWN_BODY)];
        Self {
            id,
            job_id,
            namespace: body_field(&json, "namespace", |v| !v.is_empty()),
            script_name: body_field(&json, "script_name", |v| !v.is_empty()),
            reason,
            attempts: headers::count(headers, headers::PARK_ATTEMPTS),
            parked_at,
            first_failure: headers::time(headers, headers::PARK_FIRST_FAILURE),
            properties: headers::properties_json(properties),
            body: String::from_utf8_lossy(shown).into_owned(),
            body_bytes: body.len(),
        }
    }

    /// How long it has been parked, when known.
    pub fn age(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        self.parked_at.map(|t| now - t)
    }

    /// `namespace/script`, or `-` when the body names none.
    pub fn site(&self) -> String {
        match (&self.namespace, &self.script_name) {
            (Some(ns), Some(script)) => format!("{ns}/{script}"),
            _ => "-".into(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use lapin::types::{FieldArray, LongString};

    use super::*;

    fn s(v: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(v))
    }

    #[test]
    fn a_job_the_worker_parked_says_why_from_its_headers() {
        let mut h = FieldTable::default();
        h.insert(headers::PARK_CODE.into(), s("cloudflare_unavailable"));
        h.insert(headers::PARK_MESSAGE.into(), s("HTTP 503"));
        h.insert(headers::PARK_STEP.into(), s("upload"));
        h.insert(headers::PARK_ATTEMPTS.into(), AMQPValue::LongLongInt(5));
        h.insert(
            headers::PARK_LAST_FAILURE.into(),
            s("2026-11-25T10:00:00.000Z"),
        );
        let props = BasicProperties::default().with_headers(h);
        let body =
            br#"{"version":1,"job_id":"acme-42","namespace":"customers","script_name":"acme"}"#;
        let job = ParkedJob::read(body, &props);
        assert_eq!(job.id, "acme-42");
        assert_eq!(job.site(), "customers/acme");
        assert_eq!(job.reason.code(), Some("cloudflare_unavailable"));
        assert_eq!(
            job.reason.summary(),
            "cloudflare_unavailable at upload: HTTP 503"
        );
        assert_eq!(job.attempts, Some(5));
        let now: DateTime<Utc> = "2026-11-25T11:00:00Z".parse().unwrap();
        assert_eq!(job.age(now).unwrap().num_minutes(), 60);
    }

    #[test]
    fn a_message_the_broker_dead_lettered_says_why_from_x_death() {
        let mut death = FieldTable::default();
        death.insert("reason".into(), s("delivery_limit"));
        death.insert("queue".into(), s("wfp.deploy.jobs"));
        death.insert("count".into(), AMQPValue::LongLongInt(1));
        death.insert("time".into(), AMQPValue::Timestamp(1_700_000_000));
        let mut h = FieldTable::default();
        h.insert(
            DEATH.into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(death)])),
        );
        let props = BasicProperties::default()
            .with_message_id("msg-7".into())
            .with_headers(h);
        let job = ParkedJob::read(b"{not json", &props);
        assert_eq!(job.id, "msg-7", "no job id in the body: the message id");
        assert_eq!(job.reason.code(), Some("delivery_limit"));
        assert_eq!(
            job.reason.summary(),
            "delivery_limit (dead-lettered from wfp.deploy.jobs)"
        );
        assert_eq!(job.parked_at.unwrap().timestamp(), 1_700_000_000);
        assert_eq!(job.attempts, None);
    }

    #[test]
    fn a_message_saying_nothing_is_named_by_its_digest() {
        let job = ParkedJob::read(b"\xff\xfe", &BasicProperties::default());
        assert!(
            job.id.starts_with("sha256:") && job.id.len() == 19,
            "{}",
            job.id
        );
        assert_eq!(job.reason, Reason::Unknown);
        assert_eq!(job.site(), "-");
        assert_eq!(job.body_bytes, 2);
    }
}
