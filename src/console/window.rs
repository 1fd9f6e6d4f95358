//! The console's memory: the last N events, the jobs they fold into, and
//! the last hour's throughput.
//!
//! Bounded (`console.window` events, 10,000 by default): the oldest event
//! goes when a new one comes, and a job goes with its last event. An event
//! is kept once per id and time: the same event delivered twice (a replay
//! overlapping the live feed, a redelivery) is dropped, while a job's
//! second `<job_id>:failed` after a requeue (same id, later time) is news.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;

use super::event::FeedEvent;
use super::jobs::{JobView, Status};

/// Minutes of throughput the chart shows.
pub const CHART_MINUTES: i64 = 60;

/// Which jobs a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct JobQuery {
    /// `true`: finished jobs only; `false`: in flight (and retrying) only.
    pub finished: bool,
    pub namespace: Option<String>,
    pub script: Option<String>,
    /// An error code (`bundle_not_found`); `ok` for the jobs that succeeded.
    pub code: Option<String>,
    pub limit: Option<usize>,
}

impl JobQuery {
    fn matches(&self, job: &JobView) -> bool {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        job.status.is_finished() == self.finished
            && given(&self.namespace).is_none_or(|ns| job.namespace.as_deref() == Some(ns))
            && given(&self.script).is_none_or(|s| job.script_name.as_deref() == Some(s))
            && given(&self.code).is_none_or(|code| match &job.error {
                Some(error) => error.code == code,
                None => code == "ok" && job.status == Status::Succeeded,
            })
    }
}

/// Outcomes in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub succeeded: u64,
    pub failed: u64,
}

/// The last hour, minute by minute, for the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Throughput {
    pub buckets: Vec<Bucket>,
    pub succeeded: u64,
    pub failed: u64,
    /// Failed over finished, 0 when nothing finished.
    pub failure_rate: f64,
}

/// The bounded window of events and the jobs they make.
#[derive(Debug)]
pub struct Window {
    capacity: usize,
    /// Arrival order; each with the time it counts at.
    events: VecDeque<(Arc<FeedEvent>, DateTime<Utc>)>,
    seen: HashSet<(String, DateTime<Utc>)>,
    jobs: HashMap<String, JobView>,
}

impl Window {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            events: VecDeque::new(),
            seen: HashSet::new(),
            jobs: HashMap::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds an event (its own time, else `arrived`); the job's new view, or
    /// `None` for an event already held.
    pub fn insert(&mut self, event: FeedEvent, arrived: DateTime<Utc>) -> Option<JobView> {
        let at = event.time.unwrap_or(arrived);
        if !self.seen.insert((event.id.clone(), at)) {
            return None;
        }
        let view = match self.jobs.get_mut(&event.job_id) {
            Some(view) => {
                view.apply(&event, at);
                view.clone()
            }
            None => {
                let view = JobView::new(&event, at);
                self.jobs.insert(event.job_id.clone(), view.clone());
                view
            }
        };
        self.events.push_back((Arc::new(event), at));
        while self.events.len() > self.capacity {
            self.evict();
        }
        Some(view)
    }

    fn evict(&mut self) {
        let Some((old, at)) = self.events.pop_front() else {
            return;
        };
        self.seen.remove(&(old.id.clone(), at));
        if let Some(view) = self.jobs.get_mut(&old.job_id) {
            view.events = view.events.saturating_sub(1);
            if view.events == 0 {
                self.jobs.remove(&old.job_id);
            }
        }
    }

