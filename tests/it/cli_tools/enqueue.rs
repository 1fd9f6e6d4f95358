//! `enqueue`: jobs built from flags or read from a file or standard input,
//! checked before they are published, published with confirms; `--wait`
//! follows the job to its outcome and exits by it. `publish` still works.

use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::{run, run_with, wfp};
use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::deployment;

#[tokio::test]
async fn enqueue_wait_exits_zero_when_the_deploy_succeeds() {
    let app = TestApp::spawn(S3Server::Moto).await;
    app.bucket.put("e/index.html", b"<p>e</p>".to_vec()).await;
    let bucket = app.bucket.name().to_string();
    let out = run(
        &app.settings,
        &[
            "enqueue",
            "--namespace",
            "customers",
            "--script",
            "enq-ok",
            "--bucket",
            &bucket,
            "--prefix",
            "e/",
            "--job-id",
            "enq-ok-1",
            "--label",
            "tenant=acme",
            "--assets-config",
            "html_handling=none",
            "--wait",
            "60s",
        ],
    )
    .await;
    assert!(out.success, "{out:?}");
    let event: Value = serde_json::from_str(&out.stdout).expect("the terminal event on stdout");
    assert_eq!(event["id"], "enq-ok-1:succeeded");
    assert_eq!(event["data"]["labels"]["tenant"], "acme");
    assert!(
        out.stderr.contains("published job enq-ok-1"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("started    customers/enq-ok  enq-ok-1  attempt 1"),
        "{}",
        out.stderr
    );
    let deployed = deployment(&app.sim, TEST_ACCOUNT, "customers", "enq-ok").await;
    assert_eq!(
        deployed["metadata"]["assets"]["config"]["html_handling"], "none",
        "{deployed}"
    );
    app.stop().await;
}

#[tokio::test]
async fn enqueue_wait_exits_non_zero_with_the_code_when_the_deploy_fails() {
    let app = TestApp::spawn(S3Server::Moto).await;
    let bucket = app.bucket.name().to_string();
    let out = run(
        &app.settings,
        &[
            "enqueue",
            "--namespace",
            "customers",
            "--script",
            "enq-missing",
            "--bucket",
            &bucket,
            "--prefix",
            "nothing-here/",
            "--job-id",
            "enq-fail-1",
            "--wait",
        ],
    )
    .await;
    assert!(!out.success, "{out:?}");
    assert_eq!(out.code, Some(1));
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("wfp-deployer: error: job enq-fail-1 failed: bundle_not_found: "),
        "{}",
        out.stderr
    );
    let event: Value = serde_json::from_str(&out.stdout).expect("the failed event on stdout");
    assert_eq!(event["data"]["error"]["code"], "bundle_not_found");
    app.stop().await;
}

#[tokio::test]
async fn enqueue_prints_a_generated_job_id_and_reads_standard_input() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket.put("s/index.html", b"<p>s</p>".to_vec()).await;
    let bucket = app.bucket.name().to_string();
    let out = run(
        &app.settings,
        &[
            "enqueue",
            "--namespace",
            "customers",
            "--script",
            "gen-id",
            "--bucket",
            &bucket,
            "--prefix",
            "s/",
        ],
    )
    .await;
    assert!(out.success, "{out:?}");
    let job_id = out.stdout.trim().to_string();
    assert!(job_id.starts_with("gen-id-"), "{job_id}");
    let event = app.terminal_event().await;
    assert_eq!(event.json["id"], format!("{job_id}:succeeded"));

    // From standard input, with --wait.
    let job = app.job("stdin-1", "from-stdin", "s/").to_string();
    let mut cmd = wfp(&app.settings);
    cmd.args(["enqueue", "--file", "-", "--wait", "60s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(job.as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let event: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(event["id"], "stdin-1:succeeded");
    // The tap saw it too, after the one before: nothing else was published.
    assert_eq!(app.terminal_event().await.json["id"], "stdin-1:succeeded");
    app.stop().await;
}

#[tokio::test]
async fn publish_is_still_there_and_an_invalid_job_is_never_published() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket.put("o/index.html", b"<p>o</p>".to_vec()).await;
    let dir = tempfile::tempdir().unwrap();

    let bad = dir.path().join("bad.json");
    let mut job = app.job("bad-1", "Not-Lowercase", "o/");
    std::fs::write(&bad, job.to_string()).unwrap();
    let out = run_with(wfp(&app.settings).arg("enqueue").arg(&bad)).await;
    assert!(!out.success);
    assert!(out.stderr.contains("script_name"), "{}", out.stderr);
    assert!(
        out.stderr.contains("nothing was published"),
        "{}",
        out.stderr
    );

    // The old spelling: `publish JOB.json --wait D`, the event on stdout.
    job["script_name"] = "old-spelling".into();
    job["job_id"] = "old-1".into();
    let good = dir.path().join("good.json");
    std::fs::write(&good, job.to_string()).unwrap();
    let out = run_with(
        wfp(&app.settings)
            .arg("publish")
            .arg(&good)
            .args(["--wait", "60s"]),
    )
    .await;
    assert!(out.success, "{out:?}");
    let event: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(event["id"], "old-1:succeeded");
    // The first terminal event the worker published is the good job's: the
    // refused one never reached the queue.
    assert_eq!(app.terminal_event().await.json["id"], "old-1:succeeded");
    app.stop().await;
}
