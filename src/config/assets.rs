//! The settings of how a bundle becomes assets: the asset hash scheme
//! (`[manifest]`) and the content-digest cache (`[cache]`).

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The content-digest cache (`crate::cache`): what lets an unchanged file
/// go unread.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Off: every file is read and hashed on every deploy.
    pub enabled: bool,
    /// Where index objects live, shared by the fleet; unset keeps the cache
    /// in memory only (per process, lost on restart). Also where the
    /// last-deployed markers of build order live (under `markers/`,
    /// whether or not the cache is enabled).
    pub bucket: Option<String>,
    /// Key prefix of the index objects in `bucket`.
    pub prefix: String,
    /// Content keys held in memory (about 150 bytes each).
    pub memory_entries: usize,
    /// Whether 32-hex ETags are MD5s of the content (true for AWS S3 and
    /// most S3 servers without SSE-KMS). False keys every object by its
    /// bucket, key and version instead, so content is not matched across keys.
    pub etag_is_md5: bool,
    /// Largest index object read or written.
    pub max_index_bytes: u64,
    /// Bound on one index read or write.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            bucket: None,
            prefix: "wfp-deployer/digest-cache/v1/".into(),
            memory_entries: 100_000,
            etag_is_md5: true,
            max_index_bytes: 64 * 1024 * 1024,
            timeout: Duration::from_secs(10),
        }
    }
}

/// How asset hashes are made (`crate::manifest::AssetHashing`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManifestSettings {
    /// `salted` (a tenant salt and the file's extension mixed into each
    /// asset hash: tenant-safe, the default) or `content` (contract v1's
    /// plain SHA-256 of the bytes, shared by every tenant).
    pub hash_scheme: HashScheme,
    /// Whose sites share assets under the salted scheme.
    pub tenant_key: TenantKey,
    /// Mixed into every salted hash (HMAC-SHA256), so nobody without it can
    /// compute which hashes a site's files have.
    #[serde(serialize_with = "super::redact::optional_secret")]
    pub hash_secret: Option<SecretString>,
}

impl Default for ManifestSettings {
    fn default() -> Self {
        Self {
            hash_scheme: HashScheme::Salted,
            tenant_key: TenantKey::Script,
            hash_secret: None,
        }
    }
}

/// `manifest.hash_scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashScheme {
    /// A tenant salt and the file's extension mixed in (the default).
    Salted,
    /// Contract v1: the SHA-256 of the bytes alone, shared by every tenant.
    Content,
}

/// `manifest.tenant_key`: `script`, `label:<name>`, `account` or `none`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum TenantKey {
    /// Each site alone: its namespace and script name.
    Script,
    /// Sites with the same value of this job label (a customer's sites).
    Label(String),
    /// Every site of one Cloudflare account.
    Account,
    /// Every site alike: only the extension is mixed in.
    None,
}

impl TryFrom<String> for TenantKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "script" => Ok(TenantKey::Script),
            "account" => Ok(TenantKey::Account),
            "none" => Ok(TenantKey::None),
            _ => match s.strip_prefix("label:") {
                // A job label key's own rule: 1-63 characters.
                Some(name) if (1..=63).contains(&name.len()) => {
                    Ok(TenantKey::Label(name.to_string()))
                }
                _ => Err(format!(
                    "{s:?} is not a tenant key: script, label:<name> (1-63 characters), account or none"
                )),
            },
        }
    }
}

impl From<TenantKey> for String {
    fn from(key: TenantKey) -> String {
        match key {
            TenantKey::Script => "script".into(),
            TenantKey::Account => "account".into(),
            TenantKey::None => "none".into(),
            TenantKey::Label(name) => format!("label:{name}"),
        }
    }
}
