//! Job-level retries: a Cloudflare outage longer than the in-call retries
//! is waited out through the delay queues; one that never ends parks the
//! job with why; attempt headers a producer forged are not trusted.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde_json::json;
use wfp_deployer::amqp::{ATTEMPT_HEADER, header_str, retry_queue_name};
use wfp_deployer::worker::{
    PARK_ATTEMPTS_HEADER, PARK_CODE_HEADER, PARK_FIRST_FAILURE_HEADER, PARK_LAST_FAILURE_HEADER,
    PARK_MESSAGE_HEADER, PARK_STEP_HEADER,
};

use super::{app, clear_faults, events_until_terminal, stop, take, take_soon, timeline};
use crate::helpers::amqp::queue_depth;
use crate::helpers::sim::add_fault;

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn time(value: &serde_json::Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

fn header_int(props: &BasicProperties, name: &str) -> Option<i64> {
    match props.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongLongInt(n) => Some(*n),
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test]
async fn an_outage_longer_than_the_in_call_retries_is_waited_out_and_the_job_succeeds() {
    let mut app = app(|s| {
        s.worker.retry_delays = vec![millis(500)];
        s.worker.max_attempts = 5;
    })
    .await;
    app.bucket.put("o/index.html", b"<p>o</p>".to_vec()).await;
    // As many 503s as the in-call retries (3 tries): the first attempt
    // fails as cloudflare_unavailable, the second finds Cloudflare back.
    add_fault(
        &app.sim,
        json!({"endpoint": "session", "kind": "status", "status": 503, "count": 3}),
    )
    .await;
    app.publish(&app.job("outage-1", "outage", "o/")).await;
    let events = events_until_terminal(&mut app).await;
    assert_eq!(
        timeline(&events),
        [
            "deploy.started 1",
            "deploy.retrying 1",
            "deploy.started 2",
            "deploy.succeeded 2"
        ]
    );
    let retrying = &events[1];
    assert_eq!(retrying.json["id"], "outage-1:retrying:1");
    assert_eq!(retrying.json["type"], "wfp.deploy.retrying");
    assert_eq!(
        retrying.header("job_id").as_deref(),
        Some("outage-1"),
        "the contract's headers"
    );
    let error = &retrying.data()["error"];
    assert_eq!(error["code"], "cloudflare_unavailable", "{error}");
    assert_eq!(error["step"], "session");
    assert_eq!(error["retryable"], true);
    let due = time(&retrying.data()["next_attempt_at"]) - time(&retrying.json["time"]);
    assert_eq!(due.num_milliseconds(), 500, "{}", retrying.json);

    let delay_queue = retry_queue_name(&app.settings.amqp.jobs_queue, millis(500));
    assert_eq!(queue_depth(&app.settings.amqp, &delay_queue).await, 0);
    let dlq = app.settings.amqp.dead_letter_queue.clone();
    assert_eq!(queue_depth(&app.settings.amqp, &dlq).await, 0);
    stop(app).await;
}

#[tokio::test]
async fn an_outage_that_never_ends_parks_the_job_with_why_after_its_last_attempt() {
    let mut app = app(|s| {
        s.worker.retry_delays = vec![millis(300), millis(600)];
        s.worker.max_attempts = 3;
    })
    .await;
    app.bucket.put("n/index.html", b"<p>n</p>".to_vec()).await;
    add_fault(
        &app.sim,
        json!({"endpoint": "session", "kind": "status", "status": 503}),
    )
    .await;
    let body = app.job("never-1", "never", "n/").to_string().into_bytes();
    let mut headers = FieldTable::default();
    headers.insert(
        "x-tenant".into(),
        AMQPValue::LongString(LongString::from("acme")),
    );
    let props = BasicProperties::default()
        .with_message_id("never-msg".into())
        .with_app_id("platform".into())
        .with_headers(headers);
    app.publish_raw(&body, props).await;

    let events = events_until_terminal(&mut app).await;
    assert_eq!(
        timeline(&events),
        [
            "deploy.started 1",
            "deploy.retrying 1",
            "deploy.started 2",
            "deploy.retrying 2",
            "deploy.started 3",
            "deploy.failed 3"
        ]
    );
    // Each retry waits its own delay.
    for (event, ms) in [(&events[1], 300), (&events[3], 600)] {
        let due = time(&event.data()["next_attempt_at"]) - time(&event.json["time"]);
        assert_eq!(due.num_milliseconds(), ms, "{}", event.json);
    }
    let failed = &events[5];
    assert_eq!(failed.json["id"], "never-1:failed");
    assert_eq!(failed.data()["error"]["code"], "cloudflare_unavailable");
    assert_eq!(failed.data()["error"]["retryable"], true);

    let parked = take_soon(&app, &app.settings.amqp.dead_letter_queue).await;
    assert_eq!(parked.body, body, "byte-exact");
    let props = &parked.properties;
    assert_eq!(props.message_id().as_ref().unwrap().as_str(), "never-msg");
    assert_eq!(props.app_id().as_ref().unwrap().as_str(), "platform");
    assert_eq!(header_str(props, "x-tenant").as_deref(), Some("acme"));
    let header = |name| header_str(props, name).unwrap_or_default();
    assert_eq!(header(PARK_CODE_HEADER), "cloudflare_unavailable");
    assert_eq!(header(PARK_STEP_HEADER), "session");
    assert!(header(PARK_MESSAGE_HEADER).contains("503"), "{props:?}");
    assert_eq!(header_int(props, PARK_ATTEMPTS_HEADER), Some(3));
    assert_eq!(header_int(props, ATTEMPT_HEADER), Some(3));
    let first: DateTime<Utc> = header(PARK_FIRST_FAILURE_HEADER).parse().unwrap();
    let last: DateTime<Utc> = header(PARK_LAST_FAILURE_HEADER).parse().unwrap();
    assert!(
        (last - first).num_milliseconds() >= 900,
        "first {first}, last {last}: two delays apart at least"
    );
    assert!(
        take(&app, &app.settings.amqp.dead_letter_queue)
            .await
            .is_none()
    );

    // Cloudflare is back: the next job deploys at once.
    clear_faults(&app.sim).await;
    app.deploy_ok(&app.job("never-2", "never", "n/")).await;
    stop(app).await;
}

#[tokio::test]
async fn attempt_headers_a_producer_forged_are_not_trusted() {
    let mut app = app(|s| {
        s.worker.retry_delays = vec![millis(300)];
        s.worker.max_attempts = 3;
    })
    .await;
    app.bucket.put("f/index.html", b"<p>f</p>".to_vec()).await;
    let forged = |name: &str| {
        let mut headers = FieldTable::default();
        headers.insert(name.into(), AMQPValue::LongLongInt(1_000_000));
        BasicProperties::default().with_headers(headers)
    };

    // Regression: a producer-set x-delivery-count of 1,000,000 made the
    // first delivery attempt 1000001.
    let job = app.job("forged-count", "forged", "f/");
    app.publish_raw(job.to_string().as_bytes(), forged("x-delivery-count"))
        .await;
    let events = events_until_terminal(&mut app).await;
    assert_eq!(
        timeline(&events),
        ["deploy.started 1", "deploy.succeeded 1"]
    );

    // A forged attempt is clamped to the last one: a retryable failure
    // parks the job at once.
    add_fault(
        &app.sim,
        json!({"endpoint": "session", "kind": "status", "status": 503}),
    )
    .await;
    let job = app.job("forged-attempt", "forged", "f/");
    app.publish_raw(job.to_string().as_bytes(), forged(ATTEMPT_HEADER))
        .await;
    let events = events_until_terminal(&mut app).await;
    assert_eq!(timeline(&events), ["deploy.started 3", "deploy.failed 3"]);
    let parked = take_soon(&app, &app.settings.amqp.dead_letter_queue).await;
    assert_eq!(
        header_int(&parked.properties, PARK_ATTEMPTS_HEADER),
        Some(3)
    );
    stop(app).await;
}
