//! The spool: content addressing, verified writes, the per-process area.

use super::*;

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The bytes stored for `content`, read back through [`Spool::file`].
async fn stored(spool: &Spool, content: &ContentDigest) -> Vec<u8> {
    let file = spool.file(content).await.unwrap();
    let bytes = tokio::fs::read(&file.path).await.unwrap();
    assert_eq!(bytes.len() as u64, file.len);
    bytes
}

async fn store(spool: &Spool, chunks: &[&[u8]]) -> ContentDigest {
    let mut w = spool.writer().unwrap();
    for c in chunks {
        w.write(c).await.unwrap();
    }
    w.finish().await.unwrap()
}

#[tokio::test]
async fn finish_names_the_file_by_its_digest() {
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::create(root.path()).unwrap();
    let mut w = spool.writer().unwrap();
    w.write(b"hello ").await.unwrap();
    w.write(b"world").await.unwrap();
    assert_eq!(w.size(), 11);
    let digest = w.finish().await.unwrap();
    assert_eq!(digest, ContentDigest::of(b"hello world"));
    assert_eq!(files_in(spool.path()), vec![digest.to_hex()]);
    assert_eq!(stored(&spool, &digest).await, b"hello world");
}

#[tokio::test]
async fn large_content_round_trips() {
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::create(root.path()).unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let chunks: Vec<&[u8]> = data.chunks(10_007).collect();
    let digest = store(&spool, &chunks).await;
    assert_eq!(digest, ContentDigest::of(&data));
    assert_eq!(stored(&spool, &digest).await, data);
}

#[tokio::test]
async fn identical_content_is_stored_once() {
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::create(root.path()).unwrap();
    let a = store(&spool, &[b"same", b" bytes"]).await;
    let b = store(&spool, &[b"same bytes"]).await;
    let c = store(&spool, &[b"other"]).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mut want = vec![a.to_hex(), c.to_hex()];
    want.sort();
    assert_eq!(files_in(spool.path()), want, "no temporary files left");
}

#[tokio::test]
async fn empty_file_is_valid_content() {
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::create(root.path()).unwrap();
    let digest = store(&spool, &[]).await;
    assert_eq!(digest, ContentDigest::of(b""));
    assert!(stored(&spool, &digest).await.is_empty());
}

#[tokio::test]
async fn expected_content_is_stored_and_other_bytes_are_not() {
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::create(root.path()).unwrap();
    let expected = ContentDigest::of(b"right");
    let mut w = spool.writer().unwrap();
    w.write(b"right").await.unwrap();
    w.finish_expecting(&expected).await.unwrap();
    assert_eq!(stored(&spool, &expected).await, b"right");

    let lie = ContentDigest::of(b"what the cache said");
    let mut w = spool.writer().unwrap();
    w.write(b"what S3 holds").await.unwrap();
    let err = w.finish_expecting(&lie).await.unwrap_err();
    let SpoolError::Mismatch { expected, actual } = err else {
        panic!("not a mismatch: {err}");
    };
    assert_eq!(expected, lie);
    assert_eq!(actual, ContentDigest::of(b"what S3 holds"));
    assert_eq!(
        files_in(spool.path()),
        vec![ContentDigest::of(b"right").to_hex()]
    );
}

#[tokio::test]
async fn dropping_an_unfinished_writer_removes_its_file() {
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::create(root.path()).unwrap();
    let mut w = spool.writer().unwrap();
    w.write(&[7u8; 200_000]).await.unwrap();
    assert_eq!(files_in(spool.path()).len(), 1);
    drop(w);
    assert!(files_in(spool.path()).is_empty());
}

#[tokio::test]
async fn dropping_the_spool_removes_its_directory() {
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::create(&root.path().join("nested/root")).unwrap();
    store(&spool, &[b"x"]).await;
    let dir = spool.path().to_path_buf();
    assert!(dir.exists());
    drop(spool);
    assert!(!dir.exists());
}

#[tokio::test]
async fn a_missing_content_is_named() {
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::create(root.path()).unwrap();
    let missing = ContentDigest::of(b"never stored");
    let err = spool.file(&missing).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains(&missing.to_hex()), "{err}");
}

