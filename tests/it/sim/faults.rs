//! Fault injection: each kind does what a client's retry logic must cope
//! with, counted rules are used up, and faults come before authentication.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use wfp_deployer::sim::{FaultSpec, SimConfig};

use super::{ACCOUNT, Api, NS, code, manifest};
use crate::helpers::sim::{add_fault, requests, stats};

async fn list_faults(api: &Api) -> Value {
    let response = api
        .http
        .get(format!("{}/faults", api.sim.admin_url()))
        .send()
        .await;
    match response {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn counted_status_faults_are_used_up() {
    let api = Api::start().await;
    add_fault(
        &api.sim,
        json!({"endpoint": "session", "kind": "status", "status": 503, "count": 2}),
    )
    .await;
    let body = manifest(&[("/a.txt", b"alpha")]);
    for _ in 0..2 {
        let (status, answer) = api.session("acme-site", &body).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::SERVICE_UNAVAILABLE, 10013),
            "{answer}"
        );
    }
    let (status, answer) = api.session("acme-site", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let rules = list_faults(&api).await;
    assert_eq!(rules[0]["remaining"], json!(0));
    assert_eq!(rules[0]["fired"], json!(2));
    assert_eq!(
        stats(&api.sim).await["requests"]["session"],
        json!({"200": 1, "503": 2})
    );
    let faults: Vec<Value> = requests(&api.sim)
        .await
        .iter()
        .map(|r| r["fault"].clone())
        .collect();
    assert_eq!(faults, vec![json!("status"), json!("status"), Value::Null]);
}

#[tokio::test]
async fn faults_come_before_authentication() {
    let api = Api::start().await;
    add_fault(
        &api.sim,
        json!({"endpoint": "all", "kind": "status", "status": 502, "count": 1}),
    )
    .await;
    let url = api.session_url(ACCOUNT, NS, "acme-site");
    let (status, _) = api.send(api.http.post(url.clone()).json(&json!({}))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let (status, _) = api.send(api.http.post(url).json(&json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let api = Api::start().await;
    add_fault(
        &api.sim,
        json!({"endpoint": "session", "kind": "429", "retry_after": 3, "count": 1}),
    )
    .await;
    add_fault(&api.sim, json!({"endpoint": "session", "kind": "status", "status": 503, "retry_after": 2, "count": 1})).await;
    let request = || {
        api.http
            .post(api.session_url(ACCOUNT, NS, "acme-site"))
            .bearer_auth(crate::helpers::sim::TEST_TOKEN)
            .json(&manifest(&[("/a.txt", b"alpha")]))
    };
    for (want_status, want_code, want_after) in [(429, 971, "3"), (503, 10013, "2")] {
        let response = request().send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status().as_u16(), want_status);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some(want_after)
        );
        let body: Value = response.json().await.unwrap_or_default();
        assert_eq!(code(&body), want_code);
    }
    let response = request().send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn reset_drops_the_connection_without_an_answer() {
    let api = Api::start().await;
    add_fault(
        &api.sim,
        json!({"endpoint": "upload", "kind": "reset", "count": 1}),
    )
    .await;
    let (_, session) = api
        .session("acme-site", &manifest(&[("/a.txt", b"alpha")]))
        .await;
    let jwt = session["result"]["jwt"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let url = api.upload_url(ACCOUNT);
    let sent = api
        .http
        .post(url)
        .bearer_auth(&jwt)
        .body("anything")
        .send()
        .await;
    // No status line at all: the client cannot mistake it for an answer.
    match sent {
        Ok(response) => panic!("a reset must not answer, got HTTP {}", response.status()),
        Err(e) => assert!(!e.is_status() && !e.is_timeout(), "{e}"),
    }
    // The next request (a new connection) is answered normally.
    let (status, _) = api.upload_files(&jwt, &[(b"alpha", "text/plain")]).await;
    assert_eq!(status, StatusCode::CREATED);
    let log = requests(&api.sim).await;
    assert_eq!(log[1]["fault"], json!("reset"));
    assert_eq!(log[1]["status"], Value::Null);
    assert_eq!(
        stats(&api.sim).await["requests"]["upload"],
        json!({"201": 1, "reset": 1})
    );
}

#[tokio::test]
async fn latency_delays_the_answer_and_can_stall_a_client() {
    let api = Api::start().await;
    add_fault(
        &api.sim,
        json!({"endpoint": "session", "kind": "latency", "ms": 300, "count": 1}),
    )
    .await;
    let start = Instant::now();
    let (status, _) = api
        .session("acme-site", &manifest(&[("/a.txt", b"alpha")]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(requests(&api.sim).await[0]["fault"], json!("latency"));

    add_fault(
        &api.sim,
        json!({"endpoint": "script", "kind": "latency", "ms": 5000, "count": 1}),
    )
    .await;
    let stalled = api
        .http
        .put(api.script_url(ACCOUNT, NS, "acme-site"))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(stalled.is_err_and(|e| e.is_timeout()));
}

#[tokio::test]
async fn advance_clock_expires_the_upload_jwt_mid_upload() {
    let mut config = SimConfig::for_tests();
    config.bucket_max_files = 1;
    let api = Api::with(config).await;
    add_fault(
        &api.sim,
        json!({"endpoint": "upload", "kind": "advance_clock", "seconds": 3600, "count": 1}),
    )
    .await;
    let (_, session) = api
        .session(
            "acme-site",
            &manifest(&[("/a.txt", b"alpha"), ("/b.txt", b"beta")]),
        )
        .await;
    let jwt = session["result"]["jwt"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, answer) = api.upload_files(&jwt, &[(b"alpha", "text/plain")]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the faulted request itself is answered normally: {answer}"
    );
    let (status, answer) = api.upload_files(&jwt, &[(b"beta", "text/plain")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(super::message(&answer).contains("upload JWT expired"));
    assert_eq!(requests(&api.sim).await[1]["fault"], json!("advance_clock"));
}

#[tokio::test]
async fn faults_can_be_listed_cleared_and_set_at_start() {
    let mut config = SimConfig::for_tests();
    config.faults = ["script:500:count=1", "all:latency=1ms"]
        .iter()
        .filter_map(|rule| rule.parse::<FaultSpec>().ok())
        .collect();
    let api = Api::with(config).await;
    let rules = list_faults(&api).await;
    assert_eq!(rules.as_array().map(Vec::len), Some(2));
    assert_eq!(rules[0]["kind"], json!("status"));
    assert_eq!(rules[1]["ms"], json!(1));
    let (status, _) = api
        .send(api.http.put(api.script_url(ACCOUNT, NS, "acme-site")))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    let bad = api
        .http
        .post(format!("{}/faults", api.sim.admin_url()))
        .json(&json!({"endpoint": "nope", "kind": "reset"}));
    assert_eq!(
        bad.send().await.map(|r| r.status()).ok(),
        Some(StatusCode::BAD_REQUEST)
    );
    let cleared = api
        .http
        .delete(format!("{}/faults", api.sim.admin_url()))
        .send()
        .await;
    assert!(cleared.is_ok_and(|r| r.status().is_success()));
    assert_eq!(list_faults(&api).await, json!([]));
}
