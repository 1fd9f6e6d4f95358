//! Reading a bundle: listed, hashed, S3 retries, the digest cache.

use std::time::Duration;

use metrics::{counter, histogram};
use tracing::{info, warn};

use super::{InternalEvent, millis};

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
        let misses = u64::try_from(self.files)
            .unwrap_or(u64::MAX)
            .saturating_sub(self.cache_hits);
        counter!("wfp_deployer_digest_cache_hits_total").increment(self.cache_hits);
        counter!("wfp_deployer_digest_cache_misses_total").increment(misses);
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

/// An index object of the digest cache could not be read or written: the
/// deploy goes on, only slower (files are hashed afresh).
pub struct DigestCacheStoreFailed<'a> {
    /// `read` or `write`.
    pub operation: &'static str,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for DigestCacheStoreFailed<'_> {
    fn emit(self) {
        warn!(
            operation = self.operation,
            error = %self.error,
            "digest cache: index not usable; hashing afresh"
        );
        counter!("wfp_deployer_digest_cache_store_failures_total", "operation" => self.operation)
            .increment(1);
    }
}

/// A job's listing passed `limits.large_bundle_files` while another job of
/// the process holds the large-bundle permit: it waits for it, holding no
/// more files' records meanwhile.
pub struct LargeBundleWaiting {
    /// Files the job's listing holds so far.
    pub files: u64,
    pub threshold: u64,
}

impl InternalEvent for LargeBundleWaiting {
    fn emit(self) {
        info!(
            files = self.files,
            threshold = self.threshold,
            "large bundle: waiting until the other large bundle of this worker is deployed \
             (limits.large_bundle_files)"
        );
        counter!("wfp_deployer_large_bundle_waits_total").increment(1);
    }
}

/// A job that waited got the large-bundle permit and goes on listing.
pub struct LargeBundleAdmitted {
    pub waited: Duration,
}

impl InternalEvent for LargeBundleAdmitted {
    fn emit(self) {
        info!(
            waited_ms = millis(self.waited),
            "large bundle: permit taken, listing goes on"
        );
        histogram!("wfp_deployer_large_bundle_wait_seconds").record(self.waited.as_secs_f64());
    }
}
