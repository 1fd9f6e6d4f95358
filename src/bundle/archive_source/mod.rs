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
//! bytes), under caps taken from `limits.*`; then every file passes the
//! bundle's [`Gate`] like any source's.

mod origin;
mod sink;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{Mutex, mpsc};

use self::origin::{Input, Origin, Pinned};
use self::sink::{Closed, FetchSink, Finished, IngestSink, PIECES_IN_FLIGHT, StoreFailure, Stored};
use super::archive::{
    ArchiveError, ArchiveFormat, ArchiveLimits, ArchiveSummary, EntrySink, Limit, ReadOptions,
    read_tar, read_zip,
};
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

    /// The archive read whole: every file under the root spooled and
    /// hashed, the special files in memory.
    async fn read_whole(
        &self,
        object: &Pinned,
        spool: &Spool,
        limits: ArchiveLimits,
    ) -> Result<(Vec<Stored>, SpecialFiles), BundleError> {
        let (pieces, received) = mpsc::channel(PIECES_IN_FLIGHT);
        let reading = self.run(
            object,
            BundleStep::List,
            limits,
            IngestSink::new(pieces),
            IngestSink::into_special,
        );
        let (read, stored) = tokio::join!(reading, sink::store(received, spool));
        let (result, special) = read?;
        let stored = self.settle(result, stored, object, BundleStep::List)?;
        Ok((stored, special))
    }

    /// A later pass: spools the files of `wanted` (path → digest) not in
    /// the spool yet; returns the bytes it read.
    async fn pass(
        &self,
        mut wanted: HashMap<String, crate::manifest::ContentDigest>,
        spool: &Spool,
    ) -> Result<u64, BundleError> {
        let _one = self.passes.lock().await;
        let mut spooled = Vec::new();
        for (path, digest) in &wanted {
            if spool.file(digest).await.is_ok() {
                spooled.push(path.clone());
            }
        }
        for path in spooled {
            wanted.remove(&path);
        }
        if wanted.is_empty() {
            return Ok(0);
        }
        let Some(pass) = self.pinned.get() else {
            return Err(BundleError::NotFound {
                step: BundleStep::Fetch,
                subject: self.location(),
                detail: "asked for files before the archive was ingested".into(),
            });
        };
        let before = pass.object.fetched();
        let (pieces, received) = mpsc::channel(PIECES_IN_FLIGHT);
        let reading = self.run(
            &pass.object,
            BundleStep::Fetch,
            pass.limits,
            FetchSink::new(pieces, wanted),
            FetchSink::into_missing,
        );
        let (read, stored) = tokio::join!(reading, sink::store(received, spool));
        let (result, missing) = read?;
        let settled = self.settle(result, stored, &pass.object, BundleStep::Fetch);
        // The manifest said otherwise: no worker may trust it again.
        let wrong = match &settled {
            Err(BundleError::Mismatch { .. }) => true,
            Err(_) => false,
            Ok(_) => !missing.is_empty(),
        };
        if wrong && let Some(key) = &pass.key {
            pass.cache.forget_archive(key).await;
        }
        settled?;
        if let Some(path) = missing.first() {
            return Err(BundleError::Storage {
                step: BundleStep::Fetch,
                subject: format!("{}: {}", self.location(), shown(path)),
                detail: "not in the archive read again (changed, or a wrong cached manifest)"
                    .into(),
                retryable: true,
                attempts: 1,
            });
        }
        Ok(pass.object.fetched() - before)
    }

    /// Reads the archive in a blocking task, giving its files to `sink`;
    /// `finish` takes what the caller needs from the sink, which is then
    /// dropped (closing its channel).
    async fn run<S, T>(
        &self,
        object: &Pinned,
        step: BundleStep,
        limits: ArchiveLimits,
        mut sink: S,
        finish: fn(S) -> T,
    ) -> Result<(Result<ArchiveSummary, ArchiveError>, T), BundleError>
    where
        S: EntrySink + Send + 'static,
        T: Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let input = object.input(self.format, &self.location(), step, &stop)?;
        // Dropped with this future (a job timeout, a shutdown): the blocking
        // read then fails at its next read instead of going on for nobody.
        let _stop_on_drop = StopOnDrop(stop);
        let root = self.root.clone();
        let task = tokio::task::spawn_blocking(move || {
            let options = ReadOptions {
                root: root.as_deref(),
                limits,
            };
            let result = match input {
                Input::Tar(compression, reader) => {
                    read_tar(compression, reader, &options, &mut sink)
                }
                Input::Zip(reader) => read_zip(reader, &options, &mut sink),
            };
            (result, finish(sink))
        });
        match task.await {
            Ok(done) => Ok(done),
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(BundleError::Storage {
                    step,
                    subject: self.location(),
                    detail: "reading the archive was cancelled".into(),
                    retryable: true,
                    attempts: 1,
                }),
            },
        }
    }

    /// One outcome from the reader's and the spool's: the spool's failure
    /// first (it stopped the reader), then the archive's.
    fn settle(
        &self,
        read: Result<ArchiveSummary, ArchiveError>,
        stored: Result<Vec<Stored>, StoreFailure>,
        object: &Pinned,
        step: BundleStep,
    ) -> Result<Vec<Stored>, BundleError> {
        let stored = stored.map_err(|failure| match failure {
            StoreFailure::Io(error) => BundleError::Local {
                step,
                subject: self.location(),
                error,
            },
            StoreFailure::Mismatch {
                path,
                expected,
                actual,
            } => BundleError::Mismatch {
                subject: format!("{}: {}", self.location(), shown(&path)),
                detail: "not the content the archive's manifest says (changed, or a wrong cached manifest)",
                expected,
                actual,
            },
        });
        match read {
            Ok(_) => stored,
            Err(ArchiveError::Sink { source, .. }) if source.is::<Finished>() => stored,
            Err(ArchiveError::Sink { source, .. }) if source.is::<Closed>() => {
                stored.and_then(|_| Err(self.stopped(step)))
            }
            Err(error) => {
                stored?;
                Err(self.archive_error(error, object, step))
            }
        }
    }

    fn stopped(&self, step: BundleStep) -> BundleError {
        BundleError::Storage {
            step,
            subject: self.location(),
            detail: "the spool stopped taking files".into(),
            retryable: true,
            attempts: 1,
        }
    }

    /// The bundle error of an archive refused or unreadable.
    fn archive_error(&self, error: ArchiveError, object: &Pinned, step: BundleStep) -> BundleError {
        let error = match error {
            ArchiveError::Io { source, .. } => {
                return match source.downcast::<BundleError>() {
                    Ok(storage) => storage,
                    Err(other) => BundleError::Storage {
                        step,
                        subject: self.location(),
                        detail: format!("reading the archive: {other}"),
                        retryable: false,
                        attempts: 1,
                    },
                };
            }
            ArchiveError::Sink { entry, source } => {
                return BundleError::Storage {
                    step,
                    subject: format!("{}: {entry}", self.location()),
                    detail: format!("storing the file: {source}"),
                    retryable: true,
                    attempts: 1,
                };
            }
            other => other,
        };
        let note = match &error {
            ArchiveError::Limit { limit, .. } => format!(
                " ({}; stopped after reading {} of the archive's {} bytes)",
                setting(*limit),
                object.fetched(),
                object.size()
            ),
            _ => String::new(),
        };
        BundleError::Archive {
            step,
            subject: self.location(),
            error,
            note,
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
        let mut ingested = Ingested::default();
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

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The name of the setting behind an archive cap.
fn setting(limit: Limit) -> &'static str {
    match limit {
        Limit::Files => "limits.max_entries",
        Limit::FileBytes => "limits.max_file_bytes",
        Limit::TotalBytes => "limits.max_archive_bytes",
        Limit::Ratio => "limits.max_archive_ratio",
        Limit::PathBytes => "the longest S3 key",
        Limit::HeaderBytes | Limit::CentralDirectoryBytes => "a fixed cap",
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
            Some(cached) => (cached.files, SpecialFiles::from_texts(&cached.special)),
            None => {
                let (stored, special) = self.read_whole(&object, ctx.spool, limits).await?;
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
