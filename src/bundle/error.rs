//! Why a bundle could not be read, in terms the pipeline can act on.
//!
//! Each variant decides behaviour: [`BundleError::kind`] says whether the job
//! is wrong (not found, invalid, too large), storage failed (and whether a
//! later try may succeed) or this machine failed; [`BundleError::step`] says
//! whether it happened while listing or while reading and hashing. The
//! pipeline maps those two to a contract error code in one place.
//!
//! Messages name their subject first (`s3://bucket/key: ...`) and never carry
//! credentials.

use std::fmt;

/// The part of reading a bundle that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleStep {
    /// Finding out which files there are, checking paths and limits.
    List,
    /// Learning each file's content digest (from the cache, or by reading).
    Hash,
    /// Reading the files Cloudflare asks for into the spool, for the upload.
    Fetch,
}

impl fmt::Display for BundleStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BundleStep::List => "list",
            BundleStep::Hash => "hash",
            BundleStep::Fetch => "fetch",
        })
    }
}

/// What kind of failure, so the caller can decide: fail the job, retry it
/// later, or blame the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleErrorKind {
    /// No bucket, no objects under the prefix, or an object vanished.
    NotFound,
    /// A key breaks the path rules, or the bundle is of a kind not read.
    Invalid,
    /// Over one of the configured limits.
    TooLarge,
    /// The storage service failed; `retryable` when trying later may help
    /// (transient failures that outlasted the retries, a changing object).
    Storage { retryable: bool },
    /// This machine failed (spool directory, disk full).
    Local,
    /// A file's bytes are not the content its digest says: a cached digest
    /// was wrong, or the object changed without changing size. Hashing again
    /// fixes either.
    Mismatch,
}

/// Why a bundle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bucket, the prefix's objects or one object are not there.
    #[error("{subject}: {detail}")]
    NotFound {
        step: BundleStep,
        subject: String,
        detail: String,
    },
    /// A key whose relative path breaks the rules (always found by listing).
    #[error("{subject}: invalid path: {reason}")]
    Invalid { subject: String, reason: String },
    /// Too many files, a file too large, or too many bytes in all.
    #[error("{subject}: {detail}")]
    TooLarge {
        step: BundleStep,
        subject: String,
        detail: String,
    },
    /// The storage service refused or kept failing.
    #[error("{subject}: {detail}{}", attempts_note(*.attempts))]
    Storage {
        step: BundleStep,
        subject: String,
        detail: String,
        retryable: bool,
        /// Tries made, the first included.
        attempts: usize,
    },
    /// A kind of bundle this worker cannot read yet.
    #[error("{subject}: {what} are not supported yet")]
    Unsupported { subject: String, what: &'static str },
    /// The bytes read are not the content the manifest was built from.
    #[error("{subject}: {detail}, read {actual} where {expected} was expected")]
    Mismatch {
        subject: String,
        detail: &'static str,
        expected: crate::manifest::ContentDigest,
        actual: crate::manifest::ContentDigest,
    },
    /// Local I/O (the spool) failed. The I/O error is written into the
    /// message (it becomes the contract's `message`), not chained as a
    /// `source()` too, so `{:#}` prints it once.
    #[error("{subject}: spool: {error}")]
    Local {
        step: BundleStep,
        subject: String,
        error: std::io::Error,
    },
}

fn attempts_note(attempts: usize) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl BundleError {
    /// Listing or hashing.
    pub fn step(&self) -> BundleStep {
        match self {
            BundleError::Invalid { .. } | BundleError::Unsupported { .. } => BundleStep::List,
            BundleError::Mismatch { .. } => BundleStep::Fetch,
            BundleError::NotFound { step, .. }
            | BundleError::TooLarge { step, .. }
            | BundleError::Storage { step, .. }
            | BundleError::Local { step, .. } => *step,
        }
    }

    /// What kind of failure.
    pub fn kind(&self) -> BundleErrorKind {
        match self {
            BundleError::NotFound { .. } => BundleErrorKind::NotFound,
            BundleError::Invalid { .. } | BundleError::Unsupported { .. } => {
                BundleErrorKind::Invalid
            }
            BundleError::TooLarge { .. } => BundleErrorKind::TooLarge,
            BundleError::Storage { retryable, .. } => BundleErrorKind::Storage {
                retryable: *retryable,
            },
            BundleError::Local { .. } => BundleErrorKind::Local,
            BundleError::Mismatch { .. } => BundleErrorKind::Mismatch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_messages_count_attempts_only_when_retried() {
        let e = BundleError::Storage {
            step: BundleStep::Hash,
            subject: "s3://b/k".into(),
            detail: "connection reset".into(),
            retryable: true,
            attempts: 6,
        };
        assert_eq!(
            e.to_string(),
            "s3://b/k: connection reset (after 6 attempts)"
        );
        assert_eq!(e.kind(), BundleErrorKind::Storage { retryable: true });
        assert_eq!(e.step(), BundleStep::Hash);
        let once = BundleError::Storage {
            step: BundleStep::List,
            subject: "s3://b/".into(),
            detail: "HTTP 403 AccessDenied: Access Denied".into(),
            retryable: false,
            attempts: 1,
        };
        assert_eq!(
            once.to_string(),
            "s3://b/: HTTP 403 AccessDenied: Access Denied"
        );
        assert_eq!(once.kind(), BundleErrorKind::Storage { retryable: false });
    }

    #[test]
    fn invalid_is_a_listing_error() {
        let e = BundleError::Invalid {
            subject: "s3://b/p/a//b.html".into(),
            reason: "empty segment".into(),
        };
        assert_eq!(e.step(), BundleStep::List);
        assert_eq!(
            e.to_string(),
            "s3://b/p/a//b.html: invalid path: empty segment"
        );
    }
}
