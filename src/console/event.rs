//! One event as the operator tools see it, and the filters `watch` applies.
//!
//! The tools read events leniently, on purpose: the worker's contract types
//! ([`crate::contract::CloudEvent`]) describe what this version publishes,
//! but a console or a `watch` must also show events of a newer worker
//! (`deploy.retrying`, `deploy.progress`) whose `data` they do not know.
//! So the CloudEvent is kept whole as JSON (printed and shown exactly as it
//! arrived) and only the fields the tools filter and summarise on are read
//! out of it, each optional but the id.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// The `type` prefix of every event this project publishes.
const TYPE_PREFIX: &str = "wfp.deploy.";

/// An event off the events exchange (or its log), read leniently.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    /// The routing key it was published with (`deploy.started`, ...).
    pub routing_key: String,
    pub id: String,
    /// The `type` without `wfp.deploy.`: `started`, `succeeded`, `failed`,
    /// `retrying`, `progress`, or whatever a newer worker sends.
    pub kind: String,
    pub time: Option<DateTime<Utc>>,
    /// `data.job_id`; the `subject` when the data has none.
    pub job_id: String,
    pub namespace: Option<String>,
    pub script_name: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub attempt: Option<u64>,
    /// The whole CloudEvent as published.
    pub raw: Value,
}

/// `data.error` of a failed (or retrying) event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorView {
    pub code: String,
    pub message: String,
    pub step: Option<String>,
    pub retryable: Option<bool>,
}

/// What a `deploy.progress` event says: the step and how far it got. Every
/// count is optional; a step without counts is still progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub step: Option<String>,
    pub files_done: Option<u64>,
    pub files_total: Option<u64>,
    pub bytes_done: Option<u64>,
    pub bytes_total: Option<u64>,
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key)?.as_str().map(str::to_string)
}

impl FeedEvent {
    /// Reads a message body. The error says what is missing, for a line on
    /// standard error; the message itself is not echoed (it may be large).
    pub fn parse(routing_key: &str, body: &[u8]) -> Result<Self, String> {
        let raw: Value =
            serde_json::from_slice(body).map_err(|e| format!("not a JSON event: {e}"))?;
        let id = text(&raw, "id").ok_or("no \"id\": not a CloudEvent")?;
        let event_type = text(&raw, "type").unwrap_or_default();
        let kind = event_type
            .strip_prefix(TYPE_PREFIX)
            .unwrap_or(&event_type)
            .to_string();
        let data = raw.get("data").cloned().unwrap_or(Value::Null);
        let job_id = text(&data, "job_id")
            .or_else(|| text(&raw, "subject"))
            .unwrap_or_else(|| id.clone());
        let labels = data
            .get("labels")
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let time = text(&raw, "time")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc));
        Ok(Self {
            routing_key: routing_key.to_string(),
            id,
            kind,
            time,
            job_id,
            namespace: text(&data, "namespace"),
            script_name: text(&data, "script_name"),
            labels,
            attempt: data.get("attempt").and_then(Value::as_u64),
            raw,
        })
    }

    /// The event's `data` object (`Null` when absent).
    pub fn data(&self) -> &Value {
        self.raw.get("data").unwrap_or(&Value::Null)
    }

    /// Whether the event ends its job: `succeeded` or `failed`.
    pub fn is_terminal(&self) -> bool {
        matches!(self.kind.as_str(), "succeeded" | "failed")
    }

    /// `namespace/script`, or the job id when the event names no script.
    pub fn site(&self) -> String {
        match (&self.namespace, &self.script_name) {
            (Some(ns), Some(script)) => format!("{ns}/{script}"),
            _ => self.job_id.clone(),
        }
    }

    /// `data.error`, when it has a code.
    pub fn error(&self) -> Option<ErrorView> {
        let error = self.data().get("error")?;
        Some(ErrorView {
            code: text(error, "code")?,
            message: text(error, "message").unwrap_or_default(),
            step: text(error, "step"),
            retryable: error.get("retryable").and_then(Value::as_bool),
        })
    }

    /// The progress a `deploy.progress` event reports (`None` for others).
    pub fn progress(&self) -> Option<Progress> {
        if self.kind != "progress" {
            return None;
        }
        let data = self.data();
        let count = |key: &str| data.get(key).and_then(Value::as_u64);
        Some(Progress {
            step: text(data, "step"),
            files_done: count("files_done"),
            files_total: count("files_total"),
            bytes_done: count("bytes_done"),
            bytes_total: count("bytes_total"),
        })
    }

    /// `data.duration_ms`, on terminal events.
    pub fn duration_ms(&self) -> Option<u64> {
        self.data().get("duration_ms").and_then(Value::as_u64)
    }
}