#[test]
fn areas_of_dead_processes_are_removed_and_living_ones_kept() {
    let root = tempfile::tempdir().unwrap();
    let areas = root.path().join(AREAS_DIR);
    // A dead process's area: its lock file exists, nobody holds it.
    let dead = areas.join("proc-dead");
    std::fs::create_dir_all(dead.join("job-1")).unwrap();
    std::fs::write(dead.join(".lock"), b"").unwrap();
    std::fs::write(dead.join("job-1").join("abc"), b"left behind").unwrap();
    // One that died before making its lock file.
    std::fs::create_dir_all(areas.join("proc-early")).unwrap();
    // One just made by a process starting beside us: no lock file yet.
    std::fs::create_dir_all(areas.join("proc-starting")).unwrap();
    // The dead ones last changed two minutes ago.
    let long_ago = std::time::SystemTime::now() - 2 * FRESH_AREA;
    for old in [&dead, &areas.join("proc-early")] {
        std::fs::File::open(old)
            .and_then(|dir| dir.set_modified(long_ago))
            .unwrap();
    }
    // A living process's area (this process holds its lock).
    let (living, removed) = SpoolArea::open(root.path(), u64::MAX).unwrap();
    assert_eq!(removed, 2);
    assert!(!dead.exists(), "the dead area is gone");
    assert!(
        areas.join("proc-starting").exists(),
        "a fresh area is left to its process"
    );
    std::fs::remove_dir(areas.join("proc-starting")).unwrap();

    let (second, removed) = SpoolArea::open(root.path(), u64::MAX).unwrap();
    assert_eq!(removed, 0, "a held lock keeps its area");
    assert!(living.path().exists());
    drop(second);
    drop(living);
    assert!(
        files_in(&areas).is_empty(),
        "an area removes itself when its process ends normally"
    );
}

#[tokio::test]
async fn the_budget_bounds_every_spool_of_the_process() {
    let root = tempfile::tempdir().unwrap();
    let (area, _) = SpoolArea::open(root.path(), 10).unwrap();
    let first = area.spool().unwrap();
    let mut writer = first.writer().unwrap();
    writer.write(b"12345678").await.unwrap();
    writer.finish().await.unwrap();
    assert_eq!(area.used_bytes(), 8);

    let second = area.spool().unwrap();
    let mut over = second.writer().unwrap();
    let err = over.write(b"1234").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert!(err.to_string().contains("worker.spool_max_bytes"), "{err}");
    assert_eq!(area.used_bytes(), 8, "a refused write takes nothing");

    drop(first);
    assert_eq!(area.used_bytes(), 0, "a finished job gives its bytes back");
    over.write(b"1234").await.unwrap();
    drop(over);
    drop(second);
    assert_eq!(area.used_bytes(), 0);
}

#[tokio::test]
async fn a_put_files_whole_content_by_digest_once_and_refuses_other_bytes() {
    let root = tempfile::tempdir().unwrap();
    let (area, _) = SpoolArea::open(root.path(), 10).unwrap();
    let spool = area.spool().unwrap();
    let putter = spool.putter();

    let digest = putter.put(b"hello", None).unwrap();
    assert_eq!(digest, ContentDigest::of(b"hello"));
    assert_eq!(stored(&spool, &digest).await, b"hello");
    assert_eq!(putter.put(b"hello", Some(&digest)).unwrap(), digest);
    assert_eq!(area.used_bytes(), 5, "stored once, counted once");

    let other = ContentDigest::of(b"other");
    let err = putter.put(b"bytes", Some(&other)).unwrap_err();
    assert!(
        matches!(err, SpoolError::Mismatch { expected, actual }
            if expected == other && actual == ContentDigest::of(b"bytes")),
        "{err:?}"
    );
    let err = putter.put(b"too large", None).unwrap_err();
    assert!(
        matches!(&err, SpoolError::Io(e) if e.kind() == io::ErrorKind::StorageFull),
        "{err:?}"
    );
    assert_eq!(files_in(spool.path()), vec![digest.to_hex()]);
    assert_eq!(area.used_bytes(), 5, "a refused put takes nothing");
    drop(spool);
    assert_eq!(area.used_bytes(), 0);
}
