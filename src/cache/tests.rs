//! The in-memory half of the cache; the S3 half is tested against real S3
//! servers in `tests/it/cache.rs`.

use super::*;

fn md5_key(n: u8, size: u64) -> ContentKey {
    ContentKey::Md5 {
        md5: format!("{n:032x}"),
        size,
    }
}

fn archive_key(n: u8, size: u64) -> ArchiveKey {
    ArchiveKey {
        content: md5_key(n, size),
        root: None,
    }
}

#[tokio::test]
async fn remembers_what_a_deploy_recorded() {
    let cache = DigestCache::new(&CacheSettings::default(), None);
    assert_eq!(cache.get(&md5_key(1, 3)), None, "cold");
    cache
        .record("a/ns/s", vec![(md5_key(1, 3), ContentDigest([1; 32]))])
        .await;
    assert_eq!(cache.get(&md5_key(1, 3)), Some(ContentDigest([1; 32])));
    assert_eq!(
        cache.get(&md5_key(1, 4)),
        None,
        "the size is part of the key"
    );
    cache.evict(&md5_key(1, 3));
    assert_eq!(cache.get(&md5_key(1, 3)), None, "evicted");
}

#[tokio::test]
async fn memory_is_bounded_by_entries() {
    let settings = CacheSettings {
        memory_entries: 10,
        ..CacheSettings::default()
    };
    let cache = DigestCache::new(&settings, None);
    let entries = (0..50u8)
        .map(|n| (md5_key(n, 1), ContentDigest([n; 32])))
        .collect();
    cache.record("a/ns/s", entries).await;
    let held = (0..50u8)
        .filter(|n| cache.get(&md5_key(*n, 1)).is_some())
        .count();
    assert_eq!(held, 10);
    assert!(cache.get(&md5_key(49, 1)).is_some(), "the newest stay");
}

#[tokio::test]
async fn a_disabled_cache_knows_nothing() {
    let cache = DigestCache::disabled();
    assert!(!cache.is_enabled());
    assert_eq!(
        cache.key_for("b", "k", Some("0cc175b9c0f1b6a831c399e269772661"), None, 1),
        None
    );
    cache
        .record("a/ns/s", vec![(md5_key(1, 3), ContentDigest([1; 32]))])
        .await;
    assert_eq!(cache.get(&md5_key(1, 3)), None);
    let archive = CachedArchive {
        files: vec![CachedFile {
            path: "a".into(),
            size: 1,
            digest: ContentDigest([2; 32]),
        }],
        special: BTreeMap::new(),
    };
    cache.record_archive(&archive_key(9, 9), archive).await;
    assert_eq!(cache.archive_manifest(&archive_key(9, 9)).await, None);
}

#[tokio::test]
async fn archive_manifests_are_held_in_memory_without_a_bucket() {
    let cache = DigestCache::new(&CacheSettings::default(), None);
    let archive = CachedArchive {
        files: vec![CachedFile {
            path: "index.html".into(),
            size: 5,
            digest: ContentDigest([7; 32]),
        }],
        special: BTreeMap::from([("_headers".into(), "/*\n  X: y\n".into())]),
    };
    cache
        .record_archive(&archive_key(9, 100), archive.clone())
        .await;
    assert_eq!(
        cache.archive_manifest(&archive_key(9, 100)).await,
        Some(archive.clone())
    );
    let other_root = ArchiveKey {
        root: Some("dist".into()),
        ..archive_key(9, 100)
    };
    assert_eq!(cache.archive_manifest(&other_root).await, None);
    cache.forget_archive(&archive_key(9, 100)).await;
    assert_eq!(cache.archive_manifest(&archive_key(9, 100)).await, None);
}

#[tokio::test]
async fn a_distrusted_entry_is_forgotten_and_the_others_kept() {
    let cache = DigestCache::new(&CacheSettings::default(), None);
    cache
        .record(
            "a/ns/s",
            vec![
                (md5_key(1, 3), ContentDigest([1; 32])),
                (md5_key(2, 3), ContentDigest([2; 32])),
            ],
        )
        .await;
    cache.distrust("a/ns/s", &md5_key(1, 3)).await;
    assert_eq!(cache.get(&md5_key(1, 3)), None);
    assert_eq!(cache.get(&md5_key(2, 3)), Some(ContentDigest([2; 32])));
}

#[tokio::test]
async fn archive_manifests_in_memory_are_bounded_by_their_files() {
    let cache = DigestCache::new(&CacheSettings::default(), None);
    let of = |files: usize| CachedArchive {
        files: vec![
            CachedFile {
                path: "a.html".into(),
                size: 1,
                digest: ContentDigest([1; 32]),
            };
            files
        ],
        special: BTreeMap::new(),
    };
    let half = REMEMBERED_ARCHIVE_FILES / 2;
    cache.record_archive(&archive_key(1, 1), of(half)).await;
    cache.record_archive(&archive_key(2, 1), of(half)).await;
    assert!(cache.archive_manifest(&archive_key(1, 1)).await.is_some());
    // A third half pushes out the least recently used: the second.
    cache.record_archive(&archive_key(3, 1), of(half)).await;
    assert!(cache.archive_manifest(&archive_key(2, 1)).await.is_none());
    assert!(cache.archive_manifest(&archive_key(1, 1)).await.is_some());
    assert!(cache.archive_manifest(&archive_key(3, 1)).await.is_some());
    // One over the bound alone is not held at all (its index object is).
    let huge = archive_key(4, 1);
    cache
        .record_archive(&huge, of(REMEMBERED_ARCHIVE_FILES + 1))
        .await;
    assert!(cache.archive_manifest(&huge).await.is_none());
    assert!(cache.archive_manifest(&archive_key(3, 1)).await.is_some());
}
