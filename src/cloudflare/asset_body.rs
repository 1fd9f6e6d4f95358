//! Asset bytes as the upload step sends them: where they come from
//! ([`AssetContent`]), and how they go out (base64, streamed).
//!
//! A bucket can hold tens of megabytes; encoding it whole would hold the raw
//! bytes and their base64 in memory for every bucket in flight, for every
//! job. Instead each part of the multipart body is a stream that reads the
//! file in blocks and encodes block by block, so memory per upload is a few
//! blocks whatever the bucket's size. Every try of a request reads the file
//! again, which is why an [`AssetBody`] is a *location*, not an open reader.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::Stream;
use tokio::io::AsyncReadExt;

use crate::manifest::ContentDigest;

/// Raw bytes read per block: a multiple of 3, so each block encodes to
/// base64 without padding and the blocks concatenate into one valid string.
const BLOCK: usize = 3 * 16 * 1024;

/// Where the bytes of an asset come from, so this module reads them without
/// knowing where they live (the job's spool: `spool_content.rs`; a test's
/// memory).
#[async_trait::async_trait]
pub trait AssetContent: Send + Sync {
    /// Where the bytes with this content digest can be read (as often as a
    /// retried upload needs), and their length. The upload step maps each
    /// asset hash Cloudflare asks for to its content through the manifest,
    /// so one content can go up under several asset hashes (one per
    /// extension and tenant), each with its own media type.
    async fn locate(&self, content: &ContentDigest) -> std::io::Result<AssetBody>;

    /// Told each time Cloudflare stored a bucket of `files` files (`bytes`
    /// raw bytes), for the deploy's progress; by default nobody listens.
    fn uploaded(&self, _files: u64, _bytes: u64) {}
}

/// Where an asset's bytes can be read, as often as needed.
#[derive(Debug, Clone)]
pub enum AssetBody {
    /// A file on local disk (the job's spool), of this length.
    File { path: PathBuf, len: u64 },
    /// Bytes already in memory.
    Memory(Bytes),
}

impl AssetBody {
    /// Length of the raw bytes.
    pub fn len(&self) -> u64 {
        match self {
            AssetBody::File { len, .. } => *len,
            AssetBody::Memory(bytes) => bytes.len() as u64,
        }
    }

    /// Whether there are no bytes at all (an empty file is a valid asset).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Length of the base64 text: padded, no line breaks.
    pub fn base64_len(&self) -> u64 {
        self.len().div_ceil(3) * 4
    }

    /// The base64 of the bytes, block by block. A file that turns out
    /// shorter or longer than its length ends the stream with an error, so a
    /// request never carries a body other than the one announced.
    pub fn base64_stream(self) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        enum State {
            Unopened(PathBuf),
            Reading(tokio::fs::File),
            Memory(Bytes),
            Done,
        }
        let expected = self.len();
        let start = match self {
            AssetBody::File { path, .. } => State::Unopened(path),
            AssetBody::Memory(bytes) => State::Memory(bytes),
        };
        futures::stream::unfold((start, 0u64), move |(state, seen)| async move {
            let (raw, next) = match state {
                State::Done => return None,
                State::Memory(mut bytes) => {
                    let block = bytes.split_to(bytes.len().min(BLOCK));
                    let next = if bytes.is_empty() {
                        State::Done
                    } else {
                        State::Memory(bytes)
                    };
                    (Ok(block.to_vec()), next)
                }
                State::Unopened(path) => match tokio::fs::File::open(&path).await {
                    Ok(mut file) => match read_block(&mut file).await {
                        Ok(block) => (Ok(block), State::Reading(file)),
                        Err(e) => (Err(e), State::Done),
                    },
                    Err(e) => (Err(e), State::Done),
                },
                State::Reading(mut file) => match read_block(&mut file).await {
                    Ok(block) => (Ok(block), State::Reading(file)),
                    Err(e) => (Err(e), State::Done),
                },
            };
            let raw = match raw {
                Ok(raw) => raw,
                Err(e) => return Some((Err(e), (State::Done, seen))),
            };
            let seen = seen + raw.len() as u64;
            if seen > expected || (raw.len() < BLOCK && seen != expected) {
                let e = std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("asset changed while uploading: {seen} bytes, expected {expected}"),
                );
                return Some((Err(e), (State::Done, seen)));
            }
            if raw.is_empty() {
                return None;
            }
            Some((Ok(Bytes::from(STANDARD.encode(&raw))), (next, seen)))
        })
    }
}

/// Reads until `BLOCK` bytes or the end of the file.
async fn read_block(file: &mut tokio::fs::File) -> std::io::Result<Vec<u8>> {
    let mut block = vec![0; BLOCK];
    let mut filled = 0;
    while filled < BLOCK {
        match file.read(&mut block[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    block.truncate(filled);
    Ok(block)
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    async fn encoded(body: AssetBody) -> std::io::Result<String> {
        let blocks: Vec<Bytes> = body.base64_stream().try_collect().await?;
        Ok(blocks
            .iter()
            .map(|b| std::str::from_utf8(b).unwrap())
            .collect())
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn blocks_concatenate_into_the_whole_base64() {
        let dir = tempfile::tempdir().unwrap();
        for n in [0, 1, 2, 3, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 7] {
            let bytes = data(n);
            let path = dir.path().join(format!("f{n}"));
            std::fs::write(&path, &bytes).unwrap();
            let file = AssetBody::File {
                path,
                len: n as u64,
            };
            assert_eq!(file.base64_len(), STANDARD.encode(&bytes).len() as u64);
            assert_eq!(
                encoded(file).await.unwrap(),
                STANDARD.encode(&bytes),
                "{n} bytes"
            );
            let memory = AssetBody::Memory(Bytes::from(bytes.clone()));
            assert_eq!(encoded(memory).await.unwrap(), STANDARD.encode(&bytes));
        }
    }

    #[tokio::test]
    async fn a_file_of_another_length_is_an_error_not_a_wrong_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, data(10)).unwrap();
        for len in [9, 11] {
            let body = AssetBody::File {
                path: path.clone(),
                len,
            };
            let err = encoded(body).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        }
        let missing = AssetBody::File {
            path: dir.path().join("nope"),
            len: 1,
        };
        assert!(encoded(missing).await.is_err());
    }
}
