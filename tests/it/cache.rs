//! The digest cache's shared half against real S3 servers: two caches on
//! one bucket stand for two workers of a fleet (or one worker restarted).

use std::collections::BTreeMap;

use wfp_deployer::cache::{
    ArchiveKey, CachedArchive, CachedFile, ContentDigest, ContentKey, DigestCache,
};
use wfp_deployer::config::CacheSettings;

use crate::helpers::s3::{S3Server, test_bucket};

fn settings(bucket: &str) -> CacheSettings {
    CacheSettings {
        bucket: Some(bucket.to_string()),
        prefix: "cache/v1".into(),
        ..CacheSettings::default()
    }
}

fn key(n: u8) -> ContentKey {
    ContentKey::Md5 {
        md5: format!("{n:032x}"),
        size: u64::from(n),
    }
}

async fn shared_between_two_workers(server: S3Server) {
    let bucket = test_bucket(server).await;
    let first = DigestCache::new(&settings(bucket.name()), Some(bucket.client().clone()));
    first
        .record(
            "acct/ns/site",
            vec![
                (key(1), ContentDigest([1; 32])),
                (key(2), ContentDigest([2; 32])),
            ],
        )
        .await;

    // A second worker (or the first after a restart) has nothing in memory.
    let second = DigestCache::new(&settings(bucket.name()), Some(bucket.client().clone()));
    assert_eq!(second.get(&key(1)), None, "cold before warming");
    second.warm("acct/ns/site").await;
    assert_eq!(second.get(&key(1)), Some(ContentDigest([1; 32])));
    assert_eq!(second.get(&key(2)), Some(ContentDigest([2; 32])));
    // Another script's index is its own.
    let third = DigestCache::new(&settings(bucket.name()), Some(bucket.client().clone()));
    third.warm("acct/ns/other").await;
    assert_eq!(third.get(&key(1)), None);

    // The next deploy replaces the index: what it no longer has is gone for
    // a fresh worker, what it added is there.
    second
        .record("acct/ns/site", vec![(key(3), ContentDigest([3; 32]))])
        .await;
    let fourth = DigestCache::new(&settings(bucket.name()), Some(bucket.client().clone()));
    fourth.warm("acct/ns/site").await;
    assert_eq!(fourth.get(&key(3)), Some(ContentDigest([3; 32])));
    assert_eq!(fourth.get(&key(1)), None);

    // The first worker's conditional read sees the change too.
    first.warm("acct/ns/site").await;
    assert_eq!(first.get(&key(3)), Some(ContentDigest([3; 32])));
}

#[tokio::test]
async fn script_indexes_are_shared_moto() {
    shared_between_two_workers(S3Server::Moto).await;
}

#[tokio::test]
async fn script_indexes_are_shared_s3s() {
    shared_between_two_workers(S3Server::S3s).await;
}

#[tokio::test]
async fn archive_manifests_are_shared() {
    let bucket = test_bucket(S3Server::Moto).await;
    let archive = CachedArchive {
        files: vec![
            CachedFile {
                path: "index.html".into(),
                size: 5,
                digest: ContentDigest([5; 32]),
            },
            CachedFile {
                path: "a/b.css".into(),
                size: 0,
                digest: ContentDigest([6; 32]),
            },
        ],
        special: BTreeMap::from([("_redirects".into(), "/a /b 301\n".into())]),
    };
    let whole = |n| ArchiveKey {
        content: key(n),
        root: None,
    };
    let first = DigestCache::new(&settings(bucket.name()), Some(bucket.client().clone()));
    first.record_archive(&whole(9), archive.clone()).await;
    let second = DigestCache::new(&settings(bucket.name()), Some(bucket.client().clone()));
    assert_eq!(second.archive_manifest(&whole(9)).await, Some(archive));
    assert_eq!(second.archive_manifest(&whole(8)).await, None);
    // A wrong manifest forgotten by one worker is gone for the others.
    second.forget_archive(&whole(9)).await;
    let third = DigestCache::new(&settings(bucket.name()), Some(bucket.client().clone()));
    assert_eq!(third.archive_manifest(&whole(9)).await, None);
}

#[tokio::test]
async fn a_corrupt_or_oversized_index_is_a_cold_cache() {
    let bucket = test_bucket(S3Server::Moto).await;
    bucket
        .put("cache/v1/scripts/acct/ns/site.json", "{not json")
        .await;
    let cache = DigestCache::new(&settings(bucket.name()), Some(bucket.client().clone()));
    cache.warm("acct/ns/site").await;
    assert_eq!(cache.get(&key(1)), None);

    let small = CacheSettings {
        max_index_bytes: 64,
        ..settings(bucket.name())
    };
    let writer = DigestCache::new(&settings(bucket.name()), Some(bucket.client().clone()));
    let many = (0..20u8)
        .map(|n| (key(n), ContentDigest([n; 32])))
        .collect();
    writer.record("acct/ns/big", many).await;
    let reader = DigestCache::new(&small, Some(bucket.client().clone()));
    reader.warm("acct/ns/big").await;
    assert_eq!(
        reader.get(&key(1)),
        None,
        "an index over the limit is not read"
    );
}

#[tokio::test]
async fn an_unreachable_store_costs_only_speed() {
    let settings = CacheSettings {
        bucket: Some("no-such-bucket-wfp-cache".into()),
        ..CacheSettings::default()
    };
    let cache = DigestCache::new(&settings, Some(S3Server::Moto.client()));
    cache.warm("acct/ns/site").await;
    cache
        .record("acct/ns/site", vec![(key(1), ContentDigest([1; 32]))])
        .await;
    assert_eq!(
        cache.get(&key(1)),
        Some(ContentDigest([1; 32])),
        "memory still serves"
    );
}

#[tokio::test]
async fn a_distrusted_index_is_deleted_for_the_whole_fleet() {
    let bucket = test_bucket(S3Server::S3s).await;
    let first = DigestCache::new(&settings(bucket.name()), Some(bucket.client().clone()));
    first
        .record("acct/ns/site", vec![(key(1), ContentDigest([1; 32]))])
        .await;
    first.distrust("acct/ns/site", &key(1)).await;
    assert_eq!(first.get(&key(1)), None);
    let fresh = DigestCache::new(&settings(bucket.name()), Some(bucket.client().clone()));
    fresh.warm("acct/ns/site").await;
    assert_eq!(fresh.get(&key(1)), None, "no worker loads it again");
    // The next successful deploy writes a new index, even with the same
    // entries the distrusted one had: it is not remembered as written.
    first
        .record("acct/ns/site", vec![(key(1), ContentDigest([1; 32]))])
        .await;
    fresh.warm("acct/ns/site").await;
    assert_eq!(fresh.get(&key(1)), Some(ContentDigest([1; 32])));
}
