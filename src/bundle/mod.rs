//! Where a site's files come from, and the rules they must follow.
//!
//! A [`BundleSource`] lists a bundle's files and streams each one once
//! through the job's [`Spool`], hashing as it goes, and returns the
//! [`Manifest`]. Today the only source is an S3 prefix ([`S3Prefix`]);
//! archives streamed from S3 (tar, tar.gz, zip) will be a second source with
//! the same path rules ([`path`]) and limits, so the pipeline need not change.
//!
//! Worker code is read differently ([`read_modules`]): a handful of small
//! modules held in memory for one multipart upload.

pub mod archive;
mod error;
pub mod path;
mod s3;

pub use self::error::{BundleError, BundleErrorKind, BundleStep};
pub use self::s3::{S3Prefix, S3Storage, read_modules};

use crate::config::LimitSettings;
use crate::manifest::Manifest;
use crate::spool::Spool;

/// Where a bundle's files come from: an S3 prefix now, archives later.
#[async_trait::async_trait]
pub trait BundleSource: Send + Sync {
    /// Names the bundle in logs and errors, e.g. `s3://sites/acme/builds/42/`.
    fn location(&self) -> String;

    /// Lists the files (step "list": path rules and limits are checked before
    /// any byte is read), then streams every file once through `spool`
    /// (step "hash"), holding each to its listed size; returns the manifest.
    async fn ingest(&self, spool: &Spool, limits: &LimitSettings) -> Result<Manifest, BundleError>;
}
