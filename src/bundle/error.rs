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
//!
//! An archive's own refusals ([`ArchiveError`]) keep their kind here: a bad
//! entry or corrupt bytes are `Invalid`, a crossed cap `TooLarge`, an
//! archive without files `NotFound`; a failing read or spool was already
//! turned into `Storage` or `Local` by the source that read it.

use std::fmt;

use super::archive::{ArchiveError, ArchiveErrorKind};
use super::special::SpecialFileError;

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
    /// An archive refused: a hostile or broken entry, corrupt bytes, a
    /// crossed cap, no files. `note` says how much of the archive was read
    /// when a cap stopped it (empty otherwise). The archive error is written
    /// into the message, not chained as a `source()` too.
    #[error("{subject}: {error}{note}")]
    Archive {
        step: BundleStep,
        subject: String,
        error: ArchiveError,
        note: String,
    },
    /// A root `_headers`, `_redirects` or `.assetsignore` that cannot be
    /// used; the error names the file and the line.
    #[error("{subject}: {error}")]
    Special {
        subject: String,
        error: SpecialFileError,
    },
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
            BundleError::Invalid { .. } | BundleError::Special { .. } => BundleStep::List,
            BundleError::Mismatch { .. } => BundleStep::Fetch,
            BundleError::NotFound { step, .. }
            | BundleError::TooLarge { step, .. }
            | BundleError::Storage { step, .. }
            | BundleError::Archive { step, .. }
            | BundleError::Local { step, .. } => *step,
        }
    }

    /// What kind of failure.
    pub fn kind(&self) -> BundleErrorKind {
        match self {
            BundleError::NotFound { .. } => BundleErrorKind::NotFound,
            BundleError::Invalid { .. } | BundleError::Special { .. } => BundleErrorKind::Invalid,
            BundleError::Archive { error, .. } => match error.kind() {
                ArchiveErrorKind::Invalid | ArchiveErrorKind::Corrupt => BundleErrorKind::Invalid,
                ArchiveErrorKind::TooLarge => BundleErrorKind::TooLarge,
                ArchiveErrorKind::Empty => BundleErrorKind::NotFound,
                ArchiveErrorKind::Io => BundleErrorKind::Storage { retryable: true },
                ArchiveErrorKind::Sink => BundleErrorKind::Local,
            },
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
    fn archive_refusals_keep_their_kind() {
        use crate::bundle::archive::Limit;
        let cases = [
            (
                ArchiveError::Duplicate {
                    entry: "a.html".into(),
                },
                BundleErrorKind::Invalid,
            ),
            (
                ArchiveError::Corrupt {
                    entry: None,
                    detail: "bad".into(),
                },
                BundleErrorKind::Invalid,
            ),
            (
                ArchiveError::Limit {
                    entry: Some("z.bin".into()),
                    limit: Limit::Ratio,
                    value: 900,
                    max: 200,
                },
                BundleErrorKind::TooLarge,
            ),
            (ArchiveError::Empty, BundleErrorKind::NotFound),
        ];
        for (error, kind) in cases {
            let e = BundleError::Archive {
                step: BundleStep::List,
                subject: "s3://b/site.tar.gz".into(),
                error,
                note: String::new(),
            };
            assert_eq!(e.kind(), kind, "{e}");
        }
        let special = BundleError::Special {
            subject: "s3://b/p/".into(),
            error: SpecialFileError::at("_headers", 3, "no header value"),
        };
        assert_eq!(special.kind(), BundleErrorKind::Invalid);
        assert_eq!(
            special.to_string(),
            "s3://b/p/: _headers:3: no header value"
        );
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
