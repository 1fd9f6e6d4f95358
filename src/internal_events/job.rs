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
    /// Failed with this code; `deploy.failed` confirmed, acked.
    Failed(ErrorCode),
    /// Not settled: nacked back to the queue (an event was not confirmed,
    /// or the worker is shutting down).
    Requeued,
}

impl JobOutcome {
    fn label(self) -> &'static str {
        match self {
            JobOutcome::Succeeded => "succeeded",
            JobOutcome::Failed(_) => "failed",
            JobOutcome::Requeued => "requeued",
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
        let code = match self.outcome {
            JobOutcome::Failed(code) => code.as_str(),
            _ => "",
        };
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
