//! Poison messages are kept: every kind of message that is not a job gets
//! `deploy.failed` (`invalid_job`) and is parked byte-exact, properties and
//! all, while the worker keeps serving; a message that kills every worker
//! that takes it reaches the delivery limit and is dead-lettered.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde_json::json;
use wfp_deployer::config::AmqpSettings;
use wfp_deployer::contract::{DeployJob, DeploymentInfo, ManifestSummary, Success, UploadSummary};
use wfp_deployer::pipeline::{Deploy, DeployObserver, Outcome};
use wfp_deployer::worker::PARK_CODE_HEADER;

use super::{ChildGuard, app, stop, take, take_soon};
use crate::helpers::amqp::{
    EventTap, TEST_AMQP_URL, job_body, publish_job, queue_depth, start_worker, unique_settings,
};

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// Properties a producer might set, every one of them, so a parked copy
/// can be compared whole.
fn rich_properties(message_id: &str) -> BasicProperties {
    let mut nested = FieldTable::default();
    nested.insert("depth".into(), AMQPValue::LongLongInt(2));
    let mut headers = FieldTable::default();
    headers.insert("x-tenant".into(), text("acme"));
    headers.insert("x-count".into(), AMQPValue::LongLongInt(-7));
    headers.insert("x-flag".into(), AMQPValue::Boolean(true));
    headers.insert("x-nested".into(), AMQPValue::FieldTable(nested));
    BasicProperties::default()
        .with_content_type("application/octet-stream".into())
        .with_content_encoding("identity".into())
        .with_headers(headers)
        .with_delivery_mode(2)
        .with_priority(4)
        .with_correlation_id(format!("corr-{message_id}").as_str().into())
        .with_message_id(message_id.into())
        .with_timestamp(1_767_323_045)
        .with_type("platform.deploy".into())
        .with_user_id("guest".into())
        .with_app_id("platform".into())
}

/// `props` without the headers the worker adds when it parks a message, and
/// without `x-delivery-count`, which the quorum queue a message is read
/// from sets on every delivery (0 on the first, on RabbitMQ 3.10).
fn without_park_headers(props: &BasicProperties) -> BasicProperties {
    let kept: BTreeMap<_, _> = props
        .headers()
        .as_ref()
        .map(|h| h.inner().clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| {
            !name.as_str().starts_with("x-wfp-park-") && name.as_str() != "x-delivery-count"
        })
        .collect();
    props.clone().with_headers(kept.into())
}

#[tokio::test]
async fn every_kind_of_poison_is_parked_byte_exact_while_the_worker_keeps_serving() {
    let mut app = app(|_| {}).await;
    app.bucket.put("ok/index.html", b"<p>ok</p>".to_vec()).await;
    let bucket = app.bucket.name().to_string();
    let mut big = app.job("big-1", "big", "ok/");
    big["labels"] = json!({"pad": "x".repeat(10 * 1024 * 1024)});
    let poisons: Vec<(&str, Vec<u8>)> = vec![
        ("not-json", b"{this is not json".to_vec()),
        (
            "not-utf8",
            b"{\"version\": 1, \"job_id\": \"\xff\xfe\xfd\"}".to_vec(),
        ),
        (
            "wrong-types",
            json!({"version": "one", "job_id": 42, "namespace": ["x"], "script_name": {},
                   "bundle": {"bucket": bucket, "prefix": 7}})
            .to_string()
            .into_bytes(),
        ),
        (
            "missing-fields",
            json!({"version": 1, "job_id": "missing-1"})
                .to_string()
                .into_bytes(),
        ),
        ("ten-mb", big.to_string().into_bytes()),
    ];
    for (id, body) in &poisons {
        publish_job(&app.settings.amqp, body, rich_properties(id)).await;
    }
    // The sentinel: published after them all, it deploys.
    app.publish(&app.job("sentinel-1", "sentinel", "ok/")).await;

    let mut failed = HashMap::new();
    let sentinel = loop {
        let event = app.terminal_event().await;
        if event.data()["job_id"] == "sentinel-1" {
            break event;
        }
        let error = event.data()["error"].clone();
        assert_eq!(error["code"], "invalid_job", "{}", event.json);
        let id = event.json["id"].as_str().unwrap().to_string();
        failed.insert(id, error["message"].as_str().unwrap().to_string());
    };
    assert_eq!(sentinel.json["type"], "wfp.deploy.succeeded");
    assert_eq!(failed.len(), poisons.len(), "{failed:#?}");
    let big_size = poisons[4].1.len();
    assert_eq!(
        failed["ten-mb:failed"],
        format!(
            "job: {big_size} bytes, over the limit of 1048576 (amqp.max_job_bytes); not parsed"
        )
    );
    assert!(failed.contains_key("missing-1:failed"), "{failed:#?}");

    let mut parked = HashMap::new();
    while parked.len() < poisons.len() {
        let copy = take_soon(&app, &app.settings.amqp.dead_letter_queue).await;
        let id = copy.properties.message_id().as_ref().unwrap().to_string();
        parked.insert(id, copy);
    }
    for (id, body) in &poisons {
        let copy = &parked[*id];
        assert!(copy.body == *body, "{id}: body not byte-exact");
        assert_eq!(
            without_park_headers(&copy.properties),
            rich_properties(id),
            "{id}: properties"
        );
        assert_eq!(
            wfp_deployer::amqp::header_str(&copy.properties, PARK_CODE_HEADER).as_deref(),
            Some("invalid_job")
        );
    }
    assert!(
        take(&app, &app.settings.amqp.dead_letter_queue)
            .await
            .is_none()
    );
    stop(app).await;
}

