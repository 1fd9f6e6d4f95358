//! Archives made by ordinary tools — GNU tar (gzip, zstd, PAX), Info-ZIP's
//! `zip -r`, Python's `tarfile` and `zipfile` — from one site on disk,
//! deployed from S3 and served back byte for byte with the right media
//! types. The tools must be installed (`tar`, `zstd`, `zip`, `python3`; CI
//! installs them): a missing one fails the test rather than skip the check.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::{archive_job, on_both_servers};
use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::asset;

/// The site: path, bytes, the media type it must be served with.
fn site() -> Vec<(String, Vec<u8>, &'static str)> {
    let png: Vec<u8> = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]
        .into_iter()
        .chain((0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8))
        .collect();
    let long = format!("{}/{}.html", "l".repeat(90), "n".repeat(60));
    vec![
        (
            "index.html".into(),
            b"<!doctype html><h1>Acme</h1>\n".to_vec(),
            "text/html; charset=utf-8",
        ),
        (
            "css/site.css".into(),
            b"body{color:red}".to_vec(),
            "text/css; charset=utf-8",
        ),
        (
            "js/app.js".into(),
            b"console.log(1)".to_vec(),
            "text/javascript; charset=utf-8",
        ),
        (
            "js/empty.js".into(),
            Vec::new(),
            "text/javascript; charset=utf-8",
        ),
        (
            "css/empty.css".into(),
            Vec::new(),
            "text/css; charset=utf-8",
        ),
        ("img/logo.png".into(), png, "image/png"),
        (
            "img/icon.svg".into(),
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
            "image/svg+xml",
        ),
        (
            "data/feed.json".into(),
            b"{\"a\":1}".to_vec(),
            "application/json",
        ),
        ("fonts/x.woff2".into(), vec![1, 2, 3, 4], "font/woff2"),
        (
            "ünïcode/файл.html".into(),
            "Привет".as_bytes().to_vec(),
            "text/html; charset=utf-8",
        ),
        (
            ".well-known/security.txt".into(),
            b"Contact: x@example.com\n".to_vec(),
            "text/plain; charset=utf-8",
        ),
        (
            "blob.unknownext".into(),
            vec![0, 255, 0],
            "application/octet-stream",
        ),
        (long, b"long name".to_vec(), "text/html; charset=utf-8"),
    ]
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

const PY_TAR: &str = r#"
import sys, tarfile
with tarfile.open(sys.argv[1], 'w:gz', format=tarfile.PAX_FORMAT) as t:
    t.add(sys.argv[2], arcname='.')
"#;

const PY_ZIP: &str = r#"
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    for d, _, fs in os.walk(sys.argv[2]):
        for f in fs:
            p = os.path.join(d, f)
            z.write(p, os.path.relpath(p, sys.argv[2]))
"#;

/// The site on disk under `work/dist`, and each tool's archive of it:
/// `(file name, bundle.root)`.
fn make_archives(work: &Path) -> Vec<(String, Option<&'static str>)> {
    let dist = work.join("dist");
    for (path, bytes, _) in site() {
        let path = dist.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
    let out = |name: &str| work.join(name);
    run(Command::new("tar")
        .arg("-czf")
        .arg(out("gnu.tar.gz"))
        .arg("-C")
        .arg(&dist)
        .arg("."));
    run(Command::new("tar")
        .arg("--zstd")
        .arg("-cf")
        .arg(out("gnu.tar.zst"))
        .arg("-C")
        .arg(&dist)
        .arg("."));
    run(Command::new("tar")
        .arg("--format=pax")
        .arg("-cf")
        .arg(out("gnu-pax.tar"))
        .arg("-C")
        .arg(work)
        .arg("dist"));
    run(Command::new("zip")
        .arg("-qr")
        .arg(out("info.zip"))
        .arg(".")
        .current_dir(&dist));
    run(Command::new("python3")
        .args(["-c", PY_TAR])
        .arg(out("python.tgz"))
        .arg(&dist));
    run(Command::new("python3")
        .args(["-c", PY_ZIP])
        .arg(out("python.zip"))
        .arg(&dist));
    vec![
        ("gnu.tar.gz".into(), None),
        ("gnu.tar.zst".into(), None),
        ("gnu-pax.tar".into(), Some("dist")),
        ("info.zip".into(), None),
        ("python.tgz".into(), None),
        ("python.zip".into(), None),
    ]
}

async fn archives_made_by_real_tools_deploy_byte_exactly(server: S3Server) {
    let mut app = TestApp::spawn(server).await;
    let work = tempfile::tempdir().unwrap();
    let archives = make_archives(work.path());
    let files = site();
    for (i, (name, root)) in archives.iter().enumerate() {
        let bytes = fs::read(work.path().join(name)).unwrap();
        let key = format!("tools/{name}");
        app.bucket.put(key.clone(), bytes.clone()).await;
        let script = format!("tool-{i}");
        let extra = match root {
            Some(root) => json!({"root": root}),
            None => json!({}),
        };
        let event = app
            .deploy_ok(&archive_job(
                &app,
                &format!("tool-{i}"),
                &script,
                &key,
                extra,
            ))
            .await;
        let manifest = &event.data()["manifest"];
        assert_eq!(manifest["files"], files.len(), "{name}: {}", event.json);
        assert_eq!(manifest["bytes_read"], bytes.len(), "{name}: read once");
        for (path, want, media) in &files {
            let (served_type, served) = asset(
                &app.sim,
                TEST_ACCOUNT,
                "customers",
                &script,
                &format!("/{path}"),
            )
            .await;
            assert_eq!(&served, want, "{name}: bytes of /{path}");
            assert_eq!(&served_type, media, "{name}: media type of /{path}");
        }
    }
    app.stop().await;
}

on_both_servers!(archives_made_by_real_tools_deploy_byte_exactly);
