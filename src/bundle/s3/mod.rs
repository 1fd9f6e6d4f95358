//! Bundles stored as objects under an S3 prefix (any S3-compatible server).
//!
//! [`S3Storage`] is built once per process and cloned freely (the SDK client
//! is a handle); [`S3Storage::prefix`] names one bundle. Ingesting lists the
//! prefix (checking every key's path as it comes), reads the root special
//! files (`.assetsignore`, `_headers`, `_redirects`: a few small GETs) and
//! passes every object through the bundle's gate (what is ignored, what is
//! an asset, Cloudflare's limits) before any asset is read; each
//! object's ETag and size name its content in the digest cache, so a known
//! one is not read at all, nor is one S3 keeps a SHA-256 of (a HEAD gives
//! it), and the others are streamed and hashed, `fetch_concurrency` at a
//! time: memory is bounded by that number and the chunk size, never by the
//! bundle. A file read to hash is new to the cache, so most likely new to
//! Cloudflare too: a copy goes into the job's spool on the way, while the
//! spool has room (`worker.spool_max_bytes`), and the upload takes it from
//! there. Any other file the upload needs is one whole GET into the spool,
//! verified.

mod client;
mod failure;
mod fetch;
mod list;
mod modules;
mod object;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use super::gate::{Admission, Gate, check_special_size};
use super::path::{asset_path, shown};
use super::site::{SpecialFile, SpecialFiles};
use super::special::ASSETS_IGNORE;
use super::{BundleError, BundleFile, BundleSource, BundleStep, IngestContext, Ingested};
use crate::cache::{ContentKey, DigestCache};
use crate::config::{RetrySettings, S3Settings};
use crate::internal_events::{self, BundleHashed, BundleListed};
use crate::manifest::ContentDigest;
use crate::retry::RetryPolicy;
use crate::spool::Spool;

pub use self::modules::read_modules;
pub(crate) use self::object::{ObjectStream, RangedObject, S3Object};

/// The S3 client and how it is used: retries, concurrency, timeouts.
#[derive(Debug, Clone)]
pub struct S3Storage {
    client: aws_sdk_s3::Client,
    policy: RetryPolicy,
    fetch_concurrency: usize,
    /// Bounds the wait for each chunk of a body (`s3.idle_timeout`).
    idle_timeout: Duration,
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
            idle_timeout: settings.idle_timeout,
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

impl S3Prefix {
    /// Lists the prefix (names checked; at most `limits.max_entries`
    /// objects held), reads its root special files, and passes every object
    /// through the bundle's [`Gate`]: the assets to upload, the special
    /// files, and the bytes read for them. No asset is read yet.
    async fn sort(
        &self,
        ctx: &IngestContext<'_>,
    ) -> Result<(Vec<list::Listed>, SpecialFiles, u64), BundleError> {
        let subject = |key: &str| format!("s3://{}/{}", self.bucket, shown(key));
        let max_entries = ctx.limits.max_entries;
        let mut listed = Vec::new();
        let (storage, bucket, prefix) = (&self.storage, &self.bucket, &self.prefix);
        let seen = list::list_each(storage, bucket, prefix, ctx.gate, &mut |object| {
            if listed.len() as u64 >= max_entries {
                return Err(BundleError::TooLarge {
                    step: BundleStep::List,
                    subject: subject(&object.key),
                    detail: format!(
                        "object {} of the prefix, over limits.max_entries ({max_entries})",
                        listed.len() + 1
                    ),
                });
            }
            listed.push(object);
            Ok(())
        })
        .await?;
        if seen == 0 {
            return Err(list::no_objects(self.location()));
        }

        // The ignore file first: it decides what the gate lets through.
        let mut special = SpecialFiles::default();
        let mut read = 0;
        if let Some(object) = listed.iter().find(|o| o.rel == ASSETS_IGNORE) {
            check_special_size(object.size).map_err(|r| r.into_error(subject(&object.key)))?;
            let bytes = fetch::to_memory(&self.storage, &self.bucket, object).await?;
            read += object.size;
            special.set(SpecialFile::AssetsIgnore, bytes.to_vec());
        }
        let ignore = special.ignore().map_err(|error| BundleError::Special {
            subject: self.location(),
            error,
        })?;
        let mut gate = Gate::new(ctx.limits, ignore);
        let mut assets = Vec::new();
        for object in listed {
            let admitted = gate
                .admit(&object.rel, object.size)
                .map_err(|r| r.into_error(subject(&object.key)))?;
            match admitted {
                Admission::Asset => assets.push(object),
                Admission::Special(file @ (SpecialFile::Headers | SpecialFile::Redirects)) => {
                    let bytes = fetch::to_memory(&self.storage, &self.bucket, &object).await?;
                    read += object.size;
                    special.set(file, bytes.to_vec());
                }
                Admission::Special(SpecialFile::AssetsIgnore) | Admission::Skipped => {}
            }
        }
        if assets.is_empty() {
            return Err(BundleError::NotFound {
                step: BundleStep::List,
                subject: self.location(),
                detail: "no files to upload (every object is ignored or a special file)".into(),
            });
        }
        Ok((assets, special, read))
    }
}

#[async_trait::async_trait]
impl BundleSource for S3Prefix {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn ingest(&self, ctx: &IngestContext<'_>) -> Result<Ingested, BundleError> {
        let location = self.location();
        let (assets, special, special_bytes) = self.sort(ctx).await?;
        let config =
            special
                .site_config(ctx.html_handling)
                .map_err(|error| BundleError::Special {
                    subject: location.clone(),
                    error,
                })?;
        internal_events::emit(BundleListed {
            location: &location,
            files: assets.len(),
            bytes: assets.iter().map(|o| o.size).sum(),
        });
        ctx.progress
            .listed(assets.len() as u64, assets.iter().map(|o| o.size).sum());
        ctx.progress.hashing();

        // Known content costs nothing; the rest is read and hashed, a copy
        // kept in the spool while it has room (new to the cache, so likely
        // new to Cloudflare: the upload takes it from there).
        let mut ingested = Ingested {
            files: Vec::with_capacity(assets.len()),
            bytes_read: special_bytes,
            config,
            ..Ingested::default()
        };
        let mut learned = futures::stream::iter(assets)
            .map(|object| learn(&self.storage, &self.bucket, object, ctx.cache, ctx.spool))
            .buffer_unordered(self.storage.fetch_concurrency);
        while let Some(learned) = learned.try_next().await? {
            match learned.how {
                Learnt::Cache => ingested.cache_hits += 1,
                Learnt::Checksum => {}
                Learnt::Read => ingested.bytes_read += learned.object.size,
            }
            let read = u64::from(learned.how == Learnt::Read) * learned.object.size;
            ctx.progress.hashed(1, learned.object.size, read);
            ingested.files.push(BundleFile {
                path: asset_path(&learned.object.rel),
                size: learned.object.size,
                digest: learned.digest,
                origin: learned.object.key,
                content_key: learned.content_key.map(Box::new),
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
    spool: &Spool,
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
    let (digest, version) = fetch::digest(storage, bucket, &object, spool).await?;
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