/// Set in a child process of the test below: the settings its aborting
/// worker runs with (JSON of [`AmqpSettings`]).
const ABORTING_WORKER: &str = "WFP_IT_ABORTING_WORKER";

/// The label that makes [`Aborting`] kill its process.
const CRASH_LABEL: &str = "crash";

/// A deployer that aborts the whole process for a job labelled
/// `crash: abort`, as an out-of-memory kill or a native crash would, and
/// deploys anything else at once.
struct Aborting;

#[async_trait::async_trait]
impl Deploy for Aborting {
    async fn deploy(
        &self,
        job: &DeployJob,
        _account_id: &str,
        _attempt: u32,
        _observer: &DeployObserver,
    ) -> Outcome {
        if job.labels.get(CRASH_LABEL).map(String::as_str) == Some("abort") {
            std::process::abort();
        }
        Outcome {
            duration: Duration::ZERO,
            result: Ok(Success {
                manifest: ManifestSummary {
                    files: 0,
                    bytes: 0,
                    sha256: "0".repeat(64),
                    cache_hits: None,
                    bytes_read: None,
                },
                upload: UploadSummary::default(),
                deployment: DeploymentInfo::default(),
            }),
        }
    }
}

/// Not a test of its own: the worker process the next test starts (this
/// test binary run again with [`ABORTING_WORKER`] set). Runs a real worker
/// with the [`Aborting`] deployer until it aborts or is killed.
#[tokio::test]
#[ignore = "started as a child process by a_message_that_kills_every_worker_is_dead_lettered"]
async fn aborting_worker_process() {
    let Ok(amqp) = std::env::var(ABORTING_WORKER) else {
        return;
    };
    let (mut settings, _topology) = unique_settings();
    settings.amqp = serde_json::from_str(&amqp).expect("the parent's settings");
    let mut worker = start_worker(&settings, Arc::new(Aborting)).await;
    let _ = (&mut worker.handle).await;
}

/// Runs the aborting worker in a child process until it exits, or for
/// `within` (then kills it); whether it died of a signal (the abort).
async fn run_child(amqp: &AmqpSettings, within: Duration) -> bool {
    let settings = json!({
        "url": TEST_AMQP_URL,
        "jobs_exchange": amqp.jobs_exchange,
        "jobs_routing_key": amqp.jobs_routing_key,
        "jobs_queue": amqp.jobs_queue,
        "dead_letter_exchange": amqp.dead_letter_exchange,
        "dead_letter_queue": amqp.dead_letter_queue,
        "events_exchange": amqp.events_exchange,
        "events_log_queue": amqp.events_log_queue,
        "delivery_limit": amqp.delivery_limit,
    });
    let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "reliability::poison::aborting_worker_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(ABORTING_WORKER, settings.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the child worker");
    let mut child = ChildGuard(child);
    let status = child.wait_within(within).await;
    status.is_some_and(|s| s.signal().is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_kills_every_worker_is_dead_lettered_after_the_delivery_limit() {
    let (mut settings, _topology) = unique_settings();
    settings.amqp.delivery_limit = 2;
    let amqp = &settings.amqp;
    let mut events = EventTap::new(amqp).await;
    // Declares the topology as the child workers will.
    let worker = start_worker(&settings, Arc::new(Aborting)).await;
    worker.stop().await.expect("declaring worker");

    let mut body: serde_json::Value = serde_json::from_slice(&job_body("killer-1")).unwrap();
    body["labels"] = json!({ CRASH_LABEL: "abort" });
    let body = body.to_string().into_bytes();
    publish_job(amqp, &body, BasicProperties::default()).await;

    // Each worker takes the message and dies with it; the broker returns it
    // each time, until it was returned more often than the limit.
    let mut crashes = 0;
    while queue_depth(amqp, &amqp.dead_letter_queue).await == 0 {
        assert!(crashes <= 5, "not dead-lettered after {crashes} crashes");
        assert!(
            run_child(amqp, Duration::from_secs(30)).await,
            "the worker took the message and aborted"
        );
        crashes += 1;
    }
    assert_eq!(crashes, 3, "delivered 1 + delivery_limit times");
    assert_eq!(queue_depth(amqp, &amqp.jobs_queue).await, 0);
    for attempt in 1..=3 {
        let started = events.next().await;
        assert_eq!(started.json["id"], format!("killer-1:started:{attempt}"));
    }

    // The fleet serves on: a job published now deploys.
    publish_job(amqp, &job_body("after-killer"), BasicProperties::default()).await;
    let serving = tokio::spawn({
        let amqp = amqp.clone();
        async move { run_child(&amqp, Duration::from_secs(60)).await }
    });
    let started = events.next().await;
    assert_eq!(started.json["id"], "after-killer:started:1");
    let done = events.next().await;
    assert_eq!(done.json["id"], "after-killer:succeeded");
    serving.abort();

    let connection = crate::helpers::amqp::connect(amqp).await;
    let channel = connection.create_channel().await.unwrap();
    let dead = channel
        .basic_get(
            amqp.dead_letter_queue.as_str().into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("the message in the DLQ");
    assert!(dead.delivery.data == body, "byte-exact");
    let _ = connection.close(200, "done".into()).await;
}
