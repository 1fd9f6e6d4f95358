//! Outages: the broker gone for a while, S3 unreachable and back,
//! Cloudflare answering 503 for longer than the in-call retries, an S3 host
//! that does not resolve. Each gives clear retryable errors and no hung
//! task, and every job caught in an outage that ends ends succeeded, once.
//!
//! The broker and S3 go away behind a [`TcpProxy`] the test cuts and
//! restores, so the real servers other tests share stay up. Outages are
//! held by the test and proven by what the worker reports (readiness,
//! `deploy.retrying` events), never by timing.

use std::collections::BTreeMap;
use std::time::Duration;

use lapin::BasicProperties;
use serde_json::{Value, json};
use wfp_deployer::config::AmqpSettings;

use super::{app, clear_faults, stop};
use crate::helpers::amqp::{EventTap, TEST_AMQP_URL, TappedEvent, publish_job};
use crate::helpers::proxy::TcpProxy;
use crate::helpers::sim::add_fault;

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Reads events until every job in `jobs` has its terminal one; each job's
/// terminal event by id, and every event seen. A second terminal event of
/// one job fails the test.
async fn terminal_events(
    events: &mut EventTap,
    jobs: &[&str],
) -> (BTreeMap<String, Value>, Vec<TappedEvent>) {
    let mut terminal = BTreeMap::new();
    let mut seen = Vec::new();
    while terminal.len() < jobs.len() {
        let event = events
            .next_within(Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("no terminal event within 60 s; have {terminal:?}"));
        let id = event.data()["job_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            jobs.contains(&id.as_str()),
            "an event of another job: {}",
            event.json
        );
        if matches!(
            event.routing_key.as_str(),
            "deploy.succeeded" | "deploy.failed"
        ) {
            let again = terminal.insert(id.clone(), event.json.clone());
            assert!(
                again.is_none(),
                "a second terminal event for {id}: {}",
                event.json
            );
        }
        seen.push(event);
    }
    (terminal, seen)
}

fn assert_all_succeeded(terminal: &BTreeMap<String, Value>) {
    for (id, event) in terminal {
        assert_eq!(event["type"], "wfp.deploy.succeeded", "{id}: {event}");
    }
}

/// The retrying events of `job` among `seen`.
fn retries_of<'a>(seen: &'a [TappedEvent], job: &str) -> Vec<&'a TappedEvent> {
    seen.iter()
        .filter(|e| e.routing_key == "deploy.retrying" && e.data()["job_id"] == job)
        .collect()
}

