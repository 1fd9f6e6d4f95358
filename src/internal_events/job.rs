//! One job's life: started, settled with the broker, failed, panicked,
//! and the time each step took.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use tracing::{debug, error, info, warn};

use super::{InternalEvent, millis};
use crate::contract::{ErrorCode, Step};

/// A deploy task began; in-flight until [`JobSettled`].
pub struct JobStarted;

impl InternalEvent for JobStarted {
    fn emit(self) {
        gauge!("wfp_deployer_jobs_in_flight").increment(1.0);
    }
}

/// How a delivery ended, from the broker's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Deployed; `deploy.succeeded` confirmed, acked.
    Succeeded,
    /// Failed for good with this code; `deploy.failed` confirmed, acked.
    Failed(ErrorCode),
    /// Failed with this retryable code; `deploy.retrying` confirmed, the
    /// job republished to a delay queue, acked.
    Retrying(ErrorCode),
    /// Parked in the dead-letter queue with this code (an invalid message,
    /// or the last attempt of a retryable failure), acked.
    Parked(ErrorCode),
    /// Not settled: nacked back to the queue (an event or copy was not
    /// confirmed, or the worker is shutting down).
    Requeued,
}

impl JobOutcome {
    pub(super) fn label(self) -> &'static str {
        match self {
            JobOutcome::Succeeded => "succeeded",
            JobOutcome::Failed(_) => "failed",
            JobOutcome::Retrying(_) => "retrying",
            JobOutcome::Parked(_) => "parked",
            JobOutcome::Requeued => "requeued",
        }
    }

    fn code(self) -> &'static str {
        match self {
            JobOutcome::Failed(code) | JobOutcome::Retrying(code) | JobOutcome::Parked(code) => {
                code.as_str()
            }
            JobOutcome::Succeeded | JobOutcome::Requeued => "",
        }
    }
}

/// One delivery settled with the broker: counted once per delivery.
pub struct JobSettled {
    pub outcome: JobOutcome,
    /// From receipt to the broker action.
    pub duration: Duration,
}

impl InternalEvent for JobSettled {
    fn emit(self) {
        let outcome = self.outcome.label();
        let code = self.outcome.code();
        info!(
            outcome,
            code,
            duration_ms = millis(self.duration),
            "job settled"
        );
        gauge!("wfp_deployer_jobs_in_flight").decrement(1.0);
        counter!("wfp_deployer_jobs_total", "outcome" => outcome, "code" => code).increment(1);
        histogram!("wfp_deployer_job_duration_seconds", "outcome" => outcome)
            .record(self.duration.as_secs_f64());
        if matches!(self.outcome, JobOutcome::Retrying(_)) {
            counter!("wfp_deployer_retries_total", "service" => "job").increment(1);
        }
    }
}

/// A deploy ran past `worker.job_timeout` and was stopped.
pub struct DeployTimedOut {
    pub step: Step,
    pub timeout: Duration,
}

impl InternalEvent for DeployTimedOut {
    fn emit(self) {
        warn!(step = %self.step, timeout_ms = millis(self.timeout), "the deploy timed out");
        counter!("wfp_deployer_job_timeouts_total", "step" => self.step.as_str()).increment(1);
    }
}

/// Shutdown's grace ran out: a running deploy was stopped unfinished and
/// its job goes back to the queue.
pub struct DeployAbandoned;

impl InternalEvent for DeployAbandoned {
    fn emit(self) {
        warn!("shutting down: the deploy was stopped unfinished; the job goes back to the queue");
        counter!("wfp_deployer_abandoned_deploys_total").increment(1);
    }
}

/// A message that is not a valid job.
pub struct InvalidJobReceived<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for InvalidJobReceived<'_> {
    fn emit(self) {
        warn!(error = %self.error, "invalid job");
        counter!("wfp_deployer_invalid_jobs_total").increment(1);
    }
}

/// A deploy failed (its `deploy.failed` is published next).
pub struct DeployFailed<'a> {
    pub code: ErrorCode,
    pub step: Step,
    pub message: &'a str,
}

impl InternalEvent for DeployFailed<'_> {
    fn emit(self) {
        warn!(code = %self.code, step = %self.step, error = self.message, "deploy failed");
    }
}

/// A deploy task panicked: a bug, reported as `internal`.
pub struct DeployPanicked<'a> {
    pub step: Step,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for DeployPanicked<'_> {
    fn emit(self) {
        error!(step = %self.step, error = %self.error, "the deploy task died");
        counter!("wfp_deployer_panics_total", "step" => self.step.as_str()).increment(1);
    }
}

/// One step of a deploy ended (successfully or not).
pub struct StepFinished {
    pub step: Step,
    pub duration: Duration,
}

impl InternalEvent for StepFinished {
    fn emit(self) {
        debug!(step = %self.step, duration_ms = millis(self.duration), "step finished");
        histogram!("wfp_deployer_step_duration_seconds", "step" => self.step.as_str())
            .record(self.duration.as_secs_f64());
    }
}
