//! The asset manifest: path → (hash, size), hashed while streaming.
//!
//! Cloudflare identifies an asset by a 32-hex-character hash. Ours is the
//! first 32 lowercase hex characters of the SHA-256 of the bytes: stable
//! across runs and machines, so an unchanged file is never uploaded twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Length of an asset hash in hex characters.
pub const HASH_LEN: usize = 32;

/// One manifest entry, exactly as Cloudflare's upload session takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub hash: String,
    pub size: u64,
}

/// The files of a bundle, keyed by their `/`-rooted path.
///
/// A `BTreeMap` keeps the paths sorted, which makes the JSON canonical: the
/// same files always give the same bytes and so the same digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Manifest {
    entries: BTreeMap<String, ManifestEntry>,
}

impl Manifest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file. Returns the previous entry if the path was already there
    /// (callers treat that as a bundle error: two objects, one path).
    pub fn insert(&mut self, path: String, entry: ManifestEntry) -> Option<ManifestEntry> {
        self.entries.insert(path, entry)
    }

    pub fn get(&self, path: &str) -> Option<&ManifestEntry> {
        self.entries.get(path)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of the file sizes.
    pub fn total_bytes(&self) -> u64 {
        self.entries.values().map(|e| e.size).sum()
    }

    /// Paths in canonical (sorted) order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &ManifestEntry)> {
        self.entries.iter()
    }

    /// For each hash, the first path holding it and the size; what the
    /// upload step needs to build parts.
    pub fn by_hash(&self) -> BTreeMap<&str, (&str, u64)> {
        let mut out = BTreeMap::new();
        for (path, e) in &self.entries {
            out.entry(e.hash.as_str())
                .or_insert((path.as_str(), e.size));
        }
        out
    }

    /// The canonical JSON: sorted paths, no whitespace.
    pub fn canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.entries).expect("a manifest always serializes")
    }

    /// SHA-256 (full, lowercase hex) of [`Manifest::canonical_json`]; the
    /// `manifest.sha256` of the succeeded event.
    pub fn sha256(&self) -> String {
        hex(&Sha256::digest(self.canonical_json()))
    }
}

/// Hashes a file as its bytes stream past, so no file is ever held whole.
#[derive(Default)]
pub struct StreamingHasher {
    sha: Sha256,
    size: u64,
}

impl StreamingHasher {
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

    /// The manifest entry of everything seen.
    pub fn finish(self) -> ManifestEntry {
        ManifestEntry {
            hash: asset_hash_of_digest(&self.sha.finalize()),
            size: self.size,
        }
    }
}

/// The asset hash of a whole buffer.
pub fn asset_hash(bytes: &[u8]) -> String {
    asset_hash_of_digest(&Sha256::digest(bytes))
}

fn asset_hash_of_digest(digest: &[u8]) -> String {
    let mut h = hex(digest);
    h.truncate(HASH_LEN);
    h
}

/// Whether `s` is a well-formed asset hash (32 lowercase hex characters).
pub fn is_asset_hash(s: &str) -> bool {
    crate::contract::names::is_lower_hex(s, HASH_LEN)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_first_32_hex_of_sha256() {
        // sha256("hello") = 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
        assert_eq!(asset_hash(b"hello"), "2cf24dba5fb0a30e26e83b2ac5b9e29e");
        assert!(is_asset_hash(&asset_hash(b"")));
    }

    #[test]
    fn streaming_equals_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = StreamingHasher::new();
        for chunk in data.chunks(7919) {
            h.update(chunk);
        }
        let entry = h.finish();
        assert_eq!(entry.hash, asset_hash(&data));
        assert_eq!(entry.size, data.len() as u64);
    }

    #[test]
    fn canonical_json_is_sorted_and_stable() {
        let mut a = Manifest::new();
        a.insert(
            "/b.css".into(),
            ManifestEntry {
                hash: asset_hash(b"b"),
                size: 1,
            },
        );
        a.insert(
            "/a.html".into(),
            ManifestEntry {
                hash: asset_hash(b"a"),
                size: 1,
            },
        );
        let json = String::from_utf8(a.canonical_json()).unwrap();
        assert!(json.find("/a.html").unwrap() < json.find("/b.css").unwrap());
        assert!(!json.contains(' '));
        let mut b = Manifest::new();
        b.insert(
            "/a.html".into(),
            ManifestEntry {
                hash: asset_hash(b"a"),
                size: 1,
            },
        );
        b.insert(
            "/b.css".into(),
            ManifestEntry {
                hash: asset_hash(b"b"),
                size: 1,
            },
        );
        assert_eq!(a.sha256(), b.sha256());
        assert_eq!(a.sha256().len(), 64);
    }

    #[test]
    fn is_asset_hash_rejects_upper_and_short() {
        assert!(!is_asset_hash("ABCDEF0123456789abcdef0123456789"));
        assert!(!is_asset_hash("abc"));
    }
}
