//! Archive bundles and the digest cache: an archive is read whole once;
//! its manifest is cached (shared through S3), so an unchanged archive is
//! not read at all, and when Cloudflare lacks its files only they are read
//! again (a zip's blocks that hold them; a tar up to the last of them). A
//! manifest that lies fails the deploy retryably and is forgotten, and the
//! retry heals. Counts are asserted, never timings; deployers are
//! pipelines driven one job at a time, several on one bucket standing for
//! the workers of a fleet.

use serde_json::{Value, json};
use wfp_deployer::cache::{ArchiveKey, CachedArchive, CachedFile, ContentKey, DigestCache};
use wfp_deployer::contract::{ErrorCode, Step};
use wfp_deployer::manifest::ContentDigest;

use super::on_both_servers;
use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::archives::{build, file};
use crate::helpers::pipeline::{TestDeployer, job, settings_for};
use crate::helpers::s3::{S3Server, TestBucket, test_bucket};
use crate::helpers::sim::{asset, spawn_sim_for};

/// Bytes no compressor can shrink, so the archive's size is about theirs.
fn noise(n: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            // xorshift64: fast, and nothing a compressor finds a pattern in.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// A site whose 6 MB file is ignored and comes last.
fn entries() -> Vec<crate::helpers::archives::Entry> {
    vec![
        file(".assetsignore", "big.bin\n"),
        file("index.html", "<h1>archived</h1>"),
        file("css/a.css", "a{}"),
        file("big.bin", noise(6 << 20)),
    ]
}

/// A job of `bucket` deploying the archive `key` as `script`.
fn archive(bucket: &TestBucket, job_id: &str, script: &str, key: &str) -> Value {
    let mut job = job(bucket, job_id, script, "unused/");
    job["bundle"] = json!({"bucket": bucket.name(), "key": key});
    job
}

async fn an_unchanged_archive_is_read_once_and_then_only_for_what_cloudflare_lacks(
    server: S3Server,
) {
    let bucket = test_bucket(server).await;
    let sim = spawn_sim_for(&Default::default()).await;
    let mut sizes = Vec::new();
    for format in ["zip", "tar.zst"] {
        let bytes = build(format, &entries());
        sizes.push(bytes.len() as u64);
        bucket.put(format!("site.{format}"), bytes).await;
    }
    let first = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
    for (format, size) in ["zip", "tar.zst"].into_iter().zip(sizes) {
        let key = format!("site.{format}");
        let script = format!("a-{}", format.replace('.', "-"));
        // Cold: read whole, once, every file spooled as it passed.
        let cold = first
            .deploy_ok(&archive(&bucket, &format!("{script}-1"), &script, &key))
            .await;
        assert_eq!(cold.manifest.files, 2, "{format}");
        assert_eq!(cold.manifest.cache_hits, Some(0), "{format}");
        let read = cold.manifest.bytes_read.unwrap_or(0);
        if format == "zip" {
            // Its directory's block may be fetched again after the entries.
            assert!(
                (size..=size + (1 << 20)).contains(&read),
                "{format}: {read}"
            );
        } else {
            assert_eq!(read, size, "{format}: read once");
        }
        assert_eq!(cold.upload.files, 2);
        assert_eq!(cold.upload.bytes_read, Some(0), "{format}: spooled already");

        // Unchanged: not read at all.
        let again = first
            .deploy_ok(&archive(&bucket, &format!("{script}-2"), &script, &key))
            .await;
        assert_eq!(again.manifest.cache_hits, Some(2), "{format}");
        assert_eq!(again.manifest.bytes_read, Some(0), "{format}: not read");
        assert_eq!(again.upload.files, 0);

        // Another worker (nothing in memory), another site: the manifest
        // comes from the shared index, and Cloudflare lacks both files
        // (salted per site), so one pass reads just them: not the ignored
        // 6 MB that the zip's directory skips and the tar's ends with.
        let other = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
        let script_b = format!("{script}-b");
        let pass = other
            .deploy_ok(&archive(&bucket, &format!("{script_b}-1"), &script_b, &key))
            .await;
        assert_eq!(pass.manifest.cache_hits, Some(2), "{format}");
        assert_eq!(pass.upload.files, 2, "{format}");
        // Read for the upload only: the digests came from the index.
        assert_eq!(pass.manifest.bytes_read, Some(0), "{format}");
        let read = pass.upload.bytes_read.unwrap_or(u64::MAX);
        assert!(read < size / 2, "{format}: read {read} of {size} bytes");
        for (path, want) in [
            ("/index.html", &b"<h1>archived</h1>"[..]),
            ("/css/a.css", b"a{}"),
        ] {
            let (_, served) = asset(&sim, TEST_ACCOUNT, "customers", &script_b, path).await;
            assert_eq!(served, want, "{format}: {path}");
        }
    }
}

async fn a_lying_archive_manifest_fails_retryably_and_the_retry_heals(server: S3Server) {
    let bucket = test_bucket(server).await;
    let sim = spawn_sim_for(&Default::default()).await;
    let bytes = build("tar.gz", &[file("index.html", "<h1>true</h1>")]);
    bucket.put("lie.tar.gz", bytes.clone()).await;

    // Plant a manifest that says other bytes, as the cache would key it.
    let head = bucket
        .client()
        .head_object()
        .bucket(bucket.name())
        .key("lie.tar.gz")
        .send()
        .await
        .unwrap();
    let settings = settings_for(&bucket, &sim, |_| {});
    let planter = DigestCache::new(&settings.cache, Some(bucket.client().clone()));
    let content = ContentKey::for_object(
        bucket.name(),
        "lie.tar.gz",
        head.e_tag(),
        head.version_id(),
        bytes.len() as u64,
        settings.cache.etag_is_md5,
    )
    .expect("the HEAD gives an ETag");
    let key = ArchiveKey {
        content,
        root: None,
    };
    let lie = CachedArchive {
        files: vec![CachedFile {
            path: "index.html".into(),
            size: 13,
            digest: ContentDigest::of(b"<h1>lies</h1>"),
        }],
        special: Default::default(),
    };
    planter.record_archive(&key, lie).await;

    let worker = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
    let job = archive(&bucket, "lie-1", "lie", "lie.tar.gz");
    let failure = worker
        .deploy_attempt(&job, 1)
        .await
        .expect_err("a lying manifest must not deploy");
    assert_eq!(
        (failure.code, failure.step, failure.retryable),
        (ErrorCode::Internal, Step::Upload, true),
        "{failure:?}"
    );
    assert!(
        failure.message.contains("lie.tar.gz: index.html"),
        "{}",
        failure.message
    );
    // Forgotten everywhere: the retry, on a fresh worker, reads the archive.
    let fresh = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
    let healed = fresh
        .deploy_attempt(&job, 2)
        .await
        .expect("the retry heals");
    assert_eq!(healed.manifest.cache_hits, Some(0));
    let (_, served) = asset(&sim, TEST_ACCOUNT, "customers", "lie", "/index.html").await;
    assert_eq!(served, b"<h1>true</h1>");
}

on_both_servers!(
    an_unchanged_archive_is_read_once_and_then_only_for_what_cloudflare_lacks,
    a_lying_archive_manifest_fails_retryably_and_the_retry_heals,
);
