//! What can go wrong talking to Cloudflare, in variants the pipeline can act on.
//!
//! Each variant answers one question the pipeline has to decide on: did
//! Cloudflare refuse us (auth, or a rejected request), was it unavailable
//! (worth a later retry), was the answer nonsense, or did something local
//! fail (reading an asset from the spool)? The classification helpers
//! ([`CloudflareError::is_auth`], [`CloudflareError::is_transient`],
//! [`CloudflareError::is_local`]) are the single place that decides it, and
//! the retry loop uses them too.
//!
//! Messages put the subject first (`session for customers/acme-site: HTTP
//! 400, code 10021: ...`) and never hold the API token or a JWT: none of the
//! variants carries one. Each message is whole on its own, because it becomes
//! the contract event's `message` and log fields as it is: a cause a variant
//! holds (an I/O error) is written into the message, never also offered as
//! `source()`, so a `{:#}` chain prints it once.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// The Cloudflare call an error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CfStep {
    /// Creating an assets upload session (step 1, and every renewal).
    Session,
    /// Uploading a bucket of asset contents (step 2).
    Upload,
    /// Uploading the script with the completion JWT (step 3).
    Deploy,
}

impl CfStep {
    pub fn as_str(self) -> &'static str {
        match self {
            CfStep::Session => "session",
            CfStep::Upload => "upload",
            CfStep::Deploy => "deploy",
        }
    }
}

impl fmt::Display for CfStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the envelope's `errors` array: what Cloudflare said and why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiMessage {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: String,
}

impl fmt::Display for ApiMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "code {code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// How a request failed before any answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The connect or whole-request timeout fired (a stalled server).
    Timeout,
    /// No connection could be made.
    Connect,
    /// The connection broke (reset, TLS, a truncated body, ...).
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Timeout => "timed out",
            TransportKind::Connect => "could not connect",
            TransportKind::Other => "connection failed",
        })
    }
}

/// A failed Cloudflare call. `subject` is the target, `namespace/script`.
#[derive(Debug, thiserror::Error)]
pub enum CloudflareError {
    /// Cloudflare answered with an error status, or with `success: false`.
    #[error("{step} for {subject}: HTTP {status}{}{}", codes(errors), after(*attempts))]
    Api {
        step: CfStep,
        subject: String,
        status: u16,
        errors: Vec<ApiMessage>,
        attempts: u32,
    },
    /// No answer: connection failures or timeouts, after every retry.
    #[error("{step} for {subject}: {kind}{}: {message}", after(*attempts))]
    Transport {
        step: CfStep,
        subject: String,
        kind: TransportKind,
        message: String,
        attempts: u32,
    },
    /// Cloudflare asked us (429/503 `Retry-After`) to wait longer than we
    /// ever wait between two tries.
    #[error(
        "{step} for {subject}: HTTP {status}, Cloudflare asked to retry after {}s, longer than the {}s we wait at most",
        retry_after.as_secs(),
        max_delay.as_secs_f64()
    )]
    RetryAfterTooLong {
        step: CfStep,
        subject: String,
        status: u16,
        retry_after: Duration,
        max_delay: Duration,
    },
    /// The answer was not a Cloudflare envelope, or not the result we expect.
    #[error(
        "{step} for {subject}: invalid answer (HTTP {status}): {reason}{}",
        body(snippet)
    )]
    InvalidAnswer {
        step: CfStep,
        subject: String,
        status: u16,
        reason: String,
        snippet: String,
    },
    /// A JWT Cloudflare gave us has no readable `exp` claim.
    #[error("{step} for {subject}: the {which} JWT is unreadable: {reason}")]
    Jwt {
        step: CfStep,
        subject: String,
        which: &'static str,
        reason: String,
    },
    /// The bytes of an asset could not be read locally (the job's spool).
    #[error("upload for {subject}: reading asset {path} ({hash}): {error}")]
    AssetRead {
        subject: String,
        hash: String,
        path: String,
        error: std::io::Error,
    },
    /// Cloudflare kept asking for new sessions (or for uploads it then
    /// forgot); we stop rather than loop forever.
    #[error("{step} for {subject}: gave up after opening {sessions} upload sessions: {reason}")]
    TooManySessions {
        step: CfStep,
        subject: String,
        sessions: u32,
        reason: &'static str,
    },
    /// A request body could not be encoded (a bug, not Cloudflare's fault).
    #[error("{step} for {subject}: could not encode the request: {reason}")]
    Encode {
        step: CfStep,
        subject: String,
        reason: String,
    },
    /// The client cannot be built: no API token, a bad base URL, ...
    #[error("cloudflare client: {0}")]
    NotConfigured(String),
}

