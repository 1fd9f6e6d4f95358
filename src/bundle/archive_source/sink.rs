//! Where an archive's files go as the blocking reader hands them over: into
//! the job's spool, hashed, through a bounded channel to an async task.
//!
//! The archive readers are synchronous and run in a blocking task; the
//! spool is async. A sink sends each file as pieces (its start, chunks of
//! [`CHUNK_BYTES`], its end) over a channel of [`PIECES_IN_FLIGHT`], and
//! [`store`] writes them, so at most a few hundred KiB of an archive are in
//! memory at once, whatever its size. When the spool fails, [`store`] ends
//! and the sink's next send fails, which stops the reader; the spool's error
//! is the one reported.
//!
//! Two sinks: [`IngestSink`] takes every file (the first read, which must
//! hash them all), keeping the root special files in memory instead;
//! [`FetchSink`] takes only the files a later pass was asked for, each
//! stored only if it has the digest the manifest says, and stops the
//! reader once it has them all.

use std::collections::HashMap;
use std::io::Read;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::bundle::ListingGate;
use crate::bundle::archive::{EntrySink, SinkError};
use crate::bundle::site::{MAX_SPECIAL_FILE_BYTES, SpecialFile, SpecialFiles};
use crate::manifest::ContentDigest;
use crate::spool::{Spool, SpoolError};

/// Bytes of one piece of a file.
const CHUNK_BYTES: usize = 64 << 10;

/// Pieces the reader may be ahead of the spool.
pub(super) const PIECES_IN_FLIGHT: usize = 8;

/// One piece of a file on its way to the spool.
#[derive(Debug)]
pub(super) enum Piece {
    /// A file starts; `expected` is the digest it must have, if known.
    Begin {
        path: String,
        expected: Option<ContentDigest>,
    },
    Bytes(Bytes),
    End,
}

/// One file stored in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stored {
    /// Relative to the bundle root.
    pub path: String,
    pub size: u64,
    pub digest: ContentDigest,
}

/// Why storing a file failed.
#[derive(Debug)]
pub(super) enum StoreFailure {
    /// The spool's disk.
    Io(std::io::Error),
    /// The bytes are not the digest the file was asked for with.
    Mismatch {
        path: String,
        expected: ContentDigest,
        actual: ContentDigest,
    },
}

/// The sink's signal that it has every file it wanted: the reader stops,
/// and the pass is a success.
#[derive(Debug, thiserror::Error)]
#[error("every file wanted was read")]
pub(super) struct Finished;

/// The sink's signal that the spool is gone (it failed, see [`store`]).
#[derive(Debug, thiserror::Error)]
#[error("the spool stopped taking files")]
pub(super) struct Closed;

/// Writes the pieces it receives into `spool` until the sender is dropped;
/// returns what it stored, in order. `gate` is told of each file stored
/// (the reader waits meanwhile: the channel is bounded).
pub(super) async fn store(
    mut pieces: mpsc::Receiver<Piece>,
    spool: &Spool,
    gate: &dyn ListingGate,
) -> Result<Vec<Stored>, StoreFailure> {
    let mut stored = Vec::new();
    let mut current = None;
    while let Some(piece) = pieces.recv().await {
        match piece {
            Piece::Begin { path, expected } => {
                let writer = spool.writer().map_err(StoreFailure::Io)?;
                current = Some((path, expected, writer));
            }
            Piece::Bytes(bytes) => {
                if let Some((_, _, writer)) = &mut current {
                    writer.write(&bytes).await.map_err(StoreFailure::Io)?;
                }
            }
            Piece::End => {
                let Some((path, expected, writer)) = current.take() else {
                    continue;
                };
                let size = writer.size();
                let digest = match expected {
                    None => writer.finish().await.map_err(StoreFailure::Io)?,
                    Some(expected) => match writer.finish_expecting(&expected).await {
                        Ok(()) => expected,
                        Err(SpoolError::Io(e)) => return Err(StoreFailure::Io(e)),
                        Err(SpoolError::Mismatch { expected, actual }) => {
                            return Err(StoreFailure::Mismatch {
                                path,
                                expected,
                                actual,
                            });
                        }
                    },
                };
                stored.push(Stored { path, size, digest });
                gate.holding(stored.len() as u64).await;
            }
        }
    }
    Ok(stored)
}

