//! What went wrong with one S3 call, and whether trying again may help.
//!
//! Transient failures (connection errors, timeouts, a stalled body, 5xx,
//! throttling) are retried through the crate's one loop ([`Retry`]); an
//! object that changed while being read is retried once; everything else
//! (missing bucket or key, access denied, other 4xx) fails at once. The final
//! failure becomes a [`BundleError`] naming its subject, step and the number
//! of tries.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::bundle::body::BodyError;
use crate::bundle::{BundleError, BundleStep};
use crate::error_chain;
use crate::internal_events::{S3Retry, emit};
use crate::manifest::ContentDigest;
use crate::retry::{Retried, Retry, RetryPolicy};

/// One attempt's failure.
#[derive(Debug)]
pub(super) enum Failure {
    /// May succeed if tried again soon.
    Transient(String),
    /// The object's size differs from the listing: retried once.
    Changed(String),
    /// No such bucket or key.
    NotFound(String),
    /// Refused for good (access denied, other 4xx, a malformed request).
    Refused(String),
    /// The bytes are not the content expected: never retried here (the
    /// job fails, and its retry hashes afresh).
    Mismatch {
        expected: ContentDigest,
        actual: ContentDigest,
    },
    /// The spool failed.
    Local(std::io::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Transient(d) | Failure::NotFound(d) | Failure::Refused(d) => f.write_str(d),
            Failure::Changed(d) => write!(f, "changed while reading ({d})"),
            Failure::Mismatch { expected, actual } => {
                write!(f, "content is {actual}, expected {expected}")
            }
            Failure::Local(e) => write!(f, "spool: {e}"),
        }
    }
}

/// Service error codes that mean "slow down" or "try again".
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
];

/// Sorts an SDK error into a [`Failure`] with a short, credential-free detail.
pub(super) fn classify<E>(err: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or_default();
            let mut detail = format!("HTTP {status}");
            if !code.is_empty() {
                detail.push_str(&format!(" {code}"));
            }
            if let Some(message) = service.err().message().filter(|m| !m.is_empty()) {
                detail.push_str(&format!(": {message}"));
            }
            if matches!(code, "NoSuchBucket" | "NoSuchKey") || status == 404 {
                Failure::NotFound(detail)
            } else if status >= 500 || status == 429 || TRANSIENT_CODES.contains(&code) {
                Failure::Transient(detail)
            } else {
                Failure::Refused(detail)
            }
        }
        SdkError::TimeoutError(_) => Failure::Transient("timed out".into()),
        SdkError::DispatchFailure(dispatch) if dispatch.is_user() => {
            Failure::Refused(error_chain::flatten(&err))
        }
        SdkError::ConstructionFailure(_) => Failure::Refused(error_chain::flatten(&err)),
        // Connection errors, unreadable responses and anything new.
        _ => Failure::Transient(error_chain::flatten(&err)),
    }
}

/// A body that could not be read whole: a stall or a broken stream may pass
/// on another try; a size other than listed means the object changed.
impl From<BodyError> for Failure {
    fn from(err: BodyError) -> Self {
        match err {
            BodyError::Stalled { .. } | BodyError::Read(_) => Failure::Transient(err.to_string()),
            BodyError::Longer { .. } | BodyError::Shorter { .. } => {
                Failure::Changed(err.to_string())
            }
            BodyError::Mismatch { expected, actual } => Failure::Mismatch { expected, actual },
            BodyError::Local(e) => Failure::Local(e),
        }
    }
}

impl Failure {
    /// The [`BundleError`] for this failure after `attempts` tries.
    pub(super) fn into_error(
        self,
        step: BundleStep,
        subject: &str,
        attempts: usize,
    ) -> BundleError {
        let subject = subject.to_string();
        match self {
            Failure::Transient(_) | Failure::Changed(_) => BundleError::Storage {
                step,
                subject,
                detail: self.to_string(),
                retryable: true,
                attempts,
            },
            Failure::NotFound(detail) => BundleError::NotFound {
                step,
                subject,
                detail: format!("not found: {detail}"),
            },
            Failure::Refused(detail) => BundleError::Storage {
                step,
                subject,
                detail,
                retryable: false,
                attempts,
            },
            Failure::Mismatch { expected, actual } => BundleError::Mismatch {
                subject,
                detail: "not the content it was hashed as (changed since, or a wrong cached digest)",
                expected,
                actual,
            },
            Failure::Local(source) => BundleError::Local {
                step,
                subject,
                error: source,
            },
        }
    }
}

/// Runs `op` until it succeeds, fails for good or the policy gives up.
/// Returns the outcome and the number of tries made.
pub(super) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    subject: &str,
    mut op: F,
) -> (Result<T, Failure>, usize)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut changes = 0;
    let Retried { result, attempts } = Retry::new(policy, |failure: &Failure| match failure {
        Failure::Transient(_) => true,
        Failure::Changed(_) => {
            changes += 1;
            changes <= 1
        }
        _ => false,
    })
    .notify(|failure, _, wait| {
        emit(S3Retry {
            subject,
            error: failure,
            wait,
        });
    })
    .run(|_| op())
    .await;
    (result, attempts)
}
