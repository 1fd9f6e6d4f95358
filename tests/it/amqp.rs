//! The worker against the real RabbitMQ: topology, events and their AMQP
//! properties, invalid jobs, `reply_to`, bounded concurrency, ack only after
//! the terminal event is confirmed, reconnection and graceful shutdown.
//!
//! Deploys are scripted ([`Scripted`]), so each test decides when a deploy
//! ends and what it returns; every test runs on topology names of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{
    BasicGetOptions, BasicNackOptions, BasicPublishOptions, ExchangeDeclareOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, ExchangeKind};
use tokio::sync::{Semaphore, mpsc};
use wfp_deployer::amqp::{self, ConfirmedPublisher, PublishError, connection::reply_code};
use wfp_deployer::config::AmqpSettings;
use wfp_deployer::contract::{
    DeployJob, DeploymentInfo, ErrorCode, FailureInfo, ManifestSummary, Step, UploadSummary,
};
use wfp_deployer::pipeline::{Deploy, Outcome, Success};
use wfp_deployer::worker::Worker;

use crate::helpers::amqp::*;

const QUIET: Duration = Duration::from_millis(400);

/// A deployer whose behaviour the test scripts: job ids starting with
/// `fail-` fail permanently, `panic-` panic, others succeed. When gated, each
/// deploy waits for a permit from [`Scripted::release`].
struct Scripted {
    gate: Option<Semaphore>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    calls: Mutex<Vec<(String, u32)>>,
    entered: mpsc::UnboundedSender<(String, u32)>,
}

impl Scripted {
    fn new(gated: bool) -> (Arc<Self>, mpsc::UnboundedReceiver<(String, u32)>) {
        let (entered, rx) = mpsc::unbounded_channel();
        let scripted = Self {
            gate: gated.then(|| Semaphore::new(0)),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            calls: Mutex::new(Vec::new()),
            entered,
        };
        (Arc::new(scripted), rx)
    }

    fn release(&self, deploys: usize) {
        if let Some(gate) = &self.gate {
            gate.add_permits(deploys);
        }
    }

