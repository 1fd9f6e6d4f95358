//! Which of a bundle's files are uploaded, and whether the bundle may be
//! deployed at all: one set of rules for every source.
//!
//! Each source finds its files (listing a prefix, reading an archive,
//! walking a directory), holds every name to [`check_relative`] as it finds
//! it, and then passes each one, with its size, through one [`Gate`]:
//!
//! 1. the root special files (`.assetsignore`, `_headers`, `_redirects`)
//!    are set aside: they configure the site and are never assets;
//! 2. a root `_worker.js` (without an `.assetsignore`) and whatever the
//!    ignore file names are skipped;
//! 3. every other file is an asset and must be servable ([`check_asset`]),
//!    distinct from every other asset once Unicode-normalised (NFC: macOS
//!    writes names decomposed, and two spellings of `é` are one path to a
//!    person), and within Cloudflare's limits: files, bytes of one file,
//!    bytes in all, bytes of a path (`limits.*`).
//!
//! The gate stops at the first file that breaks a rule, naming it, the
//! limit and the value, so a bundle over a limit is refused before anything
//! is uploaded (for an S3 prefix, before anything is read). Counting only
//! what is uploaded matches Cloudflare, which never sees ignored files.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

use super::path::{PathError, check_asset, shown};
use super::site::{MAX_SPECIAL_FILE_BYTES, SpecialFile};
use super::special::{AssetsIgnore, reserved};
use super::{BundleError, BundleStep};
use crate::config::LimitSettings;

/// What the gate made of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Uploaded.
    Asset,
    /// A root special file: its bytes configure the site.
    Special(SpecialFile),
    /// Never uploaded: ignored, or a root `_worker.js`.
    Skipped,
}

/// Why a file stops the bundle; the source adds which file it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Path(PathError),
    /// Over a limit: which, and by what.
    TooLarge(String),
    /// Another asset has the same NFC form.
    Collision {
        other: String,
    },
}

impl Refusal {
    /// The bundle error for the file `subject` (as its source names it).
    pub fn into_error(self, subject: String) -> BundleError {
        match self {
            Refusal::Path(reason) => BundleError::Invalid {
                subject,
                reason: reason.to_string(),
            },
            Refusal::Collision { other } if subject.ends_with(&shown(&other)) => {
                BundleError::Invalid {
                    subject,
                    reason: "a second file with this path".into(),
                }
            }
            Refusal::Collision { other } => BundleError::Invalid {
                subject,
                reason: format!(
                    "same path as {} once Unicode-normalised (NFC)",
                    shown(&other)
                ),
            },
            Refusal::TooLarge(detail) => BundleError::TooLarge {
                step: BundleStep::List,
                subject,
                detail,
            },
        }
    }
}

/// A root special file is read into memory: it may hold at most
/// [`MAX_SPECIAL_FILE_BYTES`].
pub fn check_special_size(size: u64) -> Result<(), Refusal> {
    if size > MAX_SPECIAL_FILE_BYTES {
        return Err(Refusal::TooLarge(format!(
            "{size} bytes, over the {MAX_SPECIAL_FILE_BYTES} bytes a special file may hold"
        )));
    }
    Ok(())
}

/// The rules one bundle's files pass, with what it has admitted so far.
pub struct Gate<'a> {
    limits: &'a LimitSettings,
    ignore: Option<AssetsIgnore>,
    files: u64,
    total: u64,
    /// NFC form → the asset's path as spelled, for every asset admitted.
    paths: HashMap<String, String>,
}

impl<'a> Gate<'a> {
    /// A gate under `limits`; `ignore` is the bundle's `.assetsignore`.
    pub fn new(limits: &'a LimitSettings, ignore: Option<AssetsIgnore>) -> Self {
        Gate {
            limits,
            ignore,
            files: 0,
            total: 0,
            paths: HashMap::new(),
        }
    }

