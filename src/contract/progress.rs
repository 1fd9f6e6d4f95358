//! What a `deploy.progress` event says about a running attempt: its own
//! part of the events' `data`, kept apart from the terminal events' parts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Step;

/// What a `deploy.progress` event adds to `data`, flat beside the job's
/// fields: the step the attempt is in and, where the step counts anything,
/// how far it got. `hash` counts the files and bytes whose digest is known
/// (totals once listing ended); `upload` the files and bytes Cloudflare
/// asked for and the buckets they go in. Other steps carry the step alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProgressData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    /// Numbers the attempt's progress events from 0 (the id's last part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_done: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_done: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_total: Option<u64>,
    /// `upload` only: upload requests (buckets) done and asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets_done: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets_total: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{CloudEvent, EventData, EventKind, JobFields};

    #[test]
    fn a_progress_event_has_its_counts_flat_in_data_and_a_numbered_id() {
        let job = JobFields {
            job_id: "acme-42".into(),
            correlation_id: None,
            labels: Default::default(),
            account_id: None,
            namespace: Some("ns".into()),
            script_name: Some("s".into()),
        };
        let data = EventData {
            progress: ProgressData {
                step: Some(Step::Upload),
                sequence: Some(4),
                files_done: Some(2),
                files_total: Some(5),
                bytes_done: Some(2048),
                bytes_total: Some(4096),
                buckets_done: Some(1),
                buckets_total: Some(2),
            },
            ..EventData::new(job, 3)
        };
        let at = "2026-11-25T10:00:00Z".parse().unwrap();
        let event = CloudEvent::new(EventKind::Progress, "w", data, at);
        assert_eq!(event.id, "acme-42:progress:3:4");
        assert_eq!(EventKind::Progress.routing_key(), "deploy.progress");
        assert!(!EventKind::Progress.is_terminal());
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "wfp.deploy.progress");
        assert_eq!(
            json["data"],
            serde_json::json!({"job_id": "acme-42", "labels": {}, "namespace": "ns",
                "script_name": "s", "account_id": null, "correlation_id": null,
                "attempt": 3, "step": "upload", "sequence": 4,
                "files_done": 2, "files_total": 5, "bytes_done": 2048, "bytes_total": 4096,
                "buckets_done": 1, "buckets_total": 2})
        );
        let back: CloudEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
        // Other kinds carry none of it.
        let started = CloudEvent::new(
            EventKind::Started,
            "w",
            EventData::new(back.data.job, 1),
            at,
        );
        let json = serde_json::to_value(&started).unwrap();
        assert!(json["data"].get("step").is_none(), "{json}");
    }
}
