//! Per-job, content-addressed scratch space on disk.
//!
//! The bytes the upload step sends come from here: after the upload session
//! says which assets Cloudflare lacks, only those files are read from the
//! bundle's storage into the spool, under the name of their content digest
//! (the SHA-256 of the bytes, as hex), and verified on the way against the
//! digest the manifest was built from ([`SpoolWriter::finish_expecting`]).
//! So the disk a job uses is bounded by what is missing, and memory by the
//! fetch concurrency and the chunk size, whatever the bundle's size.
//! Sources that cannot read a file twice (archives streamed once) spool
//! while hashing instead ([`SpoolWriter::finish`]; a small file read whole
//! is stored in one blocking call by a [`SpoolPutter`]).
//!
//! Content addressing means identical bytes are stored once, however many
//! paths (and asset hashes: one per extension and tenant) they appear under.
//!
//! Layout: a [`SpoolArea`] per process, a directory under `worker.spool_dir`
//! that holds a locked `.lock` file for as long as the process lives; one
//! [`tempfile::TempDir`] per job inside it, removed when the [`Spool`]
//! drops. A [`SpoolWriter`] writes to a `.part-*` temporary file in that
//! directory and renames it to the digest when finished; an unfinished
//! writer removes its file when dropped, so a retried object restarts
//! cleanly and a failed job leaves nothing behind.
//!
//! What a killed process (SIGKILL, an OOM kill, a second SIGTERM) leaves
//! behind is removed by the next process that opens a [`SpoolArea`] in the
//! same directory: an area whose lock can be taken has no living owner
//! (one changed within the last minute is left for later, so two processes
//! starting together never probe each other's half-made areas).
//! The bytes all spools of a process hold are bounded by
//! `worker.spool_max_bytes`: a write past it fails (a retryable local
//! failure), so a disk is never filled by one worker.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tempfile::{NamedTempFile, TempDir, TempPath};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::manifest::{ContentDigest, ContentHasher};

mod put;

pub use self::put::SpoolPutter;

/// Why a file could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The bytes are not the content they were read for: nothing is stored.
    #[error("content is {actual}, expected {expected}")]
    Mismatch {
        expected: ContentDigest,
        actual: ContentDigest,
    },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Writes go through a buffer this size, so small network chunks do not
/// each cost a system call.
const WRITE_BUFFER: usize = 64 * 1024;

/// Where the areas of every process live, inside `worker.spool_dir`.
const AREAS_DIR: &str = "wfp-deployer-spools";

/// How long an area is left alone after it last changed, whatever its lock
/// says (see `remove_stale_areas`).
const FRESH_AREA: std::time::Duration = std::time::Duration::from_secs(60);

/// The spool space of one process: a directory locked for the process's
/// life, and the byte budget all its jobs share.
#[derive(Debug)]
pub struct SpoolArea {
    dir: TempDir,
    /// Held (locked) while the process lives; the OS drops the lock when it
    /// dies, however it dies.
    _lock: std::fs::File,
    budget: Arc<Budget>,
}

/// Bytes written to this process's spools, against the limit.
#[derive(Debug)]
struct Budget {
    used: AtomicU64,
    max: u64,
}

impl Budget {
    fn take(&self, bytes: u64) -> io::Result<()> {
        let before = self.used.fetch_add(bytes, Ordering::SeqCst);
        if before.saturating_add(bytes) > self.max {
            self.used.fetch_sub(bytes, Ordering::SeqCst);
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "spool full: {before} bytes in use, {bytes} more would pass the limit of {} \
                     (worker.spool_max_bytes)",
                    self.max
                ),
            ));
        }
        Ok(())
    }

    fn give_back(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::SeqCst);
    }
}

impl SpoolArea {
    /// Opens this process's area under `root` (created if missing), holding
    /// at most `max_bytes` across its jobs, after removing the areas of
    /// processes that died. Returns the area and how many stale areas it
    /// removed.
    pub fn open(root: &Path, max_bytes: u64) -> io::Result<(SpoolArea, usize)> {
        let areas = root.join(AREAS_DIR);
        std::fs::create_dir_all(&areas)?;
        let removed = remove_stale_areas(&areas);
        let dir = tempfile::Builder::new()
            .prefix("proc-")
            .tempdir_in(&areas)?;
        let lock = std::fs::File::create(dir.path().join(".lock"))?;
        lock.try_lock().map_err(|e| {
            io::Error::other(format!(
                "{}: cannot lock a fresh spool area: {e}",
                dir.path().display()
            ))
        })?;
        let budget = Arc::new(Budget {
            used: AtomicU64::new(0),
            max: max_bytes,
        });
        Ok((
            SpoolArea {
                dir,
                _lock: lock,
                budget,
            },
            removed,
        ))
    }

