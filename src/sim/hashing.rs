//! How the simulator checks that an uploaded file is the content its
//! manifest hash stands for, under the asset-hash scheme the worker uses.
//!
//! Cloudflare itself takes any 32-hex hash; the simulator checks each part
//! so that a client hashing wrongly fails its tests. It recomputes the hash
//! here, from the README's definition, without the worker's code:
//!
//! - `content` (contract v1): the first 32 hex of SHA-256(bytes);
//! - `salted`: the first 32 hex of SHA-256 (or, with a secret, of
//!   HMAC-SHA256 keyed by it) over `len(salt) salt len(ext) ext len(d) d`,
//!   each length a 4-byte big-endian count, where `d` is SHA-256(bytes),
//!   `ext` the lowercased extension of the path and `salt` the tenant's
//!   parts, each length-prefixed the same way: `script namespace script`,
//!   `account account-id`, `label name value`, or nothing at all (`none`).
//!
//! The session's manifest gives the paths (so the extensions) behind each
//! hash it asked for, and the upload JWT names the account, namespace and
//! script, so `script`, `account` and `none` salts are recomputed exactly,
//! against every path that carries the hash. What it cannot verify is a
//! `label:<name>` salt: the label's value travels only in the job, never to
//! Cloudflare, so for those the simulator checks the decoded size alone.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The scheme the simulator expects (`--hash-scheme`, `--tenant-key`,
/// `--hash-secret`).
#[derive(Clone, PartialEq, Eq)]
pub enum SimHashing {
    /// SHA-256 of the bytes alone.
    Content,
    /// Salted per tenant, with the extension; keyed when `secret` is set.
    Salted {
        tenant: SimTenantKey,
        secret: Option<Vec<u8>>,
    },
}

/// Whose files share hashes under the salted scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimTenantKey {
    Script,
    Account,
    /// A job label's value: unknown to Cloudflare, so not recomputed.
    Label(String),
    None,
}

/// Who uploads: the claims of the session's upload JWT.
pub struct Uploader<'a> {
    pub account: &'a str,
    pub namespace: &'a str,
    pub script: &'a str,
}

impl SimTenantKey {
    /// Reads `script`, `account`, `none` or `label:<name>`.
    pub fn parse(text: &str) -> Result<SimTenantKey, String> {
        match text {
            "script" => Ok(SimTenantKey::Script),
            "account" => Ok(SimTenantKey::Account),
            "none" => Ok(SimTenantKey::None),
            other => match other.split_once(':') {
                Some(("label", name)) if !name.is_empty() => {
                    Ok(SimTenantKey::Label(name.to_owned()))
                }
                _ => Err(format!(
                    "{text:?}: expected script, account, none or label:<name>"
                )),
            },
        }
    }
}

impl SimHashing {
    /// Checks that `bytes` hash to `hash` for each of `paths` (the session's
    /// manifest paths carrying it); the message names the first that fails.
    pub fn verify(
        &self,
        hash: &str,
        bytes: &[u8],
        paths: &[String],
        who: &Uploader<'_>,
    ) -> Result<(), String> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let (tenant, secret) = match self {
            SimHashing::Content => {
                let actual = hex32(&digest);
                return if actual == hash {
                    Ok(())
                } else {
                    Err(format!("content hashes to {actual}, not the part's name"))
                };
            }
            SimHashing::Salted { tenant, secret } => (tenant, secret),
        };
        let salt = match tenant {
            SimTenantKey::Label(_) => return Ok(()),
            SimTenantKey::Script => {
                prefixed(&[b"script", who.namespace.as_bytes(), who.script.as_bytes()])
            }
            SimTenantKey::Account => prefixed(&[b"account", who.account.as_bytes()]),
            SimTenantKey::None => Vec::new(),
        };
        for path in paths {
            let ext = lowercase_extension(path);
            let message = prefixed(&[&salt, ext.as_bytes(), &digest]);
            let actual = match secret {
                None => hex32(&Sha256::digest(&message)),
                Some(key) => {
                    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                        .map_err(|e| format!("--hash-secret unusable: {e}"))?;
                    mac.update(&message);
                    hex32(&mac.finalize().into_bytes())
                }
            };
            if actual != hash {
                return Err(format!(
                    "content hashes to {actual} as {path}, not the part's name"
                ));
            }
        }
        Ok(())
    }
}

