//! The job's `bundle`: where the site's files are.
//!
//! On the wire it is one object, `{"bucket": .., "prefix": ..}` (contract v1)
//! or `{"bucket": .., "key": .., "format": .., "root": ..}` (an archive
//! object; `format` and `root` optional, an addition to v1). In code it
//! is an enum, so each kind of bundle carries exactly its own fields and the
//! code that opens one (`crate::bundle::Bundles`) matches on the kind. The
//! wire object is read into [`WireBundle`] (strict: unknown fields are
//! refused) and converted; exactly one of `prefix` and `key` must be given.
//!
//! A new kind of bundle adds a variant here, its wire field to
//! [`WireBundle`], and its rules to `rules.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bundle::archive::ArchiveFormat;
use crate::bundle::path::check_relative;

/// Where the site's files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "WireBundle", into = "WireBundle")]
pub enum BundleRef {
    /// A folder of objects: every object under a prefix is one file.
    Prefix(BundlePrefix),
    /// One archive object: tar, tar.gz, tar.zst or zip.
    Archive(BundleArchive),
}

/// Every object under `prefix` in `bucket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundlePrefix {
    pub bucket: String,
    /// As the job gave it; see [`BundlePrefix::folder_prefix`].
    pub prefix: String,
}

/// One archive object, `key` in `bucket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleArchive {
    pub bucket: String,
    pub key: String,
    /// `tar`, `tar.gz`, `tar.zst` or `zip`; absent: the key's extension says.
    pub format: Option<String>,
    /// Only the files under this directory of the archive (`dist`), with
    /// paths relative to it.
    pub root: Option<String>,
}

impl BundleArchive {
    /// The format to read the archive as: `format` when given, else the
    /// key's extension (`.tar`, `.tar.gz`/`.tgz`, `.tar.zst`/`.tzst`,
    /// `.zip`); `None` when neither names one.
    pub fn archive_format(&self) -> Option<ArchiveFormat> {
        match &self.format {
            Some(name) => ArchiveFormat::parse(name),
            None => ArchiveFormat::from_name(&self.key),
        }
    }

    /// The root directory without a trailing `/`; `None` for the whole
    /// archive (an empty root, or `.`, is the whole archive too).
    pub fn root_dir(&self) -> Option<&str> {
        self.root
            .as_deref()
            .map(|r| r.trim_end_matches('/'))
            .filter(|r| !r.is_empty() && *r != ".")
    }

    /// The rules of `bundle.key`, `bundle.format` and `bundle.root`.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.key.is_empty()
            || self.key.len() > 1024
            || self.key.ends_with('/')
            || self.key.chars().any(char::is_control)
        {
            return Err(format!(
                "bundle.key: {:?} must name one object: 1-1024 characters, not ending with '/', no control characters",
                self.key
            ));
        }
        if let Some(name) = &self.format
            && ArchiveFormat::parse(name).is_none()
        {
            return Err(format!(
                "bundle.format: {name:?} is not one of tar, tar.gz, tar.zst, zip"
            ));
        }
        if self.archive_format().is_none() {
            return Err(format!(
                "bundle.key: {:?} has no archive extension (.tar, .tar.gz, .tgz, .tar.zst, .tzst, .zip); give bundle.format",
                self.key
            ));
        }
        if let Some(root) = self.root_dir()
            && let Err(e) = check_relative(root)
        {
            return Err(format!("bundle.root: {root:?}: {e}"));
        }
        Ok(())
    }
}

impl BundleRef {
    /// The bucket the bundle is in, whatever its kind.
    pub fn bucket(&self) -> &str {
        match self {
            BundleRef::Prefix(p) => &p.bucket,
            BundleRef::Archive(a) => &a.bucket,
        }
    }
}

impl BundlePrefix {
    /// The prefix as a folder: empty, or ending with `/`, so `builds/4`
    /// never matches `builds/42/...`.
    pub fn folder_prefix(&self) -> String {
        super::folder(&self.prefix)
    }
}

/// The bundle object exactly as contract v1 spells it. A wrong type reads
/// "expected struct BundleRef", as it always has.
///
/// Its schema asks for a string `prefix` and refuses a `key`, as v1's rules
/// do (an archive bundle is refused with `invalid_job` until archives land).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "struct BundleRef")]
#[schemars(extend(
    "required" = ["bucket", "prefix"],
    "not" = {"required": ["key"], "properties": {"key": {"type": "string"}}}
))]
struct WireBundle {
    /// An S3 bucket name.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    bucket: String,
    /// A folder (`a/b` means `a/b/`): no leading `/`, no `.` or `..` segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        with = "String",
        length(max = 1024),
        regex(pattern = r"^(?!/)(?!(?:.*/)?\.\.?(?:/|$))[^\x00-\x1f\x7f-\x9f]*$")
    )]
    prefix: Option<String>,
    /// Reserved for archive bundles (tar, tar.gz, zip); refused until they land.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    root: Option<String>,
}

impl TryFrom<WireBundle> for BundleRef {
    /// The message names the field, as the rules' messages do.
    type Error = &'static str;

    fn try_from(wire: WireBundle) -> Result<Self, Self::Error> {
        let WireBundle {
            bucket,
            prefix,
            key,
            format,
            root,
        } = wire;
        match (prefix, key) {
            (Some(_), None) if format.is_some() || root.is_some() => {
                Err("bundle: format and root go with key, not prefix")
            }
            (Some(prefix), None) => Ok(BundleRef::Prefix(BundlePrefix { bucket, prefix })),
            (None, Some(key)) => Ok(BundleRef::Archive(BundleArchive {
                bucket,
                key,
                format,
                root,
            })),
            (Some(_), Some(_)) => Err("bundle: give either prefix or key, not both"),
            (None, None) => Err("bundle.prefix: missing"),
        }
    }
}

impl From<BundleRef> for WireBundle {
    fn from(bundle: BundleRef) -> Self {
        match bundle {
            BundleRef::Prefix(BundlePrefix { bucket, prefix }) => WireBundle {
                bucket,
                prefix: Some(prefix),
                key: None,
                format: None,
                root: None,
            },
            BundleRef::Archive(BundleArchive {
                bucket,
                key,
                format,
                root,
            }) => WireBundle {
                bucket,
                prefix: None,
                key: Some(key),
                format,
                root,
            },
        }
    }
}