/// Reads events into `seen` until each of `jobs` has had `times`
/// `deploy.retrying` events (the outage reached every one, that often).
async fn until_each_retried(
    events: &mut EventTap,
    jobs: &[&str],
    times: usize,
    seen: &mut Vec<TappedEvent>,
) {
    while !jobs.iter().all(|job| retries_of(seen, job).len() >= times) {
        let event = events
            .next_within(Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("not every job retried within 60 s"));
        assert!(
            !matches!(
                event.routing_key.as_str(),
                "deploy.succeeded" | "deploy.failed"
            ),
            "a job ended during the outage: {}",
            event.json
        );
        seen.push(event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_gone_for_a_while_delays_jobs_and_loses_none() {
    let proxy = TcpProxy::start("127.0.0.1:5672").await;
    let mut app = app(|s| {
        s.amqp.url = format!("amqp://guest:guest@{}/%2f", proxy.addr()).into();
    })
    .await;
    // The test itself talks to the broker directly: it never goes away.
    let direct = AmqpSettings {
        url: TEST_AMQP_URL.to_string().into(),
        ..app.settings.amqp.clone()
    };
    app.events = EventTap::new(&direct).await;
    for site in ["a", "b", "c"] {
        app.bucket
            .put(format!("{site}/index.html"), format!("site {site}"))
            .await;
    }
    // The first job's upload is slow: the broker goes away under it.
    add_fault(
        &app.sim,
        json!({"endpoint": "upload", "kind": "latency", "ms": 1_500, "count": 1}),
    )
    .await;
    let publish = |job: Value| {
        let direct = direct.clone();
        async move {
            publish_job(
                &direct,
                job.to_string().as_bytes(),
                BasicProperties::default(),
            )
            .await;
        }
    };
    publish(app.job("gone-a", "gone-a", "a/")).await;
    assert_eq!(app.events.next().await.json["id"], "gone-a:started:1");

    proxy.cut();
    let mut ready = app.ready();
    for _ in 0..200 {
        if !ready.is_ready() {
            break;
        }
        tokio::time::sleep(millis(50)).await;
    }
    assert!(!ready.is_ready(), "not ready while the broker is gone");
    // Published during the outage: they wait in the queue.
    publish(app.job("gone-b", "gone-b", "b/")).await;
    publish(app.job("gone-c", "gone-c", "c/")).await;
    // The outage lasts: the worker keeps trying to reconnect meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!ready.is_ready(), "still not ready");

    proxy.restore();
    assert!(
        tokio::time::timeout(Duration::from_secs(30), ready.wait())
            .await
            .unwrap_or(false),
        "ready again once the broker is back"
    );
    let (terminal, _) = terminal_events(&mut app.events, &["gone-a", "gone-b", "gone-c"]).await;
    assert_all_succeeded(&terminal);
    stop(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_unreachable_and_back_retries_the_jobs_until_they_succeed() {
    let proxy = TcpProxy::start("127.0.0.1:9000").await;
    let mut app = app(|s| {
        s.s3.endpoint_url = Some(format!("http://{}", proxy.addr()));
        s.worker.retry_delays = vec![millis(300)];
        s.worker.max_attempts = 50;
    })
    .await;
    for site in ["a", "b"] {
        app.bucket
            .put(format!("{site}/index.html"), format!("site {site}"))
            .await;
    }
    proxy.cut();
    app.publish(&app.job("s3-a", "s3-a", "a/")).await;
    app.publish(&app.job("s3-b", "s3-b", "b/")).await;
    let mut seen = Vec::new();
    until_each_retried(&mut app.events, &["s3-a", "s3-b"], 1, &mut seen).await;
    let retrying = retries_of(&seen, "s3-a")[0];
    let error = &retrying.data()["error"];
    assert_eq!(error["code"], "storage_error", "{error}");
    assert_eq!(error["retryable"], true);
    assert_eq!(error["step"], "list");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("s3://{}/a/", app.bucket.name())),
        "names what it could not reach: {message}"
    );

    proxy.restore();
    let (terminal, _) = terminal_events(&mut app.events, &["s3-a", "s3-b"]).await;
    assert_all_succeeded(&terminal);
    stop(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudflare_answering_503_for_several_attempts_ends_with_every_job_deployed() {
    let mut app = app(|s| {
        s.worker.retry_delays = vec![millis(300)];
        s.worker.max_attempts = 50;
    })
    .await;
    for site in ["a", "b", "c"] {
        app.bucket
            .put(format!("{site}/index.html"), format!("site {site}"))
            .await;
    }
    add_fault(
        &app.sim,
        json!({"endpoint": "all", "kind": "status", "status": 503}),
    )
    .await;
    let jobs = ["cf-a", "cf-b", "cf-c"];
    for (job, site) in jobs.iter().zip(["a/", "b/", "c/"]) {
        app.publish(&app.job(job, job, site)).await;
    }
    let mut seen = Vec::new();
    // Each goes round the delay queue more than once while it lasts.
    until_each_retried(&mut app.events, &jobs, 2, &mut seen).await;
    for job in jobs {
        let error = &retries_of(&seen, job)[0].data()["error"];
        assert_eq!(error["code"], "cloudflare_unavailable", "{job}: {error}");
        assert_eq!(error["retryable"], true);
        assert!(
            error["message"].as_str().unwrap().contains("503"),
            "{error}"
        );
    }

    clear_faults(&app.sim).await;
    let (terminal, _) = terminal_events(&mut app.events, &jobs).await;
    assert_all_succeeded(&terminal);
    stop(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_host_that_does_not_resolve_is_a_clear_retryable_error_then_parked() {
    let mut app = app(|s| {
        // `.invalid` never resolves (RFC 2606).
        s.s3.endpoint_url = Some("http://wfp-it-nowhere.invalid:9000".into());
        s.worker.retry_delays = vec![millis(200)];
        s.worker.max_attempts = 2;
    })
    .await;
    app.publish(&app.job("dns-1", "dns", "a/")).await;
    let (terminal, seen) = terminal_events(&mut app.events, &["dns-1"]).await;
    let retrying = retries_of(&seen, "dns-1");
    assert_eq!(retrying.len(), 1, "one retry, then parked");
    for error in [
        &retrying[0].data()["error"],
        &terminal["dns-1"]["data"]["error"],
    ] {
        assert_eq!(error["code"], "storage_error", "{error}");
        assert_eq!(error["retryable"], true, "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("s3://"), "names the bundle: {message}");
        assert!(
            message.contains("dns") || message.contains("resolve") || message.contains("lookup"),
            "says the name did not resolve: {message}"
        );
    }
    assert_eq!(terminal["dns-1"]["type"], "wfp.deploy.failed");
    let parked = super::take_soon(&app, &app.settings.amqp.dead_letter_queue).await;
    assert_eq!(
        parked.body,
        app.job("dns-1", "dns", "a/").to_string().into_bytes()
    );
    stop(app).await;
}
