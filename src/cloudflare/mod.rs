//! The Cloudflare Workers-for-Platforms API client: the three calls that
//! deploy a user worker with static assets.
//!
//! 1. [`CloudflareClient::start_session`]: send the manifest, learn which
//!    contents are missing (in buckets) and get an upload JWT.
//! 2. [`CloudflareClient::upload`]: upload the missing contents with that JWT,
//!    renewing the session when it runs out, and get the completion JWT.
//! 3. [`CloudflareClient::deploy`]: PUT the script with the completion JWT.
//!
//! Every answer is read through Cloudflare's envelope; transient failures are
//! retried with the crate's one back-off policy, honouring `Retry-After`; the
//! API token and the JWTs never reach a log line, an error or `Debug`.
//!
//! This module shares no types with `crate::sim` on purpose: the simulator
//! is written from Cloudflare's description independently, so a
//! misunderstanding here is not silently mirrored there.

mod asset_body;
mod backoff;
mod client;
mod envelope;
mod error;
mod jwt;
mod media;
mod script;
mod session;
mod upload;

#[cfg(test)]
mod stall_tests;

use std::fmt;

pub use asset_body::AssetBody;
pub use client::CloudflareClient;
pub use error::{ApiMessage, CfStep, CloudflareError, TransportKind, is_retryable_status};
pub use media::{asset_media_type, module_media_type};
pub use script::{Deployment, Module, ScriptUpload};
pub use session::UploadSession;
pub use upload::AssetsUploaded;

/// The user worker a deploy goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptTarget {
    pub account_id: String,
    pub namespace: String,
    pub script_name: String,
}

impl fmt::Display for ScriptTarget {
    /// `namespace/script_name`: the subject of every message about it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.script_name)
    }
}

/// What one deploy sent to Cloudflare, for the succeeded event and logs.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadStats {
    /// Upload sessions opened, the first included (1 unless a JWT ran out).
    pub sessions: u32,
    /// Buckets uploaded.
    pub buckets: u32,
    /// Files uploaded (a file Cloudflare already held is not counted).
    pub files: u64,
    /// Raw (decoded) bytes of the files uploaded.
    pub bytes: u64,
}

/// Where the bytes of an asset come from: the job's spool implements it, so
/// this module reads files without knowing where they live.
#[async_trait::async_trait]
pub trait AssetContent: Send + Sync {
    /// Where the content with this asset hash can be read (as often as a
    /// retried upload needs), and its length.
    async fn locate(&self, hash: &str) -> std::io::Result<AssetBody>;
}
