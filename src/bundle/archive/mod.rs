//! Archive bundles: tar, tar.gz, tar.zst and zip, read as a stream of
//! checked files, safely whatever the bytes are.
//!
//! CI systems store a site as `dist.tar.gz` or `site.zip`, built by the
//! platform's users, so every byte is hostile until checked. This module
//! turns an archive into calls of [`EntrySink::file`], one per regular file
//! in archive order, each with a checked relative path and a body that
//! yields exactly the declared size. It knows nothing of spools or S3: the
//! bundle layer gives it a reader and a sink.
//!
//! - Tar formats are read in one pass from any [`Read`] ([`read_tar`]), so
//!   an S3 object can be streamed through (`SyncIoBridge` in a blocking
//!   task); zip needs [`Read`] + [`Seek`](std::io::Seek) ([`read_zip`]) for its central
//!   directory (a ranged-GET reader, or a file).
//! - The parsing is done by well-kept crates (`tar`, `flate2`, `zstd`,
//!   `zip`); this module adds what they leave to the caller: the bundle's
//!   path rules, refusing links and devices, name conflicts, zip header and
//!   overlap checks, exact sizes, trailing data, and the caps of
//!   [`ArchiveLimits`], counted while streaming so a bomb is stopped after
//!   a few megabytes, not after it has been inflated.
//! - Only the files under an optional root directory are taken, with paths
//!   made relative to it; entries elsewhere are skipped unchecked.
//!
//! The bundle layer reads archives through this module for S3 archive
//! objects and local archive files (`bundle/archive_source`).

mod body;
mod error;
mod format;
mod limits;
mod names;
mod tar_reader;
mod zip_reader;

#[cfg(test)]
mod tests;

use std::io::Read;

pub use self::error::{ArchiveError, ArchiveErrorKind, Limit, SinkError};
pub use self::format::{ArchiveFormat, TarCompression};
pub use self::limits::{ArchiveLimits, RATIO_GRACE_BYTES};
pub use self::tar_reader::read_tar;
pub use self::zip_reader::read_zip;

/// Where the files of an archive go, one at a time.
pub trait EntrySink {
    /// Takes one regular file: `path` is checked and relative (no leading
    /// `/`), `size` is what the archive declares and `body` yields exactly
    /// that many bytes or fails. The sink should read `body` to its end;
    /// whatever it leaves is read and checked by the reader.
    fn file(&mut self, path: &str, size: u64, body: &mut dyn Read) -> Result<(), SinkError>;

    /// Whether the sink takes the file at `path` (checked like any other
    /// first). A file it does not want is skipped: a tar's bytes are read
    /// past (and still checked), a zip's are not read at all. A second pass
    /// over an archive, for a few files, says no to the rest.
    fn wants(&mut self, path: &str) -> bool {
        let _ = path;
        true
    }
}

/// How to read one archive.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions<'a> {
    /// Take only the files under this directory of the archive (`dist`),
    /// with paths relative to it. A root that matches nothing gives no
    /// files, not an error.
    pub root: Option<&'a str>,
    pub limits: ArchiveLimits,
}

/// What one read found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Files under the root, given to the sink or skipped as unwanted.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Bytes read from the archive's input.
    pub input_bytes: u64,
}
