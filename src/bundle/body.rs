//! One file's bytes as any source streams them: held to the size the source
//! listed, and to a deadline for each chunk, then hashed (to learn its
//! digest) or stored in the spool (verified against the digest it must have).
//!
//! A body is trusted no further than the listing: it must be exactly the
//! listed size (a longer body is cut off at the first extra byte, not
//! buffered), so the limits checked on the listing also bound what is read.
//! Each chunk must arrive within the stall timeout, so a stalled stream
//! fails (and its source may retry) instead of hanging the job.
//!
//! Sources differ in how they open a file (an S3 GetObject, an archive's
//! next entry); from there on each reads it through [`SizedBody`], so the
//! size rule, the stall rule, hashing and verified spooling live here once.

use std::error::Error as StdError;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

use crate::error_chain;
use crate::manifest::{ContentDigest, ContentHasher};
use crate::spool::{Spool, SpoolError, SpoolWriter};

/// Where a hashed body's bytes go: into the spool (hashed as written), or
/// only through the hash once the spool could take no more.
enum Sink {
    Keep(Box<SpoolWriter>),
    Hash(ContentHasher),
}

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// No chunk came within the stall timeout: worth another try.
    #[error(
        "body stalled: no data for {}s after {read} of {listed} bytes",
        stall.as_secs_f64()
    )]
    Stalled {
        stall: Duration,
        read: u64,
        listed: u64,
    },
    /// The stream failed (connection reset, say): worth another try. The
    /// cause is flattened into the message, once.
    #[error("reading body: {0}")]
    Read(String),
    /// More bytes than listed: the file changed since it was listed.
    #[error("listed {listed} bytes, body is longer")]
    Longer { listed: u64 },
    /// Fewer bytes than listed: the file changed since it was listed.
    #[error("listed {listed} bytes, read {read}")]
    Shorter { listed: u64, read: u64 },
    /// The bytes are not the content they were read for (a cached digest
    /// that lied, or bytes replaced under an unchanged size).
    #[error("content is {actual}, expected {expected}")]
    Mismatch {
        expected: ContentDigest,
        actual: ContentDigest,
    },
    /// The spool failed.
    #[error("spool: {0}")]
    Local(#[source] std::io::Error),
}

impl From<SpoolError> for BodyError {
    fn from(err: SpoolError) -> Self {
        match err {
            SpoolError::Mismatch { expected, actual } => BodyError::Mismatch { expected, actual },
            SpoolError::Io(e) => BodyError::Local(e),
        }
    }
}

/// A stream of one file's chunks, held to its listed size and to a
/// per-chunk deadline.
pub(crate) struct SizedBody<S> {
    stream: S,
    listed: u64,
    read: u64,
    stall: Duration,
}

impl<S, E> SizedBody<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: StdError + 'static,
{
    /// `stream` must yield exactly `listed` bytes, each chunk within `stall`.
    pub(crate) fn new(stream: S, listed: u64, stall: Duration) -> Self {
        Self {
            stream,
            listed,
            read: 0,
            stall,
        }
    }

    /// Reads the whole body and returns its digest; nothing is kept.
    pub(crate) async fn into_digest(mut self) -> Result<ContentDigest, BodyError> {
        let mut hasher = ContentHasher::new();
        while let Some(chunk) = self.next().await? {
            hasher.update(&chunk);
        }
        Ok(hasher.finish())
    }

    /// Like [`SizedBody::into_digest`], and keeps a copy of the bytes in
    /// `spool` on the way, filed under the digest, while the spool has
    /// room: content read to hash is new to the digest cache, so probably
    /// new to Cloudflare too, and the upload then takes it from the spool
    /// instead of reading it again. Where the spool is full (or its disk
    /// fails) the copy is dropped and hashing goes on.
    pub(crate) async fn into_digest_keeping(
        mut self,
        spool: &Spool,
    ) -> Result<ContentDigest, BodyError> {
        let mut sink = match spool.writer() {
            Ok(writer) => Sink::Keep(Box::new(writer)),
            Err(_) => Sink::Hash(ContentHasher::new()),
        };
        while let Some(chunk) = self.next().await? {
            sink = match sink {
                Sink::Keep(mut writer) => match writer.write(&chunk).await {
                    Ok(()) => Sink::Keep(writer),
                    Err(_) => {
                        let mut hasher = (*writer).abandon();
                        hasher.update(&chunk);
                        Sink::Hash(hasher)
                    }
                },
                Sink::Hash(mut hasher) => {
                    hasher.update(&chunk);
                    Sink::Hash(hasher)
                }
            };
        }
        Ok(match sink {
            Sink::Keep(writer) => (*writer).finish_kept().await,
            Sink::Hash(hasher) => hasher.finish(),
        })
    }

