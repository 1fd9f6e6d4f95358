//! Bundles stored as objects under an S3 prefix (any S3-compatible server).
//!
//! [`S3Storage`] is built once per process and cloned freely (the SDK client
//! is a handle); [`S3Storage::prefix`] names one bundle. Ingesting lists the
//! prefix (checking path rules and limits before anything is read), then
//! streams each object once into the spool, `fetch_concurrency` at a time, so
//! memory is bounded by that number and the chunk size, never by the bundle.

mod client;
mod failure;
mod fetch;
mod list;
mod modules;

#[cfg(test)]
mod tests;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use self::list::ListLimits;
use super::path::asset_path;
use super::{BundleError, BundleSource};
use crate::config::{LimitSettings, RetrySettings, S3Settings};
use crate::internal_events::{BundleHashed, BundleListed, emit};
use crate::manifest::{Manifest, ManifestEntry};
use crate::retry::RetryPolicy;
use crate::spool::Spool;

pub use self::modules::read_modules;

/// The S3 client and how it is used: retries, concurrency, timeouts.
#[derive(Debug, Clone)]
pub struct S3Storage {
    client: aws_sdk_s3::Client,
    policy: RetryPolicy,
    fetch_concurrency: usize,
    /// Bounds one call, and the wait for each chunk of a body.
    request_timeout: Duration,
}

impl S3Storage {
    /// Builds the client from the AWS SDK's chain and `settings`; once per
    /// process, since the client pools connections.
    pub async fn new(
        settings: &S3Settings,
        retry: &RetrySettings,
        fetch_concurrency: usize,
    ) -> S3Storage {
        S3Storage {
            client: client::build(settings).await,
            policy: RetryPolicy::new(retry),
            fetch_concurrency: fetch_concurrency.max(1),
            request_timeout: settings.request_timeout,
        }
    }

    /// The underlying SDK client, for tools that write bundles (the CLI's
    /// `upload-bundle`); the worker itself only reads.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The bundle under `prefix` in `bucket`. Callers pass a folder prefix
    /// ending in `/`: `builds/4` would also match `builds/42/...`.
    pub fn prefix(&self, bucket: &str, prefix: &str) -> S3Prefix {
        S3Prefix {
            storage: self.clone(),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }
    }
}

/// One bundle: every object under a prefix, named by its path below it.
#[derive(Debug, Clone)]
pub struct S3Prefix {
    storage: S3Storage,
    bucket: String,
    prefix: String,
}

#[async_trait::async_trait]
impl BundleSource for S3Prefix {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn ingest(&self, spool: &Spool, limits: &LimitSettings) -> Result<Manifest, BundleError> {
        let list_limits = ListLimits {
            max_files: limits.max_files,
            max_file_bytes: limits.max_file_bytes,
            max_total_bytes: limits.max_total_bytes,
            noun: "files",
        };
        let objects = list::list(&self.storage, &self.bucket, &self.prefix, &list_limits).await?;
        let listed_bytes: u64 = objects.iter().map(|o| o.size).sum();
        emit(BundleListed {
            location: &self.location(),
            files: objects.len(),
            bytes: listed_bytes,
        });

        let mut fetches = futures::stream::iter(objects)
            .map(|object| fetch_one(&self.storage, &self.bucket, object, spool))
            .buffer_unordered(self.storage.fetch_concurrency);

        let mut manifest = Manifest::new();
        while let Some((object, entry)) = fetches.try_next().await? {
            if manifest.insert(asset_path(&object.rel), entry).is_some() {
                return Err(BundleError::Invalid {
                    subject: format!("s3://{}/{}", self.bucket, object.key),
                    reason: "two objects with one path".into(),
                });
            }
        }
        emit(BundleHashed {
            location: &self.location(),
            files: manifest.len(),
            unique: manifest.by_hash().len(),
            bytes_read: listed_bytes,
            bytes_hashed: listed_bytes,
        });
        Ok(manifest)
    }
}

/// Streams one listed object into the spool; a named function rather than a
/// closure so the stream's future type stays simple enough for `Send`.
async fn fetch_one(
    storage: &S3Storage,
    bucket: &str,
    object: list::Listed,
    spool: &Spool,
) -> Result<(list::Listed, ManifestEntry), BundleError> {
    let entry = fetch::to_spool(storage, bucket, &object, spool).await?;
    Ok((object, entry))
}
