//! Reading bundles from real S3 servers: every scenario runs on moto and on
//! s3s-fs (`s3::moto::*`, `s3::s3s::*`), so a test that passes by accident
//! of one server's quirks fails on the other.
//!
//! The servers must be running (`make services`); a down server fails the
//! test with that advice, it is never skipped.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use wfp_deployer::bundle::{
    BundleError, BundleErrorKind, BundleSource, BundleStep, IngestContext, read_modules,
};
use wfp_deployer::cache::DigestCache;
use wfp_deployer::config::LimitSettings;
use wfp_deployer::manifest::{AssetHashing, ContentDigest, Manifest, ManifestEntry, asset_hash};
use wfp_deployer::spool::Spool;

use crate::helpers::s3::{S3Server, TestBucket, test_bucket};

/// Runs each scenario (an `async fn(S3Server)`) once per server.
macro_rules! on_both_servers {
    ($($scenario:ident),* $(,)?) => {
        mod moto {
            $(#[tokio::test] async fn $scenario() { super::$scenario(super::S3Server::Moto).await })*
        }
        mod s3s {
            $(#[tokio::test] async fn $scenario() { super::$scenario(super::S3Server::S3s).await })*
        }
    };
}

on_both_servers!(
    nested_site_gives_exact_manifest_and_spool,
    more_than_a_thousand_files_are_all_listed,
    empty_prefix_is_not_found,
    missing_bucket_is_not_found,
    bad_keys_are_invalid_and_named,
    too_many_files_is_too_large,
    too_large_file_is_named_with_sizes,
    too_many_bytes_in_all_is_too_large,
    identical_files_are_stored_once,
    modules_are_named_relative_and_capped,
    prefix_without_trailing_slash_is_refused_not_guessed,
);

/// Reads `prefix` of `bucket` with `limits` as a deploy does when
/// Cloudflare lacks every file (and the digest cache is off): every file's
/// digest, then every content fetched into a fresh spool; the manifest in
/// contract v1's content hashes.
async fn ingest(
    bucket: &TestBucket,
    prefix: &str,
    limits: &LimitSettings,
) -> (Result<Manifest, BundleError>, Spool, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::create(root.path()).unwrap();
    let source = bucket.storage().await.prefix(bucket.name(), prefix);
    let result = read_whole(&source, &spool, limits).await;
    (result, spool, root)
}

async fn read_whole(
    source: &dyn BundleSource,
    spool: &Spool,
    limits: &LimitSettings,
) -> Result<Manifest, BundleError> {
    let context = IngestContext {
        limits,
        cache: &Arc::new(DigestCache::disabled()),
        spool,
        html_handling: None,
        progress: &(),
        gate: &(),
    };
    let ingested = source.ingest(&context).await?;
    let content = AssetHashing::content();
    let mut manifest = Manifest::new();
    for file in &ingested.files {
        source.fetch(file, spool).await?;
        let entry = ManifestEntry {
            hash: content.asset_hash(&file.digest, &file.path),
            size: file.size,
        };
        manifest.insert(file.path.clone(), entry, file.digest);
    }
    Ok(manifest)
}

fn spool_file_count(spool: &Spool) -> usize {
    std::fs::read_dir(spool.path()).unwrap().count()
}

fn entry(bytes: &[u8]) -> ManifestEntry {
    ManifestEntry {
        hash: asset_hash(bytes),
        size: bytes.len() as u64,
    }
}

async fn nested_site_gives_exact_manifest_and_spool(server: S3Server) {
    let bucket = test_bucket(server).await;
    let logo: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let files: Vec<(&str, Bytes)> = vec![
        ("index.html", Bytes::from_static(b"<h1>home</h1>")),
        ("css/app.css", Bytes::from_static(b"body{margin:0}")),
        (
            "js/deep/nested/app.js",
            Bytes::from_static(b"console.log(1)"),
        ),
        ("img/logo.png", Bytes::from(logo)),
        (".nojekyll", Bytes::new()),
        ("with space/ünï.html", Bytes::from_static(b"unicode")),
    ];
    bucket
        .put_many(files.iter().map(|(p, b)| (format!("site/{p}"), b.clone())))
        .await;
    // Not part of the bundle: a folder marker, a sibling prefix, another folder.
    bucket.put("site/empty/", Bytes::new()).await;
    bucket.put("site-old/index.html", "old").await;
    bucket.put("other/index.html", "other").await;

    let source = bucket.storage().await.prefix(bucket.name(), "site/");
    assert_eq!(source.location(), format!("s3://{}/site/", bucket.name()));
    let (result, spool, _root) = ingest(&bucket, "site/", &LimitSettings::default()).await;
    let manifest = result.unwrap();

    let want: BTreeMap<String, ManifestEntry> = files
        .iter()
        .map(|(p, b)| (format!("/{p}"), entry(b)))
        .collect();
    let got: BTreeMap<String, ManifestEntry> = manifest
        .iter()
        .map(|(p, e)| (p.clone(), e.clone()))
        .collect();
    assert_eq!(got, want);
    for (path, bytes) in &files {
        let stored = spool.file(&ContentDigest::of(bytes)).await.unwrap();
        assert_eq!(
            std::fs::read(&stored.path).unwrap(),
            *bytes,
            "spool content of /{path}"
        );
    }
    assert_eq!(
        spool_file_count(&spool),
        files.len(),
        "only finished files remain"
    );
}

async fn more_than_a_thousand_files_are_all_listed(server: S3Server) {
    let bucket = test_bucket(server).await;
    bucket
        .put_many((0..1_050).map(|i| (format!("big/{i:04}.txt"), format!("file {i}"))))
        .await;
    let (result, _spool, _root) = ingest(&bucket, "big/", &LimitSettings::default()).await;
    let manifest = result.unwrap();
    assert_eq!(manifest.len(), 1_050);
    for i in [0, 999, 1_000, 1_049] {
        let path = format!("/{i:04}.txt");
        assert_eq!(
            manifest.get(&path),
            Some(&entry(format!("file {i}").as_bytes())),
            "{path}"
        );
    }
}

async fn empty_prefix_is_not_found(server: S3Server) {
    let bucket = test_bucket(server).await;
    bucket.put("elsewhere/index.html", "x").await;
    bucket.put("nothing/folder/", Bytes::new()).await;
    let (result, _spool, _root) = ingest(&bucket, "nothing/", &LimitSettings::default()).await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::NotFound);
    assert_eq!(err.step(), BundleStep::List);
    assert_eq!(
        err.to_string(),
        format!("s3://{}/nothing/: no objects", bucket.name())
    );
}

async fn missing_bucket_is_not_found(server: S3Server) {
    let storage = wfp_deployer::bundle::S3Storage::new(
        &server.settings(),
        &crate::helpers::s3::fast_retry(),
        4,
    )
    .await;
    let name = format!("wfp-it-missing-{}", uuid::Uuid::new_v4().simple());
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::create(root.path()).unwrap();
    let err = read_whole(
        &storage.prefix(&name, "site/"),
        &spool,
        &LimitSettings::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::NotFound, "{err}");
    assert_eq!(err.step(), BundleStep::List);
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "s3://{name}/site/: not found: HTTP 404 NoSuchBucket"
        )),
        "{message}"
    );
}