    /// Judges the file at `rel` (relative to the bundle root, through
    /// [`check_relative`](super::path::check_relative) already) of `size`
    /// bytes.
    pub fn admit(&mut self, rel: &str, size: u64) -> Result<Admission, Refusal> {
        if let Some(file) = SpecialFile::at(rel) {
            check_special_size(size)?;
            return Ok(Admission::Special(file));
        }
        let ignored = self
            .ignore
            .as_ref()
            .is_some_and(|ignore| ignore.is_ignored(rel, false));
        if ignored || reserved(rel, self.ignore.is_some()) {
            return Ok(Admission::Skipped);
        }
        check_asset(rel).map_err(Refusal::Path)?;
        let limits = self.limits;
        let over = |value: String, setting: &str, max: String| {
            Refusal::TooLarge(format!("{value}, over limits.{setting} ({max})"))
        };
        if rel.len() > limits.max_path_bytes {
            return Err(over(
                format!("a path of {} bytes", rel.len()),
                "max_path_bytes",
                limits.max_path_bytes.to_string(),
            ));
        }
        if size > limits.max_file_bytes {
            return Err(over(
                format!("{size} bytes"),
                "max_file_bytes",
                limits.max_file_bytes.to_string(),
            ));
        }
        if self.files >= limits.max_files {
            return Err(over(
                format!("file {} of the bundle", self.files + 1),
                "max_files",
                limits.max_files.to_string(),
            ));
        }
        let total = self.total.saturating_add(size);
        if total > limits.max_total_bytes {
            return Err(over(
                format!("{total} bytes in all with this file"),
                "max_total_bytes",
                limits.max_total_bytes.to_string(),
            ));
        }
        let key: String = rel.nfc().collect();
        if let Some(other) = self.paths.get(&key) {
            return Err(Refusal::Collision {
                other: other.clone(),
            });
        }
        self.paths.insert(key, rel.to_owned());
        self.files += 1;
        self.total = total;
        Ok(Admission::Asset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LimitSettings {
        LimitSettings {
            max_files: 3,
            max_file_bytes: 10,
            max_total_bytes: 25,
            max_path_bytes: 12,
            ..LimitSettings::default()
        }
    }

    #[test]
    fn special_files_ignored_files_and_worker_code_are_not_assets() {
        let limits = limits();
        let ignore = AssetsIgnore::parse(b"*.map\n").unwrap();
        let mut gate = Gate::new(&limits, Some(ignore));
        assert_eq!(
            gate.admit(".assetsignore", 6),
            Ok(Admission::Special(SpecialFile::AssetsIgnore))
        );
        assert_eq!(
            gate.admit("_headers", 1),
            Ok(Admission::Special(SpecialFile::Headers))
        );
        assert_eq!(gate.admit("app.js.map", 99), Ok(Admission::Skipped));
        assert_eq!(gate.admit("_worker.js", 1), Ok(Admission::Asset));
        assert_eq!(gate.admit("sub/_headers", 1), Ok(Admission::Asset));

        let mut bare = Gate::new(&limits, None);
        assert_eq!(bare.admit("_worker.js/index.js", 1), Ok(Admission::Skipped));
        assert_eq!(bare.admit("app.js.map", 1), Ok(Admission::Asset));
    }

    #[test]
    fn each_limit_names_itself_and_the_value() {
        let limits = limits();
        let mut gate = Gate::new(&limits, None);
        let too_large = |r: Result<Admission, Refusal>| match r {
            Err(Refusal::TooLarge(detail)) => detail,
            other => panic!("not too large: {other:?}"),
        };
        assert_eq!(
            too_large(gate.admit("abcdefghi.txt", 1)),
            "a path of 13 bytes, over limits.max_path_bytes (12)"
        );
        assert_eq!(
            too_large(gate.admit("big.bin", 11)),
            "11 bytes, over limits.max_file_bytes (10)"
        );
        for name in ["a", "b"] {
            assert_eq!(gate.admit(name, 10), Ok(Admission::Asset));
        }
        assert_eq!(
            too_large(gate.admit("c", 6)),
            "26 bytes in all with this file, over limits.max_total_bytes (25)"
        );
        assert_eq!(gate.admit("c", 5), Ok(Admission::Asset));
        assert_eq!(
            too_large(gate.admit("d", 0)),
            "file 4 of the bundle, over limits.max_files (3)"
        );
        assert_eq!(
            too_large(gate.admit("_redirects", MAX_SPECIAL_FILE_BYTES + 1)),
            format!(
                "{} bytes, over the {MAX_SPECIAL_FILE_BYTES} bytes a special file may hold",
                MAX_SPECIAL_FILE_BYTES + 1
            )
        );
    }

    #[test]
    fn two_spellings_of_one_path_are_refused_naming_both() {
        let limits = LimitSettings::default();
        let mut gate = Gate::new(&limits, None);
        assert_eq!(gate.admit("caf\u{e9}.html", 1), Ok(Admission::Asset));
        let refusal = gate.admit("cafe\u{301}.html", 1).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Collision {
                other: "caf\u{e9}.html".into()
            }
        );
        let err = refusal.into_error("s3://b/p/cafe\u{301}.html".into());
        assert_eq!(
            err.to_string(),
            "s3://b/p/cafe\u{301}.html: invalid path: same path as caf\u{e9}.html once Unicode-normalised (NFC)"
        );
        let twice = gate.admit("caf\u{e9}.html", 1).unwrap_err();
        assert_eq!(
            twice
                .into_error("s3://b/p/caf\u{e9}.html".into())
                .to_string(),
            "s3://b/p/caf\u{e9}.html: invalid path: a second file with this path"
        );
        assert!(matches!(
            gate.admit("a?b", 1),
            Err(Refusal::Path(PathError::QueryOrFragment('?', _)))
        ));
    }
}
