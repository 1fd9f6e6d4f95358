//! `deploy.progress` events: how far a running deploy got, published while
//! it runs, at each step change and at most once a second in between.
//!
//! They are best effort by design: the reporter runs beside the deploy (in
//! the job's task, [`alongside`]) and is dropped the moment the deploy ends,
//! so it never delays the terminal event or the ack; an event the broker
//! does not confirm is logged and lost, and nothing is retried, since the
//! next one says more. Off with `events.progress = false`.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use tokio::time::{Instant, sleep_until};

use crate::contract::{ProgressData, Step};
use crate::events::{JobEvents, Publish};
use crate::internal_events::{ProgressNotPublished, emit};
use crate::pipeline::{DeployObserver, ProgressSnapshot};

/// Least time between two events of one job that a step change does not
/// explain.
const EVERY: Duration = Duration::from_secs(1);

/// Runs `deploy`, publishing its progress meanwhile; returns what `deploy`
/// returns, as soon as it does (a progress event then in flight is dropped).
pub(super) async fn alongside<T>(
    deploy: impl Future<Output = T>,
    publisher: &dyn Publish,
    events: &JobEvents<'_>,
    observer: &DeployObserver,
) -> T {
    tokio::select! {
        biased;
        done = deploy => done,
        never = report(publisher, events, observer) => match never {},
    }
}

/// Publishes `observer`'s progress until dropped.
pub(super) async fn report(
    publisher: &dyn Publish,
    events: &JobEvents<'_>,
    observer: &DeployObserver,
) -> Infallible {
    let mut changes = observer.changes();
    let mut throttle = Throttle::default();
    loop {
        let snapshot = observer.snapshot();
        if let Some(sequence) = throttle.due(snapshot, Instant::now()) {
            let event = events.progress(step_counts(&snapshot, sequence), Utc::now());
            if let Err(error) = publisher.publish(&event, None).await {
                emit(ProgressNotPublished { error: &error });
            }
        }
        let next_check = throttle.next_check(Instant::now());
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    // The observer we hold keeps the sender: this cannot
                    // happen, but must not spin if it did.
                    std::future::pending::<()>().await;
                }
            }
            _ = sleep_until(next_check) => {}
        }
    }
}

/// Decides which snapshots become events: the first, each new step, and
/// otherwise a changed one at least [`EVERY`] after the last sent.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<(ProgressSnapshot, Instant)>,
    sent: u64,
}

impl Throttle {
    /// The event's sequence number when `snapshot` is to be sent now.
    fn due(&mut self, snapshot: ProgressSnapshot, now: Instant) -> Option<u64> {
        let due = match &self.last {
            None => true,
            Some((last, _)) if last.step != snapshot.step => true,
            Some((last, at)) => *last != snapshot && now >= *at + EVERY,
        };
        if !due {
            return None;
        }
        self.last = Some((snapshot, now));
        self.sent += 1;
        Some(self.sent - 1)
    }

    /// When to look again if no step change comes first.
    fn next_check(&self, now: Instant) -> Instant {
        match &self.last {
            Some((_, at)) if *at + EVERY > now => *at + EVERY,
            _ => now + EVERY,
        }
    }
}

/// The counts of the step `snapshot` is in, as the contract words them.
pub fn step_counts(snapshot: &ProgressSnapshot, sequence: u64) -> ProgressData {
    let mut data = ProgressData {
        step: Some(snapshot.step),
        sequence: Some(sequence),
        ..ProgressData::default()
    };
    match snapshot.step {
        Step::Hash => {
            data.files_done = Some(snapshot.files_hashed);
            data.files_total = snapshot.files_to_hash;
            data.bytes_done = Some(snapshot.bytes_hashed);
            data.bytes_total = snapshot.bytes_to_hash;
        }
        Step::Upload => {
            data.files_done = Some(snapshot.files_uploaded);
            data.files_total = snapshot.files_to_upload;
            data.bytes_done = Some(snapshot.bytes_uploaded);
            data.bytes_total = snapshot.bytes_to_upload;
            data.buckets_done = Some(snapshot.buckets_uploaded);
            data.buckets_total = snapshot.buckets_to_upload;
        }
        Step::Validate | Step::List | Step::Session | Step::Deploy => {}
    }
    data
}

#[cfg(test)]
mod tests;