async fn bad_keys_are_invalid_and_named(server: S3Server) {
    // s3s-fs stores keys as file paths and normalises `a//b`, `./` and `../`
    // on write, so those keys can only reach a listing on moto.
    let mut bad = vec![
        ("a\\b.html", "backslash"),
        ("t\tab.html", "control character"),
    ];
    if server == S3Server::Moto {
        bad.extend([
            ("a//b.html", "empty segment"),
            ("../x", "'.' or '..' segment"),
            ("a/./b.html", "'.' or '..' segment"),
        ]);
    }
    for (key, reason) in bad {
        let bucket = test_bucket(server).await;
        bucket.put("site/ok.html", "fine").await;
        bucket.put(format!("site/{key}"), "bad").await;
        let (result, spool, _root) = ingest(&bucket, "site/", &LimitSettings::default()).await;
        let err = result.unwrap_err();
        assert_eq!(err.kind(), BundleErrorKind::Invalid, "{key:?}: {err}");
        assert_eq!(err.step(), BundleStep::List);
        assert_eq!(
            err.to_string(),
            format!(
                "s3://{}/site/{}: invalid path: {reason}",
                bucket.name(),
                // Control characters are shown escaped: a key cannot forge a log line.
                wfp_deployer::bundle::path::shown(key)
            )
        );
        assert_eq!(spool_file_count(&spool), 0, "nothing read before the check");
    }
}

async fn too_many_files_is_too_large(server: S3Server) {
    let bucket = test_bucket(server).await;
    bucket
        .put_many([("site/a", "1"), ("site/b", "2"), ("site/c", "3")])
        .await;
    let limits = LimitSettings {
        max_files: 2,
        ..LimitSettings::default()
    };
    let (result, spool, _root) = ingest(&bucket, "site/", &limits).await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::TooLarge);
    assert_eq!(err.step(), BundleStep::List);
    assert_eq!(
        err.to_string(),
        format!(
            "s3://{}/site/c: file 3 of the bundle, over limits.max_files (2)",
            bucket.name()
        )
    );
    assert_eq!(spool_file_count(&spool), 0);
    // At the limit is fine.
    let limits = LimitSettings {
        max_files: 3,
        ..LimitSettings::default()
    };
    assert_eq!(ingest(&bucket, "site/", &limits).await.0.unwrap().len(), 3);
}

