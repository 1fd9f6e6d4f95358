//! Error codes and steps of the contract, and the failure a `deploy.failed`
//! event carries.
//!
//! Lower layers have their own error enums; `pipeline` maps them to an
//! [`ErrorCode`] and a [`Step`] in one place. The rules the contract itself
//! fixes (an invalid job is never retryable, a local failure is, a bug is
//! not, a timed-out job is, a superseded one is not) live in [`FailureInfo`]'s constructors, so whoever reports one of
//! those (the worker for an undecodable message or a panic, the pipeline for
//! everything else) cannot get them wrong.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::quote::bounded;

/// Why a deploy failed, as event consumers see it. Stable strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message is not a valid v1 job.
    InvalidJob,
    /// The bundle's bucket or prefix holds nothing.
    BundleNotFound,
    /// The bundle holds something that cannot be deployed (a bad path, say).
    BundleInvalid,
    /// The bundle exceeds a limit.
    BundleTooLarge,
    /// S3 failed after retries.
    StorageError,
    /// Cloudflare refused the credentials (401/403).
    CloudflareAuth,
    /// Cloudflare rejected the request (other 4xx).
    CloudflareRejected,
    /// Cloudflare stayed unavailable after retries (5xx, 429, timeouts).
    CloudflareUnavailable,
    /// A bug or a local failure (disk, say).
    Internal,
    /// A newer build of the script is already live (the job's `created_at`
    /// is before the live deployment's): deploying this one would roll the
    /// site back. An addition to v1; never retryable.
    Superseded,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJob => "invalid_job",
            ErrorCode::BundleNotFound => "bundle_not_found",
            ErrorCode::BundleInvalid => "bundle_invalid",
            ErrorCode::BundleTooLarge => "bundle_too_large",
            ErrorCode::StorageError => "storage_error",
            ErrorCode::CloudflareAuth => "cloudflare_auth",
            ErrorCode::CloudflareRejected => "cloudflare_rejected",
            ErrorCode::CloudflareUnavailable => "cloudflare_unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Superseded => "superseded",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in the pipeline a deploy failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Validate,
    List,
    Hash,
    Session,
    Upload,
    Deploy,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Validate => "validate",
            Step::List => "list",
            Step::Hash => "hash",
            Step::Session => "session",
            Step::Upload => "upload",
            Step::Deploy => "deploy",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest `error.message` an event carries (the event builder cuts a
/// longer one, with a note of its length): with the other fields, which the
/// job's rules bound, a `deploy.failed` stays a few KiB, far below the
/// broker's message size limit, whatever the failure quotes.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 4096;

/// The `error` object of a `deploy.failed` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureInfo {
    pub code: ErrorCode,
    /// What went wrong, subject first; never holds a secret.
    pub message: String,
    pub step: Step,
    /// Whether the same job could succeed later without being changed.
    pub retryable: bool,
}

impl FailureInfo {
    /// A failure whose code, step and retryability its reporter decided
    /// (the pipeline's mapping of a layer's error). The message is cut to
    /// [`MAX_ERROR_MESSAGE_BYTES`] here, where every failure is made, so the
    /// log line and the park header that repeat it are bounded too.
    pub fn new(code: ErrorCode, step: Step, retryable: bool, message: impl Into<String>) -> Self {
        let message = message.into();
        let message = match bounded(&message, MAX_ERROR_MESSAGE_BYTES) {
            Cow::Borrowed(_) => message,
            Cow::Owned(cut) => cut,
        };
        Self {
            code,
            message,
            step,
            retryable,
        }
    }

    /// `invalid_job` at `validate`: not JSON, breaks the schema, or names an
    /// account this worker has no credentials for. Never retryable: the same
    /// message fails the same way.
    pub fn invalid_job(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidJob, Step::Validate, false, message)
    }

    /// `internal` for a local failure (the disk, say) at `step`: retryable,
    /// another run may find the disk fine.
    pub fn local(step: Step, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, step, true, message)
    }

    /// `internal` for a bug (a panic) at `step`: not retryable, the same job
    /// would meet the same bug.
    pub fn bug(step: Step, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, step, false, message)
    }

    /// `superseded` at `validate`: a newer build of the script is live.
    /// Never retryable: the same job stays older than it.
    pub fn superseded(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Superseded, Step::Validate, false, message)
    }

    /// `internal` for a deploy stopped at `step` after running `after`
    /// (`worker.job_timeout`): retryable, a stall (a hung connection, a slow
    /// dependency) may be gone next time.
    pub fn timed_out(step: Step, after: std::time::Duration) -> Self {
        let after = humantime::format_duration(after);
        Self::new(
            ErrorCode::Internal,
            step,
            true,
            format!("{step}: job timed out after {after}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_the_contract_says() {
        let all = [
            (ErrorCode::InvalidJob, "invalid_job"),
            (ErrorCode::BundleNotFound, "bundle_not_found"),
            (ErrorCode::BundleInvalid, "bundle_invalid"),
            (ErrorCode::BundleTooLarge, "bundle_too_large"),
            (ErrorCode::StorageError, "storage_error"),
            (ErrorCode::CloudflareAuth, "cloudflare_auth"),
            (ErrorCode::CloudflareRejected, "cloudflare_rejected"),
            (ErrorCode::CloudflareUnavailable, "cloudflare_unavailable"),
            (ErrorCode::Internal, "internal"),
            (ErrorCode::Superseded, "superseded"),
        ];
        for (code, text) in all {
            assert_eq!(serde_json::to_value(code).unwrap(), text);
            assert_eq!(code.as_str(), text);
        }
        for step in [
            Step::Validate,
            Step::List,
            Step::Hash,
            Step::Session,
            Step::Upload,
            Step::Deploy,
        ] {
            assert_eq!(serde_json::to_value(step).unwrap(), step.as_str());
        }
    }

    #[test]
    fn the_contract_fixes_retryability_of_invalid_jobs_local_failures_and_bugs() {
        let invalid = FailureInfo::invalid_job("namespace: missing");
        assert_eq!(
            (invalid.code, invalid.step, invalid.retryable),
            (ErrorCode::InvalidJob, Step::Validate, false)
        );
        assert_eq!(invalid.message, "namespace: missing");
        let local = FailureInfo::local(Step::Hash, "spool: disk full");
        assert_eq!(
            (local.code, local.step, local.retryable),
            (ErrorCode::Internal, Step::Hash, true)
        );
        let bug = FailureInfo::bug(Step::Upload, "the deploy task died");
        assert_eq!(
            (bug.code, bug.step, bug.retryable),
            (ErrorCode::Internal, Step::Upload, false)
        );
        let stuck = FailureInfo::timed_out(Step::Session, std::time::Duration::from_secs(900));
        assert_eq!(
            (stuck.code, stuck.step, stuck.retryable),
            (ErrorCode::Internal, Step::Session, true)
        );
        assert_eq!(stuck.message, "session: job timed out after 15m");
        let old = FailureInfo::superseded("created_at before the live deployment's");
        assert_eq!(
            (old.code, old.step, old.retryable),
            (ErrorCode::Superseded, Step::Validate, false)
        );
    }

    #[test]
    fn a_failure_message_is_cut_to_the_bound_where_it_is_made() {
        let huge = FailureInfo::local(Step::Hash, "x".repeat(10 * 1024 * 1024));
        assert!(huge.message.len() < MAX_ERROR_MESSAGE_BYTES + 64);
        assert!(huge.message.ends_with("… (10485760 bytes in all)"));
    }
}
