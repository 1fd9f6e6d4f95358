//! Build order per script across the fleet: bursts of builds on two
//! workers end with the newest live; an older build is `superseded`, one
//! without `created_at` or `timestamp` deploys unordered; a lease whose
//! holder died is released; a holder whose lease ended does not PUT.
//!
//! Two workers are two pipelines with leases of their own (each its own
//! broker connection), sharing the jobs queue, the simulator and the
//! markers' bucket. Absence (no PUT) is proven by the simulator's counters
//! read when a later event has already arrived.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use lapin::BasicProperties;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde_json::{Value, json};
use wfp_deployer::amqp::{LEASE_CONNECTION_NAME, lease_queue_name};
use wfp_deployer::config::Settings;
use wfp_deployer::sim::SimConfig;

use super::{delete_retry_queues, events_until_terminal, timeline};
use crate::helpers::amqp::{TEST_ACCOUNT, TestWorker, force_close_connections_with, start_worker};
use crate::helpers::app::TestApp;
use crate::helpers::s3::{S3Server, TestBucket, test_bucket};
use crate::helpers::sim::{add_fault, asset, requests, stats};

/// Where the markers live in their bucket.
const MARKERS_PREFIX: &str = "order/";

/// A worker whose markers are in `markers` (shared by every worker made
/// with it), with `tweak` on top.
async fn app_with_markers(markers: &TestBucket, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let bucket = markers.name().to_string();
    TestApp::spawn_with(S3Server::Moto, SimConfig::for_tests(), |s| {
        s.cache.bucket = Some(bucket);
        s.cache.prefix = MARKERS_PREFIX.into();
        tweak(s);
    })
    .await
}

