//! Cloudflare misbehaving: 5xx, 429 with Retry-After, resets and stalls on
//! every step are retried to success; a 4xx fails at once with the right
//! code; bad credentials are `cloudflare_auth`.

use std::time::Duration;

use serde_json::{Value, json};
use wfp_deployer::sim::SimConfig;

use super::{error, upload};
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::{add_fault, requests, stats};

/// Retries fast, but with room for a one-second Retry-After.
async fn app() -> TestApp {
    TestApp::spawn_with(S3Server::Moto, SimConfig::for_tests(), |s| {
        s.retry.max_attempts = 6;
        s.retry.initial_delay = Duration::from_millis(10);
        s.retry.max_delay = Duration::from_millis(100);
        s.retry.max_retry_after = Duration::from_secs(2);
        s.cloudflare.request_timeout = Duration::from_secs(2);
    })
    .await
}

fn of_endpoint<'a>(log: &'a [Value], endpoint: &str) -> Vec<&'a Value> {
    log.iter().filter(|r| r["endpoint"] == endpoint).collect()
}

#[tokio::test]
async fn server_errors_and_throttling_on_every_step_are_retried_to_success() {
    let mut app = app().await;
    app.bucket
        .put_many((0..3).map(|i| (format!("f/{i}.html"), format!("<p>{i}</p>").into_bytes())))
        .await;
    for endpoint in ["session", "upload", "script"] {
        add_fault(
            &app.sim,
            json!({"endpoint": endpoint, "kind": "status", "status": 503, "count": 1}),
        )
        .await;
        add_fault(
            &app.sim,
            json!({"endpoint": endpoint, "kind": "status", "status": 502, "count": 1}),
        )
        .await;
        add_fault(
            &app.sim,
            json!({"endpoint": endpoint, "kind": "429", "retry_after": 1, "count": 1}),
        )
        .await;
    }
    let event = app.deploy_ok(&app.job("faults-1", "faulty", "f/")).await;
    assert_eq!(upload(&event)["sessions"], 1, "{}", event.json);

    let counts = &stats(&app.sim).await["requests"];
    let log = requests(&app.sim).await;
    for endpoint in ["session", "upload", "script"] {
        for status in ["503", "502", "429"] {
            assert_eq!(counts[endpoint][status], 1, "{endpoint} {status}: {counts}");
        }
        // Retry-After: 1 was honoured: the next try came a second later at least.
        let calls = of_endpoint(&log, endpoint);
        let throttled = calls.iter().position(|r| r["status"] == 429).unwrap();
        let next = calls
            .get(throttled + 1)
            .unwrap_or_else(|| panic!("no retry after 429 on {endpoint}"));
        let gap = next["at_ms"].as_u64().unwrap() - calls[throttled]["at_ms"].as_u64().unwrap();
        assert!(
            gap >= 1000,
            "{endpoint}: retried {gap} ms after a Retry-After of 1 s"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn resets_and_stalls_are_retried_to_success() {
    let mut app = app().await;
    app.bucket.put("r/index.html", b"<p>r</p>".to_vec()).await;
    add_fault(
        &app.sim,
        json!({"endpoint": "upload", "kind": "reset", "count": 1}),
    )
    .await;
    // Longer than the 2 s request timeout: the first PUT is abandoned, not awaited.
    add_fault(
        &app.sim,
        json!({"endpoint": "script", "kind": "latency", "ms": 10_000, "count": 1}),
    )
    .await;
    let event = app.deploy_ok(&app.job("reset-1", "resets", "r/")).await;
    assert_eq!(upload(&event)["files"], 1);
    app.stop().await;
}

#[tokio::test]
async fn a_client_error_fails_at_once_with_its_code() {
    let mut app = app().await;
    app.bucket.put("c/index.html", b"<p>c</p>".to_vec()).await;
    add_fault(
        &app.sim,
        json!({"endpoint": "session", "kind": "status", "status": 400, "count": 1}),
    )
    .await;
    let event = app.deploy(&app.job("reject-1", "rejected", "c/")).await;
    let error = error(&event);
    assert_eq!(error["code"], "cloudflare_rejected", "{error}");
    assert_eq!(error["step"], "session");
    assert_eq!(error["retryable"], false);
    assert!(
        error["message"].as_str().unwrap().contains("400"),
        "{error}"
    );
    let log = requests(&app.sim).await;
    assert_eq!(
        of_endpoint(&log, "session").len(),
        1,
        "a 400 is not retried"
    );
    assert!(of_endpoint(&log, "script").is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_refused_api_token_is_cloudflare_auth_and_never_retried() {
    let mut app = TestApp::spawn_with(S3Server::Moto, SimConfig::for_tests(), |s| {
        s.cloudflare.api_token = Some("not-the-token".to_string().into());
    })
    .await;
    app.bucket.put("a/index.html", b"<p>a</p>".to_vec()).await;
    let event = app.deploy(&app.job("auth-1", "auth-site", "a/")).await;
    let error = error(&event);
    assert_eq!(error["code"], "cloudflare_auth", "{error}");
    assert_eq!(error["step"], "session");
    assert!(
        !error["message"].as_str().unwrap().contains("not-the-token"),
        "token leaked: {error}"
    );
    assert!(!event.json.to_string().contains("not-the-token"));
    assert_eq!(of_endpoint(&requests(&app.sim).await, "session").len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn credentials_go_only_where_they_belong() {
    let mut app = app().await;
    app.bucket
        .put_many((0..25).map(|i| (format!("k/{i}.txt"), format!("{i}").into_bytes())))
        .await;
    app.deploy_ok(&app.job("creds-1", "creds", "k/")).await;
    for r in requests(&app.sim).await {
        let want = if r["endpoint"] == "upload" {
            "upload_jwt"
        } else {
            "api_token"
        };
        assert_eq!(r["auth"], want, "{r}");
    }
    app.stop().await;
}
