//! The one retry policy for every remote call (Cloudflare and S3).
//!
//! Capped exponential back-off with *full* jitter: each wait is drawn
//! uniformly from `[0, min(cap, initial * 2^n)]`, which spreads a crowd of
//! workers that failed together better than backon's own additive jitter.
//! `backon` supplies the exponential ceilings (the `backoff` crate is
//! unmaintained, RUSTSEC-2025-0012, and lapin already depends on backon).
//!
//! [`Retry`] is the one loop every retried call runs (Cloudflare's and
//! S3's): the caller says which of its failures may pass on another try,
//! which wait a server asked for (never undercut; one longer than
//! `max_retry_after` stops the loop at once) and what to report before each
//! wait; it gets back the result and the number of tries.

use std::future::Future;
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

/// What a retried call came to.
#[derive(Debug)]
pub struct Retried<T, E> {
    pub result: Result<T, E>,
    /// Tries made, the first included.
    pub attempts: usize,
}

/// One call's retries: the policy, and what the caller knows of its own
/// failures. Built with [`Retry::new`], run with [`Retry::run`].
pub struct Retry<'a, E> {
    policy: &'a RetryPolicy,
    retryable: Box<dyn FnMut(&E) -> bool + Send + 'a>,
    server_wait: ServerWait<'a, E>,
    notify: Notify<'a, E>,
}

/// Reads the wait a server asked for from a failure.
type ServerWait<'a, E> = Box<dyn Fn(&E) -> Option<Duration> + Send + 'a>;
/// Hears of each failure retried: the failure, its try (1-based), the wait.
type Notify<'a, E> = Box<dyn FnMut(&E, usize, Duration) + Send + 'a>;

impl<'a, E> Retry<'a, E> {
    /// Retries under `policy` the failures `retryable` accepts. It is asked
    /// once per failure, so it may count (an S3 object that changed is
    /// worth one more try, not five).
    pub fn new(policy: &'a RetryPolicy, retryable: impl FnMut(&E) -> bool + Send + 'a) -> Self {
        Self {
            policy,
            retryable: Box::new(retryable),
            server_wait: Box::new(|_| None),
            notify: Box::new(|_, _, _| {}),
        }
    }

    /// Reads the wait a server asked for (`Retry-After`). The loop never
    /// comes back sooner; asked for more than the policy's
    /// `max_retry_after`, it stops at once with that failure.
    pub fn server_wait(mut self, asked: impl Fn(&E) -> Option<Duration> + Send + 'a) -> Self {
        self.server_wait = Box::new(asked);
        self
    }

    /// Called before each wait with the failure, the try that failed
    /// (1-based) and the wait.
    pub fn notify(mut self, notify: impl FnMut(&E, usize, Duration) + Send + 'a) -> Self {
        self.notify = Box::new(notify);
        self
    }

    /// Runs `op` (given the 1-based try number) until it succeeds, fails in
    /// a way not worth retrying, or the policy runs out of tries.
    pub async fn run<T, F, Fut>(mut self, mut op: F) -> Retried<T, E>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let max_asked = self.policy.max_retry_after();
        let mut waits = self.policy.clone().build();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match op(attempts).await {
                Ok(value) => {
                    return Retried {
                        result: Ok(value),
                        attempts,
                    };
                }
                Err(failure) => failure,
            };
            let drawn = if (self.retryable)(&failure) {
                waits.next()
            } else {
                None
            };
            let wait = match (drawn, (self.server_wait)(&failure)) {
                (_, Some(asked)) if asked > max_asked => None,
                // Never sooner than asked; the drawn wait may spread a crowd further.
                (Some(drawn), Some(asked)) => Some(drawn.max(asked)),
                (drawn, _) => drawn,
            };
            let Some(wait) = wait else {
                return Retried {
                    result: Err(failure),
                    attempts,
                };
            };
            (self.notify)(&failure, attempts, wait);
            // Not held across the wait: the loop's future stays `Send`
            // whatever the failure type.
            drop(failure);
            tokio::time::sleep(wait).await;
        }
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

    /// Plays `script` (then `Ok`), recording when each try started.
    async fn play(
        retry: Retry<'_, (bool, Option<u64>)>,
        script: Vec<(bool, Option<u64>)>,
    ) -> (Retried<usize, (bool, Option<u64>)>, Vec<Duration>) {
        let start = tokio::time::Instant::now();
        let mut script = script.into_iter();
        let mut times = Vec::new();
        let retried = retry
            .run(|n| {
                times.push(start.elapsed());
                let next = script.next();
                async move { next.map_or(Ok(n), Err) }
            })
            .await;
        (retried, times)
    }

    /// A failure here is `(retryable, seconds the server asked for)`.
    fn rules(policy: &RetryPolicy) -> Retry<'_, (bool, Option<u64>)> {
        Retry::new(policy, |f: &(bool, Option<u64>)| f.0)
            .server_wait(|f| f.1.map(Duration::from_secs))
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_and_counts_the_tries() {
        let policy = RetryPolicy::new(&settings(6));
        let (retried, times) = play(rules(&policy), vec![(true, None); 3]).await;
        assert_eq!(retried.result.unwrap(), 4, "the op is told its try number");
        assert_eq!(retried.attempts, 4);
        for (n, pair) in times.windows(2).enumerate() {
            let ceiling = Duration::from_millis(500) * 2u32.pow(n as u32);
            assert!(pair[1] - pair[0] <= ceiling, "wait {n} above its ceiling");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_not_worth_retrying_stops_at_once() {
        let policy = RetryPolicy::new(&settings(6));
        let (retried, times) = play(rules(&policy), vec![(false, None)]).await;
        assert_eq!(retried.result.unwrap_err(), (false, None));
        assert_eq!((retried.attempts, times.len()), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_when_the_policy_runs_out() {
        let policy = RetryPolicy::new(&settings(3));
        let (retried, times) = play(rules(&policy), vec![(true, None); 5]).await;
        assert!(retried.result.is_err());
        assert_eq!((retried.attempts, times.len()), (3, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_wait_is_never_undercut_and_too_long_a_one_stops() {
        let policy = RetryPolicy::new(&settings(6));
        let (retried, times) = play(rules(&policy), vec![(true, Some(7)), (true, Some(3))]).await;
        assert_eq!(retried.attempts, 3);
        assert!(times[1] - times[0] >= Duration::from_secs(7), "{times:?}");
        assert!(times[2] - times[1] >= Duration::from_secs(3), "{times:?}");

        let (retried, times) = play(rules(&policy), vec![(true, Some(31))]).await;
        assert_eq!(retried.result.unwrap_err(), (true, Some(31)));
        assert_eq!(times.len(), 1, "30s is the most this policy waits for");
    }

    #[tokio::test(start_paused = true)]
    async fn asks_once_per_failure_and_reports_each_wait() {
        let policy = RetryPolicy::new(&settings(6));
        let mut asked = 0;
        let mut reported = Vec::new();
        let retry = Retry::new(&policy, |_: &(bool, Option<u64>)| {
            asked += 1;
            asked <= 1
        })
        .notify(|_, attempt, wait| reported.push((attempt, wait)));
        let (retried, _) = play(retry, vec![(true, None); 5]).await;
        assert_eq!(retried.attempts, 2, "the second failure is refused");
        assert_eq!(asked, 2);
        assert_eq!(reported.len(), 1);
        assert_eq!(reported[0].0, 1, "the try that failed");
    }
}
