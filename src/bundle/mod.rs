//! Where a site's files come from, and the rules they must follow.
//!
//! A [`BundleSource`] does two things. [`BundleSource::ingest`] lists the
//! bundle's files and learns each one's content digest: from the digest
//! cache when the listing names content seen before (nothing is read),
//! else by streaming and hashing it. After the upload session,
//! [`BundleSource::fetch`] reads only the files Cloudflare asks for into the
//! job's [`Spool`], verified against their digests. [`Bundles`] opens the
//! source a job's [`BundleRef`] names; the pipeline knows only that factory
//! and the trait. Four sources:
//!
//! - an S3 prefix ([`S3Prefix`]): every object is a file; unchanged objects
//!   are never read, new ones read to hash and again only if Cloudflare
//!   lacks them;
//! - an S3 archive object (`bundle.key`: tar, tar.gz, tar.zst, zip;
//!   [`ArchiveSource`]): read once, streamed, each file hashed and spooled
//!   as it passes (an archive is read in one pass, so its files cannot be
//!   read again one by one); its whole manifest is cached, so an unchanged
//!   archive is not read at all, and a later pass spools only what
//!   Cloudflare asks for;
//! - a local directory or archive file ([`Bundles::open_local`]), for the
//!   one-shot `deploy` command and tests. No [`BundleRef`] names one, so a
//!   queued job can never reach the worker's disk.
//!
//! Whatever the source, names follow the same path rules ([`path`]) and
//! every file passes one gate (`gate.rs`): the root special files are
//! set aside ([`special`], [`SiteConfig`]), `.assetsignore` applies, and
//! Cloudflare's limits are checked on what is left before anything is
//! uploaded. Bytes read from S3 go through `body.rs` (held to the listed
//! size, a stall deadline per chunk).
//!
//! Worker code is read differently ([`Bundles::read_modules`], or
//! [`Bundles::read_local_modules`] from a local directory): a handful of
//! small modules held in memory for one multipart upload.

pub mod archive;
mod archive_source;
mod body;
mod error;
mod gate;
mod local;
mod local_modules;
pub mod path;
mod s3;
mod site;
pub mod special;

pub use self::archive_source::ArchiveSource;
pub use self::error::{BundleError, BundleErrorKind, BundleStep};
pub use self::local::LocalDir;
pub use self::s3::{S3Prefix, S3Storage, read_modules};
pub use self::site::{MAX_SPECIAL_FILE_BYTES, SiteConfig};

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use self::archive::ArchiveFormat;
use crate::cache::{ContentKey, DigestCache};
use crate::config::{LimitSettings, Settings};
use crate::contract::BundleRef;
use crate::manifest::ContentDigest;
use crate::spool::Spool;

/// What ingesting one bundle may use.
pub struct IngestContext<'a> {
    pub limits: &'a LimitSettings,
    /// Digests of content seen before, by what the listing says of it; an
    /// archive source keeps a handle to forget a manifest that proves wrong.
    pub cache: &'a Arc<DigestCache>,
    /// The job's spool, for sources that can read a file only once.
    pub spool: &'a Spool,
    /// The job's `assets_config.html_handling`, which decides which
    /// `_redirects` rewrites loop.
    pub html_handling: Option<&'a str>,
    /// Told how far the source got (the pipeline forwards it to its
    /// observer, so a panic while hashing is reported at `hash`).
    pub progress: &'a dyn IngestProgress,
    /// Asked, as the listing grows, whether the job may hold that many
    /// files' records (see [`ListingGate`]).
    pub gate: &'a dyn ListingGate,
}

/// What a source asks before it holds more files' records in memory (its
/// listing, the files read so far), so its runner can bound what every job
/// of the process holds together: a bundle of many files may have to wait
/// until another one's records are gone. `()` never waits.
///
/// Sources ask as their listing grows (an S3 prefix after each page, an
/// archive after each file, a directory once walked), with the files they
/// hold in all; the records of one page or file are made before the
/// question, so a gate's threshold is passed by at most that much.
#[async_trait::async_trait]
pub trait ListingGate: Send + Sync {
    /// The source holds the records of `files` files; returns once it may
    /// go on. Waits at most for other jobs to end, never for this one.
    async fn holding(&self, files: u64);
}

#[async_trait::async_trait]
impl ListingGate for () {
    async fn holding(&self, _files: u64) {}
}

/// What a source tells its runner while it reads. `()` listens to nothing.
pub trait IngestProgress: Send + Sync {
    /// Listing is done (paths and limits checked); reading and hashing the
    /// files begins.
    fn hashing(&self);

    /// Listing found `files` assets of `bytes` bytes to learn digests of
    /// (told before [`Self::hashing`] where the listing knows them).
    fn listed(&self, _files: u64, _bytes: u64) {}

    /// The digests of `files` more assets (`bytes` bytes) are known; `read`
    /// bytes were read from storage for them (0 when the cache knew them).
    fn hashed(&self, _files: u64, _bytes: u64, _read: u64) {}
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
    /// Boxed: a key is large (an object's bucket, key and version), and
    /// most sources have none, so the record of each of up to 100,000
    /// files stays small.
    pub content_key: Option<Box<ContentKey>>,
}