    /// The jobs `query` asks for, most recently updated first.
    pub fn jobs(&self, query: &JobQuery) -> Vec<JobView> {
        let mut jobs: Vec<JobView> = self
            .jobs
            .values()
            .filter(|job| query.matches(job))
            .cloned()
            .collect();
        jobs.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then(a.job_id.cmp(&b.job_id))
        });
        jobs.truncate(query.limit.unwrap_or(200));
        jobs
    }

    pub fn job(&self, job_id: &str) -> Option<JobView> {
        self.jobs.get(job_id).cloned()
    }

    /// A job's events in the window, oldest first, as published.
    pub fn timeline(&self, job_id: &str) -> Vec<serde_json::Value> {
        let mut events: Vec<&(Arc<FeedEvent>, DateTime<Utc>)> = self
            .events
            .iter()
            .filter(|(e, _)| e.job_id == job_id)
            .collect();
        events.sort_by_key(|(_, at)| *at);
        events.into_iter().map(|(e, _)| e.raw.clone()).collect()
    }

    /// Outcomes per minute over the [`CHART_MINUTES`] up to `now`.
    pub fn throughput(&self, now: DateTime<Utc>) -> Throughput {
        let minute = Duration::minutes(1);
        let last = now.duration_trunc(minute).unwrap_or(now);
        let first = last - Duration::minutes(CHART_MINUTES - 1);
        let mut buckets: Vec<Bucket> = (0..CHART_MINUTES)
            .map(|i| Bucket {
                start: first + Duration::minutes(i),
                succeeded: 0,
                failed: 0,
            })
            .collect();
        for (event, at) in &self.events {
            if !event.is_terminal() || *at < first || *at >= last + minute {
                continue;
            }
            let index = usize::try_from((*at - first).num_minutes()).unwrap_or(0);
            if let Some(bucket) = buckets.get_mut(index) {
                if event.kind == "succeeded" {
                    bucket.succeeded += 1;
                } else {
                    bucket.failed += 1;
                }
            }
        }
        let succeeded = buckets.iter().map(|b| b.succeeded).sum();
        let failed: u64 = buckets.iter().map(|b| b.failed).sum();
        let finished = succeeded + failed;
        let failure_rate = if finished == 0 {
            0.0
        } else {
            failed as f64 / finished as f64
        };
        Throughput {
            buckets,
            succeeded,
            failed,
            failure_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(job: &str, kind: &str, time: &str, code: Option<&str>) -> FeedEvent {
        let mut data = json!({"job_id": job, "namespace": "ns", "script_name": job, "attempt": 1});
        if let Some(code) = code {
            data["error"] =
                json!({"code": code, "message": "m", "step": "list", "retryable": false});
        }
        let id = format!("{job}:{kind}");
        let body =
            json!({"id": id, "type": format!("wfp.deploy.{kind}"), "time": time, "data": data});
        FeedEvent::parse("deploy.x", body.to_string().as_bytes()).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-01-01T10:00:30Z".parse().unwrap()
    }

    #[test]
    fn duplicates_are_dropped_but_a_later_outcome_of_the_same_id_is_news() {
        let mut w = Window::new(100);
        assert!(
            w.insert(
                event("a", "failed", "2026-01-01T10:00:00Z", Some("internal")),
                now()
            )
            .is_some()
        );
        assert!(
            w.insert(
                event("a", "failed", "2026-01-01T10:00:00Z", Some("internal")),
                now()
            )
            .is_none()
        );
        assert!(
            w.insert(
                event("a", "failed", "2026-01-01T10:00:10Z", Some("internal")),
                now()
            )
            .is_some()
        );
        assert_eq!(w.timeline("a").len(), 2);
    }

    #[test]
    fn the_oldest_events_and_their_jobs_go_first() {
        let mut w = Window::new(2);
        w.insert(event("a", "started", "2026-01-01T10:00:00Z", None), now());
        w.insert(event("b", "started", "2026-01-01T10:00:01Z", None), now());
        w.insert(event("b", "succeeded", "2026-01-01T10:00:02Z", None), now());
        assert_eq!(w.events.len(), 2);
        assert!(w.job("a").is_none(), "its only event went");
        assert_eq!(w.job("b").unwrap().events, 2);
    }

    #[test]
    fn listings_filter_by_state_namespace_script_and_code() {
        let mut w = Window::new(100);
        w.insert(event("a", "started", "2026-01-01T10:00:00Z", None), now());
        w.insert(event("b", "succeeded", "2026-01-01T10:00:01Z", None), now());
        w.insert(
            event(
                "c",
                "failed",
                "2026-01-01T10:00:02Z",
                Some("bundle_not_found"),
            ),
            now(),
        );
        let ids = |q: JobQuery| w.jobs(&q).into_iter().map(|j| j.job_id).collect::<Vec<_>>();
        assert_eq!(ids(JobQuery::default()), ["a"]);
        let finished = JobQuery {
            finished: true,
            ..JobQuery::default()
        };
        assert_eq!(ids(finished.clone()), ["c", "b"], "newest first");
        let failed = JobQuery {
            code: Some("bundle_not_found".into()),
            ..finished.clone()
        };
        assert_eq!(ids(failed), ["c"]);
        let ok = JobQuery {
            code: Some("ok".into()),
            ..finished.clone()
        };
        assert_eq!(ids(ok), ["b"]);
        let script = JobQuery {
            script: Some("b".into()),
            namespace: Some("ns".into()),
            ..finished
        };
        assert_eq!(ids(script), ["b"]);
    }

    #[test]
    fn throughput_counts_outcomes_per_minute_over_the_last_hour() {
        let mut w = Window::new(100);
        w.insert(event("a", "succeeded", "2026-01-01T10:00:05Z", None), now());
        w.insert(
            event("b", "failed", "2026-01-01T10:00:10Z", Some("internal")),
            now(),
        );
        w.insert(event("c", "succeeded", "2026-01-01T09:58:00Z", None), now());
        w.insert(event("d", "succeeded", "2026-01-01T08:00:00Z", None), now());
        w.insert(event("e", "started", "2026-01-01T10:00:00Z", None), now());
        let t = w.throughput(now());
        assert_eq!(t.buckets.len(), 60);
        let last = t.buckets[59];
        assert_eq!((last.succeeded, last.failed), (1, 1));
        assert_eq!(t.buckets[57].succeeded, 1);
        assert_eq!(
            (t.succeeded, t.failed),
            (2, 1),
            "the 08:00 one is out of the hour"
        );
        assert!((t.failure_rate - 1.0 / 3.0).abs() < 1e-9);
    }
}
