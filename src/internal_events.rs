//! Named internal events: one type for each thing worth logging and counting.
//!
//! Following vector's `internal_events`, a log site does not write a
//! `tracing` line and bump a counter by hand: it builds one of these types and
//! calls [`emit`]. The type decides the log level, the message and the
//! metrics it moves, so a log line and its counter can never drift apart, a
//! new dashboard panel needs no new plumbing, and a reviewer sees in one file
//! everything the worker reports.
//!
//! Metrics go through the `metrics` facade. Without an installed recorder
//! (tests, the one-shot CLI) they cost a branch and vanish; the worker's ops
//! endpoint installs the Prometheus recorder. Names follow Prometheus
//! conventions: `wfp_deployer_` prefix, `_total` for counters, base units
//! (`_seconds`, `_bytes`).
//!
//! Where a new event goes: add a type here with its `emit`, then call it from
//! the place the thing happens. Nothing else changes.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use tracing::{debug, error, info, warn};

use crate::contract::{ErrorCode, Step};

/// Something worth logging and counting.
pub trait InternalEvent {
    /// Writes the log line and moves the metrics.
    fn emit(self);
}

/// Emits `event`: one log line, its metrics.
pub fn emit(event: impl InternalEvent) {
    event.emit();
}

/// A deploy task began; in-flight until [`JobSettled`].
pub struct JobStarted;

impl InternalEvent for JobStarted {
    fn emit(self) {
        gauge!("wfp_deployer_jobs_in_flight").increment(1.0);
    }
}

/// How a delivery ended, from the broker's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Deployed; `deploy.succeeded` confirmed, acked.
    Succeeded,
    /// Failed with this code; `deploy.failed` confirmed, acked.
    Failed(ErrorCode),
    /// Not settled: nacked back to the queue (an event was not confirmed,
    /// or the worker is shutting down).
    Requeued,
}

impl JobOutcome {
    fn label(self) -> &'static str {
        match self {
            JobOutcome::Succeeded => "succeeded",
            JobOutcome::Failed(_) => "failed",
            JobOutcome::Requeued => "requeued",
        }
    }
}

/// One delivery settled with the broker: counted once per delivery.
pub struct JobSettled {
    pub outcome: JobOutcome,
    /// From receipt to the broker action.
    pub duration: Duration,
}

impl InternalEvent for JobSettled {
    fn emit(self) {
        let outcome = self.outcome.label();
        let code = match self.outcome {
            JobOutcome::Failed(code) => code.as_str(),
            _ => "",
        };
        info!(
            outcome,
            code,
            duration_ms = millis(self.duration),
            "job settled"
        );
        gauge!("wfp_deployer_jobs_in_flight").decrement(1.0);
        counter!("wfp_deployer_jobs_total", "outcome" => outcome, "code" => code).increment(1);
        histogram!("wfp_deployer_job_duration_seconds", "outcome" => outcome)
            .record(self.duration.as_secs_f64());
    }
}

/// A message that is not a valid job.
pub struct InvalidJobReceived<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for InvalidJobReceived<'_> {
    fn emit(self) {
        warn!(error = %self.error, "invalid job");
        counter!("wfp_deployer_invalid_jobs_total").increment(1);
    }
}

/// A deploy failed (its `deploy.failed` is published next).
pub struct DeployFailed<'a> {
    pub code: ErrorCode,
    pub step: Step,
    pub message: &'a str,
}

impl InternalEvent for DeployFailed<'_> {
    fn emit(self) {
        warn!(code = %self.code, step = %self.step, error = self.message, "deploy failed");
    }
}

/// A deploy task panicked: a bug, reported as `internal`.
pub struct DeployPanicked<'a> {
    pub step: Step,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for DeployPanicked<'_> {
    fn emit(self) {
        error!(step = %self.step, error = %self.error, "the deploy task died");
        counter!("wfp_deployer_panics_total", "step" => self.step.as_str()).increment(1);
    }
}

/// One step of a deploy ended (successfully or not).
pub struct StepFinished {
    pub step: Step,
    pub duration: Duration,
}

impl InternalEvent for StepFinished {
    fn emit(self) {
        debug!(step = %self.step, duration_ms = millis(self.duration), "step finished");
        histogram!("wfp_deployer_step_duration_seconds", "step" => self.step.as_str())
            .record(self.duration.as_secs_f64());
    }
}

/// The bundle's files are known (paths and limits checked).
pub struct BundleListed<'a> {
    pub location: &'a str,
    pub files: usize,
    pub bytes: u64,
}

impl InternalEvent for BundleListed<'_> {
    fn emit(self) {
        info!(
            location = self.location,
            files = self.files,
            bytes = self.bytes,
            "bundle listed"
        );
    }
}

/// Every file of the bundle is hashed into the manifest.
pub struct BundleHashed<'a> {
    pub location: &'a str,
    pub files: usize,
    /// Distinct contents.
    pub unique: usize,
    /// Files whose digest the cache knew: not read at all.
    pub cache_hits: u64,
    /// Bytes read from the bundle's storage to get there.
    pub bytes_read: u64,
    /// Bytes run through SHA-256.
    pub bytes_hashed: u64,
}

