//! Reading an archive: a blocking task runs the archive reader while the
//! job's spool takes the files it hands over, and the two outcomes become
//! one. The first read takes every file ([`ArchiveSource::read_whole`]); a
//! later pass only those the upload lacks ([`ArchiveSource::pass`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use super::ArchiveSource;
use super::origin::{Input, Pinned};
use super::sink::{
    self, Closed, FetchSink, Finished, IngestSink, PIECES_IN_FLIGHT, StoreFailure, Stored,
};
use crate::bundle::archive::{
    ArchiveError, ArchiveLimits, ArchiveSummary, EntrySink, Limit, ReadOptions, read_tar, read_zip,
};
use crate::bundle::path::shown;
use crate::bundle::site::SpecialFiles;
use crate::bundle::{BundleError, BundleSource, BundleStep, ListingGate};
use crate::manifest::ContentDigest;
use crate::spool::Spool;

impl ArchiveSource {
    /// The archive read whole: every file under the root spooled and
    /// hashed, the special files in memory; `gate` told of each file.
    pub(super) async fn read_whole(
        &self,
        object: &Pinned,
        spool: &Spool,
        limits: ArchiveLimits,
        gate: &dyn ListingGate,
    ) -> Result<(Vec<Stored>, SpecialFiles), BundleError> {
        let (pieces, received) = mpsc::channel(PIECES_IN_FLIGHT);
        let reading = self.run(
            object,
            BundleStep::List,
            limits,
            IngestSink::new(pieces),
            IngestSink::into_special,
        );
        let (read, stored) = tokio::join!(reading, sink::store(received, spool, gate));
        let (result, special) = read?;
        let stored = self.settle(result, stored, object, BundleStep::List)?;
        Ok((stored, special))
    }

    /// A later pass: spools the files of `wanted` (path → digest) not in
    /// the spool yet; returns the bytes it read.
    pub(super) async fn pass(
        &self,
        mut wanted: HashMap<String, ContentDigest>,
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
        // The files wanted of a bundle already ingested: the gate has
        // been asked about them all.
        let (read, stored) = tokio::join!(reading, sink::store(received, spool, &()));
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
