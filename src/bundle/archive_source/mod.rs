//! Archive bundles: one tar, tar.gz, tar.zst or zip, in S3 (`bundle.key`)
//! or on local disk (the `deploy` command), read as a stream of checked
//! files.
//!
//! An archive can only be read whole, in one pass (a tar stream) or through
//! its central directory (a zip), never file by file as S3 objects are. So
//! the first read hashes every file and stores it in the job's spool as it
//! passes; the files Cloudflare asks for are then already there. The
//! archive's manifest (every file's path, size and digest, and its root
//! special files) is then cached under the archive's content key and root
//! ([`ArchiveKey`]), so a deploy of an unchanged archive reads none of it:
//! only if Cloudflare lacks some of its files does one more pass read the
//! archive, spooling just those ([`BundleSource::prefetch`]), each held to
//! the digest the manifest says. A digest that proves wrong forgets the
//! cached manifest everywhere and fails the job as retryable, so the retry
//! reads the archive afresh.
//!
//! The reading itself is `bundle/archive`'s (paths, links, bombs, corrupt
//! bytes), under caps taken from `limits.*`, run in a blocking task that
//! hands files to the spool (`read.rs`, `sink.rs`) from an S3 object or a
//! local file pinned to what it was first (`origin.rs`); then every file
//! passes the bundle's [`Gate`] like any source's.

mod origin;
mod read;
mod sink;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tokio::sync::Mutex;

use self::origin::{Origin, Pinned};
use super::archive::{ArchiveFormat, ArchiveLimits};
use super::gate::{Admission, Gate};
use super::path::{asset_path, shown};
use super::site::SpecialFiles;
use super::{
    BundleError, BundleFile, BundleSource, BundleStep, IngestContext, Ingested, S3Storage,
};
use crate::cache::{ArchiveKey, CachedArchive, CachedFile, DigestCache};
use crate::config::LimitSettings;
use crate::internal_events::{self, BundleHashed, BundleListed};
use crate::spool::Spool;

/// One archive bundle.
pub struct ArchiveSource {
    origin: Origin,
    format: ArchiveFormat,
    /// The directory of the archive the bundle is, without a trailing `/`.
    root: Option<String>,
    /// What ingesting pinned, for the passes that fetch files later.
    pinned: OnceLock<Pass>,
    /// One later pass at a time: a second waits, then finds its files
    /// spooled.
    passes: Mutex<()>,
}

/// What a later pass needs from the first.
struct Pass {
    object: Pinned,
    key: Option<ArchiveKey>,
    cache: Arc<DigestCache>,
    limits: ArchiveLimits,
}

impl ArchiveSource {
    /// The archive `key` in `bucket`.
    pub fn s3(
        storage: &S3Storage,
        bucket: &str,
        key: &str,
        format: ArchiveFormat,
        root: Option<&str>,
    ) -> Self {
        let origin = Origin::S3 {
            storage: storage.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
        };
        Self::new(origin, format, root)
    }

    /// A local archive file.
    pub fn file(path: PathBuf, format: ArchiveFormat, root: Option<&str>) -> Self {
        Self::new(Origin::File(path), format, root)
    }

    fn new(origin: Origin, format: ArchiveFormat, root: Option<&str>) -> Self {
        ArchiveSource {
            origin,
            format,
            root: root.map(|r| r.trim_end_matches('/').to_string()),
            pinned: OnceLock::new(),
            passes: Mutex::new(()),
        }
    }

