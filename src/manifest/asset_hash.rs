//! Asset hashes: the 32 hex characters Cloudflare knows an asset by, derived
//! from the file's content digest.
//!
//! Cloudflare keeps one asset, with one media type, per hash, shared by the
//! whole dispatch namespace. Hashing the bytes alone therefore has two
//! flaws: identical bytes under two extensions (an empty `.css` and an
//! empty `.js`) share one media type, and a tenant can learn from which
//! hashes a session asks for whether another tenant's files exist
//! (Cloudflare's WfP static-assets guidance says to salt per customer). So
//! the default scheme, `salted`, hashes the tenant's salt and the extension
//! along with the content digest:
//!
//! ```text
//! field(x)  = u32 big-endian length of x || x
//! message   = field(salt) || field(extension) || field(content digest, 32 bytes)
//! salted    = first 32 hex of SHA-256(message)
//!           | first 32 hex of HMAC-SHA256(manifest.hash_secret, message)
//! content   = first 32 hex of the content digest (contract v1)
//! ```
//!
//! Every field is length-prefixed, so no two (salt, extension, digest)
//! triples give one message. The salt ([`TenantSalt`]) is built the same
//! way from its parts. The extension is what follows the last `.` of the
//! path's last segment, ASCII-lowercased (the media type's key), empty when
//! there is none or the only dot starts the name (`.nojekyll`).
//!
//! With a secret the hash is an HMAC rather than SHA-256 over the secret
//! and the message: HMAC is the standard keyed hash (a PRF under the usual
//! assumptions), immune to the length extension plain SHA-256(key ||
//! message) invites, and the RustCrypto `hmac` crate is the same family,
//! and the same `digest` traits, as the `sha2` already used.
//!
//! Deriving the hash from the content digest keeps one streaming SHA-256
//! per file and lets one digest cache serve every tenant.

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::ContentDigest;

/// Length of an asset hash in hex characters.
pub const HASH_LEN: usize = 32;

/// Whose files may share assets: the salt mixed into every asset hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantSalt {
    /// One site: its namespace and script name (the default).
    Script { namespace: String, script: String },
    /// Every site carrying one job label value (a customer's sites).
    Label { name: String, value: String },
    /// Every site of one Cloudflare account.
    Account { account_id: String },
    /// Every site alike: assets shared across tenants, the extension still
    /// keeps media types apart.
    None,
}

impl TenantSalt {
    /// The salt's bytes: its kind and parts, each length-prefixed; empty
    /// for [`TenantSalt::None`].
    fn bytes(&self) -> Vec<u8> {
        let parts: Vec<&str> = match self {
            TenantSalt::Script { namespace, script } => vec!["script", namespace, script],
            TenantSalt::Label { name, value } => vec!["label", name, value],
            TenantSalt::Account { account_id } => vec!["account", account_id],
            TenantSalt::None => Vec::new(),
        };
        let mut out = Vec::new();
        for part in parts {
            field(&mut out, part.as_bytes());
        }
        out
    }
}

/// The key of `manifest.hash_secret`, ready to hash with; shows nothing.
#[derive(Clone)]
pub struct HashKey(Hmac<Sha256>);

impl HashKey {
    pub fn new(secret: &SecretString) -> HashKey {
        // HMAC hashes a key of any length down to its block size; only
        // fixed-key MACs can refuse one.
        let mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC-SHA256 accepts keys of any length");
        HashKey(mac)
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(<redacted>)")
    }
}

/// How one deploy derives asset hashes from content digests.
#[derive(Clone, Debug)]
pub struct AssetHashing(Scheme);

#[derive(Clone, Debug)]
enum Scheme {
    /// Contract v1: the content digest's first 32 hex characters.
    Content,
    /// The tenant's salt and the extension mixed in; keyed when a secret
    /// is set.
    Salted { salt: Vec<u8>, key: Option<HashKey> },
}

impl AssetHashing {
    /// `manifest.hash_scheme = "content"`.
    pub fn content() -> AssetHashing {
        AssetHashing(Scheme::Content)
    }

    /// `manifest.hash_scheme = "salted"` for one tenant.
    pub fn salted(salt: &TenantSalt, key: Option<&HashKey>) -> AssetHashing {
        AssetHashing(Scheme::Salted {
            salt: salt.bytes(),
            key: key.cloned(),
        })
    }

    /// The hash of the asset at `path` whose bytes have digest `content`.
    pub fn asset_hash(&self, content: &ContentDigest, path: &str) -> String {
        let (salt, key) = match &self.0 {
            Scheme::Content => return truncated(&content.0),
            Scheme::Salted { salt, key } => (salt, key),
        };
        let mut message = Vec::with_capacity(salt.len() + 64);
        field(&mut message, salt);
        field(&mut message, extension(path).as_bytes());
        field(&mut message, &content.0);
        match key {
            Some(HashKey(mac)) => {
                let mut mac = mac.clone();
                mac.update(&message);
                truncated(&mac.finalize().into_bytes())
            }
            None => truncated(&Sha256::digest(&message)),
        }
    }
}

