//! The job's `bundle`: where the site's files are.
//!
//! On the wire it is one object, `{"bucket": .., "prefix": ..}` (contract v1)
//! or `{"bucket": .., "key": ..}` (an archive object, reserved). In code it
//! is an enum, so each kind of bundle carries exactly its own fields and the
//! code that opens one (`crate::bundle::Bundles`) matches on the kind. The
//! wire object is read into [`WireBundle`] (strict: unknown fields are
//! refused) and converted; exactly one of `prefix` and `key` must be given.
//!
//! A new kind of bundle adds a variant here, its wire field to
//! [`WireBundle`], and its rules to `rules.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the site's files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "WireBundle", into = "WireBundle")]
pub enum BundleRef {
    /// A folder of objects: every object under a prefix is one file.
    Prefix(BundlePrefix),
    /// One archive object (tar, tar.gz, zip). Reserved: refused with
    /// `invalid_job` until archive bundles are supported.
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
}

impl TryFrom<WireBundle> for BundleRef {
    /// The message names the field, as the rules' messages do.
    type Error = &'static str;

    fn try_from(wire: WireBundle) -> Result<Self, Self::Error> {
        let WireBundle {
            bucket,
            prefix,
            key,
        } = wire;
        match (prefix, key) {
            (Some(prefix), None) => Ok(BundleRef::Prefix(BundlePrefix { bucket, prefix })),
            (None, Some(key)) => Ok(BundleRef::Archive(BundleArchive { bucket, key })),
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
            },
            BundleRef::Archive(BundleArchive { bucket, key }) => WireBundle {
                bucket,
                prefix: None,
                key: Some(key),
            },
        }
    }
}
