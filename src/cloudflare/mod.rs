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
mod body;
mod budget;
mod client;
mod concurrency;
mod envelope;
mod error;
mod jwt;
mod media;
mod script;
mod session;
mod spool_content;
mod types;
mod upload;

#[cfg(test)]
mod stall_tests;

pub use asset_body::{AssetBody, AssetContent};
pub use client::CloudflareClient;
pub use error::{ApiMessage, CfStep, CloudflareError, TransportKind, is_retryable_status};
pub use media::{asset_media_type, module_media_type};
pub use script::{Deployment, Module, ScriptUpload};
pub use session::UploadSession;
pub use types::{ScriptTarget, UploadStats};
pub use upload::AssetsUploaded;
