//! Every way a deploy can fail, and the one mapping from those failures to
//! the contract's error codes, steps and retryability.
//!
//! Lower layers speak their own error enums (`BundleError`,
//! `CloudflareError`, I/O); nothing below the pipeline knows the contract's
//! codes, and nothing above it needs to know the layers' variants.
//!
//! Where the next failure goes: a new way for a layer to fail is a variant
//! of that layer's error (or a new [`DeployError`] variant for a new layer),
//! classified in [`DeployError::to_failure`] below and nowhere else. Failures
//! whose code the contract fixes whatever the layer (an invalid job, a local
//! failure, a bug) use [`FailureInfo`]'s constructors; a new error code is a
//! contract change (`contract/error.rs` and the README's table).

use crate::bundle::{BundleError, BundleErrorKind, BundleStep};
use crate::cloudflare::{CfStep, CloudflareError};
use crate::contract::{ErrorCode, FailureInfo, Step};

use super::order::{LeaseError, OrderError};

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
    /// The script's turn: its lease, its last-deployed marker.
    #[error(transparent)]
    Order(OrderError),
}

impl DeployError {
    /// The contract's view of this failure.
    pub fn to_failure(&self) -> FailureInfo {
        let message = self.to_string();
        match self {
            DeployError::Invalid(_) => FailureInfo::invalid_job(message),
            DeployError::Bundle(e) | DeployError::WorkerCode(e) => bundle_failure(e, message),
            DeployError::WorkerCodeInvalid(_) => {
                FailureInfo::new(ErrorCode::BundleInvalid, Step::List, false, message)
            }
            DeployError::Spool(_) => FailureInfo::local(Step::Hash, message),
            DeployError::Cloudflare(e) => cloudflare_failure(e, message),
            DeployError::Order(e) => order_failure(e, message),
        }
    }
}

fn bundle_failure(e: &BundleError, message: String) -> FailureInfo {
    let step = match e.step() {
        BundleStep::List => Step::List,
        BundleStep::Hash => Step::Hash,
        // The files Cloudflare asks for are read while uploading.
        BundleStep::Fetch => Step::Upload,
    };
    let (code, retryable) = match e.kind() {
        // Someone may still upload the bundle: worth another try later.
        BundleErrorKind::NotFound => (ErrorCode::BundleNotFound, true),
        BundleErrorKind::Invalid => (ErrorCode::BundleInvalid, false),
        BundleErrorKind::TooLarge => (ErrorCode::BundleTooLarge, false),
        BundleErrorKind::Storage { retryable } => (ErrorCode::StorageError, retryable),
        BundleErrorKind::Local => return FailureInfo::local(step, message),
        // Ours, and a retry hashes afresh (the wrong cache entry is gone).
        BundleErrorKind::Mismatch => return FailureInfo::local(step, message),
    };
    FailureInfo::new(code, step, retryable, message)
}

fn cloudflare_failure(e: &CloudflareError, message: String) -> FailureInfo {
    let step = match e.step() {
        CfStep::Session => Step::Session,
        CfStep::Upload => Step::Upload,
        CfStep::Deploy => Step::Deploy,
    };
    if e.is_local() {
        return FailureInfo::local(step, message);
    }
    let (code, retryable) = if e.is_auth() {
        (ErrorCode::CloudflareAuth, false)
    } else if e.is_transient() {
        (ErrorCode::CloudflareUnavailable, true)
    } else {
        (ErrorCode::CloudflareRejected, false)
    };
    FailureInfo::new(code, step, retryable, message)
}

fn order_failure(e: &OrderError, message: String) -> FailureInfo {
    match e {
        OrderError::Superseded { .. } => FailureInfo::superseded(message),
        OrderError::FromTheFuture(_) => FailureInfo::invalid_job(message),
        // Another worker's deploy, or the broker: time cures both, through
        // the job-level retries.
        OrderError::Lease(LeaseError::Busy { .. } | LeaseError::Unavailable { .. }) => {
            FailureInfo::local(Step::Validate, message)
        }
        // Only the fence finds a lease lost: just before the PUT or just
        // after it, before the marker is written.
        OrderError::Lease(LeaseError::Lost { .. }) => FailureInfo::local(Step::Deploy, message),
        OrderError::MarkerRead(_) => {
            FailureInfo::new(ErrorCode::StorageError, Step::Validate, true, message)
        }
        OrderError::MarkerWrite(_) => {
            FailureInfo::new(ErrorCode::StorageError, Step::Deploy, true, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_account_is_an_invalid_job_and_a_spool_failure_a_local_one() {
        let invalid = DeployError::Invalid("account_id: x is not an account".into()).to_failure();
        assert_eq!(
            (invalid.code, invalid.step, invalid.retryable),
            (ErrorCode::InvalidJob, Step::Validate, false)
        );
        assert_eq!(invalid.message, "account_id: x is not an account");

        let disk = std::io::Error::other("no space left on device");
        let spool = DeployError::Spool(disk).to_failure();
        assert_eq!(
            (spool.code, spool.step, spool.retryable),
            (ErrorCode::Internal, Step::Hash, true)
        );
        assert_eq!(spool.message, "spool: no space left on device");
    }

    #[test]
    fn bytes_other_than_their_digest_are_a_retryable_internal_upload_failure() {
        use crate::manifest::ContentDigest;
        let mismatch = DeployError::Bundle(BundleError::Mismatch {
            subject: "s3://b/p/a.css".into(),
            detail: "not the content it was hashed as",
            expected: ContentDigest::of(b"cached"),
            actual: ContentDigest::of(b"stored"),
        })
        .to_failure();
        assert_eq!(
            (mismatch.code, mismatch.step, mismatch.retryable),
            (ErrorCode::Internal, Step::Upload, true)
        );
        assert!(
            mismatch.message.starts_with("s3://b/p/a.css: "),
            "{}",
            mismatch.message
        );
        assert!(
            mismatch
                .message
                .contains(&ContentDigest::of(b"cached").to_hex()),
            "{}",
            mismatch.message
        );
    }
}
