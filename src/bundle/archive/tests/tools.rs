//! Archives made by ordinary tools — GNU tar (gzip, zstd, PAX), Info-ZIP's
//! `zip -r`, Python's `tarfile` and `zipfile` — from a real directory read
//! back byte-exactly. The tools must be installed (`tar`, `zstd`, `zip`,
//! `python3`; CI installs them): a missing one fails the test, since a
//! skipped check would hide what it is for.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::*;

/// A site on disk: nested folders, an empty file, Unicode names, binary
/// bytes, a dotfile and names longer than tar's 100-byte field.
fn make_site(dir: &Path) -> Files {
    let long = format!("{}/{}.html", "l".repeat(90), "n".repeat(120));
    let files: Vec<(String, Vec<u8>)> = vec![
        ("index.html".into(), b"<h1>home</h1>\n".to_vec()),
        (
            "assets/css/site.css".into(),
            b"body { margin: 0 }\n".to_vec(),
        ),
        ("assets/js/empty.js".into(), Vec::new()),
        (
            "images/logo.bin".into(),
            (0..=255u8).cycle().take(70_000).collect(),
        ),
        ("ünïcode/файл.html".into(), "Привет".as_bytes().to_vec()),
        (
            ".well-known/security.txt".into(),
            b"Contact: x@example.com\n".to_vec(),
        ),
        (long, b"long".to_vec()),
    ];
    for (path, data) in &files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }
    fs::create_dir_all(dir.join("empty-dir")).unwrap();
    files
}

#[track_caller]
fn run(command: &mut Command) {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command.output().unwrap_or_else(|e| {
        panic!("{program}: {e} (install it: apt-get install -y tar zstd zip python3)")
    });
    assert!(
        output.status.success(),
        "{program}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn sorted(mut files: Files) -> Files {
    files.sort();
    files
}

/// Reads `archive` as `format` (under `root`) and compares with `want`.
#[track_caller]
fn assert_reads(format: ArchiveFormat, archive: &Path, root: Option<&str>, want: &Files) {
    let bytes = fs::read(archive).unwrap();
    let options = ReadOptions {
        root,
        ..ReadOptions::default()
    };
    let (files, summary) = read_with(format, &bytes, &options)
        .unwrap_or_else(|e| panic!("{}: {e}", archive.display()));
    assert_eq!(sorted(files), sorted(want.clone()), "{}", archive.display());
    assert_eq!(summary.files, want.len() as u64);
}

#[test]
fn gnu_tar_archives_read_exactly() {
    let work = tempfile::tempdir().unwrap();
    let site = work.path().join("site");
    let want = make_site(&site);
    let out = |name: &str| work.path().join(name);
    let tar = || {
        let mut command = Command::new("tar");
        command.env("LC_ALL", "C.UTF-8");
        command
    };
    run(tar()
        .arg("-C")
        .arg(&site)
        .arg("-czf")
        .arg(out("gnu.tar.gz"))
        .arg("."));
    assert_reads(ArchiveFormat::TarGz, &out("gnu.tar.gz"), None, &want);
    run(tar()
        .arg("-C")
        .arg(&site)
        .arg("--zstd")
        .arg("-cf")
        .arg(out("gnu.tar.zst"))
        .arg("."));
    assert_reads(ArchiveFormat::TarZst, &out("gnu.tar.zst"), None, &want);
    run(tar()
        .arg("-C")
        .arg(&site)
        .arg("--format=pax")
        .arg("-cf")
        .arg(out("pax.tar"))
        .arg("."));
    assert_reads(ArchiveFormat::Tar, &out("pax.tar"), None, &want);
    // The site as a folder inside the archive, taken with the root option.
    run(tar()
        .arg("-C")
        .arg(work.path())
        .arg("-czf")
        .arg(out("rooted.tgz"))
        .arg("site"));
    assert_reads(
        ArchiveFormat::TarGz,
        &out("rooted.tgz"),
        Some("site"),
        &want,
    );
}

#[test]
fn info_zip_archives_read_exactly() {
    let work = tempfile::tempdir().unwrap();
    let site = work.path().join("site");
    let want = make_site(&site);
    let zip = work.path().join("site.zip");
    run(Command::new("zip")
        .current_dir(&site)
        .arg("-r")
        .arg("-q")
        .arg(&zip)
        .arg("."));
    assert_reads(ArchiveFormat::Zip, &zip, None, &want);
    // Streamed from a pipe: sizes in data descriptors.
    let streamed = work.path().join("streamed.zip");
    run(Command::new("sh")
        .current_dir(&site)
        .arg("-c")
        .arg("zip -q - index.html images/logo.bin | cat > \"$0\"")
        .arg(&streamed));
    let subset: Files = want
        .iter()
        .filter(|(p, _)| p == "index.html" || p == "images/logo.bin")
        .cloned()
        .collect();
    assert_reads(ArchiveFormat::Zip, &streamed, None, &subset);
}

const PYTHON: &str = r#"
import os, sys, tarfile, zipfile
site, out = sys.argv[1], sys.argv[2]
with tarfile.open(os.path.join(out, "py.tar.gz"), "w:gz") as t:
    t.add(site, arcname="dist")
with tarfile.open(os.path.join(out, "py-gnu.tar"), "w", format=tarfile.GNU_FORMAT) as t:
    t.add(site, arcname=".")
with zipfile.ZipFile(os.path.join(out, "py.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk(site):
        for d in dirs:
            z.write(os.path.join(root, d), os.path.relpath(os.path.join(root, d), site))
        for f in files:
            z.write(os.path.join(root, f), os.path.relpath(os.path.join(root, f), site))
"#;

#[test]
fn python_tarfile_and_zipfile_archives_read_exactly() {
    let work = tempfile::tempdir().unwrap();
    let site = work.path().join("site");
    let want = make_site(&site);
    run(Command::new("python3")
        .arg("-c")
        .arg(PYTHON)
        .arg(&site)
        .arg(work.path()));
    let out = |name: &str| work.path().join(name);
    assert_reads(ArchiveFormat::TarGz, &out("py.tar.gz"), Some("dist"), &want);
    assert_reads(ArchiveFormat::Tar, &out("py-gnu.tar"), None, &want);
    assert_reads(ArchiveFormat::Zip, &out("py.zip"), None, &want);
}
