//! `enqueue --wait`'s progress display, driven by the worker's
//! `deploy.progress` events: plain lines off a terminal, and the live
//! display as a person sees it, through a pseudo-terminal.

use std::time::Duration;

use serde_json::json;

use super::{broker_env, run};
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::add_fault;

/// A job whose session step lasts 400 ms: its progress event is seen.
async fn slow_app(prefix: &str) -> TestApp {
    let app = TestApp::spawn(S3Server::Moto).await;
    app.bucket
        .put(format!("{prefix}index.html"), b"<p>p</p>".to_vec())
        .await;
    add_fault(
        &app.sim,
        json!({"endpoint": "session", "kind": "latency", "ms": 400, "count": 1}),
    )
    .await;
    add_fault(
        &app.sim,
        json!({"endpoint": "upload", "kind": "latency", "ms": 400, "count": 1}),
    )
    .await;
    app
}

fn enqueue_args<'a>(bucket: &'a str, script: &'a str, prefix: &'a str) -> Vec<&'a str> {
    vec![
        "enqueue",
        "--namespace",
        "customers",
        "--script",
        script,
        "--bucket",
        bucket,
        "--prefix",
        prefix,
        "--job-id",
        script,
        "--wait",
        "60s",
    ]
}

#[tokio::test]
async fn enqueue_wait_off_a_terminal_prints_progress_as_plain_lines() {
    let app = slow_app("pl/").await;
    let bucket = app.bucket.name().to_string();
    let out = run(&app.settings, &enqueue_args(&bucket, "plain-prog", "pl/")).await;
    assert!(out.success, "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines.contains(&"session"),
        "a plain line for the session step: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("upload: ") && l.contains("/1 files")),
        "a plain line with the upload's counts: {lines:?}"
    );
    assert!(
        !out.stderr.contains('\u{1b}'),
        "no terminal codes off a terminal: {:?}",
        out.stderr
    );
    app.stop().await;
}

#[tokio::test]
async fn enqueue_wait_on_a_terminal_draws_a_live_display() {
    let app = slow_app("tt/").await;
    let bucket = app.bucket.name().to_string();
    let args: Vec<String> = enqueue_args(&bucket, "tty-prog", "tt/")
        .into_iter()
        .map(String::from)
        .collect();
    let env = broker_env(&app.settings);
    let output = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wfp-deployer"));
        cmd.env_clear()
            .envs(env)
            .env("TERM", "xterm")
            // Uncoloured event lines: every escape sequence is the display's.
            .env("NO_COLOR", "1")
            .args(&args);
        let mut session = expectrl::Session::spawn(cmd).expect("the binary starts on a pty");
        session.set_expect_timeout(Some(Duration::from_secs(60)));
        let seen = session.expect(expectrl::Eof).expect("the command ends");
        String::from_utf8_lossy(seen.as_bytes()).into_owned()
    })
    .await
    .unwrap();
    assert!(
        output.contains("tty-prog:succeeded"),
        "the terminal event: {output}"
    );
    // The live display: a step drawn, then redrawn in place (a carriage
    // return or a cursor movement, which plain lines never use).
    assert!(
        output.contains("session"),
        "the session step drawn: {output:?}"
    );
    assert!(
        output.contains("\u{1b}["),
        "terminal control sequences of the live display: {output:?}"
    );
    assert!(
        !output.lines().any(|l| l.trim_end() == "session"),
        "no plain line on a terminal: {output:?}"
    );
    app.stop().await;
}
