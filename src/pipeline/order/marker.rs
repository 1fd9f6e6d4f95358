//! The last-deployed marker of each script: the `created_at` (and job id)
//! of the build that is live, so a job older than it is not deployed.
//!
//! Read and written only while holding the script's lease, so plain reads
//! and writes are enough (no compare-and-set). With `cache.bucket` set, a
//! marker is a small JSON object in that bucket, under
//! `<cache.prefix>markers/<account>/<namespace>/<script>.json`, shared by
//! the fleet and kept across restarts; without one it lives in this
//! process's memory (an LRU of [`MEMORY_MARKERS`] scripts), and build order
//! then holds within this process only.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use lru::LruCache;
use serde::{Deserialize, Serialize};

use crate::cache::{Fetched, IndexStore, StoreError};
use crate::config::CacheSettings;

/// Scripts whose marker a process without a bucket remembers.
pub const MEMORY_MARKERS: usize = 100_000;

/// A marker is a few hundred bytes; anything far larger is not one.
const MAX_MARKER_BYTES: u64 = 64 * 1024;

/// What is live for one script, as far as ordering goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The live build's `created_at`.
    #[serde(with = "utc")]
    pub created_at: DateTime<Utc>,
    /// The job that deployed it.
    pub job_id: String,
    /// When it went live (for people reading the object).
    #[serde(with = "utc")]
    pub deployed_at: DateTime<Utc>,
}

/// RFC 3339 in UTC with whole precision, so a marker read back compares
/// exactly as written.
mod utc {
    use super::*;

    pub fn serialize<S: serde::Serializer>(at: &DateTime<Utc>, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(de: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(de)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Where markers are kept.
pub struct Markers(Keeper);

enum Keeper {
    /// In `cache.bucket`: the fleet's.
    Bucket(IndexStore),
    /// In this process's memory.
    Memory(Mutex<LruCache<String, Marker>>),
}

impl Markers {
    /// In `settings.bucket` when one is set (whether or not the digest
    /// cache itself is enabled), else in memory.
    pub fn new(settings: &CacheSettings, client: &aws_sdk_s3::Client) -> Self {
        match &settings.bucket {
            Some(bucket) => Markers(Keeper::Bucket(IndexStore::new(
                client.clone(),
                bucket.clone(),
                settings.prefix.clone(),
                MAX_MARKER_BYTES,
                settings.timeout,
            ))),
            None => Self::memory(),
        }
    }

    /// Markers in this process's memory only.
    pub fn memory() -> Self {
        let capacity = NonZeroUsize::new(MEMORY_MARKERS).unwrap_or(NonZeroUsize::MIN);
        Markers(Keeper::Memory(Mutex::new(LruCache::new(capacity))))
    }

    fn key(store: &IndexStore, script: &str) -> String {
        store.key(&format!("markers/{script}.json"))
    }

    /// The marker of `script`; `None` before its first ordered deploy.
    pub async fn read(&self, script: &str) -> Result<Option<Marker>, StoreError> {
        match &self.0 {
            Keeper::Bucket(store) => match store.get(&Self::key(store, script), None).await? {
                Fetched::Found(marker, _) => Ok(Some(marker)),
                Fetched::Missing | Fetched::NotModified => Ok(None),
            },
            Keeper::Memory(markers) => Ok(lock(markers).get(script).cloned()),
        }
    }

    /// Records `marker` as what is live for `script`.
    pub async fn write(&self, script: &str, marker: &Marker) -> Result<(), StoreError> {
        match &self.0 {
            Keeper::Bucket(store) => store
                .put(&Self::key(store, script), marker)
                .await
                .map(|_| ()),
            Keeper::Memory(markers) => {
                lock(markers).put(script.to_string(), marker.clone());
                Ok(())
            }
        }
    }
}

fn lock(
    markers: &Mutex<LruCache<String, Marker>>,
) -> std::sync::MutexGuard<'_, LruCache<String, Marker>> {
    markers.lock().unwrap_or_else(|e| e.into_inner())
}
