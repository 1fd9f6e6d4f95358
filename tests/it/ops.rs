//! The operator surface against real deploys: `/metrics` counts what the
//! worker did, by the right amounts; `/readyz` follows the broker
//! connection; `/healthz` answers.
//!
//! Each test runs in its own process (nextest), so the process-wide metrics
//! recorder holds only that test's deploys.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use wfp_deployer::ops;
use wfp_deployer::sim::SimConfig;

use crate::helpers::app::TestApp;
use crate::helpers::proxy::TcpProxy;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::add_fault;

/// Serves the ops routes for `app` on a free port.
async fn serve(app: &TestApp) -> (SocketAddr, CancellationToken) {
    let stop = CancellationToken::new();
    let handle = ops::metrics_handle().expect("metrics recorder");
    let (addr, server) = ops::bind(
        "127.0.0.1:0".parse().unwrap(),
        handle,
        app.ready(),
        stop.clone(),
    )
    .await
    .expect("ops server binds");
    tokio::spawn(server);
    (addr, stop)
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// The value of the sample of `name` whose labels include every pair in
/// `labels` (0 when there is none: a counter never incremented).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_count_deploys_failures_and_retries() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    let (addr, stop) = serve(&app).await;
    app.bucket
        .put_many((0..3).map(|i| (format!("site/{i}.html"), format!("<p>{i}</p>"))))
        .await;
    // One 503 on the session: one in-call retry.
    add_fault(
        &app.sim,
        json!({"endpoint": "session", "kind": "status", "status": 503, "count": 1}),
    )
    .await;
    app.deploy_ok(&app.job("m-ok", "metrics-site", "site/"))
        .await;
    let failed = app
        .deploy(&app.job("m-missing", "metrics-other", "nothing/"))
        .await;
    assert_eq!(failed.data()["error"]["code"], "bundle_not_found");
    app.publish_raw(b"not json", Default::default()).await;
    let invalid = app.terminal_event().await;
    assert_eq!(invalid.data()["error"]["code"], "invalid_job");

    // Events come before the broker action (a park's copy is confirmed
    // after its event): wait until all three deliveries are settled.
    let mut text = String::new();
    for _ in 0..100 {
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        text = body;
        if sample(&text, "wfp_deployer_jobs_total", &[]) >= 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let jobs = |outcome, code| {
        sample(
            &text,
            "wfp_deployer_jobs_total",
            &[("outcome", outcome), ("code", code)],
        )
    };
    assert_eq!(jobs("succeeded", ""), 1.0, "{text}");
    assert_eq!(jobs("failed", "bundle_not_found"), 1.0, "{text}");
    assert_eq!(jobs("parked", "invalid_job"), 1.0, "{text}");
    assert_eq!(sample(&text, "wfp_deployer_invalid_jobs_total", &[]), 1.0);
    assert_eq!(
        sample(
            &text,
            "wfp_deployer_job_duration_seconds_count",
            &[("outcome", "succeeded")]
        ),
        1.0
    );
    assert_eq!(sample(&text, "wfp_deployer_uploaded_files_total", &[]), 3.0);
    assert_eq!(
        sample(&text, "wfp_deployer_uploaded_bytes_total", &[]),
        24.0,
        "three files of 8 bytes"
    );
    assert_eq!(
        sample(
            &text,
            "wfp_deployer_retries_total",
            &[("service", "cloudflare")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "wfp_deployer_cloudflare_requests_total",
            &[("endpoint", "session"), ("status", "503")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "wfp_deployer_cloudflare_requests_total",
            &[("endpoint", "deploy"), ("status", "200")]
        ),
        1.0,
        "{text}"
    );
    // Every deploy that ran timed its steps; nothing is in flight now.
    assert!(
        sample(
            &text,
            "wfp_deployer_step_duration_seconds_count",
            &[("step", "upload")]
        ) >= 1.0
    );
    assert_eq!(sample(&text, "wfp_deployer_jobs_in_flight", &[]), 0.0);
    // Started + terminal events, each confirmed and timed.
    assert!(sample(&text, "wfp_deployer_publish_confirm_seconds_count", &[]) >= 5.0);

    stop.cancel();
    app.stop().await;
}

#[tokio::test]
async fn readyz_follows_the_broker_connection() {
    // The worker reaches the broker through a proxy the test can cut.
    let proxy = TcpProxy::start("127.0.0.1:5672").await;
    let url = format!("amqp://guest:guest@{}/%2f", proxy.addr());
    let app = TestApp::spawn_with(S3Server::Moto, SimConfig::for_tests(), |s| {
        s.amqp.url = url.into();
        s.amqp.reconnect_max_delay = Duration::from_millis(200);
    })
    .await;
    let (addr, stop) = serve(&app).await;
    assert_eq!(get(addr, "/healthz").await.0, 200);
    assert_eq!(get(addr, "/readyz").await.0, 200);

    // The broker is gone for the worker: not ready, and it stays so while
    // every reconnection is refused.
    proxy.cut();
    let mut became_unready = false;
    for _ in 0..300 {
        if get(addr, "/readyz").await.0 == 503 {
            became_unready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(became_unready, "/readyz still 200 with the broker cut off");
    assert_eq!(get(addr, "/healthz").await.0, 200, "alive all the same");

    proxy.restore();
    let mut ready = app.ready();
    assert!(
        tokio::time::timeout(Duration::from_secs(30), ready.wait())
            .await
            .unwrap_or(false),
        "the worker reconnects"
    );
    assert_eq!(get(addr, "/readyz").await.0, 200);
    let (_, text) = get(addr, "/metrics").await;
    assert!(
        sample(&text, "wfp_deployer_broker_reconnects_total", &[]) >= 1.0,
        "{text}"
    );

    stop.cancel();
    app.stop().await;
}
