//! The result events (CloudEvents 1.0, structured JSON mode).
//!
//! Terminal event ids are `<job_id>:succeeded` and `<job_id>:failed`, so a
//! consumer can drop the duplicates an at-least-once broker may deliver.
//! `deploy.started` and `deploy.retrying` are per attempt
//! (`<job_id>:started:<attempt>`, `<job_id>:retrying:<attempt>`) and never
//! end a job; nor does `deploy.progress` (`<job_id>:progress:<attempt>:<n>`),
//! which is sent without a confirm and may be lost.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{FailureInfo, ProgressData};

/// Which event; decides `type`, the routing key and the id suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Started,
    /// An attempt failed with a retryable code and the job comes back later
    /// (an addition to contract v1: consumers that do not know it can
    /// ignore it, nothing ends with it).
    Retrying,
    Succeeded,
    Failed,
    /// How far a running attempt got: at each step change and at most once
    /// a second (an addition to contract v1, like `Retrying`). Best effort:
    /// one may be lost, and none ends anything.
    Progress,
}

impl EventKind {
    /// The CloudEvents `type`.
    pub fn event_type(self) -> &'static str {
        match self {
            EventKind::Started => "wfp.deploy.started",
            EventKind::Retrying => "wfp.deploy.retrying",
            EventKind::Succeeded => "wfp.deploy.succeeded",
            EventKind::Failed => "wfp.deploy.failed",
            EventKind::Progress => "wfp.deploy.progress",
        }
    }

    /// The routing key on the events exchange.
    pub fn routing_key(self) -> &'static str {
        match self {
            EventKind::Started => "deploy.started",
            EventKind::Retrying => "deploy.retrying",
            EventKind::Succeeded => "deploy.succeeded",
            EventKind::Failed => "deploy.failed",
            EventKind::Progress => "deploy.progress",
        }
    }

    /// Whether this event ends the job (and so is also sent to `reply_to`).
    /// Every kind is listed, so a new one must say whether it ends the job.
    pub fn is_terminal(self) -> bool {
        match self {
            EventKind::Started | EventKind::Retrying | EventKind::Progress => false,
            EventKind::Succeeded | EventKind::Failed => true,
        }
    }
}

/// A CloudEvent as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "wfp-deployer deploy event (contract v1)",
    description = "A CloudEvents 1.0 event in structured JSON mode, published to the events exchange as application/cloudevents+json."
)]
pub struct CloudEvent {
    #[schemars(extend("const" = "1.0"))]
    pub specversion: String,
    /// `<job_id>:started:<attempt>`, `<job_id>:succeeded`, `<job_id>:failed`:
    /// terminal ids are stable per job, so consumers drop duplicates by id.
    pub id: String,
    /// `/wfp-deployer/<instance>`: the worker that published the event.
    #[schemars(regex(pattern = "^/wfp-deployer/"))]
    pub source: String,
    /// `wfp.deploy.<kind>`; the routing key is `deploy.<kind>`.
    #[serde(rename = "type")]
    #[schemars(regex(pattern = r"^wfp\.deploy\.[a-z_]+$"))]
    pub event_type: String,
    /// `<namespace>/<script_name>`, or the job id when those are unknown.
    pub subject: String,
    /// RFC 3339, UTC, milliseconds.
    #[schemars(extend("format" = "date-time"))]
    pub time: String,
    #[schemars(extend("const" = "application/json"))]
    pub datacontenttype: String,
    pub data: EventData,
}

/// The fields every event's `data` repeats from the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JobFields {
    /// The job's id; for a message without a readable one, its AMQP
    /// `message_id` or a generated id.
    pub job_id: String,
    #[serde(default)]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub script_name: Option<String>,
}

/// `data` of an event. Optional parts are present exactly for the event
/// kinds the contract gives them to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventData {
    #[serde(flatten)]
    pub job: JobFields,
    /// 1 + the jobs queue's `x-delivery-count`.
    #[schemars(range(min = 1))]
    pub attempt: u32,
    /// From receipt to the outcome (terminal events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FailureInfo>,
    /// When a retrying job's next attempt is due (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// `deploy.progress` only: the step and its counts (absent elsewhere).
    #[serde(flatten)]
    pub progress: ProgressData,
}

