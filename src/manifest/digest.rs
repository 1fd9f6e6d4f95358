//! A file's content digest: the SHA-256 of its bytes, computed while they
//! stream past.
//!
//! The digest is what the worker knows a file's content by: the spool names
//! files by it, the digest cache remembers it, and asset hashes are derived
//! from it ([`super::AssetHashing`]). It never depends on the tenant, which
//! is what lets one cache and one spool serve every tenant while each
//! tenant's asset hashes stay its own.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The SHA-256 of a file's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ContentDigest(pub [u8; 32]);

impl ContentDigest {
    /// The digest of a whole buffer.
    pub fn of(bytes: &[u8]) -> ContentDigest {
        ContentDigest(Sha256::digest(bytes).into())
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        super::hex(&self.0)
    }

    /// Reads 64 hex characters.
    pub fn from_hex(hex: &str) -> Option<ContentDigest> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(ContentDigest(out))
    }
}

impl fmt::Debug for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentDigest({})", self.to_hex())
    }
}

impl fmt::Display for ContentDigest {
    /// `sha256:<hex>`, as messages name a digest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl From<ContentDigest> for String {
    fn from(d: ContentDigest) -> String {
        d.to_hex()
    }
}

impl TryFrom<String> for ContentDigest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ContentDigest::from_hex(&s).ok_or_else(|| format!("not a SHA-256 hex digest: {s:?}"))
    }
}

/// Hashes a file as its bytes stream past, so no file is ever held whole.
#[derive(Default, Clone)]
pub struct ContentHasher {
    sha: Sha256,
    size: u64,
}

impl ContentHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.sha.update(chunk);
        self.size += chunk.len() as u64;
    }

    /// Bytes seen so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digest of everything seen.
    pub fn finish(self) -> ContentDigest {
        ContentDigest(self.sha.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_read_and_write_hex() {
        let d = ContentDigest([0xab; 32]);
        assert_eq!(ContentDigest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(ContentDigest::from_hex("ab"), None);
        assert_eq!(ContentDigest::from_hex(&"g".repeat(64)), None);
        assert_eq!(ContentDigest::from_hex(&"é".repeat(32)), None);
        assert_eq!(d.to_string(), format!("sha256:{}", "ab".repeat(32)));
    }

    #[test]
    fn streaming_equals_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = ContentHasher::new();
        for chunk in data.chunks(7919) {
            h.update(chunk);
        }
        assert_eq!(h.size(), data.len() as u64);
        assert_eq!(h.finish(), ContentDigest::of(&data));
        // sha256("hello")
        assert_eq!(
            ContentDigest::of(b"hello").to_hex(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
