//! `wfp-deployer deploy TARGET`, run as the binary against the real S3
//! server and the simulator: every kind of target, `--dry-run` (Cloudflare
//! asked nothing), `--json`, worker code from a local directory, the exit
//! status of a failed deploy and of usage errors. No broker is involved.

use std::path::Path;

use serde_json::Value;
use tokio::process::Command;
use wfp_deployer::sim::SimServer;

use crate::cli_tools::{Finished, run_with};
use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::archives::{file, gzip, tar};
use crate::helpers::s3::{S3Server, TEST_ACCESS_KEY, TEST_SECRET_KEY, test_bucket};
use crate::helpers::sim::{TEST_TOKEN, asset, deployment, requests, spawn_sim_for};

/// The binary with a clean environment pointing at `sim` and moto.
fn wfp(sim: &SimServer) -> Command {
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
        .env("AWS_ENDPOINT_URL_S3", S3Server::Moto.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
        .env("WFP__S3__FORCE_PATH_STYLE", "true")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// `deploy` with `args`, to its end.
async fn deploy(sim: &SimServer, args: &[&str]) -> Finished {
    run_with(wfp(sim).arg("deploy").args(args)).await
}

fn site(dir: &Path, files: &[(&str, &str)]) {
    for (rel, body) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
}

async fn served(sim: &SimServer, script: &str, path: &str) -> Vec<u8> {
    asset(sim, TEST_ACCOUNT, "customers", script, path).await.1
}

#[tokio::test]
async fn a_local_directory_deploys_and_prints_one_summary_line() {
    let sim = spawn_sim_for(&Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    site(
        dir.path(),
        &[("index.html", "<p>dir</p>"), ("a/b.css", "b{}")],
    );
    let target = dir.path().display().to_string();
    let out = deploy(
        &sim,
        &[&target, "--namespace", "customers", "--script", "cli-dir"],
    )
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .starts_with("deployed customers/cli-dir: 2 files, 13 B; uploaded 2 files"),
        "{out:?}"
    );
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    // Progress goes to standard error, as plain lines off a terminal.
    let progress: Vec<&str> = out.stderr.lines().collect();
    assert!(progress.contains(&"session"), "{progress:?}");
    assert!(
        progress
            .iter()
            .any(|l| l.starts_with("upload: ") && l.contains("files")),
        "{progress:?}"
    );
    assert!(!out.stderr.contains('\u{1b}'), "{out:?}");
    assert_eq!(served(&sim, "cli-dir", "/index.html").await, b"<p>dir</p>");
}

#[tokio::test]
async fn a_local_archive_deploys_and_json_prints_the_terminal_event() {
    let sim = spawn_sim_for(&Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("site.tar.gz");
    std::fs::write(&archive, gzip(&tar(&[file("index.html", "<p>tgz</p>")]))).unwrap();
    let target = archive.display().to_string();
    let out = deploy(
        &sim,
        &[
            &target,
            "--namespace",
            "customers",
            "--script",
            "cli-tgz",
            "--job-id",
            "cli-tgz-1",
            "--label",
            "tenant=acme",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let event: Value = serde_json::from_str(&out.stdout).expect("the event on stdout");
    assert_eq!(event["id"], "cli-tgz-1:succeeded");
    assert_eq!(event["data"]["labels"]["tenant"], "acme");
    assert_eq!(event["data"]["manifest"]["files"], 1);
    assert_eq!(served(&sim, "cli-tgz", "/index.html").await, b"<p>tgz</p>");
}

#[tokio::test]
async fn an_s3_prefix_and_an_s3_archive_deploy() {
    let sim = spawn_sim_for(&Default::default()).await;
    let bucket = test_bucket(S3Server::Moto).await;
    bucket.put("p/index.html", b"<p>prefix</p>".to_vec()).await;
    let archive = gzip(&tar(&[file("index.html", "<p>archive</p>")]));
    bucket.put("builds/42.tar.gz", archive).await;
    let prefix = format!("s3://{}/p/", bucket.name());
    let out = deploy(
        &sim,
        &[
            &prefix,
            "--namespace",
            "customers",
            "--script",
            "cli-prefix",
            "--assets-config",
            "html_handling=none",
        ],
    )
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        served(&sim, "cli-prefix", "/index.html").await,
        b"<p>prefix</p>"
    );
    let deployed = deployment(&sim, TEST_ACCOUNT, "customers", "cli-prefix").await;
    assert_eq!(
        deployed["metadata"]["assets"]["config"]["html_handling"], "none",
        "{deployed}"
    );

    let key = format!("s3://{}/builds/42.tar.gz", bucket.name());
    let out = deploy(
        &sim,
        &[&key, "--namespace", "customers", "--script", "cli-s3tgz"],
    )
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        served(&sim, "cli-s3tgz", "/index.html").await,
        b"<p>archive</p>"
    );
}

#[tokio::test]
async fn a_job_file_deploys_with_flags_overriding_it_and_bundle_replacing_its_files() {
    let sim = spawn_sim_for(&Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    site(dir.path(), &[("public/index.html", "<p>job</p>")]);
    let job = dir.path().join("job.json");
    let body = serde_json::json!({
        "version": 1, "job_id": "cli-job-1", "namespace": "customers",
        "script_name": "cli-job", "bundle": {"bucket": "not-read", "prefix": "x/"}
    });
    std::fs::write(&job, body.to_string()).unwrap();
    let (job, public) = (
        job.display().to_string(),
        dir.path().join("public").display().to_string(),
    );
    let out = deploy(
        &sim,
        &[&job, "--bundle", &public, "--script", "cli-job-b", "--json"],
    )
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let event: Value = serde_json::from_str(&out.stdout).expect("the event on stdout");
    assert_eq!(event["id"], "cli-job-1:succeeded");
    assert_eq!(
        served(&sim, "cli-job-b", "/index.html").await,
        b"<p>job</p>"
    );
}

#[tokio::test]
async fn worker_code_comes_from_a_local_directory() {
    let sim = spawn_sim_for(&Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    site(
        dir.path(),
        &[
            ("public/index.html", "<p>code</p>"),
            ("worker/index.js", "export default {}"),
            ("worker/lib/util.js", "export const x = 1"),
        ],
    );
    let (public, code) = (
        dir.path().join("public").display().to_string(),
        dir.path().join("worker").display().to_string(),
    );
    let out = deploy(
        &sim,
        &[
            &public,
            "--namespace",
            "customers",
            "--script",
            "cli-code",
            "--main-module",
            "index.js",
            "--code",
            &code,
        ],
    )
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let deployed = deployment(&sim, TEST_ACCOUNT, "customers", "cli-code").await;
    assert_eq!(
        deployed["metadata"]["main_module"], "index.js",
        "{deployed}"
    );
    let names: Vec<&str> = deployed["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, ["index.js", "lib/util.js"], "{deployed}");
}

#[tokio::test]
async fn a_dry_run_checks_the_site_and_asks_cloudflare_nothing() {
    let sim = spawn_sim_for(&Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    site(
        dir.path(),
        &[("index.html", "<p>dry</p>"), ("_headers", "/*\n  X-A: b\n")],
    );
    let target = dir.path().display().to_string();
    let args = [
        target.as_str(),
        "--namespace",
        "customers",
        "--script",
        "cli-dry",
        "--dry-run",
    ];
    // No token needed: nothing is sent.
    let out = run_with(
        wfp(&sim)
            .env_remove("CLOUDFLARE_API_TOKEN")
            .arg("deploy")
            .args(args),
    )
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .starts_with("dry run of customers/cli-dry: 1 files, 10 B valid"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("Nothing was sent to Cloudflare"),
        "{out:?}"
    );
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = deploy(&sim, &json_args).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let planned: Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    assert_eq!(planned["dry_run"], true);
    assert_eq!(planned["manifest"]["files"], 1);
    assert!(
        requests(&sim).await.is_empty(),
        "{:?}",
        requests(&sim).await
    );

    // The log does record requests: the same site deployed shows some.
    let out = deploy(&sim, &args[..5]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!requests(&sim).await.is_empty());
}

#[tokio::test]
async fn a_failed_deploy_exits_1_with_step_code_message_and_what_next() {
    let sim = spawn_sim_for(&Default::default()).await;
    let bucket = test_bucket(S3Server::Moto).await;
    let empty = format!("s3://{}/nothing-here/", bucket.name());
    let out = deploy(
        &sim,
        &[&empty, "--namespace", "customers", "--script", "cli-fail"],
    )
    .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("wfp-deployer: error: deploy failed at list: bundle_not_found: "),
        "{out:?}"
    );
    assert!(
        last.ends_with("(check the directory, archive or s3:// location)"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[tokio::test]
async fn usage_errors_exit_2_naming_what_is_wrong() {
    let sim = spawn_sim_for(&Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    site(dir.path(), &[("index.html", "x")]);
    let target = dir.path().display().to_string();
    let named = ["--namespace", "customers", "--script", "cli-usage"];
    let cases: &[(&[&str], &str)] = &[
        (&["--code", "./worker"], "--main-module"),
        (
            &["--assets-config", "html_handling=sometimes"],
            "html_handling takes one of auto-trailing-slash",
        ),
        (
            &["--assets-config", "spa=true"],
            "\"spa\" is not an assets config key",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec![target.as_str()];
        args.extend(named);
        args.extend(*extra);
        let out = deploy(&sim, &args).await;
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.contains(expected), "{args:?}: {out:?}");
    }
    let out = deploy(&sim, &["./no/such/site", "--namespace", "customers"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("no such directory or file"), "{out:?}");
    let out = deploy(&sim, &[&target]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .contains("needs --namespace NS and --script NAME"),
        "{out:?}"
    );
    assert!(requests(&sim).await.is_empty());
}

#[tokio::test]
async fn a_job_on_standard_input_prints_its_event_as_deploy_job_json_always_did() {
    use tokio::io::AsyncWriteExt;
    let sim = spawn_sim_for(&Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    site(dir.path(), &[("index.html", "<p>stdin</p>")]);
    let body = serde_json::json!({
        "version": 1, "job_id": "cli-stdin-1", "namespace": "customers",
        "script_name": "cli-stdin", "bundle": {"bucket": "not-read", "prefix": "x/"}
    });
    let site_dir = dir.path().display().to_string();
    let mut child = wfp(&sim)
        .args(["deploy", "-", "--bundle", &site_dir, "--label", "via=stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(body.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the command ends within 60 s")
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let event: Value = serde_json::from_slice(&out.stdout).expect("the event on stdout");
    assert_eq!(event["id"], "cli-stdin-1:succeeded");
    assert_eq!(event["data"]["labels"]["via"], "stdin");
    assert_eq!(
        served(&sim, "cli-stdin", "/index.html").await,
        b"<p>stdin</p>"
    );
}
