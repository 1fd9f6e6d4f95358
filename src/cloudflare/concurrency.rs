//! Adaptive upload concurrency: how many bucket uploads one deploy has in
//! flight, lowered when the upload endpoint struggles and raised again as
//! it recovers (additive increase, multiplicative decrease).
//!
//! A 5xx or a request that got no answer (timeout, reset, refused
//! connection) says the gateway in front of the asset store is overloaded;
//! sending as many buckets as before only makes more of them fail and be
//! retried. So each try of a bucket POST holds a permit of an
//! [`UploadLimit`] and reports how it went: a server error or a transport
//! failure halves the limit (never below 1), once per generation — the
//! tries already in flight when it was lowered were started under the old
//! limit and say nothing new about the lower one — and every `limit`
//! successes raise it by one, up to `cloudflare.upload_concurrency`.
//! Other answers (a 4xx, a 429, which the API budget handles) leave it as
//! it is. Each change is an [`UploadConcurrencyChanged`] event.
//!
//! One limit per upload (the buckets of one deploy, across its session
//! renewals): jobs do not share it, so one deploy's bad luck does not slow
//! the others down, as wrangler does for one `wrangler deploy`.

use std::sync::Mutex;

use tokio::sync::Notify;

use crate::internal_events::{UploadConcurrencyChanged, emit};

/// What one try of a bucket POST says about the endpoint's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Stored: room for one more, eventually.
    Success,
    /// A server error or no answer: too many at once.
    Overloaded,
    /// Anything else (a 4xx, a 429, a local failure): no news.
    Neutral,
}

/// A change of the limit, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    pub from: usize,
    pub to: usize,
}

/// The number of bucket POSTs one upload may have in flight.
pub(crate) struct UploadLimit {
    max: usize,
    /// Who uploads: the subject of the change events.
    subject: String,
    state: Mutex<State>,
    /// Woken when a permit is returned or the limit rises.
    freed: Notify,
}

struct State {
    limit: usize,
    in_flight: usize,
    /// Counts decreases: a failure of a try started before the last one
    /// does not lower the limit again.
    generation: u64,
    /// Successes since the limit last changed.
    successes: usize,
}

/// One try's right to be in flight; returned when dropped.
pub(crate) struct Permit<'a> {
    limit: &'a UploadLimit,
    generation: u64,
}

impl UploadLimit {
    /// A limit starting at (and never above) `max`, at least 1.
    pub(crate) fn new(max: usize, subject: &str) -> UploadLimit {
        let max = max.max(1);
        UploadLimit {
            max,
            subject: subject.to_string(),
            state: Mutex::new(State {
                limit: max,
                in_flight: 0,
                generation: 0,
                successes: 0,
            }),
            freed: Notify::new(),
        }
    }

    /// The limit now.
    #[cfg(test)]
    pub(crate) fn current(&self) -> usize {
        self.lock().limit
    }

    /// Waits until fewer than the limit are in flight, and takes a place.
    pub(crate) async fn acquire(&self) -> Permit<'_> {
        loop {
            // Registered before the check, so a release between the check
            // and the wait is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut state = self.lock();
                if state.in_flight < state.limit {
                    state.in_flight += 1;
                    return Permit {
                        limit: self,
                        generation: state.generation,
                    };
                }
            }
            freed.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few counters, valid whatever panicked while held.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Permit<'_> {
    /// Reports how the try went and gives the place back; returns the
    /// change it caused, if any (already reported as an event).
    pub(crate) fn finish(self, signal: Signal) -> Option<Change> {
        let change = {
            let mut state = self.limit.lock();
            let from = state.limit;
            match signal {
                Signal::Neutral => {}
                Signal::Success => {
                    state.successes += 1;
                    if state.successes >= state.limit && state.limit < self.limit.max {
                        state.limit += 1;
                        state.successes = 0;
                    }
                }
                Signal::Overloaded => {
                    state.successes = 0;
                    if self.generation == state.generation {
                        state.limit = (state.limit / 2).max(1);
                        state.generation += 1;
                    }
                }
            }
            (state.limit != from).then_some(Change {
                from,
                to: state.limit,
            })
        };
        if let Some(change) = change {
            emit(UploadConcurrencyChanged {
                subject: &self.limit.subject,
                from: change.from,
                to: change.to,
            });
        }
        change
        // `self` drops here: the place is given back.
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.limit.lock().in_flight -= 1;
        self.limit.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn change(from: usize, to: usize) -> Option<Change> {
        Some(Change { from, to })
    }

    #[tokio::test]
    async fn halves_on_overload_once_per_generation_with_a_floor_of_one() {
        let limit = UploadLimit::new(8, "t");
        let (a, b) = (limit.acquire().await, limit.acquire().await);
        assert_eq!(a.finish(Signal::Overloaded), change(8, 4));
        // Started under 8: no news about 4.
        assert_eq!(b.finish(Signal::Overloaded), None);
        assert_eq!(limit.current(), 4);
        for expected in [change(4, 2), change(2, 1), None] {
            assert_eq!(limit.acquire().await.finish(Signal::Overloaded), expected);
        }
        assert_eq!(limit.current(), 1);
        assert_eq!(limit.acquire().await.finish(Signal::Neutral), None);
    }

    #[tokio::test]
    async fn climbs_back_one_step_per_window_of_successes_up_to_the_maximum() {
        let limit = UploadLimit::new(3, "t");
        limit.acquire().await.finish(Signal::Overloaded);
        assert_eq!(limit.current(), 1);
        let mut changes = Vec::new();
        for _ in 0..10 {
            changes.extend(limit.acquire().await.finish(Signal::Success));
        }
        // One success at 1, two at 2, then the maximum holds.
        assert_eq!(
            changes,
            vec![Change { from: 1, to: 2 }, Change { from: 2, to: 3 }]
        );
        assert_eq!(limit.current(), 3);
    }

    #[tokio::test]
    async fn holds_at_most_the_limit_in_flight() {
        let limit = UploadLimit::new(2, "t");
        limit.acquire().await.finish(Signal::Overloaded);
        let held = limit.acquire().await;
        // Polled once: a place is taken at once or not at all.
        assert!(
            limit.acquire().now_or_never().is_none(),
            "a second place at limit 1"
        );
        drop(held);
        assert!(
            limit.acquire().now_or_never().is_some(),
            "the place given back"
        );
    }
}