    /// The files read (or cached) through the gate: the bundle to deploy.
    fn assemble(
        &self,
        files: Vec<CachedFile>,
        special: &SpecialFiles,
        ctx: &IngestContext<'_>,
    ) -> Result<Ingested, BundleError> {
        let location = self.location();
        let special_error = |error| BundleError::Special {
            subject: location.clone(),
            error,
        };
        let ignore = special.ignore().map_err(special_error)?;
        let mut gate = Gate::new(ctx.limits, ignore);
        let mut ingested = Ingested {
            files: Vec::with_capacity(files.len()),
            ..Ingested::default()
        };
        for file in files {
            let admitted = gate
                .admit(&file.path, file.size)
                .map_err(|r| r.into_error(format!("{location}: {}", shown(&file.path))))?;
            if admitted == Admission::Asset {
                ingested.files.push(BundleFile {
                    path: asset_path(&file.path),
                    size: file.size,
                    digest: file.digest,
                    origin: file.path,
                    content_key: None,
                });
            }
        }
        ingested.files.shrink_to_fit();
        if ingested.files.is_empty() {
            return Err(BundleError::NotFound {
                step: BundleStep::List,
                subject: location,
                detail: "no files to upload (every file is ignored or a special file)".into(),
            });
        }
        ingested.config = special
            .site_config(ctx.html_handling)
            .map_err(special_error)?;
        Ok(ingested)
    }
}

/// The archive caps `limits` give: every file under the root counts,
/// ignored ones included, since the ignore file may come last.
pub(crate) fn archive_limits(limits: &LimitSettings) -> ArchiveLimits {
    ArchiveLimits {
        max_files: limits.max_entries,
        max_file_bytes: limits.max_file_bytes,
        max_total_bytes: limits.max_archive_bytes,
        max_ratio: limits.max_archive_ratio,
        ..ArchiveLimits::default()
    }
}

#[async_trait::async_trait]
impl BundleSource for ArchiveSource {
    fn location(&self) -> String {
        self.origin.location()
    }

    async fn ingest(&self, ctx: &IngestContext<'_>) -> Result<Ingested, BundleError> {
        let location = self.location();
        let object = self.origin.pin().await?;
        let key = object.content_key(ctx.cache).map(|content| ArchiveKey {
            content,
            root: self.root.clone(),
        });
        let limits = archive_limits(ctx.limits);
        let _ = self.pinned.set(Pass {
            object: object.clone(),
            key: key.clone(),
            cache: ctx.cache.clone(),
            limits,
        });
        let cached = match &key {
            Some(key) => ctx.cache.archive_manifest(key).await,
            None => None,
        };
        ctx.progress.hashing();
        let from_cache = cached.is_some();
        let (files, special) = match cached {
            Some(cached) => {
                ctx.gate.holding(cached.files.len() as u64).await;
                (cached.files, SpecialFiles::from_texts(&cached.special))
            }
            None => {
                let (stored, special) = self
                    .read_whole(&object, ctx.spool, limits, ctx.gate)
                    .await?;
                let files: Vec<CachedFile> = stored
                    .into_iter()
                    .map(|s| CachedFile {
                        path: s.path,
                        size: s.size,
                        digest: s.digest,
                    })
                    .collect();
                if let (Some(key), Some(texts)) = (&key, special.to_texts()) {
                    let cached = CachedArchive {
                        files: files.clone(),
                        special: texts.into_iter().collect(),
                    };
                    ctx.cache.record_archive(key, cached).await;
                }
                (files, special)
            }
        };
        let mut ingested = self.assemble(files, &special, ctx)?;
        ingested.bytes_read = object.fetched();
        if from_cache {
            ingested.cache_hits = ingested.files.len() as u64;
        }
        // The archive is read whole before its listing is known: both at once.
        let (files, bytes) = (
            ingested.files.len() as u64,
            ingested.files.iter().map(|f| f.size).sum(),
        );
        ctx.progress.listed(files, bytes);
        ctx.progress.hashed(files, bytes, ingested.bytes_read);
        internal_events::emit(BundleListed {
            location: &location,
            files: ingested.files.len(),
            bytes: ingested.files.iter().map(|f| f.size).sum(),
        });
        let unique: std::collections::HashSet<_> =
            ingested.files.iter().map(|f| &f.digest).collect();
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

    async fn prefetch(&self, files: &[&BundleFile], spool: &Spool) -> Result<u64, BundleError> {
        let wanted = files.iter().map(|f| (f.origin.clone(), f.digest)).collect();
        self.pass(wanted, spool).await
    }

    async fn fetch(&self, file: &BundleFile, spool: &Spool) -> Result<u64, BundleError> {
        self.pass(HashMap::from([(file.origin.clone(), file.digest)]), spool)
            .await
    }
}
