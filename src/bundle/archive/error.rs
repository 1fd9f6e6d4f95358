//! Why an archive was refused, in terms the bundle layer can map to a
//! contract error code.
//!
//! Every variant names the entry it is about (or says where in the archive
//! it stopped), so a platform can tell its user which file to fix. The
//! variant decides the [`ArchiveErrorKind`]; the bundle layer maps kinds to
//! codes in one place (`Invalid` and `Corrupt` to `bundle_invalid`,
//! `TooLarge` to `bundle_too_large`, `Empty` to `bundle_not_found`, `Io` to
//! `storage_error`, `Sink` to whatever the sink's own error says).

use std::fmt;
use std::io;

use crate::bundle::path::PathError;

/// What the sink reports when it cannot take a file (the spool's disk, a
/// hash task). Boxed so this module knows nothing of the sink's types; the
/// caller downcasts to recover its own error.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// What kind of failure, so the caller can decide what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveErrorKind {
    /// An entry the bundle must not contain: a bad path, a link or device,
    /// a name twice, an encrypted entry.
    Invalid,
    /// Over one of the [`ArchiveLimits`](super::ArchiveLimits), or a
    /// decompression bomb.
    TooLarge,
    /// The bytes are not a well-formed archive: truncated, a checksum or CRC
    /// mismatch, a lying size field, trailing data, disagreeing zip headers.
    /// Refused like `Invalid`.
    Corrupt,
    /// No file at all in the archive.
    Empty,
    /// Reading the archive's own bytes failed (storage, network).
    Io,
    /// The sink could not take a file.
    Sink,
}

/// A limit that an archive crossed; displayed as the setting's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Files,
    FileBytes,
    TotalBytes,
    Ratio,
    PathBytes,
    /// Fixed: the header records (PAX, GNU long names) of one tar entry.
    HeaderBytes,
    /// Fixed per allowed file: a zip's central directory.
    CentralDirectoryBytes,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Files => "max_files",
            Limit::FileBytes => "max_file_bytes",
            Limit::TotalBytes => "max_total_bytes (decompressed)",
            Limit::Ratio => "max_ratio (decompressed/compressed)",
            Limit::PathBytes => "max_path_bytes",
            Limit::HeaderBytes => "header bytes of one entry",
            Limit::CentralDirectoryBytes => "central directory bytes",
        })
    }
}

/// Why an archive was refused. Entry names are shown escaped (control
/// characters and all), as the archive spells them.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{entry}: invalid path: {reason}")]
    Path { entry: String, reason: PathError },
    #[error("{entry}: absolute path")]
    Absolute { entry: String },
    #[error("{entry}: name is not UTF-8")]
    NotUtf8 { entry: String },
    #[error("{entry}: {depth} levels deep, more than max_depth {max}")]
    TooDeep {
        entry: String,
        depth: usize,
        max: usize,
    },
    #[error("{entry}: {what} entries are not allowed")]
    EntryType { entry: String, what: String },
    #[error("{entry}: appears twice")]
    Duplicate { entry: String },
    #[error("{entry}: both a file and a directory (because of {by})")]
    FileAndDirectory { entry: String, by: String },
    #[error("{entry}: same path as {other} once Unicode-normalised (NFC)")]
    NormalizationCollision { entry: String, other: String },
    #[error("{entry}: encrypted entries are not allowed")]
    Encrypted { entry: String },
    #[error("{entry}: unsupported compression method {method}")]
    Compression { entry: String, method: String },
    #[error("{entry}: local header disagrees with the central directory: {detail}")]
    HeaderMismatch { entry: String, detail: String },
    #[error("{entry}: its bytes overlap {other}")]
    Overlap { entry: String, other: String },
    #[error("{}{value}, over {limit} {max}", at(.entry))]
    Limit {
        entry: Option<String>,
        limit: Limit,
        value: u64,
        max: u64,
    },
    #[error("{}corrupt archive: {detail}", at(.entry))]
    Corrupt {
        entry: Option<String>,
        detail: String,
    },
    #[error("the archive holds no files")]
    Empty,
    #[error("{}reading the archive failed", at(.entry))]
    Io {
        entry: Option<String>,
        #[source]
        source: io::Error,
    },
    #[error("{entry}: the sink could not take the file")]
    Sink {
        entry: String,
        #[source]
        source: SinkError,
    },
}

fn at(entry: &Option<String>) -> String {
    entry.as_ref().map(|e| format!("{e}: ")).unwrap_or_default()
}

impl ArchiveError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ArchiveErrorKind {
        match self {
            ArchiveError::Path {
                reason: PathError::TooLong(_),
                ..
            }
            | ArchiveError::Limit { .. } => ArchiveErrorKind::TooLarge,
            ArchiveError::Path { .. }
            | ArchiveError::Absolute { .. }
            | ArchiveError::NotUtf8 { .. }
            | ArchiveError::TooDeep { .. }
            | ArchiveError::EntryType { .. }
            | ArchiveError::Duplicate { .. }
            | ArchiveError::FileAndDirectory { .. }
            | ArchiveError::NormalizationCollision { .. }
            | ArchiveError::Encrypted { .. }
            | ArchiveError::Compression { .. } => ArchiveErrorKind::Invalid,
            ArchiveError::HeaderMismatch { .. }
            | ArchiveError::Overlap { .. }
            | ArchiveError::Corrupt { .. } => ArchiveErrorKind::Corrupt,
            ArchiveError::Empty => ArchiveErrorKind::Empty,
            ArchiveError::Io { .. } => ArchiveErrorKind::Io,
            ArchiveError::Sink { .. } => ArchiveErrorKind::Sink,
        }
    }

    /// The entry the error is about, as shown in the message, when known.
    pub fn entry(&self) -> Option<&str> {
        match self {
            ArchiveError::Path { entry, .. }
            | ArchiveError::Absolute { entry }
            | ArchiveError::NotUtf8 { entry }
            | ArchiveError::TooDeep { entry, .. }
            | ArchiveError::EntryType { entry, .. }
            | ArchiveError::Duplicate { entry }
            | ArchiveError::FileAndDirectory { entry, .. }
            | ArchiveError::NormalizationCollision { entry, .. }
            | ArchiveError::Encrypted { entry }
            | ArchiveError::Compression { entry, .. }
            | ArchiveError::HeaderMismatch { entry, .. }
            | ArchiveError::Overlap { entry, .. }
            | ArchiveError::Sink { entry, .. } => Some(entry),
            ArchiveError::Limit { entry, .. }
            | ArchiveError::Corrupt { entry, .. }
            | ArchiveError::Io { entry, .. } => entry.as_deref(),
            ArchiveError::Empty => None,
        }
    }

    pub(super) fn corrupt(entry: Option<String>, detail: impl Into<String>) -> Self {
        ArchiveError::Corrupt {
            entry,
            detail: detail.into(),
        }
    }
}

/// An entry's name as messages show it: lossy UTF-8 with backslashes,
/// control characters and invisible formatting characters (bidirectional
/// overrides, zero-width spaces) escaped, so a hostile name can neither
/// forge log lines nor hide what it is.
pub(super) fn shown(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in String::from_utf8_lossy(raw).chars() {
        let invisible = matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
        );
        if c == '\\' || c.is_control() || invisible {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