impl InternalEvent for BundleHashed<'_> {
    fn emit(self) {
        info!(
            location = self.location,
            files = self.files,
            unique = self.unique,
            cache_hits = self.cache_hits,
            bytes_read = self.bytes_read,
            "bundle hashed"
        );
        counter!("wfp_deployer_digest_cache_hits_total").increment(self.cache_hits);
        counter!("wfp_deployer_bundle_read_bytes_total").increment(self.bytes_read);
        counter!("wfp_deployer_hashed_bytes_total").increment(self.bytes_hashed);
    }
}

/// An S3 call failed and is tried again after `wait`.
pub struct S3Retry<'a> {
    pub subject: &'a str,
    pub error: &'a dyn std::fmt::Display,
    pub wait: Duration,
}

impl InternalEvent for S3Retry<'_> {
    fn emit(self) {
        warn!(
            subject = self.subject,
            error = %self.error,
            wait_ms = millis(self.wait),
            "s3 call failed; retrying"
        );
        counter!("wfp_deployer_retries_total", "service" => "s3").increment(1);
    }
}

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
            histogram!("wfp_deployer_rate_limit_wait_seconds").record(self.wait.as_secs_f64());
        }
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

/// The broker confirmed an event.
pub struct EventPublished<'a> {
    pub routing_key: &'a str,
    /// From publish to the broker's confirm.
    pub confirm_latency: Duration,
}

impl InternalEvent for EventPublished<'_> {
    fn emit(self) {
        debug!(
            routing_key = self.routing_key,
            confirm_ms = millis(self.confirm_latency),
            "event confirmed"
        );
        counter!("wfp_deployer_events_published_total", "routing_key" => self.routing_key.to_string())
            .increment(1);
        histogram!("wfp_deployer_publish_confirm_seconds")
            .record(self.confirm_latency.as_secs_f64());
    }
}

/// An event was not confirmed by the broker: the job goes back to the queue.
pub struct EventNotConfirmed<'a> {
    pub routing_key: &'a str,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for EventNotConfirmed<'_> {
    fn emit(self) {
        error!(
            routing_key = self.routing_key,
            error = %self.error,
            "event not confirmed; the job goes back to the queue"
        );
        counter!("wfp_deployer_events_unconfirmed_total", "routing_key" => self.routing_key.to_string())
            .increment(1);
    }
}

/// The `reply_to` copy of a terminal event could not be delivered; the
/// events exchange still has the event.
pub struct ReplyToNotDelivered<'a> {
    pub event_id: &'a str,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for ReplyToNotDelivered<'_> {
    fn emit(self) {
        warn!(event_id = self.event_id, error = %self.error, "reply_to copy not delivered");
        counter!("wfp_deployer_reply_to_failures_total").increment(1);
    }
}

/// The worker consumes from the jobs queue.
pub struct BrokerConsuming<'a> {
    pub queue: &'a str,
    pub prefetch: u16,
}

impl InternalEvent for BrokerConsuming<'_> {
    fn emit(self) {
        info!(
            queue = self.queue,
            prefetch = self.prefetch,
            "amqp: consuming"
        );
    }
}

/// The broker connection was lost (or never made); the next try is in `delay`.
pub struct BrokerReconnect<'a> {
    pub attempt: u32,
    pub delay: Duration,
    pub reason: &'a str,
}

impl InternalEvent for BrokerReconnect<'_> {
    fn emit(self) {
        warn!(
            attempt = self.attempt,
            delay_ms = millis(self.delay),
            reason = self.reason,
            "amqp: reconnecting"
        );
        counter!("wfp_deployer_broker_reconnects_total").increment(1);
    }
}

/// Retrying the broker cannot help (bad credentials, a refused topology).
pub struct BrokerGaveUp<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for BrokerGaveUp<'_> {
    fn emit(self) {
        error!(error = %self.error, "amqp: giving up");
    }
}

/// An ack or nack could not be sent; the broker redelivers the job.
pub struct BrokerActionFailed<'a> {
    pub action: &'static str,
    /// `None` when the channel had closed already.
    pub error: Option<&'a dyn std::fmt::Display>,
}

impl InternalEvent for BrokerActionFailed<'_> {
    fn emit(self) {
        match self.error {
            Some(error) => warn!(
                action = self.action,
                error = %error,
                "broker action failed; the broker redelivers the job"
            ),
            None => warn!(
                action = self.action,
                "channel closed before the broker action; the broker redelivers the job"
            ),
        }
        counter!("wfp_deployer_broker_action_failures_total", "action" => self.action).increment(1);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Status as a label: exact for the codes that matter, else the class, so
/// the series count stays small.
fn status_label(status: u16) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_labels_stay_few() {
        assert_eq!(status_label(429), "429");
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(599), "5xx");
        assert_eq!(status_label(204), "2xx");
    }

    #[test]
    fn outcome_labels() {
        assert_eq!(JobOutcome::Succeeded.label(), "succeeded");
        assert_eq!(JobOutcome::Failed(ErrorCode::Internal).label(), "failed");
        assert_eq!(JobOutcome::Requeued.label(), "requeued");
    }
}