/// Shows the scheme without the secret.
impl fmt::Debug for SimHashing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimHashing::Content => f.write_str("Content"),
            SimHashing::Salted { tenant, secret } => f
                .debug_struct("Salted")
                .field("tenant", tenant)
                .field("secret", &secret.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// Each piece as a 4-byte big-endian length, then its bytes.
fn prefixed(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        let len = u32::try_from(piece.len()).unwrap_or(u32::MAX);
        out.extend(len.to_be_bytes());
        out.extend(*piece);
    }
    out
}

/// The last segment's text after its last dot, ASCII-lowercased; nothing
/// when the segment has no dot or only a leading one.
fn lowercase_extension(path: &str) -> String {
    let segment = match path.rfind('/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    };
    match segment.rfind('.') {
        Some(0) | None => String::new(),
        Some(dot) => segment[dot + 1..].to_ascii_lowercase(),
    }
}

fn hex32(bytes: &[u8]) -> String {
    bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHO: Uploader<'static> = Uploader {
        account: "0123456789abcdef0123456789abcdef",
        namespace: "customers",
        script: "acme",
    };

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| (*p).to_owned()).collect()
    }

    /// The salted hash, spelt out from the README's definition.
    fn salted(bytes: &[u8], ext: &str) -> String {
        let d = Sha256::digest(bytes);
        let mut salt = Vec::new();
        for part in ["script", "customers", "acme"] {
            salt.extend_from_slice(&(part.len() as u32).to_be_bytes());
            salt.extend_from_slice(part.as_bytes());
        }
        let mut m = Vec::new();
        m.extend_from_slice(&(salt.len() as u32).to_be_bytes());
        m.extend_from_slice(&salt);
        m.extend_from_slice(&(ext.len() as u32).to_be_bytes());
        m.extend_from_slice(ext.as_bytes());
        m.extend_from_slice(&32u32.to_be_bytes());
        m.extend_from_slice(&d);
        hex32(&Sha256::digest(&m))
    }

    #[test]
    fn content_hashes_are_the_bytes_sha256() {
        let hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e";
        assert!(
            SimHashing::Content
                .verify(hello, b"hello", &paths(&["/x"]), &WHO)
                .is_ok()
        );
        assert!(
            SimHashing::Content
                .verify(hello, b"hellO", &paths(&["/x"]), &WHO)
                .is_err()
        );
    }

    #[test]
    fn salted_hashes_are_checked_for_every_path_carrying_them() {
        let scheme = SimHashing::Salted {
            tenant: SimTenantKey::Script,
            secret: None,
        };
        let css = salted(b"", "css");
        assert!(
            scheme
                .verify(&css, b"", &paths(&["/a.css", "/b/C.CSS"]), &WHO)
                .is_ok()
        );
        let err = scheme
            .verify(&css, b"", &paths(&["/a.css", "/a.js"]), &WHO)
            .unwrap_err();
        assert!(err.contains("/a.js"), "{err}");
        let other = Uploader {
            script: "globex",
            ..WHO
        };
        assert!(
            scheme
                .verify(&css, b"", &paths(&["/a.css"]), &other)
                .is_err()
        );
        let keyed = SimHashing::Salted {
            tenant: SimTenantKey::Script,
            secret: Some(b"k".to_vec()),
        };
        assert!(keyed.verify(&css, b"", &paths(&["/a.css"]), &WHO).is_err());
        assert!(!format!("{keyed:?}").contains("107"), "the secret shows");
    }

    #[test]
    fn label_salts_cannot_be_recomputed_and_pass() {
        let scheme = SimHashing::Salted {
            tenant: SimTenantKey::Label("tenant".into()),
            secret: None,
        };
        assert!(
            scheme
                .verify(&"0".repeat(32), b"x", &paths(&["/a"]), &WHO)
                .is_ok()
        );
    }

    #[test]
    fn tenant_keys_parse() {
        assert_eq!(SimTenantKey::parse("script"), Ok(SimTenantKey::Script));
        assert_eq!(
            SimTenantKey::parse("label:tenant"),
            Ok(SimTenantKey::Label("tenant".into()))
        );
        assert!(SimTenantKey::parse("label:").is_err());
        assert!(SimTenantKey::parse("customer").is_err());
    }

    #[test]
    fn extensions() {
        assert_eq!(lowercase_extension("/a/b.Tar.GZ"), "gz");
        assert_eq!(lowercase_extension("/.nojekyll"), "");
        assert_eq!(lowercase_extension("/dir.d/x"), "");
    }
}
