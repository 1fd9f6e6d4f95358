//! One job as the console shows it, folded from its events: where it is
//! (in flight, retrying, succeeded, failed), at which step, how far, and
//! why it failed.
//!
//! Events can arrive out of order (a replay from the log meeting live ones,
//! a redelivery), and a job can run again after it ended (requeued from the
//! dead-letter queue). So an event changes the state only if it is not
//! older than the outcome already known: a late `started` of the finished
//! run is only counted, while a `started` after the outcome is a new run.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::event::{ErrorView, FeedEvent, Progress};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InFlight,
    /// Failed an attempt; the worker will try again after a delay.
    Retrying,
    Succeeded,
    Failed,
}

impl Status {
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed)
    }
}

/// A job's summary, updated by each of its events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    pub job_id: String,
    pub namespace: Option<String>,
    pub script_name: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub status: Status,
    pub attempt: Option<u64>,
    /// The step the last progress event named (or the failed step).
    pub step: Option<String>,
    pub progress: Option<Progress>,
    pub error: Option<ErrorView>,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    /// Events of this job in the console's window.
    pub events: usize,
}

impl JobView {
    /// The view of a job first seen through `event` at `at` (its time).
    pub fn new(event: &FeedEvent, at: DateTime<Utc>) -> Self {
        let mut view = Self {
            job_id: event.job_id.clone(),
            namespace: None,
            script_name: None,
            labels: BTreeMap::new(),
            status: Status::InFlight,
            attempt: None,
            step: None,
            progress: None,
            error: None,
            started_at: None,
            updated_at: at,
            finished_at: None,
            duration_ms: None,
            events: 0,
        };
        view.apply(event, at);
        view
    }

    /// Folds one more event in (see the module doc for the ordering rule).
    pub fn apply(&mut self, event: &FeedEvent, at: DateTime<Utc>) {
        self.events += 1;
        if self.namespace.is_none() {
            self.namespace.clone_from(&event.namespace);
        }
        if self.script_name.is_none() {
            self.script_name.clone_from(&event.script_name);
        }
        if self.labels.is_empty() {
            self.labels.clone_from(&event.labels);
        }
        if self.finished_at.is_some_and(|done| at < done) {
            return;
        }
        let known = matches!(
            event.kind.as_str(),
            "started" | "progress" | "retrying" | "succeeded" | "failed"
        );
        if !known {
            return;
        }
        self.updated_at = at;
        if event.attempt.is_some() {
            self.attempt = event.attempt;
        }
        match event.kind.as_str() {
            "started" => {
                self.status = Status::InFlight;
                self.started_at = Some(at);
                self.finished_at = None;
                self.step = None;
                self.progress = None;
                self.error = None;
                self.duration_ms = None;
            }
            "progress" => {
                self.status = Status::InFlight;
                self.finished_at = None;
                if let Some(progress) = event.progress() {
                    self.step.clone_from(&progress.step);
                    self.progress = Some(progress);
                }
            }
            "retrying" => {
                self.status = Status::Retrying;
                self.finished_at = None;
                self.error = event.error();
            }
            terminal => {
                self.status = if terminal == "succeeded" {
                    Status::Succeeded
                } else {
                    Status::Failed
                };
                self.finished_at = Some(at);
                self.duration_ms = event.duration_ms();
                self.error = event.error();
                if let Some(step) = self.error.as_ref().and_then(|e| e.step.clone()) {
                    self.step = Some(step);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn event(kind: &str, time: &str, data: Value) -> (FeedEvent, DateTime<Utc>) {
        let body = json!({"id": format!("j:{kind}"), "type": format!("wfp.deploy.{kind}"),
                          "time": time, "data": data});
        let event = FeedEvent::parse("deploy.x", body.to_string().as_bytes()).unwrap();
        let at = event.time.unwrap();
        (event, at)
    }

    fn base() -> Value {
        json!({"job_id": "j", "namespace": "ns", "script_name": "s", "attempt": 1})
    }

    #[test]
    fn a_job_goes_from_started_through_progress_to_its_outcome() {
        let (started, t0) = event("started", "2026-01-01T00:00:00Z", base());
        let mut view = JobView::new(&started, t0);
        assert_eq!(view.status, Status::InFlight);
        assert_eq!(view.namespace.as_deref(), Some("ns"));
        let mut data = base();
        data["step"] = json!("hash");
        data["files_done"] = json!(3);
        let (progress, t1) = event("progress", "2026-01-01T00:00:01Z", data);
        view.apply(&progress, t1);
        assert_eq!(view.step.as_deref(), Some("hash"));
        assert_eq!(view.progress.as_ref().unwrap().files_done, Some(3));
        let mut data = base();
        data["error"] =
            json!({"code": "bundle_not_found", "message": "m", "step": "list", "retryable": true});
        data["duration_ms"] = json!(20);
        let (failed, t2) = event("failed", "2026-01-01T00:00:02Z", data);
        view.apply(&failed, t2);
        assert_eq!(view.status, Status::Failed);
        assert_eq!(view.error.as_ref().unwrap().code, "bundle_not_found");
        assert_eq!(view.step.as_deref(), Some("list"));
        assert_eq!(view.duration_ms, Some(20));
        assert_eq!(view.events, 3);
    }

    #[test]
    fn a_late_event_is_counted_but_a_new_run_starts_over() {
        let (succeeded, t1) = event("succeeded", "2026-01-01T00:00:05Z", base());
        let mut view = JobView::new(&succeeded, t1);
        let (late, t0) = event("started", "2026-01-01T00:00:01Z", base());
        view.apply(&late, t0);
        assert_eq!(
            view.status,
            Status::Succeeded,
            "the older started changes nothing"
        );
        assert_eq!(view.events, 2);
        let mut data = base();
        data["attempt"] = json!(1);
        let (again, t2) = event("started", "2026-01-01T01:00:00Z", data);
        view.apply(&again, t2);
        assert_eq!(view.status, Status::InFlight, "requeued: a new run");
        assert_eq!(view.finished_at, None);
        let (retrying, t3) = event("retrying", "2026-01-01T01:00:01Z", base());
        view.apply(&retrying, t3);
        assert_eq!(view.status, Status::Retrying);
    }
}