/// A bundle's files with their digests, its serving configuration, and
/// what learning them cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    pub files: Vec<BundleFile>,
    /// `_headers` and `_redirects` from the bundle root, checked.
    pub config: SiteConfig,
    /// Files whose digest came from the cache, unread.
    pub cache_hits: u64,
    /// Bytes read from the bundle's storage to hash the others.
    pub bytes_read: u64,
}

/// Where a bundle's files come from: an S3 prefix or archive, a local
/// directory or archive file.
#[async_trait::async_trait]
pub trait BundleSource: Send + Sync {
    /// Names the bundle in logs and errors, e.g. `s3://sites/acme/builds/42/`.
    fn location(&self) -> String;

    /// Lists the files (step "list": path rules and limits are checked before
    /// any byte is uploaded), then learns each one's content digest (step
    /// "hash"): from `ctx.cache` where the listing names known content, else
    /// by reading it.
    async fn ingest(&self, ctx: &IngestContext<'_>) -> Result<Ingested, BundleError>;

    /// Puts the bytes of `files` in `spool` ahead of the [`fetch`] calls
    /// where the source reads cheaper in one pass than file by file (an
    /// archive); returns the bytes read from the bundle's storage. By
    /// default nothing is read ahead.
    ///
    /// [`fetch`]: BundleSource::fetch
    async fn prefetch(&self, files: &[&BundleFile], spool: &Spool) -> Result<u64, BundleError> {
        let _ = (files, spool);
        Ok(0)
    }

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
            BundleRef::Archive(a) => {
                // Decoding the job checked that one of the two names a format.
                let format = a.archive_format().ok_or_else(|| BundleError::Invalid {
                    subject: format!("s3://{}/{}", a.bucket, a.key),
                    reason: "no archive format named by bundle.format or the key".into(),
                })?;
                Ok(Box::new(ArchiveSource::s3(
                    &self.s3,
                    &a.bucket,
                    &a.key,
                    format,
                    a.root_dir(),
                )))
            }
        }
    }

    /// A bundle on this machine's disk: a directory, or an archive file
    /// named by its extension (read under `root`, if given). Only the
    /// command line calls this, with the operator's own path; no job can
    /// name one, since [`BundleRef`] has no local variant.
    pub fn open_local(
        &self,
        path: &Path,
        root: Option<&str>,
    ) -> Result<Box<dyn BundleSource>, BundleError> {
        if path.is_dir() {
            return Ok(Box::new(LocalDir::new(path.to_path_buf())));
        }
        let name = path.to_string_lossy();
        match ArchiveFormat::from_name(&name) {
            Some(format) => Ok(Box::new(ArchiveSource::file(
                path.to_path_buf(),
                format,
                root,
            ))),
            None => Err(BundleError::Invalid {
                subject: name.into_owned(),
                reason: "neither a directory nor an archive (.tar, .tar.gz, .tgz, .tar.zst, .tzst, .zip)"
                    .into(),
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

    /// Worker code from a local directory (the one-shot `deploy --code`):
    /// every file under `dir`, named by its path below it, in name order;
    /// at most `max_bytes` in all.
    pub async fn read_local_modules(
        &self,
        dir: &Path,
        max_bytes: u64,
    ) -> Result<Vec<(String, Bytes)>, BundleError> {
        local_modules::read_local_modules(dir, max_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{BundleArchive, BundlePrefix};

    #[tokio::test]
    async fn a_prefix_opens_as_a_folder_and_an_archive_as_an_archive() {
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
            format: None,
            root: Some("dist/".into()),
        });
        let source = bundles.open(&archive).map_err(|e| e.to_string()).unwrap();
        assert_eq!(source.location(), "s3://sites/acme/42.tar.gz");

        let nameless = BundleRef::Archive(BundleArchive {
            bucket: "sites".into(),
            key: "acme/42".into(),
            format: None,
            root: None,
        });
        let Err(err) = bundles.open(&nameless) else {
            panic!("an archive without a format opened");
        };
        assert_eq!(err.kind(), BundleErrorKind::Invalid);
    }

    #[tokio::test]
    async fn local_paths_open_as_directories_or_archives_by_extension() {
        let bundles = Bundles::new(&Settings::default()).await;
        let dir = tempfile::tempdir().unwrap();
        let source = bundles
            .open_local(dir.path(), None)
            .map_err(|e| e.to_string())
            .unwrap();
        assert_eq!(source.location(), format!("{}/", dir.path().display()));
        let zip = dir.path().join("site.zip");
        let source = bundles
            .open_local(&zip, None)
            .map_err(|e| e.to_string())
            .unwrap();
        assert_eq!(source.location(), zip.display().to_string());
        let Err(err) = bundles.open_local(&dir.path().join("site.rar"), None) else {
            panic!("a .rar opened");
        };
        assert_eq!(err.kind(), BundleErrorKind::Invalid);
    }
}
