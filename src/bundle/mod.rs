//! Where a site's files come from, and the rules they must follow.
//!
//! A [`BundleSource`] does two things. [`BundleSource::ingest`] lists the
//! bundle's files and learns each one's content digest: from the digest
//! cache when the listing names content seen before (nothing is read),
//! else by streaming and hashing it (nothing is kept). After the upload
//! session, [`BundleSource::fetch`] reads only the files Cloudflare asks for
//! into the job's [`Spool`], verified against their digests. So an
//! unchanged file is never read, a new one is read to hash it and again
//! only if Cloudflare lacks it, and the disk a job uses is bounded by what
//! is missing. [`Bundles`] opens the source a job's [`BundleRef`] names; the
//! pipeline knows only that factory and the trait. Today the only source is
//! an S3 prefix ([`S3Prefix`]). Every source reads a file's bytes through
//! `body.rs` (held to the listed size, a stall deadline per chunk, hashed or
//! verified) and follows the same path rules ([`path`]) and limits.
//!
//! **Adding a source** (an archive object, a local directory): its variant
//! in `contract/job/bundle.rs` (and its rules), one file here implementing
//! [`BundleSource`] on top of `body.rs`, and its arm in [`Bundles::open`].
//! A source that can read a file only once (an archive streamed from S3)
//! spools it while hashing (`ctx.spool`), and its `fetch` finds it there.
//! Nothing above this module changes.
//!
//! Worker code is read differently ([`Bundles::read_modules`]): a handful of
//! small modules held in memory for one multipart upload.
//!
//! [`special`] holds the rules of the root files that configure serving
//! rather than being served: `.assetsignore`, `_headers`, `_redirects`.

pub mod archive;
mod body;
mod error;
pub mod path;
mod s3;
pub mod special;

pub use self::error::{BundleError, BundleErrorKind, BundleStep};
pub use self::s3::{S3Prefix, S3Storage, read_modules};

use bytes::Bytes;

use crate::cache::{ContentKey, DigestCache};
use crate::config::{LimitSettings, Settings};
use crate::contract::BundleRef;
use crate::manifest::ContentDigest;
use crate::spool::Spool;

/// What ingesting one bundle may use.
pub struct IngestContext<'a> {
    pub limits: &'a LimitSettings,
    /// Digests of content seen before, by what the listing says of it.
    pub cache: &'a DigestCache,
    /// The job's spool, for sources that can read a file only once.
    pub spool: &'a Spool,
    /// Told how far the source got (the pipeline forwards it to its
    /// observer, so a panic while hashing is reported at `hash`).
    pub progress: &'a dyn IngestProgress,
}

/// What a source tells its runner while it reads. `()` listens to nothing.
pub trait IngestProgress: Send + Sync {
    /// Listing is done (paths and limits checked); reading and hashing the
    /// files begins.
    fn hashing(&self);
}

impl IngestProgress for () {
    fn hashing(&self) {}
}

/// One file of a bundle, its content known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// The `/`-rooted path it is served at.
    pub path: String,
    pub size: u64,
    /// The SHA-256 of its bytes, from the cache or from reading them.
    pub digest: ContentDigest,
    /// Where its source finds it again (an S3 key, an archive entry).
    pub origin: String,
    /// What names its content in the digest cache, when the listing said.
    pub content_key: Option<ContentKey>,
}

/// A bundle's files with their digests, and what learning them cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    pub files: Vec<BundleFile>,
    /// Files whose digest came from the cache, unread.
    pub cache_hits: u64,
    /// Bytes read from the bundle's storage to hash the others.
    pub bytes_read: u64,
}

/// Where a bundle's files come from: an S3 prefix now, archives later.
#[async_trait::async_trait]
pub trait BundleSource: Send + Sync {
    /// Names the bundle in logs and errors, e.g. `s3://sites/acme/builds/42/`.
    fn location(&self) -> String;

    /// Lists the files (step "list": path rules and limits are checked before
    /// any byte is read), then learns each one's content digest (step
    /// "hash"): from `ctx.cache` where the listing names known content, else
    /// by reading it, held to its listed size.
    async fn ingest(&self, ctx: &IngestContext<'_>) -> Result<Ingested, BundleError>;

    /// Puts `file`'s bytes in `spool` for the upload step, stored only if
    /// they have `file.digest` ([`BundleErrorKind::Mismatch`] otherwise);
    /// returns the bytes read from the bundle's storage.
    async fn fetch(&self, file: &BundleFile, spool: &Spool) -> Result<u64, BundleError>;
}

/// Opens the bundles jobs name, whatever their kind. Built once per process
/// (the storage clients inside pool connections) and cloned freely.
#[derive(Debug, Clone)]
pub struct Bundles {
    s3: S3Storage,
}

impl Bundles {
    /// The storage clients every kind of bundle needs, from `settings`.
    pub async fn new(settings: &Settings) -> Bundles {
        Bundles {
            s3: S3Storage::new(
                &settings.s3,
                &settings.retry,
                settings.worker.fetch_concurrency,
            )
            .await,
        }
    }

    /// The S3 client bundles are read with; the digest cache's index
    /// objects go through it too.
    pub fn s3_client(&self) -> &aws_sdk_s3::Client {
        self.s3.client()
    }

    /// The source of the bundle `bundle` names. Nothing is read yet.
    pub fn open(&self, bundle: &BundleRef) -> Result<Box<dyn BundleSource>, BundleError> {
        match bundle {
            BundleRef::Prefix(p) => Ok(Box::new(self.s3.prefix(&p.bucket, &p.folder_prefix()))),
            // Refused with `invalid_job` when the job is decoded; never opened.
            BundleRef::Archive(a) => Err(BundleError::Unsupported {
                subject: format!("s3://{}/{}", a.bucket, a.key),
                what: "archive bundles",
            }),
        }
    }

    /// Worker code: every object under `prefix` (a folder prefix ending in
    /// `/`) in `bucket`, named by its path below it, in name order; at most
    /// `max_bytes` in all.
    pub async fn read_modules(
        &self,
        bucket: &str,
        prefix: &str,
        max_bytes: u64,
    ) -> Result<Vec<(String, Bytes)>, BundleError> {
        read_modules(&self.s3, bucket, prefix, max_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{BundleArchive, BundlePrefix};

    #[tokio::test]
    async fn a_prefix_opens_as_a_folder_and_an_archive_is_refused() {
        let bundles = Bundles::new(&Settings::default()).await;
        let prefix = BundleRef::Prefix(BundlePrefix {
            bucket: "sites".into(),
            prefix: "acme/builds/42".into(),
        });
        let source = bundles.open(&prefix).map_err(|e| e.to_string()).unwrap();
        assert_eq!(source.location(), "s3://sites/acme/builds/42/");

        let archive = BundleRef::Archive(BundleArchive {
            bucket: "sites".into(),
            key: "acme/42.tar.gz".into(),
        });
        let Err(err) = bundles.open(&archive) else {
            panic!("an archive bundle opened");
        };
        assert_eq!(err.kind(), BundleErrorKind::Invalid);
        assert_eq!(err.step(), BundleStep::List);
        assert_eq!(
            err.to_string(),
            "s3://sites/acme/42.tar.gz: archive bundles are not supported yet"
        );
    }
}
