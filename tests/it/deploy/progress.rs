//! `deploy.progress` from a real deploy: the hooks in the bundle sources
//! and the upload step reach the events, numbered, in step order, all
//! before the terminal event; `events.progress = false` sends none.

use serde_json::{Value, json};
use wfp_deployer::sim::SimConfig;

use crate::helpers::amqp::EventTap;
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::add_fault;

const STEPS: [&str; 6] = ["validate", "list", "hash", "session", "upload", "deploy"];

/// The events up to and including the next terminal one.
async fn until_terminal(tap: &mut EventTap) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let event = tap.next().await;
        let terminal = matches!(
            event.routing_key.as_str(),
            "deploy.succeeded" | "deploy.failed"
        );
        seen.push(event.json);
        if terminal {
            return seen;
        }
    }
}

#[tokio::test]
async fn a_deploy_reports_its_steps_and_counts_before_its_outcome() {
    let mut sim = SimConfig::for_tests();
    sim.bucket_max_files = 1;
    let app = TestApp::spawn_with(S3Server::Moto, sim, |_| {}).await;
    for name in ["a", "b", "c"] {
        let body = format!("<p>{name}</p>").into_bytes();
        app.bucket.put(&format!("p/{name}.html"), body).await;
    }
    // Slow answers make the session and upload steps last: each is seen.
    add_fault(
        &app.sim,
        json!({"endpoint": "session", "kind": "latency", "ms": 400, "count": 1}),
    )
    .await;
    add_fault(
        &app.sim,
        json!({"endpoint": "upload", "kind": "latency", "ms": 600, "count": 3}),
    )
    .await;
    let mut tap = EventTap::with_progress(&app.settings.amqp).await;
    app.publish(&app.job("prog-1", "prog", "p/")).await;
    let events = until_terminal(&mut tap).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "wfp.deploy.succeeded", "{last}");

    let progress: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "wfp.deploy.progress")
        .collect();
    let mut step_index = 0;
    for (n, event) in progress.iter().enumerate() {
        let data = &event["data"];
        assert_eq!(data["sequence"], n as u64, "numbered from 0: {event}");
        assert_eq!(event["id"], format!("prog-1:progress:1:{n}"));
        assert_eq!(data["job_id"], "prog-1");
        let step = data["step"].as_str().unwrap();
        let index = STEPS.iter().position(|s| *s == step).unwrap();
        assert!(index >= step_index, "steps in order: {progress:?}");
        step_index = index;
    }
    let steps: Vec<&str> = progress
        .iter()
        .map(|e| e["data"]["step"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"session"), "{steps:?}");
    let upload = progress
        .iter()
        .find(|e| e["data"]["step"] == "upload")
        .unwrap_or_else(|| panic!("an upload progress event: {steps:?}"));
    assert_eq!(upload["data"]["buckets_total"], 3, "{upload}");
    assert_eq!(upload["data"]["files_total"], 3, "{upload}");
    assert_eq!(upload["data"]["bytes_total"], 24, "{upload}");
    assert_eq!(
        events[0]["type"], "wfp.deploy.started",
        "started comes first: {events:?}"
    );
    app.stop().await;
    tap.assert_drained("nothing after the terminal event").await;
}

#[tokio::test]
async fn progress_off_sends_none() {
    let app = TestApp::spawn_with(S3Server::Moto, SimConfig::for_tests(), |s| {
        s.events.progress = false;
    })
    .await;
    app.bucket.put("q/index.html", b"<p>q</p>".to_vec()).await;
    add_fault(
        &app.sim,
        json!({"endpoint": "session", "kind": "latency", "ms": 400, "count": 1}),
    )
    .await;
    let mut tap = EventTap::with_progress(&app.settings.amqp).await;
    app.publish(&app.job("quiet-1", "quiet", "q/")).await;
    // The terminal event arrived (the marker), and nothing but started
    // preceded it.
    let events = until_terminal(&mut tap).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["wfp.deploy.started", "wfp.deploy.succeeded"]);
    app.stop().await;
    tap.assert_drained("no progress event after the terminal one")
        .await;
}
