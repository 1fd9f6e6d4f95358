//! Entry names: from what an archive spells to a checked relative path, and
//! the rules that span entries (a path twice, a file that is also a
//! directory, two spellings of one path).
//!
//! Archives spell names loosely (`./a`, `dir/`, a root folder around
//! everything), so a name is first located: inside the optional root or not,
//! the root itself or an entry under it. Only then is it decoded and checked
//! with the bundle's path rules ([`check_relative`]), so entries outside the
//! root — a repository's `node_modules` symlinks next to its `dist` — are
//! skipped rather than refused. Conflicts are tracked on NFC-normalised
//! paths: macOS writes names in NFD, and `é` in two spellings is one path to
//! a person and to file systems that normalise.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

use super::error::{ArchiveError, Limit, shown};
use super::limits::ArchiveLimits;
use crate::bundle::path::check_relative;

/// Where an entry's name puts it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Located {
    /// Outside the root: skipped.
    Outside,
    /// The root itself (or the top, `.` or `./`): nothing to record.
    Root,
    /// Under the root, at this relative path (not yet checked).
    Inside(Vec<u8>),
}

/// Every path taken so far, keyed by NFC form, with its spelling.
#[derive(Debug)]
pub(super) struct Names {
    root: Option<Vec<u8>>,
    limits: ArchiveLimits,
    files: HashMap<String, String>,
    dirs: HashMap<String, String>,
}

impl Names {
    /// Checks the root itself with the bundle's path rules.
    pub(super) fn new(root: Option<&str>, limits: ArchiveLimits) -> Result<Self, ArchiveError> {
        let root = match root.map(|r| r.trim_end_matches('/')) {
            Some(r) => {
                check_relative(r).map_err(|reason| ArchiveError::Path {
                    entry: format!("root {}", shown(r.as_bytes())),
                    reason,
                })?;
                Some(r.as_bytes().to_vec())
            }
            None => None,
        };
        Ok(Names {
            root,
            limits,
            files: HashMap::new(),
            dirs: HashMap::new(),
        })
    }

    /// Where `raw` lies. One leading `./` is dropped; for directories, one
    /// trailing `/` too, and `.` is the top. A file named as the root is
    /// not under it (so skipped); a file with an empty name is not the top
    /// (so refused by [`Names::check`]).
    pub(super) fn locate(&self, raw: &[u8], is_dir: bool) -> Located {
        let mut name = raw.strip_prefix(b"./").unwrap_or(raw);
        if is_dir {
            name = name.strip_suffix(b"/").unwrap_or(name);
            if name == b"." {
                name = b"";
            }
        }
        let rel = match &self.root {
            None => name,
            Some(root) if name == root.as_slice() => return Located::Root,
            Some(root) => match name.strip_prefix(root.as_slice()) {
                Some([b'/', rest @ ..]) => rest,
                _ => return Located::Outside,
            },
        };
        if is_dir && rel.is_empty() {
            Located::Root
        } else {
            Located::Inside(rel.to_vec())
        }
    }

    /// Checks a relative path taken from the archive entry `raw`.
    pub(super) fn check(&self, raw: &[u8], rel: Vec<u8>) -> Result<String, ArchiveError> {
        let entry = || shown(raw);
        let rel = String::from_utf8(rel).map_err(|_| ArchiveError::NotUtf8 { entry: entry() })?;
        if rel.starts_with('/') {
            return Err(ArchiveError::Absolute { entry: entry() });
        }
        if rel.len() > self.limits.max_path_bytes {
            return Err(ArchiveError::Limit {
                entry: Some(entry()),
                limit: Limit::PathBytes,
                value: rel.len() as u64,
                max: self.limits.max_path_bytes as u64,
            });
        }
        let depth = rel.split('/').count();
        if depth > self.limits.max_depth {
            return Err(ArchiveError::TooDeep {
                entry: entry(),
                depth,
                max: self.limits.max_depth,
            });
        }
        check_relative(&rel).map_err(|reason| ArchiveError::Path {
            entry: entry(),
            reason,
        })?;
        Ok(rel)
    }

    /// Records a regular file.
    pub(super) fn add_file(&mut self, rel: &str) -> Result<(), ArchiveError> {
        let key = nfc(rel);
        if let Some(other) = self.files.get(&key) {
            return Err(if other == rel {
                ArchiveError::Duplicate {
                    entry: shown(rel.as_bytes()),
                }
            } else {
                collision(rel, other)
            });
        }
        if self.dirs.contains_key(&key) {
            return Err(ArchiveError::FileAndDirectory {
                entry: shown(rel.as_bytes()),
                by: shown(rel.as_bytes()),
            });
        }
        self.add_parents(rel)?;
        self.files.insert(key, rel.to_owned());
        Ok(())
    }

    /// Records a directory entry (directories are never files of the
    /// bundle, but a file may not share their path).
    pub(super) fn add_dir(&mut self, rel: &str) -> Result<(), ArchiveError> {
        self.add_parents(rel)?;
        self.add_one_dir(rel, rel)
    }

    fn add_parents(&mut self, rel: &str) -> Result<(), ArchiveError> {
        let mut end = 0;
        while let Some(slash) = rel[end..].find('/') {
            end += slash;
            self.add_one_dir(&rel[..end], rel)?;
            end += 1;
        }
        Ok(())
    }

    fn add_one_dir(&mut self, dir: &str, by: &str) -> Result<(), ArchiveError> {
        let key = nfc(dir);
        if self.files.contains_key(&key) {
            return Err(ArchiveError::FileAndDirectory {
                entry: shown(dir.as_bytes()),
                by: shown(by.as_bytes()),
            });
        }
        match self.dirs.get(&key) {
            Some(other) if other != dir => Err(collision(dir, other)),
            Some(_) => Ok(()),
            None => {
                self.dirs.insert(key, dir.to_owned());
                Ok(())
            }
        }
    }
}

fn nfc(path: &str) -> String {
    path.nfc().collect()
}

fn collision(entry: &str, other: &str) -> ArchiveError {
    ArchiveError::NormalizationCollision {
        entry: shown(entry.as_bytes()),
        other: shown(other.as_bytes()),
    }
}