    fn calls(&self) -> Vec<(String, u32)> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Deploy for Scripted {
    async fn deploy(&self, job: &DeployJob, attempt: u32) -> Outcome {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        self.calls
            .lock()
            .unwrap()
            .push((job.job_id.clone(), attempt));
        let _ = self.entered.send((job.job_id.clone(), attempt));
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        if job.job_id.starts_with("panic-") {
            panic!("scripted panic");
        }
        let result = if job.job_id.starts_with("fail-") {
            Err(FailureInfo {
                code: ErrorCode::CloudflareRejected,
                message: "session for customers/x: HTTP 400".into(),
                step: Step::Session,
                retryable: false,
            })
        } else {
            Ok(Success {
                manifest: ManifestSummary {
                    files: 3,
                    bytes: 42,
                    sha256: "ab".repeat(32),
                },
                upload: UploadSummary {
                    sessions: 1,
                    buckets: 1,
                    files: 2,
                    bytes: 40,
                },
                deployment: DeploymentInfo {
                    id: Some("dep-1".into()),
                    etag: None,
                    modified_on: None,
                },
            })
        };
        Outcome {
            account_id: Some(
                job.account_id
                    .clone()
                    .unwrap_or_else(|| TEST_ACCOUNT.into()),
            ),
            duration: Duration::from_millis(12),
            result,
        }
    }
}

async fn entered(rx: &mut mpsc::UnboundedReceiver<(String, u32)>) -> (String, u32) {
    tokio::time::timeout(EVENT_TIMEOUT, rx.recv())
        .await
        .expect("a deploy starts in time")
        .expect("deployer alive")
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

async fn channel(settings: &AmqpSettings) -> (lapin::Connection, Channel) {
    let connection = connect(settings).await;
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// The reply code a fresh channel gets for this queue declaration.
async fn queue_declare_code(settings: &AmqpSettings, name: &str, args: FieldTable) -> Option<u16> {
    let (_c, ch) = channel(settings).await;
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(name.into(), options, args)
        .await
        .err()
        .as_ref()
        .and_then(reply_code)
}

/// The reply code a fresh channel gets for this exchange declaration.
async fn exchange_declare_code(
    settings: &AmqpSettings,
    name: &str,
    kind: ExchangeKind,
) -> Option<u16> {
    let (_c, ch) = channel(settings).await;
    let options = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(name.into(), kind, options, FieldTable::default())
        .await
        .err()
        .as_ref()
        .and_then(reply_code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_is_declared_as_the_contract_says() {
    let mut s = unique_amqp_settings();
    s.delivery_limit = 1;
    let (_c, ch) = channel(&s).await;
    amqp::declare_topology(&ch, &s).await.unwrap();
    amqp::declare_topology(&ch, &s)
        .await
        .expect("declaring twice is fine");

    // The exact arguments are accepted again; any other value or type is not.
    let jobs_args = amqp::jobs_queue_arguments(&s);
    assert_eq!(
        queue_declare_code(&s, &s.jobs_queue, jobs_args.clone()).await,
        None
    );
    let mut classic = jobs_args.clone();
    classic.insert("x-queue-type".into(), text("classic"));
    assert_eq!(
        queue_declare_code(&s, &s.jobs_queue, classic).await,
        Some(406),
        "quorum"
    );
    let mut other_limit = jobs_args.clone();
    other_limit.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(2));
    assert_eq!(
        queue_declare_code(&s, &s.jobs_queue, other_limit).await,
        Some(406)
    );
    let dlq_args = amqp::dead_letter_queue_arguments();
    assert_eq!(
        queue_declare_code(&s, &s.dead_letter_queue, dlq_args).await,
        None
    );
    let mut classic_dlq = FieldTable::default();
    classic_dlq.insert("x-queue-type".into(), text("classic"));
    assert_eq!(
        queue_declare_code(&s, &s.dead_letter_queue, classic_dlq).await,
        Some(406)
    );

    // Exchange kinds: direct jobs, fanout DLX, topic events.
    let kinds = [
        (&s.jobs_exchange, ExchangeKind::Direct, ExchangeKind::Topic),
        (
            &s.dead_letter_exchange,
            ExchangeKind::Fanout,
            ExchangeKind::Direct,
        ),
        (
            &s.events_exchange,
            ExchangeKind::Topic,
            ExchangeKind::Fanout,
        ),
    ];
    for (name, right, wrong) in kinds {
        assert_eq!(exchange_declare_code(&s, name, right).await, None, "{name}");
        assert_eq!(
            exchange_declare_code(&s, name, wrong).await,
            Some(406),
            "{name}"
        );
    }

    // Bindings: `deploy` routes to the jobs queue; anything on the DLX to the DLQ.
    let publish = |exchange: String, key: &'static str| {
        let ch = ch.clone();
        async move {
            let options = BasicPublishOptions::default();
            let props = BasicProperties::default();
            ch.basic_publish(exchange.into(), key.into(), options, b"{}", props)
                .await
                .unwrap();
        }
    };
    publish(s.jobs_exchange.clone(), "deploy").await;
    publish(s.jobs_exchange.clone(), "elsewhere").await;
    publish(s.dead_letter_exchange.clone(), "any-key").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(queue_depth(&s, &s.jobs_queue).await, 1);
    assert_eq!(queue_depth(&s, &s.dead_letter_queue).await, 1);

    // Past the delivery limit, a returned job is dead-lettered to the DLQ.
    for _ in 0..5 {
        let options = BasicGetOptions { no_ack: false };
        let Some(message) = ch
            .basic_get(s.jobs_queue.as_str().into(), options)
            .await
            .unwrap()
        else {
            break;
        };
        let requeue = BasicNackOptions {
            requeue: true,
            multiple: false,
        };
        message.delivery.acker.nack(requeue).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(queue_depth(&s, &s.jobs_queue).await, 0);
    assert_eq!(queue_depth(&s, &s.dead_letter_queue).await, 2);
    delete_topology(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_declared_with_other_arguments_stops_the_worker_with_a_clear_error() {
    let settings = unique_settings();
    let mut classic = FieldTable::default();
    classic.insert("x-queue-type".into(), text("classic"));
    assert_eq!(
        queue_declare_code(&settings.amqp, &settings.amqp.jobs_queue, classic).await,
        None
    );

    let (deployer, _rx) = Scripted::new(false);
    init_test_log();
    let worker = Worker::new(&settings, deployer);
    let run = worker.run(tokio_util::sync::CancellationToken::new());
    let err = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("a refused topology is not retried")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("queue {}", settings.amqp.jobs_queue)),
        "{err}"
    );
    assert!(err.contains("other arguments"), "{err}");
    assert!(err.contains("PRECONDITION"), "{err}");
    delete_topology(&settings.amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_stop_the_worker_without_showing_the_password() {
    let mut settings = unique_settings();
    settings.amqp.url = "amqp://guest:pw-wrong-secret@127.0.0.1:5672/%2f"
        .to_string()
        .into();
    let (deployer, _rx) = Scripted::new(false);
    init_test_log();
    let run = Worker::new(&settings, deployer).run(tokio_util::sync::CancellationToken::new());
    let err = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("refused credentials are not retried")
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:5672"), "{err}");
    assert!(!err.contains("pw-wrong-secret"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_gets_started_then_succeeded_with_the_contract_properties_then_is_acked() {
    let settings = unique_settings();
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::new(s).await;
    let worker = start_worker(&settings, deployer.clone()).await;

    let props = BasicProperties::default()
        .with_message_id("msg-1".into())
        .with_correlation_id("corr-1".into());
    publish_job(s, &job_body("job-ok-1"), props).await;
    let before = chrono::Utc::now().timestamp() as u64;

    let started = events.next().await;
    assert_eq!(started.routing_key, "deploy.started");
    assert_eq!(started.json["type"], "wfp.deploy.started");
    assert_eq!(started.json["id"], "job-ok-1:started:1");
    assert_eq!(
        started.json["source"],
        format!("/wfp-deployer/{}", settings.worker.instance)
    );
    assert_eq!(started.data()["attempt"], 1);
    assert_eq!(started.data()["account_id"], TEST_ACCOUNT);
    assert_eq!(
        started.data()["correlation_id"],
        "corr-1",
        "the AMQP id is the fallback"
    );
    assert!(started.data().get("duration_ms").is_none());

    let done = events.next().await;
    assert_eq!(done.routing_key, "deploy.succeeded");
    assert_eq!(done.json["id"], "job-ok-1:succeeded");
    assert_eq!(done.data()["duration_ms"], 12);
    assert_eq!(done.data()["manifest"]["files"], 3);
    assert_eq!(done.data()["upload"]["buckets"], 1);
    assert_eq!(done.data()["deployment"]["id"], "dep-1");

    for event in [&started, &done] {
        let p = &event.properties;
        let short = |v: &Option<lapin::types::ShortString>| v.as_ref().map(|v| v.to_string());
        assert_eq!(
            short(p.content_type()).as_deref(),
            Some("application/cloudevents+json")
        );
        assert_eq!(*p.delivery_mode(), Some(2));
        assert_eq!(
            short(p.message_id()),
            event.json["id"].as_str().map(String::from)
        );
        assert_eq!(
            short(p.kind()),
            event.json["type"].as_str().map(String::from)
        );
        assert_eq!(short(p.correlation_id()).as_deref(), Some("corr-1"));
        assert_eq!(short(p.app_id()).as_deref(), Some("wfp-deployer"));
        let at = p.timestamp().expect("timestamp");
        assert!(at + 60 >= before && at <= before + 60, "timestamp {at}");
        assert_eq!(event.header("job_id").as_deref(), Some("job-ok-1"));
        assert_eq!(event.header("namespace").as_deref(), Some("customers"));
        assert_eq!(
            event.header("script_name").as_deref(),
            Some("site-job-ok-1")
        );
    }
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    assert!(
        events.next_within(QUIET).await.is_none(),
        "exactly two events"
    );
    assert_eq!(deployer.calls(), vec![("job-ok-1".to_string(), 1)]);
    worker.stop().await.unwrap();
    delete_topology(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_jobs_fail_under_their_readable_id_and_the_worker_keeps_serving() {
    let settings = unique_settings();
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::new(s).await;
    let worker = start_worker(&settings, deployer.clone()).await;

    let not_json = BasicProperties::default().with_message_id("m-not-json".into());
    publish_job(s, b"{not json", not_json).await;
    let failed = events.next().await;
    assert_eq!(failed.routing_key, "deploy.failed");
    assert_eq!(failed.json["id"], "m-not-json:failed");
    assert_eq!(failed.data()["job_id"], "m-not-json", "the AMQP message_id");
    let error = &failed.data()["error"];
    assert_eq!(error["code"], "invalid_job");
    assert_eq!(error["step"], "validate");
    assert_eq!(error["retryable"], false);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{error}"
    );
    assert_eq!(failed.header("job_id").as_deref(), Some("m-not-json"));

    let schema_break = br#"{"version":1,"job_id":"bad-1","namespace":"Bad Name",
        "script_name":"s","bundle":{"bucket":"sites","prefix":"p/"}}"#;
    let with_id = BasicProperties::default().with_message_id("m-ignored".into());
    publish_job(s, schema_break, with_id).await;
    let failed = events.next().await;
    assert_eq!(failed.data()["job_id"], "bad-1", "the body's own id wins");
    assert!(
        failed.data()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("namespace")
    );

    publish_job(s, b"[]", BasicProperties::default()).await;
    let failed = events.next().await;
    let id = failed.data()["job_id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a generated id: {id}");

    publish_job(s, &job_body("job-after"), BasicProperties::default()).await;
    assert_eq!(events.next().await.routing_key, "deploy.started");
    assert_eq!(events.next().await.routing_key, "deploy.succeeded");
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    assert_eq!(deployer.calls(), vec![("job-after".to_string(), 1)]);
    worker.stop().await.unwrap();
    delete_topology(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_to_gets_the_terminal_event_only() {
    let settings = unique_settings();
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::new(s).await;
    let mut replies = EventTap::queue(s).await;
    let worker = start_worker(&settings, deployer).await;

    let props = BasicProperties::default().with_reply_to(replies.name().into());
    publish_job(s, &job_body("fail-reply"), props).await;
    assert_eq!(events.next().await.routing_key, "deploy.started");
    let failed = events.next().await;
    assert_eq!(failed.routing_key, "deploy.failed");
    assert_eq!(failed.data()["error"]["code"], "cloudflare_rejected");

    let reply = replies.next().await;
    assert_eq!(
        reply.routing_key,
        replies.name(),
        "sent through the default exchange"
    );
    assert_eq!(reply.json, failed.json);
    assert_eq!(
        reply.properties.message_id(),
        failed.properties.message_id()
    );
    assert!(
        replies.next_within(QUIET).await.is_none(),
        "no started copy"
    );
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    worker.stop().await.unwrap();
    delete_topology(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_concurrency_deploys_run_at_once() {
    let settings = unique_settings();
    assert_eq!(settings.worker.concurrency, 2);
    let s = &settings.amqp;
    let (deployer, mut rx) = Scripted::new(true);
    let mut events = EventTap::bound(s, "deploy.succeeded").await;
    let worker = start_worker(&settings, deployer.clone()).await;
    for n in 0..5 {
        publish_job(
            s,
            &job_body(&format!("job-c{n}")),
            BasicProperties::default(),
        )
        .await;
    }
    entered(&mut rx).await;
    entered(&mut rx).await;
    // Give a third deploy every chance to start if the bound were broken.
    tokio::time::sleep(QUIET).await;
    assert!(rx.try_recv().is_err(), "a third deploy started");
    assert_eq!(deployer.running.load(Ordering::SeqCst), 2);
    wait_for_counts(&s.jobs_queue, (3, 2)).await;

    deployer.release(5);
    for _ in 0..5 {
        events.next().await;
    }
    assert_eq!(deployer.max_running.load(Ordering::SeqCst), 2);
    assert_eq!(deployer.calls().len(), 5);
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    worker.stop().await.unwrap();
    delete_topology(s).await;
}

/// Binds a queue to the events exchange that refuses every message with
/// `routing_key`, so the broker nacks those events.
async fn block_events(s: &AmqpSettings, routing_key: &str) -> (lapin::Connection, String) {
    let (connection, ch) = channel(s).await;
    let name = format!("blocker-{}", uuid::Uuid::new_v4());
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(0));
    args.insert("x-overflow".into(), text("reject-publish"));
    let options = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    ch.queue_declare(name.as_str().into(), options, args)
        .await
        .unwrap();
    let bind = lapin::options::QueueBindOptions::default();
    let (queue, exchange) = (name.as_str().into(), s.events_exchange.as_str().into());
    ch.queue_bind(
        queue,
        exchange,
        routing_key.into(),
        bind,
        FieldTable::default(),
    )
    .await
    .unwrap();
    (connection, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_acked_only_after_its_terminal_event_is_confirmed() {
    let mut settings = unique_settings();
    settings.worker.concurrency = 1;
    let s = &settings.amqp;
    let (deployer, mut rx) = Scripted::new(true);
    let mut events = EventTap::new(s).await;
    let worker = start_worker(&settings, deployer.clone()).await;
    let blocker = block_events(s, "deploy.succeeded").await;

    publish_job(s, &job_body("job-ack"), BasicProperties::default()).await;
    assert_eq!(entered(&mut rx).await, ("job-ack".to_string(), 1));
    wait_for_counts(&s.jobs_queue, (0, 1)).await; // unacked while deploying

    // The broker nacks the deploy.succeeded: the job must come back.
    deployer.release(1);
    assert_eq!(entered(&mut rx).await, ("job-ack".to_string(), 2));
    wait_for_counts(&s.jobs_queue, (0, 1)).await;
    let started: Vec<_> = [
        events.next().await,
        events.next().await,
        events.next().await,
    ]
    .into_iter()
    .filter(|e| e.routing_key == "deploy.started")
    .map(|e| e.data()["attempt"].clone())
    .collect();
    assert_eq!(started, vec![1, 2], "attempt 2 is 1 + x-delivery-count");

    drop(blocker); // exclusive: the blocker queue goes with its connection
    deployer.release(1);
    let done = loop {
        let event = events.next().await;
        if event.routing_key == "deploy.succeeded" && event.data()["attempt"] == 2 {
            break event;
        }
    };
    assert_eq!(done.json["id"], "job-ack:succeeded");
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    assert_eq!(deployer.calls().len(), 2);
    worker.stop().await.unwrap();
    delete_topology(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_panicking_deploys_are_reported_and_acked() {
    let settings = unique_settings();
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::bound(s, "deploy.failed").await;
    let worker = start_worker(&settings, deployer).await;

    publish_job(s, &job_body("fail-1"), BasicProperties::default()).await;
    let failed = events.next().await;
    assert_eq!(failed.data()["error"]["code"], "cloudflare_rejected");
    assert_eq!(failed.data()["error"]["retryable"], false);
    publish_job(s, &job_body("panic-1"), BasicProperties::default()).await;
    let failed = events.next().await;
    assert_eq!(failed.data()["job_id"], "panic-1");
    assert_eq!(failed.data()["error"]["code"], "internal");
    wait_for_counts(&s.jobs_queue, (0, 0)).await;
    assert!(worker.ready.is_ready(), "the worker survived the panic");
    worker.stop().await.unwrap();
    delete_topology(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_running_deploy_finish_and_ack() {
    let mut settings = unique_settings();
    settings.worker.concurrency = 1;
    let s = &settings.amqp;
    let (deployer, mut rx) = Scripted::new(true);
    let mut events = EventTap::new(s).await;
    let worker = start_worker(&settings, deployer.clone()).await;
    publish_job(s, &job_body("job-inflight"), BasicProperties::default()).await;
    entered(&mut rx).await;

    worker.shutdown.cancel();
    tokio::time::sleep(QUIET).await;
    assert!(
        !worker.handle.is_finished(),
        "run() waits for the running deploy"
    );
    publish_job(s, &job_body("job-late"), BasicProperties::default()).await;
    deployer.release(1);
    worker.stop().await.unwrap();

    assert_eq!(events.next().await.routing_key, "deploy.started");
    let done = events.next().await;
    assert_eq!(done.json["id"], "job-inflight:succeeded");
    assert!(
        events.next_within(QUIET).await.is_none(),
        "job-late is not taken"
    );
    wait_for_counts(&s.jobs_queue, (1, 0)).await;
    assert_eq!(deployer.calls(), vec![("job-inflight".to_string(), 1)]);
    delete_topology(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_recovers_when_the_broker_cancels_its_consumer() {
    let settings = unique_settings();
    let s = &settings.amqp;
    let (deployer, _rx) = Scripted::new(false);
    let mut events = EventTap::bound(s, "deploy.succeeded").await;
    let worker = start_worker(&settings, deployer).await;

    let (_c, ch) = channel(s).await;
    let options = lapin::options::QueueDeleteOptions::default();
    ch.queue_delete(s.jobs_queue.as_str().into(), options)
        .await
        .unwrap();
    // The worker re-declares the queue and consumes again.
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let mut consumers = 0;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (_c, ch) = channel(s).await;
        let declared =
            ch.queue_declare(s.jobs_queue.as_str().into(), passive, FieldTable::default());
        consumers = declared.await.map(|q| q.consumer_count()).unwrap_or(0);
        if consumers == 1 {
            break;
        }
    }
    assert_eq!(consumers, 1, "consuming again");
    publish_job(s, &job_body("job-again"), BasicProperties::default()).await;
    assert_eq!(events.next().await.json["id"], "job-again:succeeded");
    worker.stop().await.unwrap();
    delete_topology(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_reports_nacks_and_survives_a_closed_channel() {
    let s = unique_amqp_settings();
    let (_c, ch) = channel(&s).await;
    amqp::declare_topology(&ch, &s).await.unwrap();
    let connection = Arc::new(connect(&s).await);
    let publisher = ConfirmedPublisher::open(connection, s.confirm_timeout)
        .await
        .unwrap();
    let props = BasicProperties::default;

    let missing = format!("{}.missing", s.events_exchange);
    let err = publisher
        .publish(&missing, "deploy.started", b"{}", props())
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&missing), "{err}");
    // The broker closed that channel; the next publish gets a fresh one.
    publisher
        .publish(&s.events_exchange, "deploy.started", b"{}", props())
        .await
        .unwrap();

    let _blocker = block_events(&s, "deploy.failed").await;
    let err = publisher
        .publish(&s.events_exchange, "deploy.failed", b"{}", props())
        .await;
    assert!(matches!(err, Err(PublishError::Nacked { .. })), "{err:?}");
    publisher.close().await;
    delete_topology(&s).await;
}
