//! The digest cache through whole deploys: what it saves, and that it can
//! never make a wrong deploy. Counts (`bytes_read`, `cache_hits`, files
//! uploaded) are asserted, never timings. Every scenario runs on moto and
//! on s3s-fs; deployers are pipelines driven one job at a time, several on
//! one bucket standing for the workers of a fleet.
//!
//! `manifest.bytes_read` counts the bytes read to hash what the cache did
//! not know, `upload.bytes_read` those read again for the files Cloudflare
//! asked for: a file read to hash is kept in the spool for the upload (while
//! the spool has room), so a file new to both is read once, an unchanged
//! one not at all.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use bytes::Bytes;
use serde_json::Value;
use wfp_deployer::contract::{ErrorCode, Step, Success};
use wfp_deployer::manifest::ContentDigest;
use wfp_deployer::sim::SimServer;

use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::pipeline::{CACHE_PREFIX, TestDeployer, job, settings_for};
use crate::helpers::s3::{S3Server, TestBucket, test_bucket};
use crate::helpers::sim::{asset, spawn_sim_for, stats};

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
    a_cold_cache_reads_everything_and_an_unchanged_redeploy_nothing,
    a_changed_object_is_read_again,
    a_reused_key_with_new_bytes_of_the_same_size_is_read_again,
    a_lying_cache_entry_fails_the_deploy_retryably_and_the_retry_heals,
    a_second_worker_reads_only_the_changed_file_of_a_new_build,
    a_disabled_cache_reads_everything_every_time,
    objects_stored_with_a_sha256_checksum_are_not_read_to_be_hashed,
    copies_kept_while_hashing_never_crowd_out_what_the_upload_needs,
);

/// Five files of a site, relative to their build's prefix.
fn site() -> Vec<(&'static str, Bytes)> {
    vec![
        ("index.html", Bytes::from_static(b"<h1>v1</h1>")),
        ("css/a.css", Bytes::from_static(b"body{}")),
        ("js/a.js", Bytes::from_static(b"let a=1")),
        (
            "img/x.bin",
            Bytes::from(
                (0..3000u32)
                    .map(|i| (i * 7 % 251) as u8)
                    .collect::<Vec<u8>>(),
            ),
        ),
        ("empty.txt", Bytes::new()),
    ]
}

fn total(files: &[(&str, Bytes)]) -> u64 {
    files.iter().map(|(_, b)| b.len() as u64).sum()
}

/// A bucket holding `site()` under `prefix`, and a simulator checking the
/// default (salted) hashes.
async fn stack(server: S3Server, prefix: &str) -> (TestBucket, SimServer) {
    let bucket = test_bucket(server).await;
    put_site(&bucket, prefix, &site()).await;
    let sim = spawn_sim_for(&Default::default()).await;
    (bucket, sim)
}

async fn put_site(bucket: &TestBucket, prefix: &str, files: &[(&str, Bytes)]) {
    bucket
        .put_many(
            files
                .iter()
                .map(|(p, b)| (format!("{prefix}{p}"), b.clone())),
        )
        .await;
}

/// `(cache_hits, bytes read to hash, bytes read to upload, files uploaded)`
/// of a deploy.
fn costs(success: &Success) -> (Option<u64>, Option<u64>, Option<u64>, u64) {
    (
        success.manifest.cache_hits,
        success.manifest.bytes_read,
        success.upload.bytes_read,
        success.upload.files,
    )
}

async fn served(sim: &SimServer, script: &str, path: &str) -> Vec<u8> {
    asset(sim, TEST_ACCOUNT, "customers", script, path).await.1
}

/// The key of `script`'s index object in the bucket.
fn index_key(script: &str) -> String {
    format!("{CACHE_PREFIX}scripts/{TEST_ACCOUNT}/customers/{script}.json")
}

async fn read_index(bucket: &TestBucket, script: &str) -> Option<Value> {
    let got = bucket
        .client()
        .get_object()
        .bucket(bucket.name())
        .key(index_key(script))
        .send()
        .await
        .ok()?;
    let bytes = got.body.collect().await.ok()?.into_bytes();
    Some(serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("index is not JSON: {e}")))
}

