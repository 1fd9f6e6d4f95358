//! `limits.large_bundle_files`: two jobs of one worker whose bundles pass it
//! never hold their files' records at once. The second waits in its listing
//! (counted), and its upload session reaches Cloudflare only after the first
//! one's script PUT.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::amqp::EventTap;
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::requests;

/// The value of the unlabelled sample `name` in a Prometheus text page.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The script a request's path names (`.../scripts/<name>[/...]`).
fn script_of(record: &Value) -> &str {
    let path = record["path"].as_str().unwrap_or_default();
    path.split("/scripts/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_second_large_bundle_waits_until_the_first_is_deployed() {
    // This test's process has the recorder to itself (nextest).
    let metrics = wfp_deployer::ops::metrics_handle().expect("metrics recorder");
    let (mut app, proxy) = TestApp::spawn_behind_proxy(S3Server::Moto, |s| {
        s.limits.large_bundle_files = 5;
        s.worker.concurrency = 2;
    })
    .await;
    for site in ["a", "b"] {
        for n in 0..8 {
            let body = format!("<p>{site} {n}</p>").into_bytes();
            app.bucket.put(&format!("{site}/page-{n}.html"), body).await;
        }
    }
    let mut tap = EventTap::with_progress(&app.settings.amqp).await;

    // Cloudflare does not answer yet: whichever job takes the permit
    // stops at its upload session, its manifest in memory.
    proxy.hold();
    app.publish(&app.job("large-a", "large-a", "a/")).await;
    app.publish(&app.job("large-b", "large-b", "b/")).await;
    let holder = loop {
        let event = tap.next().await;
        if event.routing_key == "deploy.progress" && event.data()["step"] == "session" {
            break event.data()["script_name"].as_str().unwrap().to_string();
        }
    };
    let waiter = if holder == "large-a" {
        "large-b"
    } else {
        "large-a"
    };
    // The other one's listing passed 5 files: it waits for the permit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sample(&metrics.render(), "wfp_deployer_large_bundle_waits_total") < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiter} never waited for the large-bundle permit: {}",
            metrics.render()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    proxy.release();
    for _ in 0..2 {
        let event = app.terminal_event().await;
        assert_eq!(event.json["type"], "wfp.deploy.succeeded", "{}", event.json);
    }
    let text = metrics.render();
    assert_eq!(
        sample(&text, "wfp_deployer_large_bundle_waits_total"),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "wfp_deployer_large_bundle_wait_seconds_count"),
        1.0,
        "the waiter was let through once: {text}"
    );
    // The waiter held its files' records only once the holder's were gone:
    // after the holder's script PUT, never beside it.
    let log = requests(&app.sim).await;
    let position = |script: &str, endpoint: &str| {
        log.iter()
            .position(|r| script_of(r) == script && r["endpoint"] == endpoint)
            .unwrap_or_else(|| panic!("no {endpoint} request of {script}: {log:?}"))
    };
    assert!(
        position(&holder, "script") < position(waiter, "session"),
        "{waiter}'s session came before {holder}'s script PUT: {log:?}"
    );
    app.stop().await;
}
