//! Cloudflare's API budget, kept by every process of the fleet: one permit
//! per request, taken before the request is sent.
//!
//! Cloudflare allows 1,200 requests per five minutes per user or account
//! token (its "Rate limits" page, `developers.cloudflare.com/fundamentals/
//! api/reference/limits`), shared by every worker using the token; going
//! over blocks every call of the token for the next five minutes with HTTP
//! 429 (error code 971, "Please wait and consider throttling your request
//! speed"). Since September 2025 every REST answer carries the IETF draft's
//! headers (`draft-ietf-httpapi-ratelimit-headers`): `Ratelimit:
//! "default";r=50;t=30` (requests remaining in the window, seconds until it
//! resets) and `Ratelimit-Policy: "burst";q=100;w=60` (the quota and its
//! window); a 429 also carries `Retry-After` (seconds until capacity is
//! back, rounded up). See [`headers`] for how they are read.
//!
//! Three mechanisms, each a wait before a request, in one place:
//!
//! 1. **Local pacing** (`cloudflare.max_requests_per_minute`, 0 = off;
//!    `cloudflare.request_burst`): a token bucket, run as GCRA (one
//!    "theoretical arrival time", no refill task), so one process never
//!    sends more than the rate on average, nor more than the burst at once
//!    after being idle. Waiters are given slots in arrival order.
//! 2. **The fleet budget** (the headers): they report what is left for the
//!    token across every process using it. When under 10% of the quota is
//!    left (or the policy is unknown and nothing is left), requests are
//!    spread over the time until the window resets (time left / requests
//!    left), and with none left they wait for the reset. Between answers
//!    the count left is decreased locally, so a burst of concurrent
//!    requests does not all read the same number, and within a window an
//!    answer never raises it (it may answer an older request).
//! 3. **A process-wide pause on 429**: every request of the process (not
//!    only the one refused, whose own retry `backoff` already delays) waits
//!    until the `Retry-After` has passed: requests sent during a block only
//!    prolong the trouble.
//!
//! No wait the server asks for is longer than `retry.max_retry_after` (the
//! longest wait honoured at all), so a wild header cannot stall the worker.
//!
//! Hand-written rather than `governor`: the three waits must share one
//! schedule (a slot can be pushed back by a pause or the fleet budget), the
//! waits must run on tokio's clock so unit tests can pause time, and GCRA
//! is a few lines; governor would bring its own clock, a timer crate and
//! `parking_lot` for one of the three.

mod headers;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::time::Instant;

use crate::internal_events::{RateLimitBudgetLow, RateLimitPaused, RateLimitWait, emit};

/// Below this share of the quota (in percent), the fleet budget paces us.
const LOW_PERCENT: u64 = 10;

/// Resets reported this close are the same window (`t` is whole seconds).
const SAME_WINDOW: Duration = Duration::from_secs(1);

/// The permits of one process. Shared by every clone of the client.
pub(crate) struct ApiBudget {
    pacing: Option<Pacing>,
    /// The longest pause or reset wait taken from a server's headers.
    max_wait: Duration,
    state: Mutex<State>,
}

/// Local pacing as GCRA: a permit every `interval`, `tolerance` ahead of
/// schedule at most (the burst).
#[derive(Debug, Clone, Copy)]
struct Pacing {
    interval: Duration,
    tolerance: Duration,
}

struct State {
    /// GCRA's theoretical arrival time of the next permit.
    tat: Instant,
    /// Set by a 429: no request leaves before this.
    paused_until: Option<Instant>,
    /// The last budget the headers reported.
    fleet: Option<Fleet>,
}

/// The token's fleet-wide budget, as last reported.
#[derive(Debug, Clone, Copy)]
struct Fleet {
    remaining: u64,
    quota: Option<u64>,
    resets_at: Instant,
    /// When the last permit was given (spacing counts from it).
    last: Option<Instant>,
}

impl Fleet {
    fn is_low(&self) -> bool {
        match self.quota {
            Some(quota) => self.remaining * 100 < quota * LOW_PERCENT,
            None => self.remaining == 0,
        }
    }

    /// The earliest time the next request may go, if the budget says so.
    fn next_slot(&self, now: Instant) -> Option<Instant> {
        if now >= self.resets_at || !self.is_low() {
            return None;
        }
        if self.remaining == 0 {
            return Some(self.resets_at);
        }
        let left = self.resets_at - now;
        let spacing = left.div_f64(self.remaining as f64);
        self.last.map(|last| last + spacing)
    }

    /// Counts a permit given at `at`, until the next answer tells better.
    fn take(&mut self, at: Instant) {
        if at < self.resets_at {
            self.remaining = self.remaining.saturating_sub(1);
            self.last = Some(at);
        }
    }
}