async fn a_cold_cache_reads_everything_and_an_unchanged_redeploy_nothing(server: S3Server) {
    let (bucket, sim) = stack(server, "b1/").await;
    let worker = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
    let files = site();

    let first = worker.deploy_ok(&job(&bucket, "c-1", "site", "b1/")).await;
    // Cold: every file read to hash it, a copy kept in the spool on the
    // way, so the upload reads nothing again.
    assert_eq!(costs(&first), (Some(0), Some(total(&files)), Some(0), 5));
    assert!(
        read_index(&bucket, "site").await.is_some(),
        "the index is written after a successful deploy"
    );

    let again = worker.deploy_ok(&job(&bucket, "c-2", "site", "b1/")).await;
    assert_eq!(costs(&again), (Some(5), Some(0), Some(0), 0));
    assert_eq!(again.manifest.sha256, first.manifest.sha256);

    // A restarted worker (nothing in memory) finds it all in the index.
    let restarted = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
    let third = restarted
        .deploy_ok(&job(&bucket, "c-3", "site", "b1/"))
        .await;
    assert_eq!(costs(&third), (Some(5), Some(0), Some(0), 0));
    for (path, bytes) in &files {
        assert_eq!(
            served(&sim, "site", &format!("/{path}")).await,
            bytes.to_vec()
        );
    }
}

async fn a_changed_object_is_read_again(server: S3Server) {
    let (bucket, sim) = stack(server, "b1/").await;
    let worker = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
    worker.deploy_ok(&job(&bucket, "ch-1", "site", "b1/")).await;

    // Rewritten in place: a new size and a new ETag.
    bucket.put("b1/js/a.js", "let a=22").await;
    let after = worker.deploy_ok(&job(&bucket, "ch-2", "site", "b1/")).await;
    assert_eq!(costs(&after), (Some(4), Some(8), Some(0), 1));
    assert_eq!(served(&sim, "site", "/js/a.js").await, b"let a=22");
}

async fn a_reused_key_with_new_bytes_of_the_same_size_is_read_again(server: S3Server) {
    let (bucket, sim) = stack(server, "b1/").await;
    let worker = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
    worker.deploy_ok(&job(&bucket, "ru-1", "site", "b1/")).await;

    // Same key, same size, other bytes: only the ETag tells.
    bucket.put("b1/js/a.js", "let b=1").await;
    let after = worker.deploy_ok(&job(&bucket, "ru-2", "site", "b1/")).await;
    assert_eq!(costs(&after), (Some(4), Some(7), Some(0), 1));
    assert_eq!(served(&sim, "site", "/js/a.js").await, b"let b=1");
}

async fn a_lying_cache_entry_fails_the_deploy_retryably_and_the_retry_heals(server: S3Server) {
    let (bucket, sim) = stack(server, "b1/").await;
    let first = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
    first.deploy_ok(&job(&bucket, "lie-1", "site", "b1/")).await;

    // Plant a wrong digest for /css/a.css in the shared index.
    let mut index = read_index(&bucket, "site").await.expect("an index");
    let truth = ContentDigest::of(b"body{}").to_hex();
    let lie = ContentDigest::of(b"a lie").to_hex();
    let entries = index["entries"].as_object_mut().expect("entries");
    let planted = entries
        .values_mut()
        .filter(|digest| **digest == Value::String(truth.clone()))
        .map(|digest| *digest = Value::String(lie.clone()))
        .count();
    assert_eq!(planted, 1, "one entry for /css/a.css: {index}");
    bucket.put(index_key("site"), index.to_string()).await;

    // Another worker trusts the index: the lie names an asset Cloudflare
    // lacks, so the file is read for the upload, and the bytes tell.
    let second = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
    let failure = second
        .deploy_attempt(&job(&bucket, "lie-2", "site", "b1/"), 1)
        .await
        .expect_err("a lying cache entry must not deploy");
    assert_eq!(
        (failure.code, failure.step, failure.retryable),
        (ErrorCode::Internal, Step::Upload, true),
        "{failure:?}"
    );
    let subject = format!("s3://{}/b1/css/a.css: ", bucket.name());
    assert!(failure.message.starts_with(&subject), "{}", failure.message);
    assert!(failure.message.contains(&lie), "{}", failure.message);
    assert!(
        read_index(&bucket, "site").await.is_none(),
        "the wrong index is deleted so no worker loads it again"
    );
    let uploaded_before = stats(&sim).await["files_uploaded"].clone();

    // The retry hashes the file afresh and deploys the right bytes.
    let retried = second
        .deploy_attempt(&job(&bucket, "lie-2", "site", "b1/"), 2)
        .await
        .unwrap_or_else(|f| panic!("the retry failed: {f:?}"));
    assert_eq!(costs(&retried), (Some(4), Some(6), Some(0), 0));
    assert_eq!(served(&sim, "site", "/css/a.css").await, b"body{}");
    assert_eq!(stats(&sim).await["files_uploaded"], uploaded_before);
    let healed = read_index(&bucket, "site").await.expect("rewritten");
    assert!(healed.to_string().contains(&truth), "{healed}");
    assert!(!healed.to_string().contains(&lie), "{healed}");
}

