//! The content-digest cache: what makes an unchanged redeploy nearly free.
//!
//! Hashing a bundle means reading every byte of it. But a listing already
//! tells, for each object, something that names its content ([`ContentKey`]:
//! the MD5 ETag and size, or the object's version), so a file seen before
//! need not be read at all: its SHA-256 comes from here. Two halves:
//!
//! - an in-memory LRU, bounded by `cache.memory_entries`, shared by every
//!   job of the process (and a few archive manifests, at most
//!   [`REMEMBERED_ARCHIVE_FILES`] files of them in all);
//! - index objects in S3 (`store.rs`), one per script, written after a
//!   successful deploy and read at the start of the next, and one per
//!   archive bundle, written once the archive was read whole, so every
//!   worker of the fleet, and a restarted one, benefits.
//!
//! It can never make a wrong deploy: a changed object has a new ETag, and
//! bytes that are uploaded are verified against the cached digest on the
//! way; a mismatch drops the entry and the script's index object
//! ([`DigestCache::distrust`]) and fails the job as retryable, and the
//! retry, on whichever worker, hashes afresh. Content digests do not
//! depend on the tenant (asset hashes are derived from them with each
//! tenant's salt), so one cache serves every tenant.
//!
//! A failing index read or write costs only speed: it is logged and the
//! deploy goes on as if the cache were cold.

mod key;
mod store;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use self::key::{ArchiveKey, ContentKey};
pub use self::store::StoreError;
pub(crate) use self::store::{Fetched, IndexStore};
use crate::config::CacheSettings;
use crate::internal_events::{DigestCacheStoreFailed, emit};
pub use crate::manifest::ContentDigest;

/// Format version of index objects; a reader ignores other versions.
const INDEX_VERSION: u32 = 1;

/// How many scripts' index ETags are remembered (for conditional reads).
const REMEMBERED_SCRIPTS: usize = 4096;

/// How many archive manifests are held in memory.
const REMEMBERED_ARCHIVES: usize = 8;

/// Files of all archive manifests held in memory together (about 100 bytes
/// each): a larger manifest is read from its index object each time, so the
/// process does not keep bundles at the file limit after their deploys.
const REMEMBERED_ARCHIVE_FILES: usize = 20_000;

/// One file of a cached archive manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedFile {
    /// Relative path inside the bundle (no leading `/`).
    pub path: String,
    pub size: u64,
    pub digest: ContentDigest,
}

#[derive(Serialize, Deserialize)]
struct ScriptIndex {
    version: u32,
    /// Encoded content key → digest.
    entries: BTreeMap<String, ContentDigest>,
}

/// An archive bundle as one read found it: every file under its root with
/// its digest, and the text of the root files that configure the site
/// rather than being served (`.assetsignore`, `_headers`, `_redirects`), so
/// a deploy of the unchanged archive needs none of its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedArchive {
    pub files: Vec<CachedFile>,
    /// File name → contents.
    #[serde(default)]
    pub special: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct ArchiveIndex {
    version: u32,
    #[serde(flatten)]
    archive: CachedArchive,
}

/// What is known of one script's index object.
#[derive(Clone)]
struct Remembered {
    /// The object's ETag when last read or written.
    etag: Option<String>,
    /// Fingerprint of the entries it holds; an unchanged deploy writes nothing.
    fingerprint: [u8; 32],
}

/// The process's digest cache; shared by every job (behind an `Arc`).
pub struct DigestCache {
    enabled: bool,
    etag_is_md5: bool,
    memory: Mutex<LruCache<ContentKey, ContentDigest>>,
    scripts: Mutex<LruCache<String, Remembered>>,
    archives: Mutex<LruCache<ArchiveKey, CachedArchive>>,
    store: Option<IndexStore>,
}

