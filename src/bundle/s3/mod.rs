//! Bundles stored as objects under an S3 prefix (any S3-compatible server).
//!
//! [`S3Storage`] is built once per process and cloned freely (the SDK client
//! is a handle); [`S3Storage::prefix`] names one bundle. Ingesting lists the
//! prefix (checking path rules and limits before anything is read); each
//! object's ETag and size name its content in the digest cache, so a known
//! one is not read at all, nor is one S3 keeps a SHA-256 of (a HEAD gives
//! it), and the others are streamed and hashed,
//! `fetch_concurrency` at a time, keeping nothing: memory is bounded by that
//! number and the chunk size, never by the bundle, and no disk is used.
//! Fetching a file for the upload is one whole GET into the spool, verified.

mod client;
mod failure;
mod fetch;
mod list;
mod modules;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use self::list::ListLimits;
use super::path::asset_path;
use super::{BundleError, BundleFile, BundleSource, IngestContext, Ingested};
use crate::cache::{ContentKey, DigestCache};
use crate::config::{RetrySettings, S3Settings};
use crate::internal_events::{self, BundleHashed, BundleListed};
use crate::manifest::ContentDigest;
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

    async fn ingest(&self, ctx: &IngestContext<'_>) -> Result<Ingested, BundleError> {
        let location = self.location();
        let list_limits = ListLimits {
            max_files: ctx.limits.max_files,
            max_file_bytes: ctx.limits.max_file_bytes,
            max_total_bytes: ctx.limits.max_total_bytes,
            noun: "files",
        };
        let objects = list::list(&self.storage, &self.bucket, &self.prefix, &list_limits).await?;
        internal_events::emit(BundleListed {
            location: &location,
            files: objects.len(),
            bytes: objects.iter().map(|o| o.size).sum(),
        });
        ctx.progress.hashing();

        // Known content costs nothing; the rest is read, hashed, forgotten.
        let mut ingested = Ingested::default();
        let mut learned = futures::stream::iter(objects)
            .map(|object| learn(&self.storage, &self.bucket, object, ctx.cache))
            .buffer_unordered(self.storage.fetch_concurrency);
        while let Some(learned) = learned.try_next().await? {
            match learned.how {
                Learnt::Cache => ingested.cache_hits += 1,
                Learnt::Checksum => {}
                Learnt::Read => ingested.bytes_read += learned.object.size,
            }
            ingested.files.push(BundleFile {
                path: asset_path(&learned.object.rel),
                size: learned.object.size,
                digest: learned.digest,
                origin: learned.object.key,
                content_key: learned.content_key,
            });
        }

        let mut paths = HashSet::with_capacity(ingested.files.len());
        if let Some(twice) = ingested.files.iter().find(|f| !paths.insert(&f.path)) {
            return Err(BundleError::Invalid {
                subject: format!("s3://{}/{}", self.bucket, twice.origin),
                reason: "two objects with one path".into(),
            });
        }
        let unique: HashSet<&ContentDigest> = ingested.files.iter().map(|f| &f.digest).collect();
        internal_events::emit(BundleHashed {
            location: &location,
            files: ingested.files.len(),
            unique: unique.len(),
            cache_hits: ingested.cache_hits,
            bytes_read: ingested.bytes_read,
            bytes_hashed: ingested.bytes_read,
        });
        Ok(ingested)
    }

    async fn fetch(&self, file: &BundleFile, spool: &Spool) -> Result<u64, BundleError> {
        fetch::to_spool(
            &self.storage,
            &self.bucket,
            &file.origin,
            file.size,
            &file.digest,
            spool,
        )
        .await?;
        Ok(file.size)
    }
}

/// One listed object's digest, and how it was learnt.
struct Learned {
    object: list::Listed,
    digest: ContentDigest,
    content_key: Option<ContentKey>,
    how: Learnt,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Learnt {
    /// The digest cache knew the content.
    Cache,
    /// S3 keeps the object's SHA-256: a HEAD gave it.
    Checksum,
    /// Read and hashed.
    Read,
}

/// Learns one listed object's digest without reading it where it can: the
/// cache, by the listing's ETag (else a HEAD's), or the SHA-256 S3 keeps of
/// it (a HEAD); else by reading it, keyed by the version its GET answered
/// with. A named function rather than a closure so the stream's future type
/// stays simple enough for `Send`.
async fn learn(
    storage: &S3Storage,
    bucket: &str,
    object: list::Listed,
    cache: &DigestCache,
) -> Result<Learned, BundleError> {
    let learned = |object, digest, content_key, how| Learned {
        object,
        digest,
        content_key,
        how,
    };
    if cache.is_enabled() {
        if let Some(etag) = &object.etag {
            let listed = fetch::Version {
                etag: Some(etag.clone()),
                version_id: None,
            };
            let content_key = key_for(cache, bucket, &object, &listed);
            if let Some(digest) = content_key.as_ref().and_then(|k| cache.get(k)) {
                return Ok(learned(object, digest, content_key, Learnt::Cache));
            }
        }
        if object.etag.is_none() || object.sha256_checksum {
            let headed = fetch::head(storage, bucket, &object).await?;
            let content_key = key_for(cache, bucket, &object, &headed.version);
            if let Some(digest) = content_key.as_ref().and_then(|k| cache.get(k)) {
                return Ok(learned(object, digest, content_key, Learnt::Cache));
            }
            if let Some(digest) = headed.sha256 {
                return Ok(learned(object, digest, content_key, Learnt::Checksum));
            }
        }
    }
    let (digest, version) = fetch::digest(storage, bucket, &object).await?;
    let content_key = key_for(cache, bucket, &object, &version);
    Ok(learned(object, digest, content_key, Learnt::Read))
}

fn key_for(
    cache: &DigestCache,
    bucket: &str,
    object: &list::Listed,
    version: &fetch::Version,
) -> Option<ContentKey> {
    cache.key_for(
        bucket,
        &object.key,
        version.etag.as_deref(),
        version.version_id.as_deref(),
        object.size,
    )
}
