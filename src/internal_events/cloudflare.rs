//! The three Cloudflare calls: answers, retries, sessions, uploads, the PUT.

use std::time::Duration;

use metrics::{counter, histogram};
use tracing::{debug, info, warn};

use super::{InternalEvent, millis};

/// Cloudflare answered one request (any status).
pub struct CloudflareResponse<'a> {
    /// `session`, `upload` or `deploy`.
    pub endpoint: &'static str,
    pub subject: &'a str,
    pub attempt: u32,
    pub status: u16,
}

impl InternalEvent for CloudflareResponse<'_> {
    fn emit(self) {
        debug!(
            endpoint = self.endpoint,
            subject = self.subject,
            attempt = self.attempt,
            status = self.status,
            "cloudflare answered"
        );
        counter!(
            "wfp_deployer_cloudflare_requests_total",
            "endpoint" => self.endpoint,
            "status" => status_label(self.status)
        )
        .increment(1);
    }
}

/// A Cloudflare call failed and is tried again after `wait`.
pub struct CloudflareRetry<'a> {
    pub endpoint: &'static str,
    pub subject: &'a str,
    pub attempt: u32,
    pub status: Option<u16>,
    pub wait: Duration,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for CloudflareRetry<'_> {
    fn emit(self) {
        info!(
            endpoint = self.endpoint,
            subject = self.subject,
            attempt = self.attempt,
            status = self.status,
            wait_ms = millis(self.wait),
            error = %self.error,
            "cloudflare call failed; retrying"
        );
        counter!("wfp_deployer_retries_total", "service" => "cloudflare").increment(1);
        if self.status == Some(429) {
            counter!("wfp_deployer_cloudflare_rate_limited_total").increment(1);
            histogram!("wfp_deployer_rate_limit_wait_seconds", "reason" => "retry_after")
                .record(self.wait.as_secs_f64());
        }
    }
}

/// A request waited for its permit from the API budget
/// (`crate::cloudflare` keeps it): `local` pacing, the fleet-wide `budget`
/// running low, or the process `paused` after a 429.
pub struct RateLimitWait {
    pub reason: &'static str,
    pub wait: Duration,
}

impl InternalEvent for RateLimitWait {
    fn emit(self) {
        debug!(
            reason = self.reason,
            wait_ms = millis(self.wait),
            "waiting for the cloudflare API budget"
        );
        counter!("wfp_deployer_rate_limit_waits_total", "reason" => self.reason).increment(1);
        histogram!("wfp_deployer_rate_limit_wait_seconds", "reason" => self.reason)
            .record(self.wait.as_secs_f64());
    }
}

/// Cloudflare answered 429: every call of this process waits `wait`.
pub struct RateLimitPaused {
    pub wait: Duration,
}

impl InternalEvent for RateLimitPaused {
    fn emit(self) {
        warn!(
            wait_ms = millis(self.wait),
            "cloudflare rate limit reached; pausing every cloudflare call"
        );
        counter!("wfp_deployer_rate_limit_pauses_total").increment(1);
    }
}

/// The token's fleet-wide budget runs low: requests are now spread until
/// the window resets.
pub struct RateLimitBudgetLow {
    pub remaining: u64,
    pub quota: Option<u64>,
    pub reset: Duration,
}

impl InternalEvent for RateLimitBudgetLow {
    fn emit(self) {
        info!(
            remaining = self.remaining,
            quota = self.quota,
            reset_ms = millis(self.reset),
            "cloudflare API budget low; slowing down until the window resets"
        );
    }
}

/// An upload session is open: Cloudflare said which contents it lacks.
pub struct UploadSessionOpened<'a> {
    pub subject: &'a str,
    pub buckets: usize,
    pub missing_files: usize,
    pub manifest_files: usize,
}

impl InternalEvent for UploadSessionOpened<'_> {
    fn emit(self) {
        info!(
            subject = self.subject,
            buckets = self.buckets,
            missing_files = self.missing_files,
            manifest_files = self.manifest_files,
            "cloudflare upload session opened"
        );
    }
}

/// A further session is opened for the same deploy (a JWT ran out).
pub struct UploadSessionRenewed<'a> {
    pub subject: &'a str,
    pub sessions: u32,
    pub reason: &'static str,
}

impl InternalEvent for UploadSessionRenewed<'_> {
    fn emit(self) {
        info!(
            subject = self.subject,
            sessions = self.sessions,
            reason = self.reason,
            "renewing the upload session"
        );
        counter!("wfp_deployer_upload_session_renewals_total").increment(1);
    }
}

/// The missing contents are uploaded.
pub struct AssetsUploaded<'a> {
    pub subject: &'a str,
    pub sessions: u32,
    pub buckets: u32,
    pub files: u64,
    pub bytes: u64,
}

impl InternalEvent for AssetsUploaded<'_> {
    fn emit(self) {
        info!(
            subject = self.subject,
            sessions = self.sessions,
            buckets = self.buckets,
            files = self.files,
            bytes = self.bytes,
            "cloudflare assets uploaded"
        );
        counter!("wfp_deployer_uploaded_files_total").increment(self.files);
        counter!("wfp_deployer_uploaded_bytes_total").increment(self.bytes);
    }
}

/// A deploy's upload concurrency changed: lowered after a server error or a
/// request without an answer, raised again after a run of successes.
pub struct UploadConcurrencyChanged<'a> {
    pub subject: &'a str,
    pub from: usize,
    pub to: usize,
}

impl InternalEvent for UploadConcurrencyChanged<'_> {
    fn emit(self) {
        let direction = if self.to < self.from { "down" } else { "up" };
        if self.to < self.from {
            info!(
                subject = self.subject,
                from = self.from,
                to = self.to,
                "upload concurrency lowered: the upload endpoint struggles"
            );
        } else {
            debug!(
                subject = self.subject,
                from = self.from,
                to = self.to,
                "upload concurrency raised"
            );
        }
        counter!("wfp_deployer_upload_concurrency_changes_total", "direction" => direction)
            .increment(1);
    }
}

/// The script PUT succeeded: the new version is live.
pub struct ScriptDeployed<'a> {
    pub subject: &'a str,
    pub id: Option<&'a str>,
    pub etag: Option<&'a str>,
    pub sessions: u32,
}

impl InternalEvent for ScriptDeployed<'_> {
    fn emit(self) {
        info!(
            subject = self.subject,
            id = self.id,
            etag = self.etag,
            sessions = self.sessions,
            "cloudflare script deployed"
        );
    }
}

/// Status as a label: exact for the codes that matter, else the class, so
/// the series count stays small.
pub(super) fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        413 => "413",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}
