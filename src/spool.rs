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
//! while hashing instead ([`SpoolWriter::finish`]).
//!
//! Content addressing means identical bytes are stored once, however many
//! paths (and asset hashes: one per extension and tenant) they appear under.
//!
//! Layout: one [`tempfile::TempDir`] per job, removed when the [`Spool`]
//! drops. A [`SpoolWriter`] writes to a `.part-*` temporary file in that
//! directory and renames it to the digest when finished; an
//! unfinished writer removes its file when dropped, so a retried object
//! restarts cleanly and a failed job leaves nothing behind.

use std::io;
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempDir, TempPath};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::manifest::{ContentDigest, ContentHasher};

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

/// One job's scratch directory; removed with everything in it on drop.
#[derive(Debug)]
pub struct Spool {
    dir: TempDir,
}

impl Spool {
    /// Creates a fresh spool directory under `root` (created if missing), so
    /// concurrent jobs never see each other's files.
    pub fn create(root: &Path) -> io::Result<Spool> {
        std::fs::create_dir_all(root)?;
        let dir = tempfile::Builder::new()
            .prefix("wfp-spool-")
            .tempdir_in(root)?;
        Ok(Spool { dir })
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
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.update(chunk);
        self.file.write_all(chunk).await
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.hasher.size()
    }

    /// Flushes the file and files it under its digest, which it returns.
    /// Content already in the spool is kept once: the duplicate is simply
    /// discarded.
    pub async fn finish(self) -> io::Result<ContentDigest> {
        let (path, dir, digest) = self.close().await?;
        persist(path, &dir, &digest).await?;
        Ok(digest)
    }

    /// Like [`SpoolWriter::finish`], but the bytes must be `expected`:
    /// otherwise nothing is stored and the digest they do have is returned
    /// in the error.
    pub async fn finish_expecting(self, expected: &ContentDigest) -> Result<(), SpoolError> {
        let (path, dir, actual) = self.close().await?;
        if actual != *expected {
            // Dropping `path` removes the file.
            return Err(SpoolError::Mismatch {
                expected: *expected,
                actual,
            });
        }
        Ok(persist(path, &dir, &actual).await?)
    }

    /// Flushes and closes the file; returns where it is and its digest.
    async fn close(self) -> io::Result<(TempPath, PathBuf, ContentDigest)> {
        let SpoolWriter {
            mut file,
            path,
            dir,
            hasher,
        } = self;
        file.flush().await?;
        // Close before renaming; the data need not be synced: the spool does
        // not outlive the process.
        drop(file.into_inner().into_std().await);
        Ok((path, dir, hasher.finish()))
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
mod tests {
    use super::*;

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The bytes stored for `content`, read back through [`Spool::file`].
    async fn stored(spool: &Spool, content: &ContentDigest) -> Vec<u8> {
        let file = spool.file(content).await.unwrap();
        let bytes = tokio::fs::read(&file.path).await.unwrap();
        assert_eq!(bytes.len() as u64, file.len);
        bytes
    }

    async fn store(spool: &Spool, chunks: &[&[u8]]) -> ContentDigest {
        let mut w = spool.writer().unwrap();
        for c in chunks {
            w.write(c).await.unwrap();
        }
        w.finish().await.unwrap()
    }

    #[tokio::test]
    async fn finish_names_the_file_by_its_digest() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let mut w = spool.writer().unwrap();
        w.write(b"hello ").await.unwrap();
        w.write(b"world").await.unwrap();
        assert_eq!(w.size(), 11);
        let digest = w.finish().await.unwrap();
        assert_eq!(digest, ContentDigest::of(b"hello world"));
        assert_eq!(files_in(spool.path()), vec![digest.to_hex()]);
        assert_eq!(stored(&spool, &digest).await, b"hello world");
    }

    #[tokio::test]
    async fn large_content_round_trips() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
        let chunks: Vec<&[u8]> = data.chunks(10_007).collect();
        let digest = store(&spool, &chunks).await;
        assert_eq!(digest, ContentDigest::of(&data));
        assert_eq!(stored(&spool, &digest).await, data);
    }

    #[tokio::test]
    async fn identical_content_is_stored_once() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let a = store(&spool, &[b"same", b" bytes"]).await;
        let b = store(&spool, &[b"same bytes"]).await;
        let c = store(&spool, &[b"other"]).await;
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut want = vec![a.to_hex(), c.to_hex()];
        want.sort();
        assert_eq!(files_in(spool.path()), want, "no temporary files left");
    }

    #[tokio::test]
    async fn empty_file_is_valid_content() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let digest = store(&spool, &[]).await;
        assert_eq!(digest, ContentDigest::of(b""));
        assert!(stored(&spool, &digest).await.is_empty());
    }

    #[tokio::test]
    async fn expected_content_is_stored_and_other_bytes_are_not() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let expected = ContentDigest::of(b"right");
        let mut w = spool.writer().unwrap();
        w.write(b"right").await.unwrap();
        w.finish_expecting(&expected).await.unwrap();
        assert_eq!(stored(&spool, &expected).await, b"right");

        let lie = ContentDigest::of(b"what the cache said");
        let mut w = spool.writer().unwrap();
        w.write(b"what S3 holds").await.unwrap();
        let err = w.finish_expecting(&lie).await.unwrap_err();
        let SpoolError::Mismatch { expected, actual } = err else {
            panic!("not a mismatch: {err}");
        };
        assert_eq!(expected, lie);
        assert_eq!(actual, ContentDigest::of(b"what S3 holds"));
        assert_eq!(
            files_in(spool.path()),
            vec![ContentDigest::of(b"right").to_hex()]
        );
    }

    #[tokio::test]
    async fn dropping_an_unfinished_writer_removes_its_file() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let mut w = spool.writer().unwrap();
        w.write(&[7u8; 200_000]).await.unwrap();
        assert_eq!(files_in(spool.path()).len(), 1);
        drop(w);
        assert!(files_in(spool.path()).is_empty());
    }

    #[tokio::test]
    async fn dropping_the_spool_removes_its_directory() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(&root.path().join("nested/root")).unwrap();
        store(&spool, &[b"x"]).await;
        let dir = spool.path().to_path_buf();
        assert!(dir.exists());
        drop(spool);
        assert!(!dir.exists());
    }

    #[tokio::test]
    async fn a_missing_content_is_named() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let missing = ContentDigest::of(b"never stored");
        let err = spool.file(&missing).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains(&missing.to_hex()), "{err}");
    }
}
