//! Per-job, content-addressed scratch space on disk.
//!
//! Each object of a bundle is read from storage once: its bytes are hashed
//! while they stream past and written here at the same time, under the name
//! of their asset hash. The upload step later reads back only the few files
//! Cloudflare asks for. So memory stays bounded by configuration (fetch
//! concurrency × chunk size) whatever the bundle's size, and the disk used is
//! bounded by `limits.max_total_bytes`.
//!
//! Content addressing also means identical files are stored once, and a
//! future shared hash cache can answer "do we have this hash?" by name alone.
//!
//! Layout: one [`tempfile::TempDir`] per job, removed when the [`Spool`]
//! drops. A [`SpoolWriter`] writes to a `.part-*` temporary file in that
//! directory and renames it to the hash on [`SpoolWriter::finish`]; an
//! unfinished writer removes its file when dropped, so a retried object
//! restarts cleanly and a failed job leaves nothing behind.

use std::io;
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempDir, TempPath};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::manifest::{ManifestEntry, StreamingHasher, is_asset_hash};

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
            hasher: StreamingHasher::new(),
        })
    }

    /// The file stored under `hash`, and its length, for the step that
    /// sends it on. Only well-formed asset hashes are looked up, so a hash
    /// can never name a path outside the spool.
    pub async fn file(&self, hash: &str) -> io::Result<SpoolFile> {
        if !is_asset_hash(hash) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("spool: {hash:?} is not an asset hash"),
            ));
        }
        let path = self.dir.path().join(hash);
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(SpoolFile {
                path,
                len: meta.len(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("spool: no content with hash {hash}"),
            )),
            Err(e) => Err(io::Error::new(e.kind(), format!("spool: {hash}: {e}"))),
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
    hasher: StreamingHasher,
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

    /// Flushes the file and files it under its hash. Content already in the
    /// spool is kept once: the duplicate is simply discarded.
    pub async fn finish(self) -> io::Result<ManifestEntry> {
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
        let entry = hasher.finish();
        let dest = dir.join(&entry.hash);
        if tokio::fs::try_exists(&dest).await? {
            // Same hash, same bytes: dropping `path` removes the duplicate.
            return Ok(entry);
        }
        // Two writers with the same content may race here; rename replaces
        // atomically and both hold the same bytes, so either outcome is right.
        tokio::task::spawn_blocking(move || path.persist(&dest))
            .await
            .map_err(io::Error::other)?
            .map_err(|e| e.error)?;
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::asset_hash;

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The bytes stored under `hash`, read back through [`Spool::file`].
    async fn stored(spool: &Spool, hash: &str) -> Vec<u8> {
        let file = spool.file(hash).await.unwrap();
        let bytes = tokio::fs::read(&file.path).await.unwrap();
        assert_eq!(bytes.len() as u64, file.len);
        bytes
    }

    async fn store(spool: &Spool, chunks: &[&[u8]]) -> ManifestEntry {
        let mut w = spool.writer().unwrap();
        for c in chunks {
            w.write(c).await.unwrap();
        }
        w.finish().await.unwrap()
    }

    #[tokio::test]
    async fn finish_names_the_file_by_its_hash() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let mut w = spool.writer().unwrap();
        w.write(b"hello ").await.unwrap();
        w.write(b"world").await.unwrap();
        assert_eq!(w.size(), 11);
        let entry = w.finish().await.unwrap();
        assert_eq!(entry.hash, asset_hash(b"hello world"));
        assert_eq!(entry.size, 11);
        assert_eq!(files_in(spool.path()), vec![entry.hash.clone()]);
        assert_eq!(stored(&spool, &entry.hash).await, b"hello world");
        assert!(spool.path().join(&entry.hash).exists());
    }

    #[tokio::test]
    async fn large_content_round_trips() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
        let chunks: Vec<&[u8]> = data.chunks(10_007).collect();
        let entry = store(&spool, &chunks).await;
        assert_eq!(entry.hash, asset_hash(&data));
        assert_eq!(stored(&spool, &entry.hash).await, data);
    }

    #[tokio::test]
    async fn identical_content_is_stored_once() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let a = store(&spool, &[b"same", b" bytes"]).await;
        let b = store(&spool, &[b"same bytes"]).await;
        let c = store(&spool, &[b"other"]).await;
        assert_eq!(a, b);
        assert_ne!(a.hash, c.hash);
        let mut want = vec![a.hash, c.hash];
        want.sort();
        assert_eq!(files_in(spool.path()), want, "no temporary files left");
    }

    #[tokio::test]
    async fn empty_file_is_a_valid_entry() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let entry = store(&spool, &[]).await;
        assert_eq!(
            entry,
            ManifestEntry {
                hash: asset_hash(b""),
                size: 0
            }
        );
        assert!(stored(&spool, &entry.hash).await.is_empty());
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
    async fn file_refuses_what_is_not_a_hash() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        for bad in ["../etc/passwd", "", "ABCDEF0123456789abcdef0123456789"] {
            let err = spool.file(bad).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
        let missing = asset_hash(b"never stored");
        let err = spool.file(&missing).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains(&missing), "{err}");
    }
}
