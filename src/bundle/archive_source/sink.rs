//! Where an archive's files go as the blocking reader hands them over: into
//! the job's spool, hashed, through a bounded channel to an async task.
//!
//! The archive readers are synchronous and run in a blocking task; the
//! spool is async. A sink sends a small file (up to [`WHOLE_FILE_BYTES`],
//! most of a site) as one piece, read whole, and a larger one as pieces
//! (its start, chunks of [`CHUNK_BYTES`], its end), over a channel of
//! [`PIECES_IN_FLIGHT`]. [`store`] files a whole one in one blocking call
//! ([`SpoolPutter`]), up to [`PUTS_IN_FLIGHT`] at once beside the reader, so
//! the reader inflates the next files while the last ones are hashed and
//! created on disk (file creation, not inflating, bounded an archive of
//! thousands of small files when each was stored alone, in several trips
//! to the blocking pool); it streams a large one through a writer. At most
//! a few MiB of an archive are in memory at once, whatever its size. When
//! the spool fails, [`store`] ends and the sink's next send fails, which
//! stops the reader; the spool's error is the one reported.
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
use tokio::task::JoinSet;

use crate::bundle::ListingGate;
use crate::bundle::archive::{EntrySink, SinkError};
use crate::bundle::site::{MAX_SPECIAL_FILE_BYTES, SpecialFile, SpecialFiles};
use crate::manifest::ContentDigest;
use crate::spool::{Spool, SpoolError, SpoolPutter};

/// Bytes of one piece of a file.
const CHUNK_BYTES: usize = 64 << 10;

/// Pieces the reader may be ahead of the spool.
pub(super) const PIECES_IN_FLIGHT: usize = 8;

/// A file up to this size is read whole and sent as one piece.
const WHOLE_FILE_BYTES: u64 = 256 << 10;

/// Whole files being hashed and written at once, on the blocking pool.
const PUTS_IN_FLIGHT: usize = 4;

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
    /// A small file, whole.
    Whole {
        path: String,
        expected: Option<ContentDigest>,
        bytes: Vec<u8>,
    },
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
    let putter = spool.putter();
    // Each file's place in the archive: whole files finish out of order.
    let mut stored: Vec<(usize, Stored)> = Vec::new();
    let mut puts: JoinSet<Result<(usize, Stored), StoreFailure>> = JoinSet::new();
    let mut next = 0;
    let mut current = None;
    while let Some(piece) = pieces.recv().await {
        match piece {
            Piece::Whole {
                path,
                expected,
                bytes,
            } => {
                while puts.len() >= PUTS_IN_FLIGHT
                    && let Some(done) = puts.join_next().await
                {
                    stored.push(joined(done)?);
                }
                let putter = putter.clone();
                let index = next;
                next += 1;
                // Counted as it starts: its record is as good as held.
                gate.holding(next as u64).await;
                puts.spawn_blocking(move || {
                    put(&putter, path, expected, &bytes).map(|s| (index, s))
                });
            }
            Piece::Begin { path, expected } => {
                let writer = spool.writer().map_err(StoreFailure::Io)?;
                current = Some((next, path, expected, writer));
                next += 1;
            }
            Piece::Bytes(bytes) => {
                if let Some((_, _, _, writer)) = &mut current {
                    writer.write(&bytes).await.map_err(StoreFailure::Io)?;
                }
            }
            Piece::End => {
                let Some((index, path, expected, writer)) = current.take() else {
                    continue;
                };
                let size = writer.size();
                let digest = match expected {
                    None => writer.finish().await.map_err(StoreFailure::Io)?,
                    Some(expected) => match writer.finish_expecting(&expected).await {
                        Ok(()) => expected,
                        Err(error) => return Err(failure(path, error)),
                    },
                };
                stored.push((index, Stored { path, size, digest }));
                gate.holding(next as u64).await;
            }
        }
    }
    while let Some(done) = puts.join_next().await {
        stored.push(joined(done)?);
    }
    stored.sort_unstable_by_key(|(index, _)| *index);
    Ok(stored.into_iter().map(|(_, s)| s).collect())
}

/// Stores one whole file (blocking).
fn put(
    putter: &SpoolPutter,
    path: String,
    expected: Option<ContentDigest>,
    bytes: &[u8],
) -> Result<Stored, StoreFailure> {
    match putter.put(bytes, expected.as_ref()) {
        Ok(digest) => Ok(Stored {
            path,
            size: bytes.len() as u64,
            digest,
        }),
        Err(error) => Err(failure(path, error)),
    }
}

/// What a finished put gave; a panic in it is the caller's.
fn joined(
    done: Result<Result<(usize, Stored), StoreFailure>, tokio::task::JoinError>,
) -> Result<(usize, Stored), StoreFailure> {
    match done {
        Ok(result) => result,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(StoreFailure::Io(std::io::Error::other(e))),
        },
    }
}

/// The failure of storing the file at `path`.
fn failure(path: String, error: SpoolError) -> StoreFailure {
    match error {
        SpoolError::Io(e) => StoreFailure::Io(e),
        SpoolError::Mismatch { expected, actual } => StoreFailure::Mismatch {
            path,
            expected,
            actual,
        },
    }
}

/// Sends one file's bytes: a small one whole, a larger one as pieces.
fn send_file(
    pieces: &mpsc::Sender<Piece>,
    path: &str,
    size: u64,
    expected: Option<ContentDigest>,
    body: &mut dyn Read,
) -> Result<(), SinkError> {
    let send = |piece| pieces.blocking_send(piece).map_err(|_| Box::new(Closed));
    if size <= WHOLE_FILE_BYTES {
        // The body holds the file to its declared size, so the allocation
        // is bounded.
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        body.read_to_end(&mut bytes)?;
        send(Piece::Whole {
            path: path.to_owned(),
            expected,
            bytes,
        })?;
        return Ok(());
    }
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
            _ => send_file(&self.pieces, path, size, None, body),
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

    fn file(&mut self, path: &str, size: u64, body: &mut dyn Read) -> Result<(), SinkError> {
        let Some(expected) = self.wanted.remove(path) else {
            return Ok(());
        };
        send_file(&self.pieces, path, size, Some(expected), body)?;
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

    #[tokio::test]
    async fn small_and_large_files_are_stored_in_archive_order() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let large = vec![7u8; usize::try_from(WHOLE_FILE_BYTES).unwrap() + CHUNK_BYTES + 1];
        let files: Vec<(String, Vec<u8>)> = (0..20)
            .map(|i| match i {
                // Streamed in chunks between files stored whole.
                5 | 12 => (format!("large{i}.bin"), large.clone()),
                _ => (format!("f{i}.txt"), format!("file {i}").into_bytes()),
            })
            .collect();
        let sent = files.clone();
        let (tx, rx) = mpsc::channel(PIECES_IN_FLIGHT);
        let sending = tokio::task::spawn_blocking(move || {
            let mut sink = IngestSink::new(tx);
            for (path, bytes) in &sent {
                sink.file(path, bytes.len() as u64, &mut bytes.as_slice())
                    .unwrap();
            }
        });
        let stored = store(rx, &spool, &())
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        sending.await.unwrap();
        let expected: Vec<Stored> = files
            .iter()
            .map(|(path, bytes)| Stored {
                path: path.clone(),
                size: bytes.len() as u64,
                digest: ContentDigest::of(bytes),
            })
            .collect();
        assert_eq!(stored, expected);
        for (_, bytes) in &files {
            let file = spool.file(&ContentDigest::of(bytes)).await.unwrap();
            assert_eq!(std::fs::read(&file.path).unwrap(), *bytes);
        }
    }
}
