//! The bytes the upload step sends: only what Cloudflare asks for, read
//! again from the bundle into the job's spool and verified on the way.
//!
//! Hashing kept nothing (and a cached digest read nothing), so after the
//! upload session [`JobContent::fetch_missing`] reads the files behind the
//! hashes Cloudflare lacks, `fetch_concurrency` at a time, into the spool,
//! each stored only if its bytes have the digest the manifest was built
//! from. A mismatch (a cached digest that lied, or an object rewritten with
//! the same size) fails the job as a retryable `internal` error and
//! distrusts the cache entry, so the retry reads and hashes the file
//! afresh: the cache can cost a failed try, never a wrong deploy.
//!
//! Contents are fetched once however many paths and asset hashes share
//! them. Should a renewed session ask for something not fetched yet, the
//! upload step's [`AssetContent::locate`] fetches it then.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{StreamExt, TryStreamExt};

use crate::bundle::{BundleError, BundleErrorKind, BundleFile, BundleSource, BundleStep};
use crate::cache::DigestCache;
use crate::cloudflare::{AssetBody, AssetContent};
use crate::manifest::{ContentDigest, Manifest};
use crate::spool::Spool;

use super::DeployObserver;

/// One job's contents: where each can be read, and what is in the spool.
pub(super) struct JobContent<'a> {
    source: &'a dyn BundleSource,
    spool: &'a Spool,
    cache: &'a DigestCache,
    /// `account/namespace/script`: the cache index a wrong digest came from.
    scope: &'a str,
    /// One file per content: any of them holds the bytes.
    files: HashMap<ContentDigest, &'a BundleFile>,
    /// Contents stored in the spool, verified.
    fetched: Mutex<HashSet<ContentDigest>>,
    fetch_concurrency: usize,
    bytes_read: AtomicU64,
    /// Told what is read and uploaded, for the deploy's progress.
    observer: Option<&'a DeployObserver>,
}

impl<'a> JobContent<'a> {
    pub(super) fn new(
        source: &'a dyn BundleSource,
        files: &'a [BundleFile],
        spool: &'a Spool,
        cache: &'a DigestCache,
        scope: &'a str,
        fetch_concurrency: usize,
    ) -> Self {
        Self {
            source,
            spool,
            cache,
            scope,
            files: files.iter().map(|f| (f.digest, f)).collect(),
            fetched: Mutex::new(HashSet::new()),
            fetch_concurrency: fetch_concurrency.max(1),
            bytes_read: AtomicU64::new(0),
            observer: None,
        }
    }

    /// Reports bytes read and buckets uploaded to `observer`.
    pub(super) fn observed_by(mut self, observer: &'a DeployObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    fn count_read(&self, read: u64) {
        self.bytes_read.fetch_add(read, Ordering::Relaxed);
        if let Some(observer) = self.observer {
            observer.read(read);
        }
    }

    /// Bytes read from the bundle's storage for the upload so far.
    pub(super) fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// Reads the contents behind the asset hashes in `buckets` into the
    /// spool, each once.
    pub(super) async fn fetch_missing(
        &self,
        manifest: &Manifest,
        buckets: &[Vec<String>],
    ) -> Result<(), BundleError> {
        let by_hash = manifest.by_hash();
        let wanted: HashSet<ContentDigest> = buckets
            .iter()
            .flatten()
            .filter_map(|hash| by_hash.get(hash.as_str()).map(|a| *a.content))
            .collect();
        // A source that reads in passes (an archive) reads them all in one.
        let files: Vec<&BundleFile> = wanted
            .iter()
            .filter_map(|content| self.files.get(content).copied())
            .collect();
        let read = self.source.prefetch(&files, self.spool).await?;
        self.count_read(read);
        futures::stream::iter(wanted)
            .map(|content| self.fetch(content))
            .buffer_unordered(self.fetch_concurrency)
            .try_collect::<()>()
            .await
    }

    /// Puts `content` in the spool unless it is there; a mismatch
    /// distrusts the cache entry the digest may have come from.
    async fn fetch(&self, content: ContentDigest) -> Result<(), BundleError> {
        if self.is_fetched(&content) {
            return Ok(());
        }
        let Some(file) = self.files.get(&content) else {
            return Err(BundleError::NotFound {
                step: BundleStep::Fetch,
                subject: self.source.location(),
                detail: format!("no file of the bundle has content {content}"),
            });
        };
        match self.source.fetch(file, self.spool).await {
            Ok(read) => {
                self.count_read(read);
                lock(&self.fetched).insert(content);
                Ok(())
            }
            Err(err) => {
                if err.kind() == BundleErrorKind::Mismatch
                    && let Some(key) = &file.content_key
                {
                    self.cache.distrust(self.scope, key).await;
                }
                Err(err)
            }
        }
    }

    fn is_fetched(&self, content: &ContentDigest) -> bool {
        lock(&self.fetched).contains(content)
    }
}

/// The upload step reads each content from the spool; what a renewed
/// session adds is fetched on the spot.
#[async_trait::async_trait]
impl AssetContent for JobContent<'_> {
    async fn locate(&self, content: &ContentDigest) -> std::io::Result<AssetBody> {
        self.fetch(*content)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.spool.locate(content).await
    }

    fn uploaded(&self, files: u64, bytes: u64) {
        if let Some(observer) = self.observer {
            observer.bucket_uploaded(files, bytes);
        }
    }
}

/// A poisoned lock only means a fetch panicked while inserting into a set
/// of digests, which stays valid: go on with it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