    /// Streams the whole body into the spool, where it is stored only if
    /// its digest is `expected`. A failure drops the unfinished file, which
    /// removes it, so a retry starts the file over.
    pub(crate) async fn into_spool_expecting(
        mut self,
        spool: &Spool,
        expected: &ContentDigest,
    ) -> Result<(), BodyError> {
        let mut writer = spool.writer().map_err(BodyError::Local)?;
        while let Some(chunk) = self.next().await? {
            writer.write(&chunk).await.map_err(BodyError::Local)?;
        }
        Ok(writer.finish_expecting(expected).await?)
    }

    /// Reads the whole (small, size-checked) body into memory.
    pub(crate) async fn into_memory(mut self) -> Result<Bytes, BodyError> {
        // The listed size was checked against a limit and the body cannot
        // outgrow it, so this one allocation is all.
        let mut buffer = BytesMut::with_capacity(usize::try_from(self.listed).unwrap_or(0));
        while let Some(chunk) = self.next().await? {
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer.freeze())
    }

    /// The next chunk, or `None` once exactly the listed size was read.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
        match tokio::time::timeout(self.stall, self.stream.next()).await {
            Err(_) => Err(BodyError::Stalled {
                stall: self.stall,
                read: self.read,
                listed: self.listed,
            }),
            Ok(Some(Err(e))) => Err(BodyError::Read(error_chain::flatten(&e))),
            Ok(Some(Ok(chunk))) => {
                self.read += chunk.len() as u64;
                if self.read > self.listed {
                    return Err(BodyError::Longer {
                        listed: self.listed,
                    });
                }
                Ok(Some(chunk))
            }
            Ok(None) if self.read != self.listed => Err(BodyError::Shorter {
                listed: self.listed,
                read: self.read,
            }),
            Ok(None) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Chunk = Result<Bytes, std::io::Error>;

    fn body(chunks: Vec<Chunk>, listed: u64) -> SizedBody<impl Stream<Item = Chunk> + Unpin> {
        SizedBody::new(
            futures::stream::iter(chunks),
            listed,
            Duration::from_secs(1),
        )
    }

    fn ok(bytes: &'static [u8]) -> Chunk {
        Ok(Bytes::from_static(bytes))
    }

    #[tokio::test]
    async fn a_body_of_the_listed_size_is_hashed_spooled_or_held() {
        let digest = body(vec![ok(b"hello "), ok(b"world")], 11)
            .into_digest()
            .await
            .unwrap();
        assert_eq!(digest, ContentDigest::of(b"hello world"));
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        body(vec![ok(b"hello "), ok(b"world")], 11)
            .into_spool_expecting(&spool, &digest)
            .await
            .unwrap();
        let stored = spool.file(&digest).await.unwrap();
        assert_eq!(std::fs::read(stored.path).unwrap(), b"hello world");
        let memory = body(vec![ok(b"hello "), ok(b"world")], 11)
            .into_memory()
            .await
            .unwrap();
        assert_eq!(&memory[..], b"hello world");
    }

    #[tokio::test]
    async fn a_body_of_another_size_is_refused_and_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let longer = body(vec![ok(b"hello"), ok(b"!")], 5)
            .into_spool_expecting(&spool, &ContentDigest::of(b"hello"))
            .await;
        assert_eq!(
            longer.unwrap_err().to_string(),
            "listed 5 bytes, body is longer"
        );
        let shorter = body(vec![ok(b"hell")], 5).into_memory().await;
        assert_eq!(shorter.unwrap_err().to_string(), "listed 5 bytes, read 4");
        assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn bytes_other_than_expected_are_not_spooled() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let lie = ContentDigest::of(b"cached");
        let err = body(vec![ok(b"fresh")], 5)
            .into_spool_expecting(&spool, &lie)
            .await
            .unwrap_err();
        assert!(
            matches!(err, BodyError::Mismatch { expected, actual }
                if expected == lie && actual == ContentDigest::of(b"fresh")),
            "{err:?}"
        );
        assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_failed_stream_names_its_cause() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let err = body(vec![ok(b"he"), Err(reset)], 5)
            .into_memory()
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::Read(_)), "{err:?}");
        assert_eq!(err.to_string(), "reading body: connection reset");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_stream_fails_after_the_stall_timeout() {
        let stalled = futures::stream::iter([ok(b"he")]).chain(futures::stream::pending());
        let err = SizedBody::new(stalled, 5, Duration::from_secs(3))
            .into_memory()
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "body stalled: no data for 3s after 2 of 5 bytes"
        );
    }
}