async fn too_large_file_is_named_with_sizes(server: S3Server) {
    let bucket = test_bucket(server).await;
    bucket
        .put_many([
            ("site/small.txt", "0123456789"),
            ("site/big.txt", "0123456789X"),
        ])
        .await;
    let limits = LimitSettings {
        max_file_bytes: 10,
        ..LimitSettings::default()
    };
    let (result, spool, _root) = ingest(&bucket, "site/", &limits).await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::TooLarge);
    assert_eq!(
        err.to_string(),
        format!(
            "s3://{}/site/big.txt: 11 bytes, over limits.max_file_bytes (10)",
            bucket.name()
        )
    );
    assert_eq!(spool_file_count(&spool), 0);
}

async fn too_many_bytes_in_all_is_too_large(server: S3Server) {
    let bucket = test_bucket(server).await;
    bucket
        .put_many([("site/a.txt", "0123456789"), ("site/b.txt", "0123456789")])
        .await;
    let limits = LimitSettings {
        max_total_bytes: 15,
        ..LimitSettings::default()
    };
    let (result, spool, _root) = ingest(&bucket, "site/", &limits).await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::TooLarge);
    assert_eq!(
        err.to_string(),
        format!(
            "s3://{}/site/b.txt: 20 bytes in all with this file, over limits.max_total_bytes (15)",
            bucket.name()
        )
    );
    assert_eq!(spool_file_count(&spool), 0);
    let limits = LimitSettings {
        max_total_bytes: 20,
        ..LimitSettings::default()
    };
    assert_eq!(
        ingest(&bucket, "site/", &limits)
            .await
            .0
            .unwrap()
            .total_bytes(),
        20
    );
}

async fn identical_files_are_stored_once(server: S3Server) {
    let bucket = test_bucket(server).await;
    bucket
        .put_many([
            ("site/a/logo.svg", "<svg/>"),
            ("site/b/logo.svg", "<svg/>"),
            ("site/c/logo.svg", "<svg/>"),
            ("site/index.html", "<h1>hi</h1>"),
        ])
        .await;
    let (result, spool, _root) = ingest(&bucket, "site/", &LimitSettings::default()).await;
    let manifest = result.unwrap();
    assert_eq!(manifest.len(), 4);
    assert_eq!(manifest.by_hash().len(), 2);
    assert_eq!(manifest.get("/b/logo.svg"), Some(&entry(b"<svg/>")));
    assert_eq!(spool_file_count(&spool), 2, "one file per distinct content");
}

async fn modules_are_named_relative_and_capped(server: S3Server) {
    let bucket = test_bucket(server).await;
    bucket
        .put_many([
            (
                "worker/index.js",
                "import {f} from './lib/util.js'; export default f;",
            ),
            ("worker/lib/util.js", "export const f = {};"),
        ])
        .await;
    bucket.put("worker-other/x.js", "not mine").await;
    let storage = bucket.storage().await;

    let modules = read_modules(&storage, bucket.name(), "worker/", 1_000)
        .await
        .unwrap();
    let names: Vec<&str> = modules.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["index.js", "lib/util.js"]);
    assert_eq!(&modules[1].1[..], b"export const f = {};");

    let err = read_modules(&storage, bucket.name(), "worker/", 60)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::TooLarge);
    assert_eq!(
        err.to_string(),
        format!(
            "s3://{}/worker/: worker modules total more than 60 bytes, the limit",
            bucket.name()
        )
    );

    let err = read_modules(&storage, bucket.name(), "none/", 1_000)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::NotFound);
}

/// Callers pass a folder prefix ending in `/`. Without it, keys below the
/// "folder" keep a leading `/` and break the path rules: the mistake is
/// refused loudly rather than guessed at.
async fn prefix_without_trailing_slash_is_refused_not_guessed(server: S3Server) {
    let bucket = test_bucket(server).await;
    bucket.put("site/index.html", "x").await;
    let (result, _spool, _root) = ingest(&bucket, "site", &LimitSettings::default()).await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::Invalid);
    assert_eq!(
        err.to_string(),
        format!(
            "s3://{}/site/index.html: invalid path: empty segment",
            bucket.name()
        )
    );
}
