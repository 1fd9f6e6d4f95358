//! The plain display's lines and their pace (times given, not waited for),
//! and snapshots built from progress events.

use std::sync::{Arc, Mutex};

use super::*;

/// A writer the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn plain_lines_come_at_each_step_change_and_at_most_once_a_second() {
    let out = Captured::default();
    let mut display = ProgressDisplay::plain(Box::new(out.clone()));
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut s = ProgressSnapshot::default();
    display.show_at(&s, at(0));
    s.step = Step::List;
    display.show_at(&s, at(100));
    s.step = Step::Hash;
    s.files_to_hash = Some(4);
    s.bytes_to_hash = Some(4096);
    display.show_at(&s, at(200));
    s.files_hashed = 1;
    s.bytes_hashed = 1024;
    display.show_at(&s, at(700)); // under a second since the last line
    s.files_hashed = 2;
    s.bytes_hashed = 2048;
    display.show_at(&s, at(1300)); // a second later: a line
    display.show_at(&s, at(2500)); // nothing new: no line
    s.step = Step::Upload;
    s.buckets_to_upload = Some(2);
    s.files_to_upload = Some(3);
    s.bytes_to_upload = Some(3072);
    s.buckets_uploaded = 1;
    s.files_uploaded = 2;
    s.bytes_uploaded = 2048;
    display.show_at(&s, at(2600));
    display.println("a line of its own");
    display.finish();
    assert_eq!(
        out.lines(),
        [
            "validate",
            "list",
            "hash: 0/4 files, 0 B of 4.0 KiB",
            "hash: 2/4 files, 2.0 KiB of 4.0 KiB",
            "upload: 2/3 files, 1/2 buckets, 2.0 KiB of 3.0 KiB",
            "a line of its own",
        ]
    );
}

#[test]
fn progress_events_move_the_snapshot_of_their_step() {
    let event = |data: serde_json::Value| {
        let body = serde_json::json!({"id": "j:progress:1:0", "type": "wfp.deploy.progress",
            "data": data});
        FeedEvent::parse("deploy.progress", body.to_string().as_bytes()).unwrap()
    };
    let mut snapshot = ProgressSnapshot::default();
    apply_event(
        &mut snapshot,
        &event(
            serde_json::json!({"job_id": "j", "step": "hash", "sequence": 1,
            "files_done": 2, "files_total": 5, "bytes_done": 20, "bytes_total": 50}),
        ),
    );
    apply_event(
        &mut snapshot,
        &event(
            serde_json::json!({"job_id": "j", "step": "upload", "sequence": 2,
            "files_done": 0, "files_total": 1, "bytes_done": 0, "bytes_total": 10,
            "buckets_done": 0, "buckets_total": 1}),
        ),
    );
    assert_eq!(snapshot.step, Step::Upload);
    assert_eq!(
        (snapshot.files_hashed, snapshot.files_to_hash),
        (2, Some(5))
    );
    assert_eq!(snapshot.buckets_to_upload, Some(1));
    // A step this version does not know leaves the snapshot alone.
    apply_event(
        &mut snapshot,
        &event(serde_json::json!({"job_id": "j", "step": "warp", "sequence": 3})),
    );
    assert_eq!(snapshot.step, Step::Upload);
}

#[tokio::test]
async fn following_an_observer_shows_its_last_state() {
    let out = Captured::default();
    let observer = DeployObserver::new();
    let following = follow_observer(&observer, ProgressDisplay::plain(Box::new(out.clone())));
    // The test's runtime has one thread: this lets the display draw once.
    tokio::task::yield_now().await;
    observer.step(Step::List);
    observer.to_hash(1, 10);
    observer.step(Step::Hash);
    observer.hashed(1, 10, 10);
    following.finish().await;
    let lines = out.lines();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("validate"),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("hash: 1/1 files, 10 B of 10 B"),
        "{lines:?}"
    );
}
