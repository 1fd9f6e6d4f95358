//! RabbitMQ helpers for integration tests: isolated topology names, a worker
//! started on them, publishing jobs, watching events, counting messages.
//!
//! Every test gets its own exchanges and queues ([`unique_amqp_settings`]: a
//! UUID suffix on each name), so tests run in parallel on one broker
//! (127.0.0.1:5672, guest/guest), and a [`TopologyGuard`] that deletes them
//! when the test ends, passed or failed. Helpers panic with a message on any
//! broker error: they are test code, and a panic is the clearest failure
//! there.
//!
//! ```ignore
//! let (settings, _topology) = unique_settings();              // deleted on drop
//! let worker = start_worker(&settings, deployer).await;      // consuming
//! let mut events = EventTap::new(&settings.amqp).await;      // deploy.#
//! publish_job(&settings.amqp, &job_body("j-1"), BasicProperties::default()).await;
//! let started = events.next().await;                          // TappedEvent
//! assert_eq!(started.routing_key, "deploy.started");
//! worker.stop().await.unwrap();
//! events.assert_drained("no other event").await;             // proves absence
//! ```

mod broker;
mod cleanup;
mod tap;

pub use broker::*;
pub use cleanup::TopologyGuard;
pub use tap::{EventTap, TappedEvent};

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wfp_deployer::config::{AmqpSettings, CloudflareSettings, Settings, WorkerSettings};
use wfp_deployer::pipeline::Deploy;
use wfp_deployer::worker::{Ready, Worker, WorkerError};

/// The broker the tests use.
pub const TEST_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// How long [`EventTap::next`] waits before failing the test.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(15);
/// The account the test settings configure as the default.
pub const TEST_ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

/// Contract names with a unique suffix, short timeouts for tests; the guard
/// deletes those names when dropped.
pub fn unique_amqp_settings() -> (AmqpSettings, TopologyGuard) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = |base: &str| format!("{base}.it-{id}");
    let settings = AmqpSettings {
        url: TEST_AMQP_URL.to_string().into(),
        jobs_exchange: name("wfp.deploy"),
        jobs_routing_key: "deploy".into(),
        jobs_queue: name("wfp.deploy.jobs"),
        dead_letter_exchange: name("wfp.deploy.dlx"),
        dead_letter_queue: name("wfp.deploy.jobs.dlq"),
        events_exchange: name("wfp.deploy.events"),
        delivery_limit: 10,
        confirm_timeout: Duration::from_secs(5),
        reconnect_max_delay: Duration::from_secs(1),
        events_log_queue: name("wfp.deploy.events.log"),
    };
    let guard = TopologyGuard::new(&settings);
    (settings, guard)
}

/// Whole settings around [`unique_amqp_settings`]: concurrency 2, a unique
/// instance name, [`TEST_ACCOUNT`] as the default account; the guard deletes
/// their broker names when dropped.
pub fn unique_settings() -> (Settings, TopologyGuard) {
    let defaults = Settings::default();
    let instance = format!("it-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (amqp, guard) = unique_amqp_settings();
    let settings = Settings {
        amqp,
        worker: WorkerSettings {
            concurrency: 2,
            instance,
            ..defaults.worker
        },
        cloudflare: CloudflareSettings {
            account_id: TEST_ACCOUNT.into(),
            ..defaults.cloudflare
        },
        ..defaults
    };
    (settings, guard)
}

/// A fresh connection to the test broker.
pub async fn connect(settings: &AmqpSettings) -> Connection {
    use secrecy::ExposeSecret;
    let props = ConnectionProperties::default().with_connection_name("wfp-deployer-tests".into());
    Connection::connect(settings.url.expose_secret(), props)
        .await
        .expect("connect to RabbitMQ on 127.0.0.1:5672 (is it running?)")
}

/// A valid v1 job body with this id (namespace `customers`, script
/// `site-<id>` lower-cased, bundle `sites/<id>/`).
pub fn job_body(job_id: &str) -> Vec<u8> {
    let script: String = format!("site-{job_id}")
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    serde_json::json!({
        "version": 1, "job_id": job_id, "namespace": "customers",
        "script_name": script, "bundle": {"bucket": "sites", "prefix": format!("{job_id}/")}
    })
    .to_string()
    .into_bytes()
}

/// Publishes a job to the jobs exchange with the jobs routing key
/// (persistent, confirmed). Panics if nothing is bound to take it: start the
/// worker (or declare the topology) first.
pub async fn publish_job(settings: &AmqpSettings, body: &[u8], props: BasicProperties) {
    let connection = connect(settings).await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    let props = if props.delivery_mode().is_none() {
        props.with_delivery_mode(2)
    } else {
        props
    };
    let confirm = channel
        .basic_publish(
            settings.jobs_exchange.as_str().into(),
            settings.jobs_routing_key.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            props,
        )
        .await
        .expect("publish job")
        .await
        .expect("job confirm");
    match confirm {
        Confirmation::Ack(None) => {}
        Confirmation::Ack(Some(_)) => panic!("job unroutable: is the jobs queue declared?"),
        other => panic!("job not confirmed: {other:?}"),
    }
    let _ = connection.close(200, "done".into()).await;
}

/// A worker running in a task of its own; dropped unstopped (a failed
/// test), it is aborted, so it cannot re-declare what a [`TopologyGuard`]
/// deletes.
pub struct TestWorker {
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<Result<(), WorkerError>>,
    /// Whether it consumes now (false while reconnecting).
    pub ready: Ready,
}

impl TestWorker {
    /// Cancels and waits (at most 30 s) for `run` to return.
    pub async fn stop(mut self) -> Result<(), WorkerError> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), &mut self.handle)
            .await
            .expect("worker stops within 30 s")
            .expect("worker task")
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.handle.abort();
    }
}

/// Starts the worker and returns once it consumes (panics after 15 s).
pub async fn start_worker(settings: &Settings, deployer: Arc<dyn Deploy>) -> TestWorker {
    wfp_deployer::telemetry::init_for_tests();
    let worker = Worker::new(settings, deployer);
    let mut ready = worker.ready();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(worker.run(shutdown.clone()));
    let consuming = tokio::time::timeout(Duration::from_secs(15), ready.wait()).await;
    if !matches!(consuming, Ok(true)) {
        shutdown.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(5), handle).await;
        panic!("the worker did not start consuming: {ended:?}");
    }
    TestWorker {
        shutdown,
        handle,
        ready,
    }
}
