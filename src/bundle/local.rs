//! Bundles on the worker's own disk: a directory, or an archive file, for
//! the one-shot `deploy DIR` (or `deploy JOB.json --bundle PATH`) command
//! and for tests.
//!
//! No job can name one: [`BundleRef`](crate::contract::BundleRef), the wire
//! type, has no local variant, and only [`Bundles::open_local`], which the
//! command line calls with the operator's own path, builds one. A queued
//! job, written by a platform's users, can therefore never make the worker
//! read its disk.
//!
//! A directory follows every rule an S3 prefix does: names through the path
//! rules, at most `limits.max_entries` files walked, every file through the
//! bundle's gate (special files, `.assetsignore`, Cloudflare's limits)
//! before any is read. Symbolic links are refused, not followed (one could
//! point anywhere on the disk), as are FIFOs, sockets and devices, like the
//! same entries in an archive. Files are read twice at most, like S3
//! objects: to hash, and into the spool if Cloudflare lacks them, verified.
//! An archive file is read by [`ArchiveSource`].
//!
//! [`Bundles::open_local`]: super::Bundles::open_local

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use tokio_util::io::ReaderStream;

use super::archive::ArchiveLimits;
use super::body::{BodyError, SizedBody};
use super::gate::{Admission, Gate, check_special_size};
use super::path::{asset_path, check_relative, shown};
use super::site::{SpecialFile, SpecialFiles};
use super::special::ASSETS_IGNORE;
use super::{BundleError, BundleFile, BundleSource, BundleStep, IngestContext, Ingested};
use crate::spool::Spool;

/// Files hashed at once.
const CONCURRENCY: usize = 8;

/// Largest read of a local file: few enough blocking-thread round trips,
/// and `worker.fetch_concurrency` of them in flight stay a few MiB.
const READ_BLOCK: usize = 256 * 1024;

/// A read of a local file that makes no progress for this long has failed.
const STALL: Duration = Duration::from_secs(60);

/// A directory on local disk, every file under it one of the bundle's.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

/// One regular file found by the walk.
#[derive(Debug, Clone)]
pub(super) struct Found {
    pub(super) rel: String,
    pub(super) size: u64,
}

impl LocalDir {
    pub fn new(root: PathBuf) -> Self {
        LocalDir { root }
    }

    fn subject(&self, rel: &str) -> String {
        format!("{}/{}", self.root.display(), shown(rel))
    }

    /// The bytes of `rel`, held to `size`.
    async fn body(
        &self,
        rel: &str,
        size: u64,
        step: BundleStep,
    ) -> Result<SizedBody<ReaderStream<tokio::fs::File>>, BundleError> {
        let file = tokio::fs::File::open(self.root.join(rel))
            .await
            .map_err(|e| io_error(self.subject(rel), step, &e))?;
        // Read in large blocks: each read of a tokio file is a round trip
        // to a blocking thread, and the default (4 KiB) made a 400 MiB site
        // cost 100,000 of them.
        let capacity = usize::try_from(size).map_or(READ_BLOCK, |s| s.clamp(1, READ_BLOCK));
        Ok(SizedBody::new(
            ReaderStream::with_capacity(file, capacity),
            size,
            STALL,
        ))
    }

    async fn read_all(&self, found: &Found, step: BundleStep) -> Result<Vec<u8>, BundleError> {
        let bytes = self
            .body(&found.rel, found.size, step)
            .await?
            .into_memory()
            .await;
        bytes
            .map(|b| b.to_vec())
            .map_err(|e| body_error(self.subject(&found.rel), step, e))
    }
}

#[async_trait::async_trait]
impl BundleSource for LocalDir {
    fn location(&self) -> String {
        format!("{}/", self.root.display())
    }