impl CloudflareError {
    /// The call that failed.
    pub fn step(&self) -> CfStep {
        match self {
            CloudflareError::Api { step, .. }
            | CloudflareError::Transport { step, .. }
            | CloudflareError::RetryAfterTooLong { step, .. }
            | CloudflareError::InvalidAnswer { step, .. }
            | CloudflareError::Jwt { step, .. }
            | CloudflareError::TooManySessions { step, .. }
            | CloudflareError::Encode { step, .. } => *step,
            CloudflareError::AssetRead { .. } => CfStep::Upload,
            CloudflareError::NotConfigured(_) => CfStep::Session,
        }
    }

    /// The HTTP status Cloudflare answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CloudflareError::Api { status, .. }
            | CloudflareError::RetryAfterTooLong { status, .. }
            | CloudflareError::InvalidAnswer { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Cloudflare refused the credentials (401/403): the API token, or a JWT
    /// it no longer accepts after every renewal we allow.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            CloudflareError::Api {
                status: 401 | 403,
                ..
            }
        )
    }

    /// Worth trying again later: Cloudflare was unavailable (5xx, 429, 408)
    /// or unreachable. Also what the retry loop retries.
    pub fn is_transient(&self) -> bool {
        match self {
            CloudflareError::Api { status, .. } | CloudflareError::InvalidAnswer { status, .. } => {
                is_retryable_status(*status)
            }
            CloudflareError::Transport { .. } | CloudflareError::RetryAfterTooLong { .. } => true,
            _ => false,
        }
    }

    /// The failure is ours, not Cloudflare's: an asset could not be read.
    pub fn is_local(&self) -> bool {
        matches!(self, CloudflareError::AssetRead { .. })
    }

    /// Records how many tries the call took, for the message.
    pub(crate) fn with_attempts(mut self, n: u32) -> Self {
        if let CloudflareError::Api { attempts, .. } | CloudflareError::Transport { attempts, .. } =
            &mut self
        {
            *attempts = n;
        }
        self
    }
}

/// Statuses that say "try again": request timeout, too many requests and
/// every server error. Other 4xx are final.
pub fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

fn codes(errors: &[ApiMessage]) -> String {
    errors.iter().map(|e| format!(", {e}")).collect()
}

fn after(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

fn body(snippet: &str) -> String {
    if snippet.is_empty() {
        String::new()
    } else {
        format!("; body: {snippet}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, errors: Vec<ApiMessage>) -> CloudflareError {
        CloudflareError::Api {
            step: CfStep::Session,
            subject: "customers/acme-site".into(),
            status,
            errors,
            attempts: 1,
        }
    }

    #[test]
    fn api_display_names_subject_step_status_and_codes() {
        let e = api(
            400,
            vec![ApiMessage {
                code: Some(10021),
                message: "manifest: bad hash".into(),
            }],
        );
        assert_eq!(
            e.to_string(),
            "session for customers/acme-site: HTTP 400, code 10021: manifest: bad hash"
        );
        let e = api(503, vec![]).with_attempts(6);
        assert_eq!(
            e.to_string(),
            "session for customers/acme-site: HTTP 503 (after 6 attempts)"
        );
    }

    #[test]
    fn classification_follows_the_status() {
        assert!(api(401, vec![]).is_auth());
        assert!(api(403, vec![]).is_auth());
        assert!(!api(400, vec![]).is_auth());
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(api(s, vec![]).is_transient(), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 413] {
            assert!(!api(s, vec![]).is_transient(), "{s}");
        }
        assert_eq!(api(404, vec![]).status(), Some(404));
        let read = CloudflareError::AssetRead {
            subject: "a/b".into(),
            hash: "h".into(),
            path: "/x".into(),
            error: std::io::Error::other("gone"),
        };
        assert!(read.is_local() && !read.is_transient());
        assert_eq!(read.step(), CfStep::Upload);
        assert_eq!(read.status(), None);
    }

    #[test]
    fn retry_after_too_long_says_so() {
        let e = CloudflareError::RetryAfterTooLong {
            step: CfStep::Upload,
            subject: "a/b".into(),
            status: 429,
            retry_after: Duration::from_secs(120),
            max_delay: Duration::from_secs(30),
        };
        let shown = e.to_string();
        assert!(shown.starts_with("upload for a/b: HTTP 429"), "{shown}");
        assert!(shown.contains("120s") && shown.contains("30s"), "{shown}");
        assert!(e.is_transient());
    }
}
