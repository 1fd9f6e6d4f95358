//! What a running deploy tells whoever runs it, while it runs.
//!
//! The runner (the worker, the `deploy` command) hands one [`DeployObserver`]
//! to each deploy; the pipeline reports every step as it enters it. When a
//! deploy dies (a panic: a bug), the worker reads the last step, so the
//! `internal` failure names the step it happened in instead of guessing.
//!
//! It is handed down per job, never a global, so what else a deploy has to
//! say while it runs (per-call retries, files hashed, buckets uploaded) can
//! become methods here and, in the runner, events or metrics, without a new
//! parameter threaded through every layer.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::contract::Step;
use crate::internal_events::{StepFinished, emit};

/// Watches one deploy. Clones share what they saw, so the runner keeps one
/// while the deploy's task holds another.
#[derive(Debug, Clone)]
pub struct DeployObserver {
    /// The current step and when it began (its duration is measured when
    /// the next one begins, or the deploy finishes).
    step: Arc<Mutex<(Step, Instant)>>,
}

impl DeployObserver {
    /// An observer of a deploy that has not reported a step yet: it is at
    /// `validate`, the first one.
    pub fn new() -> Self {
        Self {
            step: Arc::new(Mutex::new((Step::Validate, Instant::now()))),
        }
    }

    /// The deploy enters `step`; the previous step's duration is recorded.
    pub fn step(&self, step: Step) {
        // Nothing panics while holding the lock, but a poisoned lock still
        // holds a valid step: read through it rather than lose the report.
        let mut current = self.step.lock().unwrap_or_else(PoisonError::into_inner);
        if current.0 != step {
            emit(StepFinished {
                step: current.0,
                duration: current.1.elapsed(),
            });
            *current = (step, Instant::now());
        }
    }

    /// The deploy ended: the last step's duration is recorded.
    pub fn finish(&self) {
        let current = *self.step.lock().unwrap_or_else(PoisonError::into_inner);
        emit(StepFinished {
            step: current.0,
            duration: current.1.elapsed(),
        });
    }

    /// The last step the deploy entered.
    pub fn current_step(&self) -> Step {
        self.step.lock().unwrap_or_else(PoisonError::into_inner).0
    }
}

/// The bundle's source reports here when listing ends and hashing begins.
impl crate::bundle::IngestProgress for DeployObserver {
    fn hashing(&self) {
        self.step(Step::Hash);
    }
}

impl Default for DeployObserver {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_see_the_last_step_reported() {
        let runner = DeployObserver::new();
        assert_eq!(runner.current_step(), Step::Validate);
        let deploy = runner.clone();
        deploy.step(Step::List);
        deploy.step(Step::Upload);
        assert_eq!(runner.current_step(), Step::Upload);
    }

    #[test]
    fn a_step_reported_before_a_panic_survives_it() {
        let runner = DeployObserver::new();
        let deploy = runner.clone();
        let died = std::thread::spawn(move || {
            deploy.step(Step::Hash);
            panic!("a bug while hashing");
        })
        .join();
        assert!(died.is_err());
        assert_eq!(runner.current_step(), Step::Hash);
    }

    #[test]
    fn a_source_that_starts_hashing_moves_the_deploy_to_hash() {
        use crate::bundle::IngestProgress;
        let runner = DeployObserver::new();
        runner.step(Step::List);
        let source_side: &dyn IngestProgress = &runner;
        source_side.hashing();
        assert_eq!(
            runner.current_step(),
            Step::Hash,
            "a panic now reports hash"
        );
    }
}
