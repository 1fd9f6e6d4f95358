//! The throttle, proven on tokio's paused clock: every event the reporter
//! publishes is counted through a channel (a tap), and the clock moves only
//! when the test says so.

use std::sync::Mutex;

use tokio::sync::mpsc;
use tokio::time::advance;

use super::*;
use crate::amqp::DeliveryMeta;
use crate::contract::DeployJob;
use crate::events::{Event, EventBuilder, EventError};

/// Hands every event to the test as it is published.
struct Tap(Mutex<mpsc::UnboundedSender<Event>>);

#[async_trait::async_trait]
impl Publish for Tap {
    async fn publish(&self, event: &Event, _reply_to: Option<&str>) -> Result<(), EventError> {
        let _ = self.0.lock().unwrap().send(event.clone());
        Ok(())
    }
}

fn job() -> DeployJob {
    let body = serde_json::json!({"version": 1, "job_id": "p-1", "namespace": "ns",
        "script_name": "s", "bundle": {"bucket": "sites", "prefix": "p/"}});
    crate::contract::decode_job(body.to_string().as_bytes()).unwrap()
}

fn step_and_files(event: &Event) -> (Step, Option<u64>, u64) {
    let p = &event.body.data.progress;
    (p.step.unwrap(), p.files_done, p.sequence.unwrap())
}

/// Lets the reporter run everything it can without moving the clock.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn one_event_per_step_change_and_at_most_one_a_second_between() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tap = Tap(Mutex::new(tx));
    let builder = EventBuilder::new("w");
    let job = job();
    let events = builder.job(&job, "acct", &DeliveryMeta::default());
    let observer = DeployObserver::new();
    let deploy = async {
        let first = rx.recv().await.unwrap();
        assert_eq!(step_and_files(&first), (Step::Validate, None, 0));
        assert_eq!(first.body.event_type, "wfp.deploy.progress");

        observer.step(Step::List);
        observer.to_hash(100, 1000);
        observer.step(Step::Hash);
        settle().await;
        let hash = rx.recv().await.unwrap();
        assert_eq!(step_and_files(&hash), (Step::Hash, Some(0), 1));

        // A file hashed every 300 ms for 2.7 s, the reporter let run after
        // each tick: the clock passes 1 s after the hash event at 1.2 s (3
        // files), and 1 s after that at 2.4 s (7 files): two events.
        for _ in 0..9 {
            advance(Duration::from_millis(300)).await;
            settle().await;
            observer.hashed(1, 10, 10);
        }
        settle().await;
        // The positive marker: the next step's event.
        observer.step(Step::Upload);
        settle().await;
        let mut between = Vec::new();
        loop {
            let event = rx.recv().await.unwrap();
            if event.body.data.progress.step == Some(Step::Upload) {
                assert_eq!(event.body.data.progress.sequence, Some(4));
                break;
            }
            between.push(step_and_files(&event));
        }
        assert_eq!(
            between,
            [(Step::Hash, Some(3), 2), (Step::Hash, Some(7), 3)],
            "one event a second while hashing, no more"
        );

        // The totals change: one event a second later; then 2 quiet
        // seconds: none; then a bucket: one.
        observer.to_upload(2, 4, 40);
        for _ in 0..3 {
            advance(Duration::from_secs(1)).await;
            settle().await;
        }
        let totals = rx.recv().await.unwrap();
        let p = &totals.body.data.progress;
        assert_eq!(
            (p.sequence, p.buckets_done, p.buckets_total),
            (Some(5), Some(0), Some(2))
        );
        observer.bucket_uploaded(2, 20);
        advance(Duration::from_secs(1)).await;
        settle().await;
        let upload = rx.recv().await.unwrap();
        let p = &upload.body.data.progress;
        assert_eq!(
            (
                p.sequence,
                p.buckets_done,
                p.buckets_total,
                p.files_done,
                p.files_total
            ),
            (Some(6), Some(1), Some(2), Some(2), Some(4)),
            "numbered right after the totals' event: none for the quiet seconds"
        );
    };
    alongside(deploy, &tap, &events, &observer).await;
}

#[test]
fn each_step_carries_its_own_counts() {
    let snapshot = ProgressSnapshot {
        step: Step::Session,
        files_hashed: 3,
        files_to_hash: Some(3),
        ..ProgressSnapshot::default()
    };
    let data = step_counts(&snapshot, 7);
    assert_eq!(data.step, Some(Step::Session));
    assert_eq!(data.sequence, Some(7));
    assert_eq!(data.files_done, None, "session counts nothing");
    let hashing = step_counts(
        &ProgressSnapshot {
            step: Step::Hash,
            ..snapshot
        },
        8,
    );
    assert_eq!(
        (hashing.files_done, hashing.files_total),
        (Some(3), Some(3))
    );
}
