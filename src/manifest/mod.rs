//! The asset manifest: path → (asset hash, size), and behind each path the
//! content digest it was derived from.
//!
//! Cloudflare identifies an asset by a 32-hex-character hash, which this
//! worker derives from the file's content digest (the SHA-256 of its bytes:
//! [`ContentDigest`]) with the job's [`AssetHashing`]. The
//! manifest sent to Cloudflare is exactly `{path: {hash, size}}`; the
//! content digest of each path stays here, so the upload step can map an
//! asset hash Cloudflare asks for back to the content the spool holds.

mod asset_hash;
mod digest;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use self::asset_hash::{
    AssetHashing, HASH_LEN, HashKey, TenantSalt, asset_hash, extension, is_asset_hash,
};
pub use self::digest::{ContentDigest, ContentHasher};

/// One manifest entry, exactly as Cloudflare's upload session takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub hash: String,
    pub size: u64,
}

/// What the upload step needs to send the asset with one hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashedAsset<'a> {
    /// The first path (in sorted order) holding it: its media type's key.
    pub path: &'a str,
    pub size: u64,
    /// The content to send.
    pub content: &'a ContentDigest,
}

/// The files of a bundle, keyed by their `/`-rooted path.
///
/// A `BTreeMap` keeps the paths sorted, which makes the JSON canonical: the
/// same files always give the same bytes and so the same digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: BTreeMap<String, Asset>,
}

/// One path's entry and the content digest behind it (never sent).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Asset {
    entry: ManifestEntry,
    content: ContentDigest,
}

/// Only the `{path: {hash, size}}` map: what Cloudflare takes.
impl Serialize for Manifest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl Manifest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file whose bytes have digest `content`. Returns the previous
    /// entry if the path was already there (callers treat that as a bundle
    /// error: two files, one path).
    pub fn insert(
        &mut self,
        path: String,
        entry: ManifestEntry,
        content: ContentDigest,
    ) -> Option<ManifestEntry> {
        self.entries
            .insert(path, Asset { entry, content })
            .map(|old| old.entry)
    }

    pub fn get(&self, path: &str) -> Option<&ManifestEntry> {
        self.entries.get(path).map(|a| &a.entry)
    }

    /// The content digest of the file at `path`.
    pub fn content(&self, path: &str) -> Option<&ContentDigest> {
        self.entries.get(path).map(|a| &a.content)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of the file sizes.
    pub fn total_bytes(&self) -> u64 {
        self.entries.values().map(|a| a.entry.size).sum()
    }

    /// Paths in canonical (sorted) order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &ManifestEntry)> {
        self.entries.iter().map(|(path, a)| (path, &a.entry))
    }

    /// For each asset hash, the first path holding it, its size and its
    /// content: what the upload step needs to build parts.
    pub fn by_hash(&self) -> BTreeMap<&str, HashedAsset<'_>> {
        let mut out = BTreeMap::new();
        for (path, a) in &self.entries {
            out.entry(a.entry.hash.as_str()).or_insert(HashedAsset {
                path: path.as_str(),
                size: a.entry.size,
                content: &a.content,
            });
        }
        out
    }

    /// The canonical JSON: sorted paths, no whitespace.
    pub fn canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serializes")
    }

    /// SHA-256 (full, lowercase hex) of [`Manifest::canonical_json`]; the
    /// `manifest.sha256` of the succeeded event.
    pub fn sha256(&self) -> String {
        hex(&Sha256::digest(self.canonical_json()))
    }
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

    fn add(manifest: &mut Manifest, path: &str, bytes: &[u8]) {
        let entry = ManifestEntry {
            hash: asset_hash(bytes),
            size: bytes.len() as u64,
        };
        manifest.insert(path.into(), entry, ContentDigest::of(bytes));
    }

    #[test]
    fn canonical_json_is_sorted_stable_and_only_hash_and_size() {
        let mut a = Manifest::new();
        add(&mut a, "/b.css", b"b");
        add(&mut a, "/a.html", b"a");
        let json = String::from_utf8(a.canonical_json()).unwrap();
        assert!(json.find("/a.html").unwrap() < json.find("/b.css").unwrap());
        assert!(!json.contains(' '));
        assert_eq!(serde_json::to_vec(&a).unwrap(), a.canonical_json());
        assert!(!json.contains(&ContentDigest::of(b"a").to_hex()), "{json}");
        let mut b = Manifest::new();
        add(&mut b, "/a.html", b"a");
        add(&mut b, "/b.css", b"b");
        assert_eq!(a.sha256(), b.sha256());
        assert_eq!(a.sha256().len(), 64);
    }

    #[test]
    fn by_hash_maps_each_hash_to_its_first_path_and_content() {
        let mut m = Manifest::new();
        add(&mut m, "/z.txt", b"same");
        add(&mut m, "/a.txt", b"same");
        add(&mut m, "/m.txt", b"other");
        let by_hash = m.by_hash();
        assert_eq!(by_hash.len(), 2);
        let same = by_hash[asset_hash(b"same").as_str()];
        assert_eq!(same.path, "/a.txt");
        assert_eq!(same.size, 4);
        assert_eq!(*same.content, ContentDigest::of(b"same"));
        assert_eq!(m.content("/m.txt"), Some(&ContentDigest::of(b"other")));
    }

    #[test]
    fn is_asset_hash_rejects_upper_and_short() {
        assert!(!is_asset_hash("ABCDEF0123456789abcdef0123456789"));
        assert!(!is_asset_hash("abc"));
    }
}
