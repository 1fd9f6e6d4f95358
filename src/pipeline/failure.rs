//! Every way a deploy can fail, and the one mapping from those failures to
//! the contract's error codes, steps and retryability.
//!
//! Lower layers speak their own error enums (`BundleError`,
//! `CloudflareError`, I/O); nothing below the pipeline knows the contract's
//! codes, and nothing above it needs to know the layers' variants.

use crate::bundle::{BundleError, BundleErrorKind, BundleStep};
use crate::cloudflare::{CfStep, CloudflareError};
use crate::contract::{ErrorCode, FailureInfo, Step};

/// Why one deploy failed, by layer.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The job is well-formed but cannot run here (an account this worker
    /// has no credentials for, say).
    #[error("{0}")]
    Invalid(String),
    /// The site's files.
    #[error(transparent)]
    Bundle(BundleError),
    /// The worker code, or a main module that is not among it.
    #[error("worker code: {0}")]
    WorkerCode(BundleError),
    #[error("worker code: {0}")]
    WorkerCodeInvalid(String),
    /// Local scratch space.
    #[error("spool: {0}")]
    Spool(std::io::Error),
    /// The three Cloudflare steps.
    #[error(transparent)]
    Cloudflare(CloudflareError),
}

impl DeployError {
    /// The contract's view of this failure.
    pub fn to_failure(&self) -> FailureInfo {
        let (code, step, retryable) = self.classify();
        FailureInfo {
            code,
            step,
            retryable,
            message: self.to_string(),
        }
    }

    fn classify(&self) -> (ErrorCode, Step, bool) {
        match self {
            DeployError::Invalid(_) => (ErrorCode::InvalidJob, Step::Validate, false),
            DeployError::Bundle(e) | DeployError::WorkerCode(e) => classify_bundle(e),
            DeployError::WorkerCodeInvalid(_) => (ErrorCode::BundleInvalid, Step::List, false),
            DeployError::Spool(_) => (ErrorCode::Internal, Step::Hash, true),
            DeployError::Cloudflare(e) => classify_cloudflare(e),
        }
    }
}

fn classify_bundle(e: &BundleError) -> (ErrorCode, Step, bool) {
    let step = match e.step() {
        BundleStep::List => Step::List,
        BundleStep::Hash => Step::Hash,
    };
    let (code, retryable) = match e.kind() {
        // Someone may still upload the bundle: worth another try later.
        BundleErrorKind::NotFound => (ErrorCode::BundleNotFound, true),
        BundleErrorKind::Invalid => (ErrorCode::BundleInvalid, false),
        BundleErrorKind::TooLarge => (ErrorCode::BundleTooLarge, false),
        BundleErrorKind::Storage { retryable } => (ErrorCode::StorageError, retryable),
        BundleErrorKind::Local => (ErrorCode::Internal, true),
    };
    (code, step, retryable)
}

fn classify_cloudflare(e: &CloudflareError) -> (ErrorCode, Step, bool) {
    let step = match e.step() {
        CfStep::Session => Step::Session,
        CfStep::Upload => Step::Upload,
        CfStep::Deploy => Step::Deploy,
    };
    if e.is_local() {
        return (ErrorCode::Internal, step, true);
    }
    if e.is_auth() {
        return (ErrorCode::CloudflareAuth, step, false);
    }
    if e.is_transient() {
        return (ErrorCode::CloudflareUnavailable, step, true);
    }
    (ErrorCode::CloudflareRejected, step, false)
}
