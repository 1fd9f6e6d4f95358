//! The `[s3]` section: how the worker reaches S3, and which buckets and
//! prefixes a job may read.
//!
//! Reaching S3 is mostly the AWS SDK's own configuration chain
//! (`AWS_ENDPOINT_URL_S3`, `AWS_REGION`, credentials, profiles); these
//! settings only complement it. What a job may read is the platform's to
//! decide, not the job's: the credentials can often read far more than one
//! tenant's files, so `allowed_buckets`, `allowed_prefixes` and
//! `allow_empty_prefix` narrow it (see `access` for the check).

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// S3 settings that complement the AWS SDK's own configuration chain.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    /// Overrides `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` when set.
    pub endpoint_url: Option<String>,
    /// Overrides `AWS_REGION` when set.
    pub region: Option<String>,
    /// Path-style addressing (`http://host/bucket/key`), needed by most
    /// S3-compatible servers on loopback.
    pub force_path_style: bool,
    /// Static credentials; when unset the AWS SDK's chain finds them
    /// (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profiles, IMDS, ...).
    pub access_key_id: Option<String>,
    /// The secret key going with `access_key_id`.
    #[serde(serialize_with = "super::redact::optional_secret")]
    pub secret_access_key: Option<SecretString>,
    /// Ceiling for opening a connection to the S3 server.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Ceiling of one S3 call, body included.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Longest wait for the first byte of an answer: a server that accepts
    /// the connection and then hangs fails this fast (and is retried),
    /// instead of holding the job for the whole `request_timeout`.
    #[serde(with = "humantime_serde")]
    pub first_byte_timeout: Duration,
    /// Longest wait for the next chunk of a body being read: a stream that
    /// stalls half-way fails this fast.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Buckets a job may name (bundle and worker code); empty allows any
    /// bucket the credentials can read.
    pub allowed_buckets: Vec<String>,
    /// Folders a job's prefixes must lie in; empty allows any. A pattern
    /// names the job's labels in braces: `sites/{tenant}/` lets a job
    /// labelled `tenant: acme` read under `sites/acme/` only.
    pub allowed_prefixes: Vec<String>,
    /// Whether a job may give an empty prefix, which names every object in
    /// the bucket (other tenants' included). Off by default.
    pub allow_empty_prefix: bool,
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            region: None,
            force_path_style: false,
            access_key_id: None,
            secret_access_key: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(120),
            first_byte_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(30),
            allowed_buckets: Vec::new(),
            allowed_prefixes: Vec::new(),
            allow_empty_prefix: false,
        }
    }
}