impl EventData {
    /// The data every event starts from: the job's fields and the attempt,
    /// every optional part absent. Each event kind then fills in its own.
    pub fn new(job: JobFields, attempt: u32) -> Self {
        Self {
            job,
            attempt,
            duration_ms: None,
            manifest: None,
            upload: None,
            deployment: None,
            error: None,
            next_attempt_at: None,
            progress: ProgressData::default(),
        }
    }
}

/// The facts of a successful deploy that the `deploy.succeeded` event
/// reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Success {
    pub manifest: ManifestSummary,
    pub upload: UploadSummary,
    pub deployment: DeploymentInfo,
}

/// What was deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestSummary {
    pub files: u64,
    pub bytes: u64,
    /// SHA-256 (hex) of the canonical manifest JSON.
    pub sha256: String,
    /// Files whose content digest came from the digest cache, unread.
    /// Optional (added after contract v1): absent from older workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hits: Option<u64>,
    /// Bytes read from the bundle's storage to learn the files' digests:
    /// those the cache did not know, hashed (and a prefix's root special
    /// files). What the cache saves; the upload's reads are
    /// `upload.bytes_read`. Optional, like `cache_hits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_read: Option<u64>,
}

/// What had to be sent to Cloudflare.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UploadSummary {
    pub sessions: u32,
    pub buckets: u32,
    pub files: u64,
    pub bytes: u64,
    /// Bytes read (again) from the bundle's storage for the files
    /// Cloudflare asked for. Optional (added after contract v1): absent
    /// from older workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_read: Option<u64>,
}

/// Cloudflare's answer to the script PUT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeploymentInfo {
    pub id: Option<String>,
    pub etag: Option<String>,
    pub modified_on: Option<String>,
}