    async fn ingest(&self, ctx: &IngestContext<'_>) -> Result<Ingested, BundleError> {
        let root = self.root.clone();
        let max_entries = ctx.limits.max_entries;
        let found = tokio::task::spawn_blocking(move || walk(&root, max_entries))
            .await
            .map_err(|e| BundleError::Storage {
                step: BundleStep::List,
                subject: self.location(),
                detail: format!("walking the directory: {e}"),
                retryable: false,
                attempts: 1,
            })??;
        if found.is_empty() {
            return Err(BundleError::NotFound {
                step: BundleStep::List,
                subject: self.location(),
                detail: "no files".into(),
            });
        }
        // Walked in one go (a blocking task): asked once, with them all.
        ctx.gate.holding(found.len() as u64).await;

        let mut special = SpecialFiles::default();
        let mut ingested = Ingested::default();
        if let Some(file) = found.iter().find(|f| f.rel == ASSETS_IGNORE) {
            check_special_size(file.size).map_err(|r| r.into_error(self.subject(&file.rel)))?;
            special.set(
                SpecialFile::AssetsIgnore,
                self.read_all(file, BundleStep::List).await?,
            );
            ingested.bytes_read += file.size;
        }
        let special_error = |error| BundleError::Special {
            subject: self.location(),
            error,
        };
        let mut gate = Gate::new(ctx.limits, special.ignore().map_err(special_error)?);
        let mut assets = Vec::new();
        for file in found {
            match gate
                .admit(&file.rel, file.size)
                .map_err(|r| r.into_error(self.subject(&file.rel)))?
            {
                Admission::Asset => assets.push(file),
                Admission::Special(kind @ (SpecialFile::Headers | SpecialFile::Redirects)) => {
                    special.set(kind, self.read_all(&file, BundleStep::List).await?);
                    ingested.bytes_read += file.size;
                }
                Admission::Special(SpecialFile::AssetsIgnore) | Admission::Skipped => {}
            }
        }
        if assets.is_empty() {
            return Err(BundleError::NotFound {
                step: BundleStep::List,
                subject: self.location(),
                detail: "no files to upload (every file is ignored or a special file)".into(),
            });
        }
        ingested.config = special
            .site_config(ctx.html_handling)
            .map_err(special_error)?;
        ctx.progress
            .listed(assets.len() as u64, assets.iter().map(|f| f.size).sum());
        ctx.progress.hashing();

        ingested.files = futures::stream::iter(assets)
            .map(|file| async move {
                let digest = self
                    .body(&file.rel, file.size, BundleStep::Hash)
                    .await?
                    .into_digest()
                    .await
                    .map_err(|e| body_error(self.subject(&file.rel), BundleStep::Hash, e))?;
                ctx.progress.hashed(1, file.size, file.size);
                Ok::<_, BundleError>(BundleFile {
                    path: asset_path(&file.rel),
                    size: file.size,
                    digest,
                    origin: file.rel,
                    content_key: None,
                })
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        // Collected by doubling: up to half of it slack, for the whole deploy.
        ingested.files.shrink_to_fit();
        ingested.bytes_read += ingested.files.iter().map(|f| f.size).sum::<u64>();
        Ok(ingested)
    }

    async fn fetch(&self, file: &BundleFile, spool: &Spool) -> Result<u64, BundleError> {
        self.body(&file.origin, file.size, BundleStep::Fetch)
            .await?
            .into_spool_expecting(spool, &file.digest)
            .await
            .map_err(|e| body_error(self.subject(&file.origin), BundleStep::Fetch, e))?;
        Ok(file.size)
    }
}

/// Every regular file under `root`, in name order, its path through the
/// path rules; links and special files refused.
pub(super) fn walk(root: &Path, max_entries: u64) -> Result<Vec<Found>, BundleError> {
    let max_depth = ArchiveLimits::default().max_depth;
    let mut found = Vec::new();
    let mut stack = vec![(PathBuf::new(), 0usize)];
    let location = format!("{}/", root.display());
    while let Some((dir, depth)) = stack.pop() {
        let listed = fs::read_dir(root.join(&dir))
            .map_err(|e| io_error(format!("{location}{}", dir.display()), BundleStep::List, &e))?;
        let mut entries = listed
            .map(|entry| entry.map(|e| (e.file_name(), e.path())))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io_error(location.clone(), BundleStep::List, &e))?;
        entries.sort();
        let mut subdirs = Vec::new();
        for (name, path) in entries {
            let rel_path = dir.join(&name);
            let Some(rel) = rel_path.to_str().map(str::to_owned) else {
                return Err(BundleError::Invalid {
                    subject: format!("{location}{}", rel_path.to_string_lossy()),
                    reason: "name is not UTF-8".into(),
                });
            };
            let subject = format!("{location}{}", shown(&rel));
            let invalid = |reason: &str| BundleError::Invalid {
                subject: subject.clone(),
                reason: reason.into(),
            };
            check_relative(&rel).map_err(|e| invalid(&e.to_string()))?;
            let meta = fs::symlink_metadata(&path)
                .map_err(|e| io_error(subject.clone(), BundleStep::List, &e))?;
            let kind = meta.file_type();
            if kind.is_symlink() {
                return Err(invalid("symbolic link (not followed)"));
            } else if kind.is_dir() {
                if depth + 1 >= max_depth {
                    return Err(invalid(&format!("more than {max_depth} levels deep")));
                }
                subdirs.push((rel_path, depth + 1));
            } else if kind.is_file() {
                if found.len() as u64 >= max_entries {
                    return Err(BundleError::TooLarge {
                        step: BundleStep::List,
                        subject,
                        detail: format!(
                            "file {} of the directory, over limits.max_entries ({max_entries})",
                            found.len() + 1
                        ),
                    });
                }
                found.push(Found {
                    rel,
                    size: meta.len(),
                });
            } else {
                return Err(invalid("not a regular file (a FIFO, socket or device)"));
            }
        }
        stack.extend(subdirs);
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(found)
}

pub(super) fn io_error(subject: String, step: BundleStep, e: &std::io::Error) -> BundleError {
    match e.kind() {
        std::io::ErrorKind::NotFound => BundleError::NotFound {
            step,
            subject,
            detail: "not found".into(),
        },
        _ => BundleError::Storage {
            step,
            subject,
            detail: e.to_string(),
            retryable: false,
            attempts: 1,
        },
    }
}

fn body_error(subject: String, step: BundleStep, e: BodyError) -> BundleError {
    match e {
        BodyError::Mismatch { expected, actual } => BundleError::Mismatch {
            subject,
            detail: "not the content it was hashed as (changed since)",
            expected,
            actual,
        },
        BodyError::Local(error) => BundleError::Local {
            step,
            subject,
            error,
        },
        other => BundleError::Storage {
            step,
            subject,
            detail: other.to_string(),
            retryable: false,
            attempts: 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bundle::BundleErrorKind;
    use crate::cache::DigestCache;
    use crate::config::LimitSettings;
    use crate::manifest::ContentDigest;

    fn write(dir: &Path, rel: &str, bytes: &[u8]) {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    async fn ingest(dir: &Path, spool: &Spool) -> Result<Ingested, BundleError> {
        LocalDir::new(dir.to_path_buf())
            .ingest(&IngestContext {
                limits: &LimitSettings::default(),
                cache: &Arc::new(DigestCache::disabled()),
                spool,
                html_handling: None,
                progress: &(),
                gate: &(),
            })
            .await
    }

    #[tokio::test]
    async fn a_directory_is_a_bundle_with_the_same_rules() {
        let site = tempfile::tempdir().unwrap();
        write(site.path(), "index.html", b"<h1>hi</h1>");
        write(site.path(), "css/site.css", b"body{}");
        write(site.path(), "drafts/wip.html", b"wip");
        write(site.path(), ".assetsignore", b"drafts/\n");
        write(site.path(), "_redirects", b"/old /new 301\n");
        let scratch = tempfile::tempdir().unwrap();
        let spool = Spool::create(scratch.path()).unwrap();
        let ingested = ingest(site.path(), &spool).await.unwrap();
        let paths: Vec<&str> = ingested.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/css/site.css", "/index.html"]);
        assert_eq!(
            ingested.config.redirects.as_deref(),
            Some("/old /new 301\n")
        );
        assert_eq!(ingested.files[1].digest, ContentDigest::of(b"<h1>hi</h1>"));

        let source = LocalDir::new(site.path().to_path_buf());
        assert_eq!(source.fetch(&ingested.files[1], &spool).await.unwrap(), 11);
        assert!(spool.file(&ingested.files[1].digest).await.is_ok());
        // Rewritten after hashing, same size: refused, not uploaded.
        write(site.path(), "css/site.css", b"body{x");
        let err = source.fetch(&ingested.files[0], &spool).await.unwrap_err();
        assert_eq!(err.kind(), BundleErrorKind::Mismatch, "{err}");
    }

    #[tokio::test]
    async fn links_and_special_files_are_refused_not_followed() {
        let scratch = tempfile::tempdir().unwrap();
        let spool = Spool::create(&scratch.path().join("spool")).unwrap();

        let linked = tempfile::tempdir().unwrap();
        write(linked.path(), "index.html", b"x");
        std::os::unix::fs::symlink("/etc/passwd", linked.path().join("passwd")).unwrap();
        let err = ingest(linked.path(), &spool).await.unwrap_err();
        assert_eq!(err.kind(), BundleErrorKind::Invalid);
        assert_eq!(
            err.to_string(),
            format!(
                "{}/passwd: invalid path: symbolic link (not followed)",
                linked.path().display()
            )
        );

        let piped = tempfile::tempdir().unwrap();
        write(piped.path(), "index.html", b"x");
        let made = std::process::Command::new("mkfifo")
            .arg(piped.path().join("pipe"))
            .status()
            .unwrap();
        assert!(made.success());
        let err = ingest(piped.path(), &spool).await.unwrap_err();
        assert_eq!(err.kind(), BundleErrorKind::Invalid);
        assert!(
            err.to_string()
                .contains("/pipe: invalid path: not a regular file"),
            "{err}"
        );

        let odd = tempfile::tempdir().unwrap();
        write(odd.path(), "e%2Ff.html", b"x");
        let err = ingest(odd.path(), &spool).await.unwrap_err();
        assert_eq!(err.kind(), BundleErrorKind::Invalid);
        assert!(
            err.to_string().contains("e%2Ff.html: invalid path:"),
            "{err}"
        );

        let empty = tempfile::tempdir().unwrap();
        let err = ingest(empty.path(), &spool).await.unwrap_err();
        assert_eq!(err.kind(), BundleErrorKind::NotFound);
        assert_eq!(spool.path().read_dir().unwrap().count(), 0, "nothing read");
    }
}