/// Sends one file's bytes as pieces.
fn send_file(
    pieces: &mpsc::Sender<Piece>,
    path: &str,
    expected: Option<ContentDigest>,
    body: &mut dyn Read,
) -> Result<(), SinkError> {
    let send = |piece| pieces.blocking_send(piece).map_err(|_| Box::new(Closed));
    send(Piece::Begin {
        path: path.to_owned(),
        expected,
    })?;
    let mut buffer = vec![0u8; CHUNK_BYTES];
    loop {
        let n = body.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        send(Piece::Bytes(Bytes::copy_from_slice(&buffer[..n])))?;
    }
    send(Piece::End)?;
    Ok(())
}

/// Takes every file: the root special files into memory, the rest into the
/// spool.
pub(super) struct IngestSink {
    pieces: mpsc::Sender<Piece>,
    special: SpecialFiles,
}

impl IngestSink {
    pub(super) fn new(pieces: mpsc::Sender<Piece>) -> Self {
        IngestSink {
            pieces,
            special: SpecialFiles::default(),
        }
    }

    /// The special files read; the channel closes, ending [`store`].
    pub(super) fn into_special(self) -> SpecialFiles {
        self.special
    }
}

impl EntrySink for IngestSink {
    fn file(&mut self, path: &str, size: u64, body: &mut dyn Read) -> Result<(), SinkError> {
        match SpecialFile::at(path) {
            // One over the cap is spooled like any file; the gate refuses it.
            Some(file) if size <= MAX_SPECIAL_FILE_BYTES => {
                let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                body.read_to_end(&mut bytes)?;
                self.special.set(file, bytes);
                Ok(())
            }
            _ => send_file(&self.pieces, path, None, body),
        }
    }
}

/// Takes only the files asked for, by path, each checked against the digest
/// it must have.
pub(super) struct FetchSink {
    pieces: mpsc::Sender<Piece>,
    wanted: HashMap<String, ContentDigest>,
}

impl FetchSink {
    pub(super) fn new(pieces: mpsc::Sender<Piece>, wanted: HashMap<String, ContentDigest>) -> Self {
        FetchSink { pieces, wanted }
    }

    /// The paths asked for that the archive did not hold; the channel
    /// closes, ending [`store`].
    pub(super) fn into_missing(self) -> Vec<String> {
        self.wanted.into_keys().collect()
    }
}

impl EntrySink for FetchSink {
    fn wants(&mut self, path: &str) -> bool {
        self.wanted.contains_key(path)
    }

    fn file(&mut self, path: &str, _size: u64, body: &mut dyn Read) -> Result<(), SinkError> {
        let Some(expected) = self.wanted.remove(path) else {
            return Ok(());
        };
        send_file(&self.pieces, path, Some(expected), body)?;
        if self.wanted.is_empty() {
            return Err(Box::new(Finished));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_become_spooled_files_and_a_wrong_digest_stores_nothing() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let (tx, rx) = mpsc::channel(PIECES_IN_FLIGHT);
        let sending = tokio::task::spawn_blocking(move || {
            let mut sink = IngestSink::new(tx);
            sink.file("a.txt", 5, &mut &b"hello"[..]).unwrap();
            sink.file("_headers", 3, &mut &b"/*\n"[..]).unwrap();
            sink.into_special()
        });
        let stored = store(rx, &spool, &())
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let special = sending.await.unwrap();
        assert_eq!(
            stored,
            vec![Stored {
                path: "a.txt".into(),
                size: 5,
                digest: ContentDigest::of(b"hello"),
            }]
        );
        assert_eq!(special.headers.as_deref(), Some(&b"/*\n"[..]));

        let (tx, rx) = mpsc::channel(PIECES_IN_FLIGHT);
        let lie = ContentDigest::of(b"other");
        let sending = tokio::task::spawn_blocking(move || {
            let mut sink = FetchSink::new(tx, HashMap::from([("a.txt".to_string(), lie)]));
            assert!(!sink.wants("b.txt"));
            assert!(sink.wants("a.txt"));
            let done = sink.file("a.txt", 5, &mut &b"hello"[..]);
            (done.is_err_and(|e| e.is::<Finished>()), sink.into_missing())
        });
        let failure = store(rx, &spool, &()).await.unwrap_err();
        assert!(
            matches!(&failure, StoreFailure::Mismatch { path, expected, .. }
                if path == "a.txt" && *expected == lie),
            "{failure:?}"
        );
        assert_eq!(sending.await.unwrap(), (true, vec![]));
    }
}
