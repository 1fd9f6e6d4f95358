//! The one decision about a delivery's fate, and the retry schedule it
//! follows.
//!
//! [`disposition`] maps how a delivery's handling came out ([`Handled`]) to
//! what happens to its message ([`Disposition`]); nothing else in the worker
//! picks between ack, requeue, retry later and park (as vector's
//! `handle_ack` does for its AMQP source). Carrying a disposition out — its
//! event, its copy, then the ack — is `job`'s; whatever a disposition
//! publishes must be confirmed before the ack, or the delivery is requeued
//! instead, so nothing is ever acked away unrecorded.

use std::time::Duration;

use crate::config::WorkerSettings;
use crate::contract::{ErrorCode, FailureInfo};

/// How a delivery's handling came out: all its fate depends on (with its
/// attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled<'a> {
    /// `deploy.started` was not confirmed, so the deploy never ran.
    StartedNotConfirmed,
    /// The deploy was stopped unfinished: shutdown's grace ran out.
    Abandoned,
    /// Deployed.
    Succeeded,
    /// The deploy failed.
    Failed(&'a FailureInfo),
    /// The message is not a valid job (not JSON, not UTF-8, breaks the
    /// schema, too large).
    Invalid(&'a FailureInfo),
}

/// What happens to a delivery's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done: its terminal event (`deploy.succeeded`, or `deploy.failed` for
    /// a failure retrying cannot cure), confirmed, then the ack.
    Ack,
    /// Not done: nack with requeue, the job comes back now.
    Requeue,
    /// Failed with a retryable code, attempts left: `deploy.retrying`
    /// (confirmed), the message to the delay queue of `delay` with its next
    /// attempt in a header (confirmed), then the ack.
    RetryLater { delay: Duration },
    /// Kept for a person to look at: `deploy.failed` (confirmed), the
    /// message byte-exact to the dead-letter queue with headers saying why
    /// (confirmed), then the ack. For invalid messages, and for retryable
    /// failures out of attempts.
    Park,
}

/// The one decision about a delivery's fate. `attempt` is the delivery's
/// (1 for the first); `retries` says whether a retryable failure gets
/// another one, and after how long.
pub fn disposition(handled: &Handled<'_>, attempt: u32, retries: &RetrySchedule) -> Disposition {
    match handled {
        Handled::StartedNotConfirmed | Handled::Abandoned => Disposition::Requeue,
        Handled::Succeeded => Disposition::Ack,
        // The same message fails the same way: no retry, but kept.
        Handled::Invalid(_) => Disposition::Park,
        Handled::Failed(failure) if !retried_later(failure) => Disposition::Ack,
        Handled::Failed(_) => match retries.delay_after(attempt) {
            Some(delay) => Disposition::RetryLater { delay },
            None => Disposition::Park,
        },
    }
}

/// Whether the worker itself tries a failed job again later: a retryable
/// failure of storage, of Cloudflare's availability, or a local one (the
/// disk) — what an outage causes and time cures. `bundle_not_found` is
/// retryable too, but for the producer: a missing bundle is most often a
/// wrong prefix, and retrying it would only hold back its `deploy.failed`
/// for minutes.
fn retried_later(failure: &FailureInfo) -> bool {
    failure.retryable
        && matches!(
            failure.code,
            ErrorCode::StorageError | ErrorCode::CloudflareUnavailable | ErrorCode::Internal
        )
}

/// Job-level retries: how many attempts a job gets and how long it waits
/// before each retry (`worker.max_attempts`, `worker.retry_delays`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    max_attempts: u32,
}

impl RetrySchedule {
    /// `delays[0]` before the second attempt, `delays[1]` before the third,
    /// the last one reused; `max_attempts` in all, the first included. An
    /// empty list (settings refuse it) retries after a minute.
    pub fn new(delays: Vec<Duration>, max_attempts: u32) -> Self {
        let delays = if delays.is_empty() {
            vec![Duration::from_secs(60)]
        } else {
            delays
        };
        Self {
            delays,
            max_attempts: max_attempts.max(1),
        }
    }

    pub fn from_settings(settings: &WorkerSettings) -> Self {
        Self::new(settings.retry_delays.clone(), settings.max_attempts)
    }

    /// The attempts a job gets in all.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// How long to wait after `attempt` failed before the next one; `None`
    /// when it was the last.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.delays.get(index).or(self.delays.last()).copied()
    }
}
