//! One large bundle at a time per process: what bounds the memory of the
//! jobs running together, whatever their bundles' sizes.
//!
//! Each file of a bundle costs a deploy a few hundred bytes for as long as
//! it runs (its listing record, its digest and origin, its manifest entry,
//! what the upload maps hold), so `worker.concurrency` jobs at Cloudflare's
//! 100,000 files each would hold several times what one needs. The
//! pipeline's [`LargeBundles`] holds one permit: a job whose listing grows
//! past `limits.large_bundle_files` must take it before it goes on listing,
//! and keeps it until its per-file records are dropped (the end of the
//! deploy). So at most one job holds more records than the threshold, and
//! the process's peak is one bundle at the file limit plus the others at the
//! threshold.
//!
//! It cannot deadlock: the permit is asked for in the listing, after the
//! script's lock and lease, and its holder needs nothing a waiter holds
//! (the spool fails rather than waits when full). A job waiting for it says
//! so ([`LargeBundleWaiting`]: a log line in the job's span and a counter),
//! so an operator sees why it makes no progress; the wait counts against
//! `worker.job_timeout` like any other step.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::bundle::ListingGate;
use crate::internal_events::{LargeBundleAdmitted, LargeBundleWaiting, emit};

/// The process's one large-bundle permit and the threshold that makes a
/// bundle large. Cloned handles share the permit.
#[derive(Debug, Clone)]
pub struct LargeBundles {
    permit: Arc<Semaphore>,
    /// Files a job may hold the records of without the permit.
    threshold: u64,
}

impl LargeBundles {
    /// A gate where a bundle of more than `threshold` files is large.
    pub fn new(threshold: u64) -> Self {
        Self {
            permit: Arc::new(Semaphore::new(1)),
            threshold,
        }
    }

    /// One job's view of the gate: holds the permit once taken, until
    /// dropped.
    pub fn for_job(&self) -> LargeBundleHold {
        LargeBundleHold {
            gate: self.clone(),
            held: Mutex::new(None),
        }
    }
}

/// One job's place at the gate, handed to its bundle's source. Declared
/// before the job's per-file records, so it is dropped (the permit given
/// back) after them.
#[derive(Debug)]
pub struct LargeBundleHold {
    gate: LargeBundles,
    held: Mutex<Option<OwnedSemaphorePermit>>,
}

impl LargeBundleHold {
    /// Whether this job holds the large-bundle permit.
    pub fn is_held(&self) -> bool {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    fn keep(&self, permit: OwnedSemaphorePermit) {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = Some(permit);
    }
}

#[async_trait::async_trait]
impl ListingGate for LargeBundleHold {
    async fn holding(&self, files: u64) {
        if files <= self.gate.threshold || self.is_held() {
            return;
        }
        let permits = self.gate.permit.clone();
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                emit(LargeBundleWaiting {
                    files,
                    threshold: self.gate.threshold,
                });
                let since = Instant::now();
                // The semaphore is never closed, so this only ever waits.
                let Ok(permit) = permits.acquire_owned().await else {
                    return;
                };
                emit(LargeBundleAdmitted {
                    waited: since.elapsed(),
                });
                permit
            }
        };
        self.keep(permit);
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use super::*;

    /// Polls `future` once: whether it finished without waiting.
    fn ready_now(future: impl Future<Output = ()>) -> bool {
        let mut future = std::pin::pin!(future);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        future.as_mut().poll(&mut cx) == Poll::Ready(())
    }

    #[tokio::test]
    async fn up_to_the_threshold_no_permit_is_taken() {
        let gate = LargeBundles::new(5);
        let (a, b) = (gate.for_job(), gate.for_job());
        assert!(ready_now(a.holding(5)));
        assert!(ready_now(b.holding(5)));
        assert!(!a.is_held() && !b.is_held());
    }

    #[tokio::test]
    async fn a_second_large_job_waits_until_the_first_is_dropped() {
        let gate = LargeBundles::new(5);
        let first = gate.for_job();
        first.holding(6).await;
        assert!(first.is_held());
        // Asked again as its listing grows: it already holds the permit.
        assert!(ready_now(first.holding(1_000)));

        let second = gate.for_job();
        let mut waiting = Box::pin(second.holding(6));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert_eq!(waiting.as_mut().poll(&mut cx), Poll::Pending);
        // A small job is never held back by a large one.
        let small = gate.for_job();
        assert!(ready_now(small.holding(5)));

        drop(first);
        waiting.await;
        assert!(second.is_held());
        drop(second);
        let third = gate.for_job();
        assert!(ready_now(third.holding(6)), "the permit came back");
    }
}