async fn a_second_worker_reads_only_the_changed_file_of_a_new_build(server: S3Server) {
    let (bucket, sim) = stack(server, "builds/1/").await;
    let first = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
    first
        .deploy_ok(&job(&bucket, "fleet-1", "site", "builds/1/"))
        .await;

    // Build 2 under a new prefix: one file of five changed.
    let mut build2 = site();
    build2[0].1 = Bytes::from_static(b"<h1>v2!</h1>");
    put_site(&bucket, "builds/2/", &build2).await;
    let second = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
    let deployed = second
        .deploy_ok(&job(&bucket, "fleet-2", "site", "builds/2/"))
        .await;
    let changed = build2[0].1.len() as u64;
    assert_eq!(costs(&deployed), (Some(4), Some(changed), Some(0), 1));
    assert_eq!(served(&sim, "site", "/index.html").await, b"<h1>v2!</h1>");
    assert_eq!(served(&sim, "site", "/css/a.css").await, b"body{}");
}

async fn a_disabled_cache_reads_everything_every_time(server: S3Server) {
    let (bucket, sim) = stack(server, "b1/").await;
    let settings = settings_for(&bucket, &sim, |s| s.cache.enabled = false);
    let worker = TestDeployer::new(settings).await;
    let files = site();
    worker
        .deploy_ok(&job(&bucket, "off-1", "site", "b1/"))
        .await;
    let again = worker
        .deploy_ok(&job(&bucket, "off-2", "site", "b1/"))
        .await;
    // Read to hash, but Cloudflare holds it all: nothing fetched again.
    assert_eq!(costs(&again), (Some(0), Some(total(&files)), Some(0), 0));
    assert!(
        read_index(&bucket, "site").await.is_none(),
        "nothing written"
    );
}

async fn objects_stored_with_a_sha256_checksum_are_not_read_to_be_hashed(server: S3Server) {
    let bucket = test_bucket(server).await;
    let files = site();
    for (path, bytes) in &files {
        bucket
            .client()
            .put_object()
            .bucket(bucket.name())
            .key(format!("sums/{path}"))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(bytes.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("putting {path} with a checksum: {e:?}"));
    }
    let sim = spawn_sim_for(&Default::default()).await;
    let worker = TestDeployer::new(settings_for(&bucket, &sim, |_| {})).await;
    // A cold cache, yet every digest comes from S3's checksum: the bytes
    // are read once, for the upload, and verified then.
    let first = worker
        .deploy_ok(&job(&bucket, "sum-1", "site", "sums/"))
        .await;
    assert_eq!(costs(&first), (Some(0), Some(0), Some(total(&files)), 5));
    for (path, bytes) in &files {
        assert_eq!(
            served(&sim, "site", &format!("/{path}")).await,
            bytes.to_vec()
        );
    }
    let again = worker
        .deploy_ok(&job(&bucket, "sum-2", "site", "sums/"))
        .await;
    assert_eq!(costs(&again), (Some(5), Some(0), Some(0), 0));
}

async fn copies_kept_while_hashing_never_crowd_out_what_the_upload_needs(server: S3Server) {
    let (bucket, sim) = stack(server, "b1/").await;
    let files = site();
    let roomy = TestDeployer::new(settings_for(&bucket, &sim, |s| s.cache.enabled = false)).await;
    roomy
        .deploy_ok(&job(&bucket, "tight-1", "site", "b1/"))
        .await;

    // Every file is read to hash again (no cache), but the spool holds only
    // the one file Cloudflare will lack: whichever copies the hash pass
    // kept, those it does not want are dropped to make room for it.
    bucket.put("b1/js/a.js", "let a=99").await;
    let tight = TestDeployer::new(settings_for(&bucket, &sim, |s| {
        s.cache.enabled = false;
        s.worker.spool_max_bytes = "let a=99".len() as u64;
    }))
    .await;
    let deployed = tight
        .deploy_ok(&job(&bucket, "tight-2", "site", "b1/"))
        .await;
    assert_eq!(deployed.upload.files, 1);
    assert_eq!(
        deployed.manifest.bytes_read,
        Some(total(&files) - 7 + 8),
        "every file read to hash"
    );
    assert_eq!(served(&sim, "site", "/js/a.js").await, b"let a=99");
}
