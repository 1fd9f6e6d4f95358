//! The one retry policy for every remote call (Cloudflare and S3).
//!
//! Capped exponential back-off with *full* jitter: each wait is drawn
//! uniformly from `[0, min(cap, initial * 2^n)]`, which spreads a crowd of
//! workers that failed together better than backon's own additive jitter.
//! `backon` drives the loop (the `backoff` crate is unmaintained,
//! RUSTSEC-2025-0012, and lapin already depends on backon); this module only
//! supplies the delays. A server's `Retry-After` replaces the drawn wait via
//! backon's `adjust`, at the call site that can read it.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use rand::Rng;

use crate::config::RetrySettings;

/// Builds the delays for one call's retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    settings: RetrySettings,
}

impl RetryPolicy {
    pub fn new(settings: &RetrySettings) -> Self {
        Self {
            settings: settings.clone(),
        }
    }

    /// The longest `Retry-After` a caller honours.
    pub fn max_retry_after(&self) -> Duration {
        self.settings.max_retry_after
    }

    /// Back-off that never runs out of tries, for a loop that must keep
    /// trying until it is told to stop (the worker's broker reconnects):
    /// waits start below `initial` and stay below `max`, which also caps any
    /// `Retry-After`.
    pub fn unlimited(initial: Duration, max: Duration) -> Self {
        Self::new(&RetrySettings {
            // Tries are counted in a usize: this many never run out.
            max_attempts: usize::MAX,
            initial_delay: initial,
            max_delay: max,
            max_retry_after: max,
        })
    }
}

impl BackoffBuilder for RetryPolicy {
    type Backoff = FullJitter;

    fn build(self) -> FullJitter {
        let exp = ExponentialBuilder::default()
            .with_min_delay(self.settings.initial_delay)
            .with_max_delay(self.settings.max_delay)
            .with_factor(2.0)
            // max_times counts retries, not tries.
            .with_max_times(self.settings.max_attempts.saturating_sub(1))
            .build();
        FullJitter { inner: exp }
    }
}

/// Draws each wait uniformly below the exponential ceiling.
pub struct FullJitter {
    inner: backon::ExponentialBackoff,
}

impl Iterator for FullJitter {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let ceiling = self.inner.next()?;
        let nanos = ceiling.as_nanos().min(u64::MAX as u128) as u64;
        Some(Duration::from_nanos(rand::rng().random_range(0..=nanos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(attempts: usize) -> RetrySettings {
        RetrySettings {
            max_attempts: attempts,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(30),
        }
    }

    #[test]
    fn gives_one_wait_per_retry() {
        let waits: Vec<_> = RetryPolicy::new(&settings(6)).build().collect();
        assert_eq!(waits.len(), 5, "6 tries means 5 waits");
        assert_eq!(RetryPolicy::new(&settings(1)).build().count(), 0);
    }

    #[test]
    fn waits_stay_under_the_exponential_ceiling() {
        for _ in 0..200 {
            let waits: Vec<_> = RetryPolicy::new(&settings(10)).build().collect();
            for (n, w) in waits.iter().enumerate() {
                let ceiling = Duration::from_millis(500) * 2u32.pow(n as u32);
                assert!(
                    *w <= ceiling.min(Duration::from_secs(30)),
                    "wait {n}: {w:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_is_full_not_additive() {
        // With full jitter some first waits fall well below the initial delay.
        let below = (0..200)
            .filter_map(|_| RetryPolicy::new(&settings(2)).build().next())
            .filter(|w| *w < Duration::from_millis(250))
            .count();
        assert!(
            below > 20,
            "only {below} of 200 first waits were under half the initial delay"
        );
    }
}