impl DigestCache {
    /// Builds the cache; `client` reaches `settings.bucket` when one is set.
    pub fn new(settings: &CacheSettings, client: Option<aws_sdk_s3::Client>) -> Self {
        let store = match (&settings.bucket, client) {
            (Some(bucket), Some(client)) if settings.enabled => Some(IndexStore::new(
                client,
                bucket.clone(),
                settings.prefix.clone(),
                settings.max_index_bytes,
                settings.timeout,
            )),
            _ => None,
        };
        Self {
            enabled: settings.enabled,
            etag_is_md5: settings.etag_is_md5,
            memory: Mutex::new(LruCache::new(nonzero(settings.memory_entries))),
            scripts: Mutex::new(LruCache::new(nonzero(REMEMBERED_SCRIPTS))),
            archives: Mutex::new(LruCache::new(nonzero(REMEMBERED_ARCHIVES))),
            store,
        }
    }

    /// A cache that never knows anything (`cache.enabled = false`).
    pub fn disabled() -> Self {
        Self::new(
            &CacheSettings {
                enabled: false,
                ..CacheSettings::default()
            },
            None,
        )
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The content key of a listed object, or `None` when the cache is off
    /// or the listing says too little.
    pub fn key_for(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
        version_id: Option<&str>,
        size: u64,
    ) -> Option<ContentKey> {
        if !self.enabled {
            return None;
        }
        ContentKey::for_object(bucket, key, etag, version_id, size, self.etag_is_md5)
    }

    /// Loads what the fleet knows of `scope` (`account/namespace/script`)
    /// into memory: one conditional GET, nothing when unchanged.
    pub async fn warm(&self, scope: &str) {
        let Some(store) = &self.store else { return };
        let key = store.script_key(scope);
        let known = lock(&self.scripts).get(scope).and_then(|r| r.etag.clone());
        match store.get::<ScriptIndex>(&key, known.as_deref()).await {
            Ok(Fetched::Found(index, etag)) if index.version == INDEX_VERSION => {
                let fingerprint = fingerprint(index.entries.iter());
                let mut memory = lock(&self.memory);
                for (encoded, digest) in index.entries {
                    if let Some(content) = ContentKey::decode(&encoded) {
                        memory.put(content, digest);
                    }
                }
                drop(memory);
                lock(&self.scripts).put(scope.to_string(), Remembered { etag, fingerprint });
            }
            Ok(Fetched::Found(..)) | Ok(Fetched::Missing) | Ok(Fetched::NotModified) => {}
            Err(error) => emit(DigestCacheStoreFailed {
                operation: "read",
                error: &error,
            }),
        }
    }

    /// The digest of `key`'s content, if known.
    pub fn get(&self, key: &ContentKey) -> Option<ContentDigest> {
        if !self.enabled {
            return None;
        }
        lock(&self.memory).get(key).copied()
    }

    /// Forgets `key` in this process.
    pub fn evict(&self, key: &ContentKey) {
        lock(&self.memory).pop(key);
    }

    /// `key`'s cached digest proved wrong while deploying `scope`: forgets
    /// it here and deletes `scope`'s index object, where it was most likely
    /// read from, so no worker of the fleet loads it again. The next
    /// successful deploy of `scope` writes a fresh index.
    pub async fn distrust(&self, scope: &str, key: &ContentKey) {
        self.evict(key);
        lock(&self.scripts).pop(scope);
        let Some(store) = &self.store else { return };
        if let Err(error) = store.delete(&store.script_key(scope)).await {
            tracing::warn!(%error, "digest cache: a wrong index not deleted");
        }
    }

    /// Remembers what a successful deploy of `scope` hashed, in memory and,
    /// when it differs from the index object, in S3.
    pub async fn record(&self, scope: &str, entries: Vec<(ContentKey, ContentDigest)>) {
        if !self.enabled {
            return;
        }
        let index: BTreeMap<String, ContentDigest> =
            entries.iter().map(|(k, d)| (k.encode(), *d)).collect();
        {
            let mut memory = lock(&self.memory);
            for (content, digest) in entries {
                memory.put(content, digest);
            }
        }
        let Some(store) = &self.store else { return };
        let fingerprint = fingerprint(index.iter());
        if lock(&self.scripts)
            .get(scope)
            .is_some_and(|r| r.fingerprint == fingerprint)
        {
            return;
        }
        let object = ScriptIndex {
            version: INDEX_VERSION,
            entries: index,
        };
        match store.put(&store.script_key(scope), &object).await {
            Ok(etag) => {
                lock(&self.scripts).put(scope.to_string(), Remembered { etag, fingerprint });
            }
            Err(error) => emit(DigestCacheStoreFailed {
                operation: "write",
                error: &error,
            }),
        }
    }

    /// The cached manifest of an archive bundle, if any worker saved one.
    pub async fn archive_manifest(&self, archive: &ArchiveKey) -> Option<CachedArchive> {
        if !self.enabled {
            return None;
        }
        if let Some(cached) = lock(&self.archives).get(archive) {
            return Some(cached.clone());
        }
        let store = self.store.as_ref()?;
        match store
            .get::<ArchiveIndex>(&store.archive_key(&archive.encode()), None)
            .await
        {
            Ok(Fetched::Found(index, _)) if index.version == INDEX_VERSION => {
                self.remember_archive(archive, &index.archive);
                Some(index.archive)
            }
            Ok(_) => None,
            Err(error) => {
                emit(DigestCacheStoreFailed {
                    operation: "read",
                    error: &error,
                });
                None
            }
        }
    }

    /// Saves an archive bundle's manifest once the archive was read whole
    /// (its digests are of the bytes read, whatever the deploy comes to).
    pub async fn record_archive(&self, archive: &ArchiveKey, cached: CachedArchive) {
        if !self.enabled {
            return;
        }
        if let Some(store) = &self.store {
            let index = ArchiveIndex {
                version: INDEX_VERSION,
                archive: cached,
            };
            if let Err(error) = store
                .put(&store.archive_key(&archive.encode()), &index)
                .await
            {
                emit(DigestCacheStoreFailed {
                    operation: "write",
                    error: &error,
                });
            }
            self.remember_archive(archive, &index.archive);
        } else {
            self.remember_archive(archive, &cached);
        }
    }

    /// Keeps a copy of `cached` in memory if it fits
    /// [`REMEMBERED_ARCHIVE_FILES`], forgetting the least recently used
    /// others until all fit.
    fn remember_archive(&self, archive: &ArchiveKey, cached: &CachedArchive) {
        let mut archives = lock(&self.archives);
        archives.pop(archive);
        if cached.files.len() > REMEMBERED_ARCHIVE_FILES {
            return;
        }
        let mut held: usize = archives.iter().map(|(_, a)| a.files.len()).sum();
        while held + cached.files.len() > REMEMBERED_ARCHIVE_FILES {
            match archives.pop_lru() {
                Some((_, old)) => held -= old.files.len(),
                None => break,
            }
        }
        archives.put(archive.clone(), cached.clone());
    }

    /// An archive's cached manifest proved wrong (its bytes read again are
    /// not what it says): forgets it here and deletes its index object, so
    /// the next deploy, on any worker, reads the archive afresh.
    pub async fn forget_archive(&self, archive: &ArchiveKey) {
        lock(&self.archives).pop(archive);
        let Some(store) = &self.store else { return };
        if let Err(error) = store.delete(&store.archive_key(&archive.encode())).await {
            tracing::warn!(%error, "digest cache: a wrong archive index not deleted");
        }
    }
}

fn nonzero(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

/// A poisoned lock only means another job panicked mid-update of an LRU;
/// the cache's contents are still digests checked on use, so go on.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn fingerprint<'a>(entries: impl Iterator<Item = (&'a String, &'a ContentDigest)>) -> [u8; 32] {
    let mut sha = Sha256::new();
    for (key, digest) in entries {
        sha.update(key.as_bytes());
        sha.update([0]);
        sha.update(digest.0);
    }
    sha.finalize().into()
}

#[cfg(test)]
mod tests;
