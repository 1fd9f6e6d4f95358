//! One deploy, from a validated job to an [`Outcome`], top to bottom.
//!
//! (The steps are being written; this file holds the outcome types the
//! worker builds its events from.)

use std::time::Duration;

use crate::contract::{DeployJob, DeploymentInfo, FailureInfo, ManifestSummary, UploadSummary};

/// What a deploy came to; the worker turns it into the terminal event.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The account the job deployed to (or would have), when known.
    pub account_id: Option<String>,
    /// Wall time spent on the job.
    pub duration: Duration,
    pub result: Result<Success, FailureInfo>,
}

/// The facts of a successful deploy that the `deploy.succeeded` event reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Success {
    pub manifest: ManifestSummary,
    pub upload: UploadSummary,
    pub deployment: DeploymentInfo,
}

/// Runs one job. A trait so the worker can be tested with a scripted deployer
/// (the real one is [`Pipeline`]).
#[async_trait::async_trait]
pub trait Deploy: Send + Sync + 'static {
    /// Deploys `job`; `attempt` counts deliveries, starting at 1. Never panics
    /// on bad input: every failure is an `Outcome` with a contract error code.
    async fn deploy(&self, job: &DeployJob, attempt: u32) -> Outcome;
}
