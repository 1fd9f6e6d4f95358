//! Archive sources read from local files (the S3 ones are tested end to
//! end in `tests/it/bundles`): the whole read, the gate, the special files,
//! a second pass that spools only what it is asked for, and the refusals.

use std::io::{Cursor, Write};

use super::*;
use crate::bundle::BundleErrorKind;
use crate::config::LimitSettings;
use crate::manifest::ContentDigest;

/// A tar of `(name, bytes)`, names written as given.
fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = ::tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = ::tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = ::zip::write::SimpleFileOptions::default()
        .compression_method(::zip::CompressionMethod::Deflated);
    for (name, data) in files {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// A temporary archive file and a spool.
struct Scratch {
    dir: tempfile::TempDir,
    spool: Spool,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::create(&dir.path().join("spool")).unwrap();
        Scratch { dir, spool }
    }

    fn archive(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

async fn ingest(
    source: &ArchiveSource,
    spool: &Spool,
    limits: &LimitSettings,
) -> Result<Ingested, BundleError> {
    source
        .ingest(&IngestContext {
            limits,
            cache: &Arc::new(DigestCache::disabled()),
            spool,
            html_handling: None,
            progress: &(),
            gate: &(),
        })
        .await
}

fn spooled(spool: &Spool) -> usize {
    std::fs::read_dir(spool.path()).unwrap().count()
}

fn site() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("dist/index.html", b"<h1>home</h1>"),
        ("dist/app.js", b"console.log(1)"),
        ("dist/app.js.map", b"{}"),
        ("dist/.assetsignore", b"*.map\n"),
        ("dist/_headers", b"/*\n  X-Frame-Options: DENY\n"),
        ("dist/_redirects", b"/old /new 301\n"),
        ("dist/_worker.js", b"secret"),
        ("README.md", b"outside the root"),
    ]
}

#[tokio::test]
async fn an_archive_under_a_root_gives_its_assets_spooled_and_its_special_files() {
    for (name, bytes) in [
        ("site.tar.gz", gzip(&tar(&site()))),
        ("site.zip", zip(&site())),
    ] {
        let scratch = Scratch::new();
        let path = scratch.archive(name, &bytes);
        let format = ArchiveFormat::from_name(name).unwrap();
        let source = ArchiveSource::file(path, format, Some("dist/"));
        let ingested = ingest(&source, &scratch.spool, &LimitSettings::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut paths: Vec<&str> = ingested.files.iter().map(|f| f.path.as_str()).collect();
        paths.sort();
        // .assetsignore applies; with one, _worker.js is an ordinary asset.
        assert_eq!(paths, ["/_worker.js", "/app.js", "/index.html"], "{name}");
        assert_eq!(
            ingested.config.headers.as_deref(),
            Some("/*\n  X-Frame-Options: DENY\n")
        );
        assert_eq!(
            ingested.config.redirects.as_deref(),
            Some("/old /new 301\n")
        );
        // A tar is read once; a zip's directory and headers are read again.
        if name.ends_with(".tar.gz") {
            assert_eq!(ingested.bytes_read, bytes.len() as u64, "{name}");
        } else {
            assert!(ingested.bytes_read >= bytes.len() as u64, "{name}");
        }
        // Read once: every file under the root is in the spool already.
        for file in &ingested.files {
            assert_eq!(source.fetch(file, &scratch.spool).await.unwrap(), 0);
        }
        let index = ingested
            .files
            .iter()
            .find(|f| f.path == "/index.html")
            .unwrap();
        assert_eq!(index.digest, ContentDigest::of(b"<h1>home</h1>"));
    }
}

#[tokio::test]
async fn a_second_pass_spools_only_the_files_asked_for() {
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let files: Vec<(&str, &[u8])> = vec![("big.bin", &big), ("small.txt", b"small")];
    for (name, bytes) in [("s.tar", tar(&files)), ("s.zip", zip(&files))] {
        let scratch = Scratch::new();
        let source = ArchiveSource::file(
            scratch.archive(name, &bytes),
            ArchiveFormat::from_name(name).unwrap(),
            None,
        );
        let ingested = ingest(&source, &scratch.spool, &LimitSettings::default())
            .await
            .unwrap();
        let small = ingested
            .files
            .iter()
            .find(|f| f.path == "/small.txt")
            .unwrap();
        let fresh = Spool::create(&scratch.dir.path().join("fresh")).unwrap();
        let read = source.prefetch(&[small], &fresh).await.unwrap();
        assert_eq!(spooled(&fresh), 1, "{name}: only the file asked for");
        assert!(fresh.file(&small.digest).await.is_ok());
        if name.ends_with(".zip") {
            // The zip's other entry is not read at all.
            assert!(read < 64 << 10, "{name}: read {read} bytes");
        }
        assert_eq!(
            source.fetch(small, &fresh).await.unwrap(),
            0,
            "already there"
        );
    }
}

#[tokio::test]
async fn a_file_that_changed_since_the_manifest_is_a_mismatch() {
    let scratch = Scratch::new();
    let path = scratch.archive("s.tar", &tar(&[("a.txt", b"one")]));
    let source = ArchiveSource::file(path.clone(), ArchiveFormat::Tar, None);
    let ingested = ingest(&source, &scratch.spool, &LimitSettings::default())
        .await
        .unwrap();
    let mut lying = ingested.files[0].clone();
    lying.digest = ContentDigest::of(b"two");
    let fresh = Spool::create(&scratch.dir.path().join("fresh")).unwrap();
    let err = source.prefetch(&[&lying], &fresh).await.unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::Mismatch, "{err}");
    assert_eq!(spooled(&fresh), 0);
    let mut absent = ingested.files[0].clone();
    absent.origin = "gone.txt".into();
    absent.digest = ContentDigest::of(b"gone");
    let err = source.fetch(&absent, &fresh).await.unwrap_err();
    assert!(
        err.to_string().contains("gone.txt: not in the archive"),
        "{err}"
    );
}