    /// A fresh spool for one job, so concurrent jobs never see each other's
    /// files.
    pub fn spool(&self) -> io::Result<Spool> {
        let dir = tempfile::Builder::new()
            .prefix("job-")
            .tempdir_in(self.dir.path())?;
        Ok(Spool {
            dir,
            budget: self.budget.clone(),
            held: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Where this area lives.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes held by this process's spools now.
    pub fn used_bytes(&self) -> u64 {
        self.budget.used.load(Ordering::SeqCst)
    }
}

/// Removes every area in `areas` whose lock can be taken: its process is
/// gone. Areas changed within [`FRESH_AREA`] are left alone: a process
/// starting beside this one creates its area, then its lock file, then
/// locks it, and a probe of ours in between would take the lock from it
/// (or remove its area). Best effort: an area that cannot be read or
/// removed is left for the next start.
fn remove_stale_areas(areas: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(areas) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let fresh = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| at.elapsed().ok())
            .is_none_or(|age| age < FRESH_AREA);
        if fresh {
            continue;
        }
        let stale = match std::fs::File::open(path.join(".lock")) {
            // Locked by a living process: WouldBlock. Lockable: its owner died.
            Ok(lock) => lock.try_lock().is_ok(),
            // No lock file: the process died before it made one.
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        };
        if stale && std::fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// One job's scratch directory; removed with everything in it on drop, and
/// its bytes given back to the area's budget.
#[derive(Debug)]
pub struct Spool {
    dir: TempDir,
    budget: Arc<Budget>,
    /// Bytes this spool took from the budget.
    held: Arc<AtomicU64>,
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.budget.give_back(self.held.load(Ordering::SeqCst));
    }
}

impl Spool {
    /// A spool of its own under `root` with no byte limit beyond the disk
    /// (for tools and tests; the worker takes spools from its
    /// [`SpoolArea`]).
    pub fn create(root: &Path) -> io::Result<Spool> {
        std::fs::create_dir_all(root)?;
        let dir = tempfile::Builder::new()
            .prefix("wfp-spool-")
            .tempdir_in(root)?;
        Ok(Spool {
            dir,
            budget: Arc::new(Budget {
                used: AtomicU64::new(0),
                max: u64::MAX,
            }),
            held: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Where this spool lives (for logs and tests).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts a new file. Its name is known only once all its bytes are seen,
    /// so it is written to a temporary file first.
    pub fn writer(&self) -> io::Result<SpoolWriter> {
        let temp = tempfile::Builder::new()
            .prefix(".part-")
            .tempfile_in(self.dir.path())?;
        let (file, path) = NamedTempFile::into_parts(temp);
        Ok(SpoolWriter {
            file: BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file)),
            path,
            dir: self.dir.path().to_path_buf(),
            hasher: ContentHasher::new(),
            budget: self.budget.clone(),
            held: self.held.clone(),
        })
    }

    /// The file holding `content`, and its length, for the step that sends
    /// it on. A digest names files as 64 hex characters, so it can never
    /// name a path outside the spool.
    pub async fn file(&self, content: &ContentDigest) -> io::Result<SpoolFile> {
        let name = content.to_hex();
        let path = self.dir.path().join(&name);
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(SpoolFile {
                path,
                len: meta.len(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("spool: no content {content}"),
            )),
            Err(e) => Err(io::Error::new(e.kind(), format!("spool: {name}: {e}"))),
        }
    }
}

impl Spool {
    /// Removes every stored content `keep` rejects and gives its bytes back
    /// to the budget: copies kept while hashing that the upload turned out
    /// not to need, so they leave room for what it does. Returns the bytes
    /// freed.
    pub async fn retain(&self, keep: impl Fn(&ContentDigest) -> bool) -> io::Result<u64> {
        let mut freed = 0;
        let mut entries = tokio::fs::read_dir(self.dir.path()).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name();
            // `.part-*` files are writers' (and not digests).
            let Some(content) = name.to_str().and_then(ContentDigest::from_hex) else {
                continue;
            };
            if keep(&content) {
                continue;
            }
            let len = entry.metadata().await?.len();
            tokio::fs::remove_file(entry.path()).await?;
            self.held.fetch_sub(len, Ordering::SeqCst);
            self.budget.give_back(len);
            freed += len;
        }
        Ok(freed)
    }
}

/// One stored content: where it is and how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolFile {
    pub path: PathBuf,
    pub len: u64,
}

/// One file being written to a [`Spool`]: hashed as it is written.
///
/// Dropping it before [`SpoolWriter::finish`] removes its temporary file.
pub struct SpoolWriter {
    file: BufWriter<tokio::fs::File>,
    /// Deletes the temporary file on drop unless persisted.
    path: TempPath,
    dir: PathBuf,
    hasher: ContentHasher,
    budget: Arc<Budget>,
    /// The spool's count of bytes taken from the budget.
    held: Arc<AtomicU64>,
}

impl std::fmt::Debug for SpoolWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolWriter")
            .field("path", &self.path)
            .field("size", &self.hasher.size())
            .finish()
    }
}

