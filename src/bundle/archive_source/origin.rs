//! Where an archive's bytes are: an S3 object or a local file, pinned to
//! what they were when the deploy first looked, and read by the blocking
//! readers the archive crates take.
//!
//! An archive may be read twice in one deploy (once whole to hash it, once
//! more for the files Cloudflare lacks when its manifest came from the
//! cache), so both reads must see the same bytes: an S3 object is pinned to
//! its version (see `s3/object.rs`), a local file to its size and
//! modification time. Either way the bytes taken are counted, for the
//! deploy's `bytes_read` and to show how little of a refused archive was
//! read.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use tokio::runtime::Handle;

use crate::bundle::archive::{ArchiveFormat, TarCompression};
use crate::bundle::s3::{ObjectStream, RangedObject, S3Object};
use crate::bundle::{BundleError, BundleStep, S3Storage};
use crate::cache::{ContentKey, DigestCache};

/// Where an archive is.
#[derive(Debug, Clone)]
pub(super) enum Origin {
    S3 {
        storage: S3Storage,
        bucket: String,
        key: String,
    },
    File(PathBuf),
}

impl Origin {
    /// `s3://bucket/key`, or the file's path.
    pub(super) fn location(&self) -> String {
        match self {
            Origin::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
            Origin::File(path) => path.display().to_string(),
        }
    }

    /// Looks at the archive (a HEAD, or the file's metadata) and pins what
    /// every later read must find.
    pub(super) async fn pin(&self) -> Result<Pinned, BundleError> {
        match self {
            Origin::S3 {
                storage,
                bucket,
                key,
            } => Ok(Pinned::S3(storage.archive_object(bucket, key).await?)),
            Origin::File(path) => {
                let meta = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| file_error(self.location(), BundleStep::List, &e))?;
                Ok(Pinned::File(LocalFile {
                    path: path.clone(),
                    size: meta.len(),
                    modified: meta.modified().ok(),
                    fetched: Arc::new(AtomicU64::new(0)),
                }))
            }
        }
    }
}

/// A local archive file as first seen.
#[derive(Debug, Clone)]
pub(super) struct LocalFile {
    path: PathBuf,
    size: u64,
    modified: Option<SystemTime>,
    fetched: Arc<AtomicU64>,
}

/// An archive pinned to the bytes it held when first seen.
#[derive(Debug, Clone)]
pub(super) enum Pinned {
    S3(S3Object),
    File(LocalFile),
}

/// A reader the archive crates can take, by format.
pub(super) enum Input {
    /// A tar stream, read once from start to end.
    Tar(TarCompression, Box<dyn Read + Send>),
    /// A zip, read with random access.
    Zip(Box<dyn ReadSeek>),
}

/// `Read + Seek` as one trait object.
pub(super) trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

impl Pinned {
    pub(super) fn size(&self) -> u64 {
        match self {
            Pinned::S3(object) => object.size(),
            Pinned::File(file) => file.size,
        }
    }

    /// What names the archive's content in the digest cache (an S3 object's
    /// version); `None` for a local file, which is always read.
    pub(super) fn content_key(&self, cache: &DigestCache) -> Option<ContentKey> {
        match self {
            Pinned::S3(object) => object.content_key(cache),
            Pinned::File(_) => None,
        }
    }

    /// Bytes taken from storage by every read so far.
    pub(super) fn fetched(&self) -> u64 {
        match self {
            Pinned::S3(object) => object.fetched(),
            Pinned::File(file) => file.fetched.load(Ordering::Relaxed),
        }
    }

    /// A reader for `format`, for a blocking task; `step` is what its
    /// errors say the deploy was doing. Once `stop` is set (the deploy was
    /// dropped: a job timeout, a shutdown) every read fails, so the task
    /// ends instead of reading on for nobody.
    pub(super) fn input(
        &self,
        format: ArchiveFormat,
        location: &str,
        step: BundleStep,
        stop: &Arc<AtomicBool>,
    ) -> Result<Input, BundleError> {
        let reader = match self {
            Pinned::S3(object) => {
                let handle = Handle::current();
                match format.tar_compression() {
                    Some(_) => Either::S3(object.stream(handle, step)),
                    None => Either::Ranged(object.ranged(handle, step)),
                }
            }
            Pinned::File(file) => {
                let opened = file
                    .open()
                    .map_err(|e| file_error(location.into(), step, &e))?;
                Either::File(Counted {
                    inner: opened,
                    fetched: file.fetched.clone(),
                })
            }
        };
        let reader = Stoppable {
            inner: reader,
            stop: stop.clone(),
        };
        Ok(match format.tar_compression() {
            Some(c) => Input::Tar(c, Box::new(reader)),
            None => Input::Zip(Box::new(reader)),
        })
    }
}

impl LocalFile {
    /// The file again, if it is still what was pinned.
    fn open(&self) -> io::Result<File> {
        let mut file = File::open(&self.path)?;
        let meta = file.metadata()?;
        if meta.len() != self.size || meta.modified().ok() != self.modified {
            return Err(io::Error::other("changed since it was first read"));
        }
        file.seek(SeekFrom::Start(0))?;
        Ok(file)
    }
}

/// A local archive that cannot be read: retrying will not help.
fn file_error(subject: String, step: BundleStep, e: &io::Error) -> BundleError {
    match e.kind() {
        io::ErrorKind::NotFound => BundleError::NotFound {
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

/// The readers an archive is read through.
enum Either {
    S3(ObjectStream),
    Ranged(RangedObject),
    File(Counted<File>),
}

impl Read for Either {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Either::S3(r) => r.read(buf),
            Either::Ranged(r) => r.read(buf),
            Either::File(r) => r.read(buf),
        }
    }
}

impl Seek for Either {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Either::S3(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a stream cannot seek",
            )),
            Either::Ranged(r) => r.seek(pos),
            Either::File(r) => r.seek(pos),
        }
    }
}

/// Fails every read once `stop` is set.
struct Stoppable {
    inner: Either,
    stop: Arc<AtomicBool>,
}

impl Stoppable {
    fn check(&self) -> io::Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("the deploy stopped"));
        }
        Ok(())
    }
}

impl Read for Stoppable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.read(buf)
    }
}

impl Seek for Stoppable {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.check()?;
        self.inner.seek(pos)
    }
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    fetched: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.fetched.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: Seek> Seek for Counted<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}