/// A second worker process for `app`'s queues, simulator and buckets.
async fn second_worker(app: &TestApp) -> TestWorker {
    let mut settings = app.settings.clone();
    settings.worker.instance = format!("{}-b", settings.worker.instance);
    let pipeline = wfp_deployer::startup::build_worker_pipeline(&settings)
        .await
        .unwrap_or_else(|e| panic!("building the second pipeline: {e}"));
    start_worker(&settings, Arc::new(pipeline)).await
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `app`'s job for `script` deploying `prefix`, made at `created_at`.
fn job_at(app: &TestApp, id: &str, script: &str, prefix: &str, created_at: DateTime<Utc>) -> Value {
    let mut job = app.job(id, script, prefix);
    job["created_at"] = rfc3339(created_at).into();
    job
}

/// The `index.html` the live deployment of `script` serves.
async fn live_page(app: &TestApp, script: &str) -> String {
    let (_, bytes) = asset(&app.sim, TEST_ACCOUNT, "customers", script, "/index.html").await;
    String::from_utf8(bytes).expect("UTF-8 page")
}

/// Script PUTs the simulator received, whatever their answer.
async fn script_puts(app: &TestApp) -> u64 {
    let stats = stats(&app.sim).await;
    stats["requests"]["script"]
        .as_object()
        .map(|by_status| by_status.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// The marker object of `script`, as the workers wrote it.
async fn marker(markers: &TestBucket, script: &str) -> Value {
    let key = format!("{MARKERS_PREFIX}markers/{TEST_ACCOUNT}/customers/{script}.json");
    let object = markers
        .client()
        .get_object()
        .bucket(markers.name())
        .key(&key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("marker {key}: {e}"));
    let bytes = object
        .body
        .collect()
        .await
        .expect("marker body")
        .into_bytes();
    serde_json::from_slice(&bytes).expect("marker JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_and_a_burst_for_one_script_end_with_the_newest_build_live() {
    // Regression: build 18 ended live, not 19, in 3 of 3 runs.
    const BUILDS: usize = 20;
    let markers = test_bucket(S3Server::Moto).await;
    let mut app = app_with_markers(&markers, |_| {}).await;
    let second = second_worker(&app).await;
    app.bucket
        .put_many((0..BUILDS).map(|i| (format!("b{i}/index.html"), format!("build {i}"))))
        .await;
    // Half the PUTs slowed: without order, whichever of two racing builds
    // lands last is a coin toss.
    add_fault(
        &app.sim,
        json!({"endpoint": "script", "kind": "latency", "ms": 300, "rate": 0.5}),
    )
    .await;
    let base = Utc::now() - chrono::TimeDelta::seconds(60);
    let made = |i: usize| base + chrono::TimeDelta::milliseconds(100 * i as i64);
    for i in 0..BUILDS {
        let job = job_at(
            &app,
            &format!("burst-{i}"),
            "burst",
            &format!("b{i}/"),
            made(i),
        );
        app.publish(&job).await;
    }

    let mut terminal: BTreeMap<String, Value> = BTreeMap::new();
    while terminal.len() < BUILDS {
        let event = app.terminal_event().await;
        assert_ne!(event.routing_key, "deploy.retrying", "{}", event.json);
        let id = event.data()["job_id"].as_str().unwrap().to_string();
        assert!(
            terminal.insert(id.clone(), event.json.clone()).is_none(),
            "a second terminal event for {id}: {}",
            event.json
        );
    }
    let newest = &terminal[&format!("burst-{}", BUILDS - 1)];
    assert_eq!(newest["type"], "wfp.deploy.succeeded", "{newest}");
    let mut succeeded = Vec::new();
    // (when it went live, its build number), for each succeeded build.
    let mut went_live = Vec::new();
    for (id, event) in &terminal {
        if event["type"] == "wfp.deploy.succeeded" {
            succeeded.push(id.clone());
            let at = event["data"]["deployment"]["modified_on"].as_str().unwrap();
            let build: usize = id.trim_start_matches("burst-").parse().unwrap();
            went_live.push((at.parse::<DateTime<Utc>>().unwrap(), build));
            continue;
        }
        let error = &event["data"]["error"];
        assert_eq!(error["code"], "superseded", "{id}: {event}");
        assert_eq!(error["retryable"], false, "{id}: {event}");
        assert_eq!(error["step"], "validate", "{id}: {event}");
    }
    // Never an older build after a newer one, at any point.
    went_live.sort();
    assert!(
        went_live.windows(2).all(|w| w[0].1 < w[1].1),
        "builds went live out of order: {went_live:?}"
    );
    assert_eq!(
        live_page(&app, "burst").await,
        format!("build {}", BUILDS - 1)
    );
    assert_eq!(
        script_puts(&app).await,
        succeeded.len() as u64,
        "one PUT per succeeded build, none for a superseded one: {succeeded:?}"
    );
    let live = marker(&markers, "burst").await;
    assert_eq!(live["job_id"], format!("burst-{}", BUILDS - 1));
    assert_eq!(live["created_at"], rfc3339(made(BUILDS - 1)));

    // Nothing more: no job got a second outcome.
    second.stop().await.expect("second worker");
    let settings = app.settings.clone();
    let mut events = std::mem::replace(
        &mut app.events,
        crate::helpers::amqp::EventTap::new(&settings.amqp).await,
    );
    app.stop().await;
    events.assert_drained("after every job's one outcome").await;
}

#[tokio::test]
async fn an_older_build_is_superseded_and_a_job_without_created_at_deploys_unordered() {
    let markers = test_bucket(S3Server::Moto).await;
    let mut app = app_with_markers(&markers, |_| {}).await;
    for (prefix, page) in [
        ("two/", "two"),
        ("one/", "one"),
        ("free/", "free"),
        ("three/", "three"),
    ] {
        app.bucket.put(format!("{prefix}index.html"), page).await;
    }
    let now = Utc::now();
    let t1 = now - chrono::TimeDelta::seconds(30);
    let t2 = now - chrono::TimeDelta::seconds(20);

    app.deploy_ok(&job_at(&app, "o-two", "older", "two/", t2))
        .await;
    let failed = app
        .deploy(&job_at(&app, "o-one", "older", "one/", t1))
        .await;
    assert_eq!(failed.json["type"], "wfp.deploy.failed", "{}", failed.json);
    let error = &failed.data()["error"];
    assert_eq!(error["code"], "superseded");
    assert_eq!(error["retryable"], false);
    assert_eq!(error["step"], "validate");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("(job o-two)"), "{message}");
    assert_eq!(live_page(&app, "older").await, "two");
    assert_eq!(script_puts(&app).await, 1, "the older build was not PUT");

    // Neither created_at nor timestamp: not ordered, deployed, marker kept.
    app.deploy_ok(&app.job("o-free", "older", "free/")).await;
    assert_eq!(live_page(&app, "older").await, "free");
    assert_eq!(marker(&markers, "older").await["job_id"], "o-two");

    // The AMQP timestamp stands in for created_at (in whole seconds).
    let stamped = |at: DateTime<Utc>| {
        BasicProperties::default().with_timestamp(u64::try_from(at.timestamp()).unwrap())
    };
    let body = app.job("o-stamped-old", "older", "one/").to_string();
    app.publish_raw(body.as_bytes(), stamped(t1)).await;
    let event = app.terminal_event().await;
    assert_eq!(event.data()["job_id"], "o-stamped-old");
    assert_eq!(
        event.data()["error"]["code"],
        "superseded",
        "{}",
        event.json
    );
    let body = app.job("o-stamped-new", "older", "three/").to_string();
    app.publish_raw(body.as_bytes(), stamped(now)).await;
    let event = app.terminal_event().await;
    assert_eq!(
        event.json["id"], "o-stamped-new:succeeded",
        "{}",
        event.json
    );
    assert_eq!(live_page(&app, "older").await, "three");
    assert_eq!(marker(&markers, "older").await["job_id"], "o-stamped-new");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_holder_died_is_released_and_the_next_job_proceeds() {
    let markers = test_bucket(S3Server::Moto).await;
    let mut app = app_with_markers(&markers, |s| {
        s.worker.lease_wait = Duration::from_secs(1);
        s.worker.retry_delays = vec![Duration::from_millis(300)];
        s.worker.max_attempts = 10;
    })
    .await;
    app.bucket.put("h/index.html", "held").await;

    // Another "worker" holds the script's lease: the queue declared, as
    // the worker does, on a connection of its own.
    let holder = format!("lease-holder-{}", uuid::Uuid::new_v4().simple());
    let connection = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default().with_connection_name(holder.as_str().into()),
    )
    .await
    .expect("holder connects");
    let channel = connection.create_channel().await.expect("channel");
    let lease = lease_queue_name(&format!("{TEST_ACCOUNT}/customers/held"));
    channel
        .queue_declare(
            lease.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the holder takes the lease");

    let job = job_at(&app, "held-1", "held", "h/", Utc::now());
    app.publish(&job).await;
    let started = app.events.next().await;
    assert_eq!(started.json["id"], "held-1:started:1");
    let retrying = app.events.next().await;
    assert_eq!(
        retrying.json["id"], "held-1:retrying:1",
        "{}",
        retrying.json
    );
    let error = &retrying.data()["error"];
    assert_eq!(error["code"], "internal");
    assert_eq!(error["retryable"], true);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("script lease held by another worker"),
        "{error}"
    );
    assert!(
        requests(&app.sim).await.is_empty(),
        "nothing reached Cloudflare while the lease was held"
    );

    // The holder dies (its connection force-closed, as on a crash): the
    // broker deletes its lease, and the job goes through.
    force_close_connections_with(&[&holder]).await;
    let events = events_until_terminal(&mut app).await;
    let last = events.last().unwrap();
    assert_eq!(
        last.json["id"],
        "held-1:succeeded",
        "{:?}",
        timeline(&events)
    );
    assert_eq!(live_page(&app, "held").await, "held");
    assert_eq!(script_puts(&app).await, 1);
    drop(connection);
    let settings = app.settings.clone();
    app.stop().await;
    delete_retry_queues(&settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lease_ended_during_a_slow_upload_does_not_put() {
    let markers = test_bucket(S3Server::Moto).await;
    let mut app = app_with_markers(&markers, |s| {
        s.worker.retry_delays = vec![Duration::from_millis(300)];
    })
    .await;
    app.bucket.put("s/index.html", "stalled").await;
    // The first upload stalls long enough for the lease to end under it.
    add_fault(
        &app.sim,
        json!({"endpoint": "upload", "kind": "latency", "ms": 4_000, "count": 1}),
    )
    .await;
    app.publish(&job_at(&app, "stall-1", "stall", "s/", Utc::now()))
        .await;
    assert_eq!(app.events.next().await.json["id"], "stall-1:started:1");
    // The session is answered: the upload is under way, with the lease.
    for _ in 0..200 {
        let log = requests(&app.sim).await;
        if log
            .iter()
            .any(|r| r["endpoint"] == "session" && r["status"] == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let instance = app.settings.worker.instance.clone();
    force_close_connections_with(&[&instance, LEASE_CONNECTION_NAME]).await;

    let retrying = app.events.next().await;
    assert_eq!(
        retrying.json["id"], "stall-1:retrying:1",
        "{}",
        retrying.json
    );
    let error = &retrying.data()["error"];
    assert_eq!(error["code"], "internal");
    assert_eq!(error["step"], "deploy");
    assert_eq!(error["retryable"], true);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("script lease lost"),
        "{error}"
    );
    assert_eq!(script_puts(&app).await, 0, "the stalled holder did not PUT");

    // Its retry takes a new lease and deploys.
    let events = events_until_terminal(&mut app).await;
    assert_eq!(
        timeline(&events),
        ["deploy.started 2", "deploy.succeeded 2"]
    );
    assert_eq!(live_page(&app, "stall").await, "stalled");
    assert_eq!(script_puts(&app).await, 1);
    let settings = app.settings.clone();
    app.stop().await;
    delete_retry_queues(&settings).await;
}