/// Which events to show. Empty lists and `None`s match everything; every
/// given criterion must hold (the kinds and jobs listed are alternatives).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub jobs: Vec<String>,
    pub namespace: Option<String>,
    pub script: Option<String>,
    /// Short kinds (`failed`) or full types (`wfp.deploy.failed`).
    pub kinds: Vec<String>,
    /// `key=value` pairs that must all be among the event's labels.
    pub labels: Vec<(String, String)>,
}

impl EventFilter {
    pub fn matches(&self, event: &FeedEvent) -> bool {
        let any_or =
            |list: &[String], f: &dyn Fn(&String) -> bool| list.is_empty() || list.iter().any(f);
        any_or(&self.jobs, &|job| *job == event.job_id)
            && any_or(&self.kinds, &|kind| {
                kind.strip_prefix(TYPE_PREFIX).unwrap_or(kind) == event.kind
            })
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| event.namespace.as_ref() == Some(ns))
            && self
                .script
                .as_ref()
                .is_none_or(|s| event.script_name.as_ref() == Some(s))
            && self
                .labels
                .iter()
                .all(|(k, v)| event.labels.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(kind: &str, data: Value) -> FeedEvent {
        let body = json!({
            "specversion": "1.0", "id": format!("j-1:{kind}"), "source": "/wfp-deployer/x",
            "type": format!("wfp.deploy.{kind}"), "subject": "customers/site",
            "time": "2026-11-25T10:00:00.000Z", "datacontenttype": "application/json",
            "data": data
        });
        FeedEvent::parse(&format!("deploy.{kind}"), body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_failed_event_is_read_with_its_error() {
        let e = event(
            "failed",
            json!({"job_id": "j-1", "namespace": "customers", "script_name": "site",
                   "labels": {"tenant": "acme"}, "attempt": 2, "duration_ms": 40,
                   "error": {"code": "bundle_not_found", "message": "s3://b/p: empty",
                             "step": "list", "retryable": true}}),
        );
        assert_eq!(e.kind, "failed");
        assert!(e.is_terminal());
        assert_eq!(e.site(), "customers/site");
        assert_eq!(e.attempt, Some(2));
        assert_eq!(e.duration_ms(), Some(40));
        assert_eq!(e.time.unwrap().to_rfc3339(), "2026-11-25T10:00:00+00:00");
        let error = e.error().unwrap();
        assert_eq!(error.code, "bundle_not_found");
        assert_eq!(error.step.as_deref(), Some("list"));
        assert_eq!(error.retryable, Some(true));
    }

    #[test]
    fn unknown_kinds_and_progress_are_read_leniently() {
        let e = event(
            "progress",
            json!({"job_id": "j-1", "step": "hash", "files_done": 3, "files_total": 9}),
        );
        let progress = e.progress().unwrap();
        assert_eq!(progress.step.as_deref(), Some("hash"));
        assert_eq!(progress.files_done, Some(3));
        assert_eq!(progress.bytes_total, None);
        assert!(!e.is_terminal());
        let e = event("something-new", json!({"job_id": "j-1", "whatever": [1]}));
        assert_eq!(e.kind, "something-new");
        assert_eq!(e.site(), "j-1");
        assert!(FeedEvent::parse("deploy.x", b"{}").is_err());
        assert!(FeedEvent::parse("deploy.x", b"nope").is_err());
    }

    #[test]
    fn filters_need_every_criterion() {
        let e = event(
            "succeeded",
            json!({"job_id": "j-1", "namespace": "customers", "script_name": "site",
                   "labels": {"tenant": "acme", "env": "prod"}, "attempt": 1}),
        );
        assert!(EventFilter::default().matches(&e));
        let f = EventFilter {
            jobs: vec!["other".into(), "j-1".into()],
            kinds: vec!["wfp.deploy.succeeded".into()],
            namespace: Some("customers".into()),
            script: Some("site".into()),
            labels: vec![("tenant".into(), "acme".into())],
        };
        assert!(f.matches(&e));
        let wrong_label = EventFilter {
            labels: vec![("tenant".into(), "other".into())],
            ..f.clone()
        };
        assert!(!wrong_label.matches(&e));
        let wrong_kind = EventFilter {
            kinds: vec!["failed".into()],
            ..f
        };
        assert!(!wrong_kind.matches(&e));
    }
}