/// Reads `files` as a tar and returns the error.
async fn refused(files: &[(&str, &[u8])], limits: &LimitSettings) -> BundleError {
    let scratch = Scratch::new();
    let source = ArchiveSource::file(
        scratch.archive("s.tar", &tar(files)),
        ArchiveFormat::Tar,
        None,
    );
    match ingest(&source, &scratch.spool, limits).await {
        Ok(ingested) => panic!("accepted: {:?}", ingested.files),
        Err(err) => err,
    }
}

#[tokio::test]
async fn hostile_and_oversized_bundles_are_refused_naming_the_file() {
    let limits = LimitSettings::default();
    let err = refused(&[("ok.html", b"x"), ("a?b.html", b"x")], &limits).await;
    assert_eq!(err.kind(), BundleErrorKind::Invalid);
    assert!(
        err.to_string().ends_with(
            "s.tar: a?b.html: invalid path: '?' cannot be part of a URL path (it starts the query)"
        ),
        "{err}"
    );

    let err = refused(
        &[("caf\u{e9}.html", b"x"), ("cafe\u{301}.html", b"y")],
        &limits,
    )
    .await;
    assert_eq!(err.kind(), BundleErrorKind::Invalid);
    assert!(err.to_string().contains("caf\u{e9}.html"), "{err}");
    assert!(err.to_string().contains("cafe\u{301}.html"), "{err}");

    let err = refused(
        &[("_headers", b"/a\n  Bad Name: x\n"), ("i.html", b"x")],
        &limits,
    )
    .await;
    assert_eq!(err.kind(), BundleErrorKind::Invalid);
    assert!(err.to_string().contains(": _headers:2: "), "{err}");

    let few = LimitSettings {
        max_files: 1,
        ..LimitSettings::default()
    };
    let err = refused(&[("a.html", b"x"), ("b.html", b"y")], &few).await;
    assert_eq!(err.kind(), BundleErrorKind::TooLarge);
    assert!(
        err.to_string()
            .ends_with("s.tar: b.html: file 2 of the bundle, over limits.max_files (1)"),
        "{err}"
    );

    let err = refused(&[(".assetsignore", b"*\n")], &limits).await;
    assert_eq!(err.kind(), BundleErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn a_cap_crossed_says_how_little_was_read() {
    let scratch = Scratch::new();
    let zeros = vec![0u8; 8 << 20];
    let bytes = gzip(&tar(&[("zeros.bin", &zeros)]));
    let source = ArchiveSource::file(
        scratch.archive("bomb.tar.gz", &bytes),
        ArchiveFormat::TarGz,
        None,
    );
    let err = ingest(&source, &scratch.spool, &LimitSettings::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), BundleErrorKind::TooLarge, "{err}");
    let message = err.to_string();
    assert!(message.contains("limits.max_archive_ratio"), "{message}");
    assert!(
        message.contains(&format!("of the archive's {} bytes", bytes.len())),
        "{message}"
    );
}

#[test]
fn archive_caps_come_from_the_limits() {
    let limits = LimitSettings::default();
    let caps = archive_limits(&limits);
    assert_eq!(caps.max_files, limits.max_entries);
    assert_eq!(caps.max_total_bytes, limits.max_archive_bytes);
    assert_eq!(caps.max_ratio, limits.max_archive_ratio);
    assert_eq!(caps.max_file_bytes, limits.max_file_bytes);
}