impl SpoolWriter {
    /// Hashes and writes one chunk.
    /// Fails, writing nothing, when the process's spools would pass
    /// `worker.spool_max_bytes`.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let bytes = chunk.len() as u64;
        self.budget.take(bytes)?;
        self.held.fetch_add(bytes, Ordering::SeqCst);
        // Written first, hashed after: a failed write leaves the hash
        // without the chunk, so `abandon` hands back the bytes' hash so far.
        self.file.write_all(chunk).await?;
        self.hasher.update(chunk);
        Ok(())
    }

    /// Gives the file up (it is removed) and returns the hash of the
    /// bytes written so far, for a reader that goes on hashing without
    /// keeping: the spool was full, or the disk failed.
    pub fn abandon(self) -> ContentHasher {
        self.hasher
    }

    /// Like [`SpoolWriter::finish`], for a copy kept on the way: the digest
    /// is the point, the file a bonus, so a failure to file it only loses
    /// the copy.
    pub async fn finish_kept(self) -> ContentDigest {
        let (digest, closed) = self.close().await;
        if let Ok((path, dir)) = closed {
            let _ = persist(path, &dir, &digest).await;
        }
        digest
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.hasher.size()
    }

    /// Flushes the file and files it under its digest, which it returns.
    /// Content already in the spool is kept once: the duplicate is simply
    /// discarded.
    pub async fn finish(self) -> io::Result<ContentDigest> {
        let (digest, closed) = self.close().await;
        let (path, dir) = closed?;
        persist(path, &dir, &digest).await?;
        Ok(digest)
    }

    /// Like [`SpoolWriter::finish`], but the bytes must be `expected`:
    /// otherwise nothing is stored and the digest they do have is returned
    /// in the error.
    pub async fn finish_expecting(self, expected: &ContentDigest) -> Result<(), SpoolError> {
        let (actual, closed) = self.close().await;
        let (path, dir) = closed?;
        if actual != *expected {
            // Dropping `path` removes the file.
            return Err(SpoolError::Mismatch {
                expected: *expected,
                actual,
            });
        }
        Ok(persist(path, &dir, &actual).await?)
    }

    /// Flushes and closes the file; returns the bytes' digest (known
    /// whether or not the file could be closed) and where the file is.
    async fn close(self) -> (ContentDigest, io::Result<(TempPath, PathBuf)>) {
        let SpoolWriter {
            mut file,
            path,
            dir,
            hasher,
            ..
        } = self;
        let digest = hasher.finish();
        if let Err(e) = file.flush().await {
            return (digest, Err(e));
        }
        // Close before renaming; the data need not be synced: the spool does
        // not outlive the process.
        drop(file.into_inner().into_std().await);
        (digest, Ok((path, dir)))
    }
}

/// Files the closed temporary file at `path` under `digest`.
async fn persist(path: TempPath, dir: &Path, digest: &ContentDigest) -> io::Result<()> {
    let dest = dir.join(digest.to_hex());
    if tokio::fs::try_exists(&dest).await? {
        // Same digest, same bytes: dropping `path` removes the duplicate.
        return Ok(());
    }
    // Two writers with the same content may race here; rename replaces
    // atomically and both hold the same bytes, so either outcome is right.
    tokio::task::spawn_blocking(move || path.persist(&dest))
        .await
        .map_err(io::Error::other)?
        .map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests;