/// The extension that keys the media type: after the last `.` of the last
/// segment, lowercased; empty without one or for a leading dot only.
pub fn extension(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or_default();
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// Contract v1's asset hash of a whole buffer: the content scheme.
pub fn asset_hash(bytes: &[u8]) -> String {
    AssetHashing::content().asset_hash(&ContentDigest::of(bytes), "")
}

/// Whether `s` is a well-formed asset hash (32 lowercase hex characters).
pub fn is_asset_hash(s: &str) -> bool {
    s.len() == HASH_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    // Salts, extensions and digests are far below 4 GiB; saturating keeps
    // an absurd one distinct from every real one rather than panicking.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn truncated(digest: &[u8]) -> String {
    let mut hex = super::hex(digest);
    hex.truncate(HASH_LEN);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(namespace: &str, script: &str) -> TenantSalt {
        TenantSalt::Script {
            namespace: namespace.into(),
            script: script.into(),
        }
    }

    #[test]
    fn the_content_scheme_is_contract_v1() {
        // sha256("hello") = 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c...
        assert_eq!(asset_hash(b"hello"), "2cf24dba5fb0a30e26e83b2ac5b9e29e");
        let content = AssetHashing::content();
        let digest = ContentDigest::of(b"hello");
        assert_eq!(content.asset_hash(&digest, "/a.css"), asset_hash(b"hello"));
        assert_eq!(content.asset_hash(&digest, "/a.js"), asset_hash(b"hello"));
        assert!(is_asset_hash(&asset_hash(b"")));
    }

    #[test]
    fn salted_hashes_follow_the_documented_message() {
        let digest = ContentDigest::of(b"body{}");
        let mut message = Vec::new();
        let mut salt = Vec::new();
        for part in ["script", "customers", "acme"] {
            salt.extend_from_slice(&(part.len() as u32).to_be_bytes());
            salt.extend_from_slice(part.as_bytes());
        }
        message.extend_from_slice(&(salt.len() as u32).to_be_bytes());
        message.extend_from_slice(&salt);
        message.extend_from_slice(&3u32.to_be_bytes());
        message.extend_from_slice(b"css");
        message.extend_from_slice(&32u32.to_be_bytes());
        message.extend_from_slice(&digest.0);
        let want = truncated(&Sha256::digest(&message));
        let hashing = AssetHashing::salted(&script("customers", "acme"), None);
        assert_eq!(hashing.asset_hash(&digest, "/css/site.CSS"), want);
        assert!(is_asset_hash(&want));
    }

    #[test]
    fn tenants_extensions_and_secrets_each_change_the_hash() {
        let digest = ContentDigest::of(b"");
        let a = AssetHashing::salted(&script("customers", "a"), None);
        let b = AssetHashing::salted(&script("customers", "b"), None);
        assert_ne!(
            a.asset_hash(&digest, "/x.css"),
            b.asset_hash(&digest, "/x.css")
        );
        assert_ne!(
            a.asset_hash(&digest, "/x.css"),
            a.asset_hash(&digest, "/x.js")
        );
        assert_eq!(
            a.asset_hash(&digest, "/x.css"),
            a.asset_hash(&digest, "/y/z.css")
        );
        let keyed = AssetHashing::salted(
            &script("customers", "a"),
            Some(&HashKey::new(&SecretString::from("s3cret"))),
        );
        let other_key = AssetHashing::salted(
            &script("customers", "a"),
            Some(&HashKey::new(&SecretString::from("other"))),
        );
        assert_ne!(
            keyed.asset_hash(&digest, "/x.css"),
            a.asset_hash(&digest, "/x.css")
        );
        assert_ne!(
            keyed.asset_hash(&digest, "/x.css"),
            other_key.asset_hash(&digest, "/x.css")
        );
        assert!(!format!("{keyed:?}").contains("s3cret"));
    }

    #[test]
    fn length_prefixes_keep_parts_apart() {
        let digest = ContentDigest::of(b"x");
        // Without prefixes "ab"+"c" and "a"+"bc" would hash alike.
        let one = AssetHashing::salted(&script("ab", "c"), None);
        let two = AssetHashing::salted(&script("a", "bc"), None);
        assert_ne!(one.asset_hash(&digest, "/f"), two.asset_hash(&digest, "/f"));
        let label = AssetHashing::salted(
            &TenantSalt::Label {
                name: "customers".into(),
                value: "acme".into(),
            },
            None,
        );
        let site = AssetHashing::salted(&script("customers", "acme"), None);
        assert_ne!(
            label.asset_hash(&digest, "/f"),
            site.asset_hash(&digest, "/f")
        );
        let none = AssetHashing::salted(&TenantSalt::None, None);
        assert_ne!(none.asset_hash(&digest, "/f"), asset_hash(b"x"));
    }

    #[test]
    fn extensions_are_the_last_segment_s_lowercased_suffix() {
        for (path, ext) in [
            ("/index.html", "html"),
            ("/a/b.tar.GZ", "gz"),
            ("/.nojekyll", ""),
            ("/dir.d/readme", ""),
            ("/a/..x", "x"),
            ("/noext", ""),
            ("/trailing.", ""),
            ("/ü.Ü", "Ü"),
        ] {
            assert_eq!(extension(path), ext, "{path}");
        }
    }
}
