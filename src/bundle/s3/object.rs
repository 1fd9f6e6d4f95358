//! One archive object in S3, read by the blocking readers the archive
//! crates need: a stream for tar formats, random access for zip.
//!
//! [`S3Storage::archive_object`] pins the object to the version a HEAD
//! found (its version id, else its ETag as `If-Match`), so every read of one
//! deploy reads the same bytes, or fails as changed. Both readers run in a
//! blocking task and wait for S3 through the runtime's handle, one request
//! or one chunk at a time, so memory stays bounded whatever the object's
//! size:
//!
//! - [`ObjectStream`] reads the object from start to end, one chunk of a
//!   GET at a time; a connection that fails or stalls is taken up again
//!   from the byte it stopped at (a ranged GET), under the retry policy;
//! - [`RangedObject`] is `Read + Seek` over ranged GETs of
//!   [`BLOCK_BYTES`], holding the last [`BLOCKS_HELD`] blocks, since the
//!   zip reader reads the end of the file, the central directory, then each
//!   entry's local header and data.
//!
//! Both count the bytes they took from S3 ([`S3Object::fetched`]), so a
//! caller can tell how little of a refused archive was read. A read that
//! fails for good surfaces as an `io::Error` wrapping the [`BundleError`]
//! that says why (with its step, subject and retryability), for the
//! archive source to unwrap.

use std::io::{self, Read, Seek, SeekFrom};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::types::ChecksumMode;
use backon::BackoffBuilder;
use bytes::{Buf, Bytes};
use lru::LruCache;
use tokio::runtime::Handle;

use super::S3Storage;
use super::failure::{Failure, classify, with_retries};
use super::fetch::{self, ObjectStream as Chunks, Version};
use crate::bundle::body::SizedBody;
use crate::bundle::{BundleError, BundleStep};
use crate::cache::{ContentKey, DigestCache};
use crate::internal_events::{S3Retry, emit};

/// Bytes of one ranged GET of [`RangedObject`].
pub const BLOCK_BYTES: u64 = 1 << 20;

/// Blocks [`RangedObject`] holds: the central directory's and an entry's.
pub const BLOCKS_HELD: usize = 4;

/// One object, pinned to the version a HEAD found.
#[derive(Debug, Clone)]
pub struct S3Object {
    storage: S3Storage,
    bucket: String,
    key: String,
    size: u64,
    version: Version,
    fetched: Arc<AtomicU64>,
}

impl S3Storage {
    /// HEADs `key` in `bucket`: its size and version, which every later
    /// read of the returned object is pinned to.
    pub(crate) async fn archive_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<S3Object, BundleError> {
        let subject = format!("s3://{bucket}/{key}");
        let (result, attempts) = with_retries(&self.policy, &subject, || async {
            self.client
                .head_object()
                .bucket(bucket)
                .key(key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .map_err(classify)
        })
        .await;
        let head = result.map_err(|f| f.into_error(BundleStep::List, &subject, attempts))?;
        let size = head
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| BundleError::Storage {
                step: BundleStep::List,
                subject: subject.clone(),
                detail: "HEAD gave no Content-Length".into(),
                retryable: false,
                attempts,
            })?;
        Ok(S3Object {
            storage: self.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            size,
            version: Version {
                etag: head.e_tag().map(str::to_string),
                version_id: head.version_id().map(str::to_string),
            },
            fetched: Arc::new(AtomicU64::new(0)),
        })
    }
}

