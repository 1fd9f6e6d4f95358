//! Which archive format an object holds: named by the job (`bundle.format`)
//! or else by the key's extension.
//!
//! The format decides how the bytes are read: tar formats in one pass from a
//! stream ([`read_tar`](super::read_tar)), zip with random access to its
//! central directory ([`read_zip`](super::read_zip)).

use std::fmt;

/// An archive format a bundle may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Tar,
    TarGz,
    TarZst,
    Zip,
}

/// How a tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarCompression {
    None,
    Gzip,
    Zstd,
}

impl ArchiveFormat {
    /// Every format, with its `bundle.format` name.
    pub const ALL: [ArchiveFormat; 4] = [
        ArchiveFormat::Tar,
        ArchiveFormat::TarGz,
        ArchiveFormat::TarZst,
        ArchiveFormat::Zip,
    ];

    /// The format an explicit `bundle.format` names: exactly `tar`,
    /// `tar.gz`, `tar.zst` or `zip`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The format a key's extension says, ignoring case: `.tar`, `.tar.gz`,
    /// `.tgz`, `.tar.zst`, `.tzst`, `.zip`. `None` when it says none.
    pub fn from_name(key: &str) -> Option<Self> {
        let key = key.to_ascii_lowercase();
        [
            (".tar.gz", ArchiveFormat::TarGz),
            (".tgz", ArchiveFormat::TarGz),
            (".tar.zst", ArchiveFormat::TarZst),
            (".tzst", ArchiveFormat::TarZst),
            (".tar", ArchiveFormat::Tar),
            (".zip", ArchiveFormat::Zip),
        ]
        .into_iter()
        .find(|(ext, _)| key.ends_with(ext) && key.len() > ext.len())
        .map(|(_, format)| format)
    }

    /// The name `bundle.format` uses for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveFormat::Tar => "tar",
            ArchiveFormat::TarGz => "tar.gz",
            ArchiveFormat::TarZst => "tar.zst",
            ArchiveFormat::Zip => "zip",
        }
    }

    /// The tar stream's compression, or `None` for zip (read with random
    /// access instead).
    pub fn tar_compression(self) -> Option<TarCompression> {
        match self {
            ArchiveFormat::Tar => Some(TarCompression::None),
            ArchiveFormat::TarGz => Some(TarCompression::Gzip),
            ArchiveFormat::TarZst => Some(TarCompression::Zstd),
            ArchiveFormat::Zip => None,
        }
    }
}

impl fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
