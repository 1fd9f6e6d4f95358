//! The API token and JWTs never reach the logs or the events, on the happy
//! path or on the paths that renew JWTs and report errors.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use wfp_deployer::sim::SimConfig;

use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::{TEST_TOKEN, add_fault};

/// Collects everything logged on this thread (the test's current-thread
/// runtime runs the worker's tasks too).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_token_or_jwt_in_logs_or_events() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("wfp_deployer=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut sim = SimConfig::for_tests();
    sim.bucket_max_files = 1;
    let mut app =
        TestApp::spawn_with(S3Server::Moto, sim, |s| s.cloudflare.upload_concurrency = 1).await;
    app.bucket
        .put_many((0..3).map(|i| (format!("s/{i}.txt"), format!("{i}").into_bytes())))
        .await;
    // Renewals of both JWTs, a retried 503 and a final 400: every path that
    // handles a credential or logs an error.
    add_fault(
        &app.sim,
        json!({"endpoint": "upload", "kind": "advance_clock", "seconds": 3600, "count": 1}),
    )
    .await;
    add_fault(
        &app.sim,
        json!({"endpoint": "upload", "kind": "status", "status": 503, "count": 1}),
    )
    .await;
    let ok = app.deploy_ok(&app.job("sec-1", "secrets", "s/")).await;
    add_fault(
        &app.sim,
        json!({"endpoint": "script", "kind": "status", "status": 400, "count": 1}),
    )
    .await;
    let failed = app.deploy(&app.job("sec-2", "secrets", "s/")).await;
    app.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("sec-1"), "the capture saw the worker's logs");
    // Every line of a job carries its span: job id, namespace, script,
    // attempt and correlation id.
    let settled = logs
        .lines()
        .find(|l| l.contains("job settled") && l.contains("job_id=\"sec-1\""))
        .unwrap_or_else(|| panic!("no 'job settled' line for sec-1: {logs}"));
    for field in [
        "namespace=\"customers\"",
        "script=\"secrets\"",
        "attempt=1",
        "correlation_id=\"corr-sec-1\"",
    ] {
        assert!(settled.contains(field), "{field} missing: {settled}");
    }
    for text in [&logs, &ok.json.to_string(), &failed.json.to_string()] {
        assert!(!text.contains(TEST_TOKEN), "API token leaked: {text}");
        // Every JWT starts with a base64url `{"` header: `eyJ`.
        assert!(!text.contains("eyJ"), "a JWT leaked: {text}");
    }
}