/// Why a request waited: the label of the wait metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Local,
    Budget,
    Paused,
}

impl Why {
    fn label(self) -> &'static str {
        match self {
            Why::Local => "local",
            Why::Budget => "budget",
            Why::Paused => "paused",
        }
    }
}

impl ApiBudget {
    /// `per_minute` 0 turns local pacing off (the headers and 429s are still
    /// honoured); `burst` is at least 1.
    pub(crate) fn new(per_minute: u32, burst: u32, max_wait: Duration) -> Self {
        let pacing = (per_minute > 0).then(|| {
            let interval = Duration::from_secs(60) / per_minute;
            Pacing {
                interval,
                tolerance: interval * (burst.max(1) - 1),
            }
        });
        Self {
            pacing,
            max_wait,
            state: Mutex::new(State {
                tat: Instant::now(),
                paused_until: None,
                fleet: None,
            }),
        }
    }

    /// Waits for this request's permit.
    pub(crate) async fn acquire(&self) {
        loop {
            let now = Instant::now();
            let Some((at, why)) = self.reserve(now) else {
                return;
            };
            emit(RateLimitWait {
                reason: why.label(),
                wait: at - now,
            });
            tokio::time::sleep_until(at).await;
            // A 429 answered while we slept pauses us too.
            if !self.is_paused(Instant::now()) {
                return;
            }
        }
    }

    /// Learns from an answer: its budget headers, and a 429's pause.
    pub(crate) fn observe(&self, status: u16, headers: &HeaderMap, retry_after: Option<Duration>) {
        let now = Instant::now();
        let reading = headers::read(headers);
        let mut state = self.lock();
        let mut became_low = None;
        if let Some(r) = reading {
            let resets_at = now + r.reset.min(self.max_wait);
            let current = state.fleet.filter(|f| now < f.resets_at);
            let was_low = current.is_some_and(|f| f.is_low());
            // Within one window the count only goes down: an answer to an
            // older request may arrive after requests we already counted.
            let remaining = match current {
                Some(f) if resets_at < f.resets_at + SAME_WINDOW => r.remaining.min(f.remaining),
                _ => r.remaining,
            };
            let fleet = Fleet {
                remaining,
                quota: r.quota,
                resets_at,
                last: state.fleet.and_then(|f| f.last),
            };
            if fleet.is_low() && !was_low {
                became_low = Some(r);
            }
            state.fleet = Some(fleet);
        }
        let mut paused = None;
        if status == 429 {
            let wait = retry_after
                .or(reading.map(|r| r.reset))
                .map(|w| w.min(self.max_wait))
                .filter(|w| !w.is_zero());
            if let Some(wait) = wait {
                let until = now + wait;
                if state.paused_until.is_none_or(|p| p < until) {
                    state.paused_until = Some(until);
                    paused = Some(wait);
                }
            }
        }
        drop(state);
        if let Some(r) = became_low {
            emit(RateLimitBudgetLow {
                remaining: r.remaining,
                quota: r.quota,
                reset: r.reset,
            });
        }
        if let Some(wait) = paused {
            emit(RateLimitPaused { wait });
        }
    }

    /// Takes the next permit; returns when it may be used, and why, if that
    /// is later than `now`.
    fn reserve(&self, now: Instant) -> Option<(Instant, Why)> {
        let mut state = self.lock();
        let mut slot = (now, None);
        match state.paused_until {
            Some(until) if until > now => later(&mut slot, until, Why::Paused),
            Some(_) => state.paused_until = None,
            None => {}
        }
        if let Some(at) = state.fleet.and_then(|f| f.next_slot(now)) {
            later(&mut slot, at, Why::Budget);
        }
        if let Some(p) = self.pacing {
            let earliest = state.tat.checked_sub(p.tolerance).unwrap_or(now);
            later(&mut slot, earliest, Why::Local);
            state.tat = state.tat.max(slot.0) + p.interval;
        }
        let (at, why) = slot;
        if let Some(fleet) = state.fleet.as_mut() {
            fleet.take(at);
        }
        why.map(|why| (at, why))
    }

    fn is_paused(&self, now: Instant) -> bool {
        self.lock().paused_until.is_some_and(|until| until > now)
    }

    /// The state is plain values, consistent between statements, so a
    /// poisoned lock is taken over rather than unwrapped.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Moves the slot to `at` when that is later, naming the reason.
fn later(slot: &mut (Instant, Option<Why>), at: Instant, why: Why) {
    if at > slot.0 {
        *slot = (at, Some(why));
    }
}

#[cfg(test)]
mod tests;