impl S3Object {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `s3://bucket/key`.
    pub fn subject(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// What names this version's content in the digest cache.
    pub fn content_key(&self, cache: &DigestCache) -> Option<ContentKey> {
        cache.key_for(
            &self.bucket,
            &self.key,
            self.version.etag.as_deref(),
            self.version.version_id.as_deref(),
            self.size,
        )
    }

    /// Bytes taken from S3 by every reader of this object so far.
    pub fn fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// The object from its first byte to its last; `step` is what its
    /// errors say the deploy was doing. Call from a blocking task.
    pub fn stream(&self, handle: Handle, step: BundleStep) -> ObjectStream {
        ObjectStream {
            object: self.clone(),
            handle,
            step,
            body: None,
            chunk: Bytes::new(),
            offset: 0,
        }
    }

    /// The object with random access. Call from a blocking task.
    pub fn ranged(&self, handle: Handle, step: BundleStep) -> RangedObject {
        RangedObject {
            object: self.clone(),
            handle,
            step,
            pos: 0,
            blocks: LruCache::new(NonZeroUsize::new(BLOCKS_HELD).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    fn count(&self, n: usize) {
        self.fetched.fetch_add(n as u64, Ordering::Relaxed);
    }

    async fn open(&self, start: u64, end: u64) -> Result<SizedBody<Chunks>, Failure> {
        fetch::open_range(
            &self.storage,
            &self.bucket,
            &self.key,
            &self.version,
            start,
            end,
        )
        .await
    }
}

/// The object read once, start to end, one chunk at a time.
pub struct ObjectStream {
    object: S3Object,
    handle: Handle,
    step: BundleStep,
    body: Option<SizedBody<Chunks>>,
    /// What is left of the chunk last received.
    chunk: Bytes,
    /// Bytes received so far: where a new GET starts.
    offset: u64,
}

impl ObjectStream {
    /// The next chunk, taking the object up again from `offset` after a
    /// transient failure, as the retry policy allows.
    async fn next_chunk(&mut self) -> Result<Bytes, BundleError> {
        let subject = self.object.subject();
        let mut waits = self.object.storage.policy.clone().build();
        let mut attempts = 1;
        loop {
            let failure = match self.try_next().await {
                Ok(chunk) if chunk.is_empty() => continue,
                Ok(chunk) => return Ok(chunk),
                Err(failure) => failure,
            };
            self.body = None;
            match (&failure, waits.next()) {
                (Failure::Transient(_), Some(wait)) => {
                    emit(S3Retry {
                        subject: &subject,
                        error: &failure,
                        wait,
                    });
                    tokio::time::sleep(wait).await;
                    attempts += 1;
                }
                _ => return Err(failure.into_error(self.step, &subject, attempts)),
            }
        }
    }

    async fn try_next(&mut self) -> Result<Bytes, Failure> {
        let body = match &mut self.body {
            Some(body) => body,
            None => self
                .body
                .insert(self.object.open(self.offset, self.object.size).await?),
        };
        match body.next().await? {
            Some(chunk) => Ok(chunk),
            // A body held to the bytes left ends only once they all came.
            None => Err(Failure::Changed("the object ended early".into())),
        }
    }
}

impl Read for ObjectStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.chunk.is_empty() {
            if self.offset >= self.object.size {
                return Ok(0);
            }
            let handle = self.handle.clone();
            let chunk = handle
                .block_on(self.next_chunk())
                .map_err(io::Error::other)?;
            self.object.count(chunk.len());
            self.offset += chunk.len() as u64;
            self.chunk = chunk;
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

/// The object with random access, block by block.
pub struct RangedObject {
    object: S3Object,
    handle: Handle,
    step: BundleStep,
    pos: u64,
    /// Block index → its bytes.
    blocks: LruCache<u64, Bytes>,
}

impl RangedObject {
    fn block(&mut self, index: u64) -> Result<Bytes, BundleError> {
        if let Some(block) = self.blocks.get(&index) {
            return Ok(block.clone());
        }
        let start = index * BLOCK_BYTES;
        let end = (start + BLOCK_BYTES).min(self.object.size);
        let object = &self.object;
        let subject = object.subject();
        let (result, attempts) =
            self.handle
                .block_on(with_retries(&object.storage.policy, &subject, || async {
                    Ok(object.open(start, end).await?.into_memory().await?)
                }));
        let block = result.map_err(|f| f.into_error(self.step, &subject, attempts))?;
        object.count(block.len());
        self.blocks.put(index, block.clone());
        Ok(block)
    }
}

impl Read for RangedObject {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.object.size {
            return Ok(0);
        }
        let index = self.pos / BLOCK_BYTES;
        let block = self.block(index).map_err(io::Error::other)?;
        let at = usize::try_from(self.pos - index * BLOCK_BYTES).unwrap_or(usize::MAX);
        let available = block.get(at..).unwrap_or_default();
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangedObject {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(delta) => self.object.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = target;
        Ok(target)
    }
}