impl CloudEvent {
    /// Builds an event; `instance` names the publishing worker in `source`.
    pub fn new(kind: EventKind, instance: &str, data: EventData, now: DateTime<Utc>) -> Self {
        let id = match kind {
            EventKind::Started => format!("{}:started:{}", data.job.job_id, data.attempt),
            EventKind::Retrying => format!("{}:retrying:{}", data.job.job_id, data.attempt),
            EventKind::Succeeded => format!("{}:succeeded", data.job.job_id),
            EventKind::Failed => format!("{}:failed", data.job.job_id),
            EventKind::Progress => format!(
                "{}:progress:{}:{}",
                data.job.job_id,
                data.attempt,
                data.progress.sequence.unwrap_or(0)
            ),
        };
        let subject = match (&data.job.namespace, &data.job.script_name) {
            (Some(ns), Some(script)) => format!("{ns}/{script}"),
            _ => data.job.job_id.clone(),
        };
        Self {
            specversion: "1.0".into(),
            id,
            source: format!("/wfp-deployer/{instance}"),
            event_type: kind.event_type().into(),
            subject,
            time: now.to_rfc3339_opts(SecondsFormat::Millis, true),
            datacontenttype: "application/json".into(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{ErrorCode, Step};

    fn fields() -> JobFields {
        JobFields {
            job_id: "acme-site-42".into(),
            correlation_id: Some("req-7f3a".into()),
            labels: [("tenant".to_string(), "acme".to_string())].into(),
            account_id: Some("0123456789abcdef0123456789abcdef".into()),
            namespace: Some("customers".into()),
            script_name: Some("acme-site".into()),
        }
    }

    fn at() -> DateTime<Utc> {
        "2026-11-25T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn succeeded_event_has_the_contract_shape() {
        let data = EventData {
            duration_ms: Some(812),
            manifest: Some(ManifestSummary {
                files: 37,
                bytes: 1843200,
                sha256: "ab".into(),
                cache_hits: None,
                bytes_read: None,
            }),
            upload: Some(UploadSummary {
                sessions: 1,
                buckets: 2,
                files: 5,
                bytes: 20480,
                bytes_read: None,
            }),
            deployment: Some(DeploymentInfo {
                id: Some("d1".into()),
                etag: Some("e1".into()),
                modified_on: Some("2026-11-25T10:00:00Z".into()),
            }),
            ..EventData::new(fields(), 1)
        };
        let event = CloudEvent::new(EventKind::Succeeded, "host-1", data, at());
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "specversion": "1.0", "id": "acme-site-42:succeeded",
                "source": "/wfp-deployer/host-1", "type": "wfp.deploy.succeeded",
                "subject": "customers/acme-site", "time": "2026-11-25T10:00:00.000Z",
                "datacontenttype": "application/json",
                "data": {"job_id": "acme-site-42", "correlation_id": "req-7f3a",
                    "labels": {"tenant": "acme"},
                    "account_id": "0123456789abcdef0123456789abcdef",
                    "namespace": "customers", "script_name": "acme-site", "attempt": 1,
                    "duration_ms": 812,
                    "manifest": {"files": 37, "bytes": 1843200, "sha256": "ab"},
                    "upload": {"sessions": 1, "buckets": 2, "files": 5, "bytes": 20480},
                    "deployment": {"id": "d1", "etag": "e1", "modified_on": "2026-11-25T10:00:00Z"}}
            })
        );
        let back: CloudEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn the_cache_figures_are_optional_fields_of_the_manifest() {
        let with = ManifestSummary {
            files: 3,
            bytes: 30,
            sha256: "ab".into(),
            cache_hits: Some(2),
            bytes_read: Some(10),
        };
        let json = serde_json::to_value(&with).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"files": 3, "bytes": 30, "sha256": "ab",
                "cache_hits": 2, "bytes_read": 10})
        );
        assert_eq!(
            serde_json::from_value::<ManifestSummary>(json).unwrap(),
            with
        );
        // An event from before these fields still reads.
        let old: ManifestSummary =
            serde_json::from_value(serde_json::json!({"files": 3, "bytes": 30, "sha256": "ab"}))
                .unwrap();
        assert_eq!((old.cache_hits, old.bytes_read), (None, None));
    }

    #[test]
    fn failed_event_carries_the_error() {
        let data = EventData {
            duration_ms: Some(5),
            error: Some(FailureInfo::new(
                ErrorCode::CloudflareRejected,
                Step::Session,
                false,
                "session: HTTP 400",
            )),
            ..EventData::new(fields(), 2)
        };
        let event = CloudEvent::new(EventKind::Failed, "w", data, at());
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["id"], "acme-site-42:failed");
        assert_eq!(json["type"], "wfp.deploy.failed");
        assert_eq!(
            json["data"]["error"],
            serde_json::json!({"code": "cloudflare_rejected", "message": "session: HTTP 400",
                "step": "session", "retryable": false})
        );
        assert!(json["data"].get("manifest").is_none());
    }

    #[test]
    fn only_succeeded_and_failed_end_a_job() {
        assert!(!EventKind::Started.is_terminal());
        assert!(!EventKind::Retrying.is_terminal());
        assert!(EventKind::Succeeded.is_terminal());
        assert!(EventKind::Failed.is_terminal());
    }

    #[test]
    fn started_ids_differ_per_attempt() {
        let mut data = EventData::new(fields(), 1);
        let first = CloudEvent::new(EventKind::Started, "w", data.clone(), at());
        data.attempt = 2;
        let second = CloudEvent::new(EventKind::Started, "w", data, at());
        assert_ne!(first.id, second.id);
        assert_eq!(first.event_type, "wfp.deploy.started");
    }

    #[test]
    fn retrying_event_has_the_contract_shape() {
        let data = EventData {
            error: Some(FailureInfo::new(
                ErrorCode::CloudflareUnavailable,
                Step::Upload,
                true,
                "upload: HTTP 503",
            )),
            next_attempt_at: Some("2026-11-25T10:00:10.000Z".into()),
            ..EventData::new(fields(), 2)
        };
        let event = CloudEvent::new(EventKind::Retrying, "w", data, at());
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["id"], "acme-site-42:retrying:2");
        assert_eq!(json["type"], "wfp.deploy.retrying");
        assert_eq!(EventKind::Retrying.routing_key(), "deploy.retrying");
        assert_eq!(json["data"]["attempt"], 2);
        assert_eq!(json["data"]["next_attempt_at"], "2026-11-25T10:00:10.000Z");
        assert_eq!(json["data"]["error"]["code"], "cloudflare_unavailable");
        assert_eq!(json["data"]["error"]["retryable"], true);
        assert!(json["data"].get("duration_ms").is_none());
        let back: CloudEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
