//! Local bundles through the one-shot command: `deploy JOB.json --bundle
//! PATH` deploys a directory or an archive file from the operator's disk,
//! under the same rules as S3 bundles (a symbolic link is refused, not
//! followed). No job can name a local path: only this flag does.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use wfp_deployer::sim::SimServer;

use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::archives::{build, file};
use crate::helpers::sim::{TEST_TOKEN, asset, spawn_sim_for};

/// Runs `deploy job --bundle bundle` against `sim` with a clean environment.
async fn deploy(sim: &SimServer, job: &Path, bundle: &Path) -> (Output, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wfp-deployer"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "WFP_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        )
        .env("CLOUDFLARE_API_TOKEN", TEST_TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", TEST_ACCOUNT)
        .env("CLOUDFLARE_API_BASE_URL", sim.api_base_url())
        .env("AWS_REGION", "us-east-1")
        .arg("deploy")
        .arg(job)
        .arg("--bundle")
        .arg(bundle);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let event = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, event)
}

fn write_job(dir: &Path, script: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{script}.json"));
    let job = json!({
        "version": 1, "job_id": format!("{script}-1"), "namespace": "customers",
        "script_name": script,
        // Never read: --bundle replaces it.
        "bundle": {"bucket": "not-used", "prefix": "none/"}
    });
    std::fs::write(&path, job.to_string()).unwrap();
    path
}

#[tokio::test]
async fn a_local_directory_and_a_local_archive_deploy_with_the_deploy_command() {
    let sim = spawn_sim_for(&Default::default()).await;
    let work = tempfile::tempdir().unwrap();
    let site = work.path().join("site");
    for (path, body) in [
        ("index.html", "<h1>local</h1>"),
        ("css/a.css", "a{}"),
        ("_headers", "/*\n  X-From: disk\n"),
    ] {
        let path = site.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    let (out, event) = deploy(&sim, &write_job(work.path(), "local-dir"), &site).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(event["data"]["manifest"]["files"], 2, "{event}");
    let (media, bytes) = asset(&sim, TEST_ACCOUNT, "customers", "local-dir", "/css/a.css").await;
    assert_eq!(
        (media.as_str(), bytes.as_slice()),
        ("text/css; charset=utf-8", &b"a{}"[..])
    );

    let archive = work.path().join("site.tar.zst");
    let entries = [
        file("dist/index.html", "<h1>archived</h1>"),
        file("other.txt", "x"),
    ];
    std::fs::write(&archive, build("tar.zst", &entries)).unwrap();
    let (out, event) = deploy(&sim, &write_job(work.path(), "local-zst"), &archive).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(event["data"]["manifest"]["files"], 2, "{event}");
    let (_, bytes) = asset(
        &sim,
        TEST_ACCOUNT,
        "customers",
        "local-zst",
        "/dist/index.html",
    )
    .await;
    assert_eq!(bytes, b"<h1>archived</h1>");

    // A link inside the directory is refused, not followed.
    std::os::unix::fs::symlink("/etc/passwd", site.join("passwd")).unwrap();
    let (out, event) = deploy(&sim, &write_job(work.path(), "local-link"), &site).await;
    assert!(!out.status.success());
    assert_eq!(event["data"]["error"]["code"], "bundle_invalid", "{event}");
    let message = event["data"]["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.ends_with("/passwd: invalid path: symbolic link (not followed)"),
        "{message}"
    );
}
