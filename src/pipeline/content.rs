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
//! The fetching and the upload overlap: [`JobContent::upload`] runs
//! [`JobContent::fetch_missing`] beside the upload, which starts a bucket as
//! soon as its files are in the spool, while the next buckets' files are
//! still being read (files are fetched in the order of the session's
//! buckets). Contents are fetched once however many paths, asset hashes and
//! waiting buckets share them: the upload step's [`AssetContent::locate`]
//! waits for a fetch in flight, or fetches what a renewed session asks for
//! that nobody fetched yet. After a failed fetch (or a failed upload: see
//! [`JobContent::stop`]) no other is started, and the upload's reads fail
//! at once; the job ends on the first fetch error ([`JobContent::failure`]),
//! whichever of the two ran into it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use crate::bundle::{BundleError, BundleErrorKind, BundleFile, BundleSource, BundleStep};
use crate::cache::DigestCache;
use crate::cloudflare::{
    AssetBody, AssetContent, AssetsUploaded, CloudflareClient, ScriptTarget, UploadSession,
};
use crate::manifest::{ContentDigest, Manifest};
use crate::spool::Spool;

use super::{DeployError, DeployObserver};

/// One job's contents: where each can be read, and what is in the spool.
pub(super) struct JobContent<'a> {
    source: &'a dyn BundleSource,
    spool: &'a Spool,
    cache: &'a DigestCache,
    /// `account/namespace/script`: the cache index a wrong digest came from.
    scope: &'a str,
    /// One file per content: any of them holds the bytes.
    files: HashMap<ContentDigest, &'a BundleFile>,
    /// Each content's fetch in flight, whoever needs it meanwhile waits for
    /// it; removed once it is stored in the spool, verified.
    fetched: Mutex<HashMap<ContentDigest, Arc<OnceCell<()>>>>,
    /// No more fetches: one failed, or the upload did.
    stopped: AtomicBool,
    /// The first fetch error: what the job reports.
    failure: Mutex<Option<BundleError>>,
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
            fetched: Mutex::new(HashMap::new()),
            stopped: AtomicBool::new(false),
            failure: Mutex::new(None),
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

    /// Uploads what `session` asks for, its files read beside the upload
    /// (see the module's doc). A failed read is the cause (the upload may
    /// have failed for lack of its file); else the upload's own failure.
    pub(super) async fn upload(
        &self,
        cloudflare: &CloudflareClient,
        target: &ScriptTarget,
        manifest: &Manifest,
        session: UploadSession,
    ) -> Result<AssetsUploaded, DeployError> {
        let buckets = session.buckets.clone();
        self.drop_unwanted(manifest, &buckets).await;
        let upload = async {
            let uploaded = cloudflare.upload(target, manifest, self, session).await;
            if uploaded.is_err() {
                self.stop();
            }
            uploaded
        };
        let (fetched, uploaded) = tokio::join!(self.fetch_missing(manifest, &buckets), upload);
        if let Some(failure) = self.failure() {
            return Err(DeployError::Bundle(failure));
        }
        let assets = uploaded.map_err(DeployError::Cloudflare)?;
        fetched.map_err(DeployError::Bundle)?;
        Ok(assets)
    }

    /// Drops the copies kept while hashing that Cloudflare does not want,
    /// to make room for what it does; before any fetch, the upload's own
    /// included. A failure only leaves them: a fetch then says what is
    /// short.
    async fn drop_unwanted(&self, manifest: &Manifest, buckets: &[Vec<String>]) {
        let by_hash = manifest.by_hash();
        let wanted: HashSet<ContentDigest> = buckets
            .iter()
            .flatten()
            .filter_map(|hash| by_hash.get(hash.as_str()).map(|a| *a.content))
            .collect();
        let _ = self.spool.retain(|content| wanted.contains(content)).await;
    }

    /// Reads the contents behind the asset hashes in `buckets` into the
    /// spool, each once, in the buckets' order (the upload, running beside
    /// it, needs the first bucket first).
    async fn fetch_missing(
        &self,
        manifest: &Manifest,
        buckets: &[Vec<String>],
    ) -> Result<(), BundleError> {
        let wanted: Vec<ContentDigest> = {
            let by_hash = manifest.by_hash();
            let mut seen = HashSet::new();
            buckets
                .iter()
                .flatten()
                .filter_map(|hash| by_hash.get(hash.as_str()).map(|a| *a.content))
                .filter(|content| seen.insert(*content))
                .collect()
        };
        // A source that reads in passes (an archive) reads them all in one;
        // the list of them goes once it has.
        let files: Vec<&BundleFile> = wanted
            .iter()
            .filter_map(|content| self.files.get(content).copied())
            .collect();
        let prefetched = self.source.prefetch(&files, self.spool).await;
        drop(files);
        match prefetched {
            Ok(read) => self.count_read(read),
            Err(err) => return Err(self.failed(err, &self.source.location())),
        };
        futures::stream::iter(wanted)
            .map(|content| self.fetch(content))
            .buffer_unordered(self.fetch_concurrency)
            .try_collect::<()>()
            .await
    }

    /// Starts no more fetches: the upload failed, so nothing will need them.
    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// The first fetch that failed, whoever asked for it: the job's cause.
    fn failure(&self) -> Option<BundleError> {
        lock(&self.failure).take()
    }

    /// Puts `content` in the spool unless it is there (or waits for the
    /// fetch in flight); a mismatch distrusts the cache entry the digest may
    /// have come from.
    async fn fetch(&self, content: ContentDigest) -> Result<(), BundleError> {
        let cell = lock(&self.fetched).entry(content).or_default().clone();
        cell.get_or_try_init(|| self.fetch_once(content)).await?;
        // Stored: whoever asks again finds it in the spool (a look at the
        // disk), so its cell need not be kept for each of up to 100,000
        // contents.
        lock(&self.fetched).remove(&content);
        Ok(())
    }

    async fn fetch_once(&self, content: ContentDigest) -> Result<(), BundleError> {
        let Some(file) = self.files.get(&content) else {
            return Err(BundleError::NotFound {
                step: BundleStep::Fetch,
                subject: self.source.location(),
                detail: format!("no file of the bundle has content {content}"),
            });
        };
        if self.stopped.load(Ordering::Relaxed) {
            return Err(given_up(&file.origin, "the deploy already failed"));
        }
        // Kept when it was read to hash: filed under the digest of the bytes
        // themselves, so it is right whatever the cache said.
        if self.spool.file(&content).await.is_ok() {
            return Ok(());
        }
        match self.source.fetch(file, self.spool).await {
            Ok(read) => {
                self.count_read(read);
                Ok(())
            }
            Err(err) => {
                if err.kind() == BundleErrorKind::Mismatch
                    && let Some(key) = &file.content_key
                {
                    self.cache.distrust(self.scope, key).await;
                }
                Err(self.failed(err, &file.origin))
            }
        }
    }

    /// Keeps `err` as the job's cause (unless one came first), stops the
    /// fetching, and returns what the caller sees.
    fn failed(&self, err: BundleError, subject: &str) -> BundleError {
        self.stop();
        let told = given_up(subject, &err.to_string());
        lock(&self.failure).get_or_insert(err);
        told
    }
}

/// A fetch not made, or made and failed (its error is kept for the job):
/// what the caller sees.
fn given_up(subject: &str, why: &str) -> BundleError {
    BundleError::NotFound {
        step: BundleStep::Fetch,
        subject: subject.to_string(),
        detail: format!("not read: {why}"),
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

/// A poisoned lock only means a fetch panicked while inserting into a map
/// of digests, which stays valid: go on with it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
