//! Storing a content held whole in memory: hashed, then written and filed
//! in one blocking call, from any thread.
//!
//! A [`SpoolWriter`](super::SpoolWriter) streams a file of any size, but
//! each file it stores costs several trips to tokio's blocking pool (the
//! write, the close, the existence check, the rename), one after another.
//! An archive of thousands of small files spent most of its first deploy on
//! those trips and on creating files one at a time. Small files are read
//! whole anyway (an archive entry of a few KiB is one chunk), so a
//! [`SpoolPutter`] hashes them first, skips contents already stored without
//! touching the disk, and does the rest (create, write, rename) in one
//! blocking call; the caller runs several at once on the blocking pool,
//! beside the reader that inflates the next files.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Budget, Spool, SpoolError};
use crate::manifest::ContentDigest;

/// Stores whole contents into one [`Spool`]; cheap to clone and `'static`,
/// for blocking tasks. Once the spool is dropped (its directory removed),
/// every put fails.
#[derive(Debug, Clone)]
pub struct SpoolPutter {
    dir: PathBuf,
    budget: Arc<Budget>,
    held: Arc<AtomicU64>,
}

impl Spool {
    /// A handle that stores whole contents into this spool from any thread.
    pub fn putter(&self) -> SpoolPutter {
        SpoolPutter {
            dir: self.dir.path().to_path_buf(),
            budget: self.budget.clone(),
            held: self.held.clone(),
        }
    }
}

impl SpoolPutter {
    /// Hashes `bytes` and files them under their digest, which it returns.
    /// With `expected`, bytes of another digest are refused and nothing is
    /// written. Content already in the spool is not written again (nor
    /// counted twice against `worker.spool_max_bytes`). Blocking: call it
    /// from a blocking task.
    pub fn put(
        &self,
        bytes: &[u8],
        expected: Option<&ContentDigest>,
    ) -> Result<ContentDigest, SpoolError> {
        let digest = ContentDigest::of(bytes);
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(SpoolError::Mismatch {
                expected: *expected,
                actual: digest,
            });
        }
        let dest = self.dir.join(digest.to_hex());
        if dest.try_exists()? {
            return Ok(digest);
        }
        let len = bytes.len() as u64;
        self.budget.take(len)?;
        match self.write(bytes, dest) {
            Ok(()) => {
                self.held.fetch_add(len, Ordering::SeqCst);
                Ok(digest)
            }
            Err(e) => {
                self.budget.give_back(len);
                Err(e.into())
            }
        }
    }

    /// Writes a temporary file and renames it to `dest`; a failure removes
    /// the temporary file. Two puts of one content may race to the rename:
    /// both hold the same bytes, so either outcome is right.
    fn write(&self, bytes: &[u8], dest: PathBuf) -> io::Result<()> {
        let mut temp = tempfile::Builder::new()
            .prefix(".part-")
            .tempfile_in(&self.dir)?;
        temp.write_all(bytes)?;
        // Not synced: the spool does not outlive the process.
        temp.persist(&dest).map_err(|e| e.error)?;
        Ok(())
    }
}
