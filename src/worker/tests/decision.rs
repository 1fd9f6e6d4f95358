//! The one decision about a delivery's fate, and the schedule it follows.
use std::time::Duration;

use backon::BackoffBuilder;

use super::{failure, schedule, secs};
use crate::contract::{ErrorCode, FailureInfo, Step};
use crate::retry::RetryPolicy;
use crate::worker::{Disposition, Handled, RetrySchedule, disposition};

#[test]
fn a_success_or_a_permanent_failure_is_acked() {
    assert_eq!(
        disposition(&Handled::Succeeded, 1, &schedule()),
        Disposition::Ack
    );
    let permanent = failure(false);
    assert_eq!(
        disposition(&Handled::Failed(&permanent), 1, &schedule()),
        Disposition::Ack
    );
}

#[test]
fn an_unconfirmed_started_or_an_abandoned_deploy_requeues() {
    for handled in [Handled::StartedNotConfirmed, Handled::Abandoned] {
        assert_eq!(disposition(&handled, 1, &schedule()), Disposition::Requeue);
    }
}

#[test]
fn a_retryable_failure_retries_later_until_the_last_attempt_then_parks() {
    let retryable = failure(true);
    let failed = Handled::Failed(&retryable);
    let fate = |attempt| disposition(&failed, attempt, &schedule());
    assert_eq!(fate(1), Disposition::RetryLater { delay: secs(10) });
    assert_eq!(fate(2), Disposition::RetryLater { delay: secs(60) });
    assert_eq!(fate(3), Disposition::RetryLater { delay: secs(300) });
    assert_eq!(
        fate(4),
        Disposition::RetryLater { delay: secs(300) },
        "the last delay is reused"
    );
    assert_eq!(fate(5), Disposition::Park);
    assert_eq!(fate(u32::MAX), Disposition::Park);
}

#[test]
fn only_outage_codes_are_retried_by_the_worker() {
    let retried = |code| {
        let failure = FailureInfo::new(code, Step::List, true, "x");
        disposition(&Handled::Failed(&failure), 1, &schedule()) != Disposition::Ack
    };
    assert!(retried(ErrorCode::StorageError));
    assert!(retried(ErrorCode::CloudflareUnavailable));
    assert!(retried(ErrorCode::Internal));
    assert!(
        !retried(ErrorCode::BundleNotFound),
        "retryable by the producer, failed at once"
    );
    let bug = FailureInfo::bug(Step::Upload, "the deploy task died");
    assert_eq!(
        disposition(&Handled::Failed(&bug), 1, &schedule()),
        Disposition::Ack
    );
}

#[test]
fn an_invalid_message_is_parked() {
    let invalid = FailureInfo::invalid_job("job is not valid JSON");
    assert_eq!(
        disposition(&Handled::Invalid(&invalid), 1, &schedule()),
        Disposition::Park
    );
}

#[test]
fn one_attempt_in_all_never_retries() {
    let once = RetrySchedule::new(vec![secs(10)], 1);
    assert_eq!(once.delay_after(1), None);
    let no_delays = RetrySchedule::new(Vec::new(), 0);
    assert_eq!(no_delays.max_attempts(), 1);
    assert_eq!(
        RetrySchedule::new(Vec::new(), 3).delay_after(1),
        Some(secs(60))
    );
}

#[test]
fn the_reconnect_back_off_never_runs_out_and_stays_under_its_cap() {
    let max = Duration::from_secs(2);
    let waits: Vec<_> = RetryPolicy::unlimited(Duration::from_millis(200), max)
        .build()
        .take(10_000)
        .collect();
    assert_eq!(waits.len(), 10_000);
    assert!(waits.iter().all(|w| *w <= max));
}
