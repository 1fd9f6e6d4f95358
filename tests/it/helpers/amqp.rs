//! RabbitMQ helpers for integration tests: isolated topology names, a worker
//! started on them, publishing jobs, watching events, counting messages.
//!
//! Every test gets its own exchanges and queues ([`unique_amqp_settings`]: a
//! UUID suffix on each name), so tests run in parallel on one broker
//! (127.0.0.1:5672, guest/guest). Helpers panic with a message on any broker
//! error: they are test code, and a panic is the clearest failure there.
//!
//! ```ignore
//! let settings = unique_settings();
//! let worker = start_worker(&settings, deployer).await;      // consuming
//! let mut events = EventTap::new(&settings.amqp).await;      // deploy.#
//! publish_job(&settings.amqp, &job_body("j-1"), BasicProperties::default()).await;
//! let started = events.next().await;                          // TappedEvent
//! assert_eq!(started.routing_key, "deploy.started");
//! worker.stop().await.unwrap();
//! delete_topology(&settings.amqp).await;
//! ```

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer};
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

/// Contract names with a unique suffix, short timeouts for tests.
pub fn unique_amqp_settings() -> AmqpSettings {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = |base: &str| format!("{base}.it-{id}");
    AmqpSettings {
        url: TEST_AMQP_URL.to_string().into(),
        jobs_exchange: name("wfp.deploy"),
        jobs_routing_key: "deploy".into(),
        jobs_queue: name("wfp.deploy.jobs"),
        dead_letter_exchange: name("wfp.deploy.dlx"),
        dead_letter_queue: name("wfp.deploy.jobs.dlq"),
        events_exchange: name("wfp.deploy.events"),
        events_log_queue: name("wfp.deploy.events.log"),
        delivery_limit: 10,
        confirm_timeout: Duration::from_secs(5),
        reconnect_max_delay: Duration::from_secs(1),
        ..AmqpSettings::default()
    }
}

/// Whole settings around [`unique_amqp_settings`]: concurrency 2, a unique
/// instance name, [`TEST_ACCOUNT`] as the default account.
pub fn unique_settings() -> Settings {
    let defaults = Settings::default();
    let instance = format!("it-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    Settings {
        amqp: unique_amqp_settings(),
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
    }
}

/// Shows the worker's logs when `TEST_LOG` is set (once per process).
pub fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,wfp_deployer=debug")
            .with_test_writer()
            .try_init();
    }
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

/// One message seen by an [`EventTap`].
#[derive(Debug)]
pub struct TappedEvent {
    pub routing_key: String,
    /// The CloudEvent, parsed.
    pub json: serde_json::Value,
    pub properties: BasicProperties,
}

impl TappedEvent {
    /// A header as text (`job_id`, `namespace`, `script_name`).
    pub fn header(&self, name: &str) -> Option<String> {
        wfp_deployer::amqp::header_str(&self.properties, name)
    }

    /// The CloudEvent's `data`.
    pub fn data(&self) -> &serde_json::Value {
        &self.json["data"]
    }
}

/// A private, exclusive, auto-ack queue to watch events with.
pub struct EventTap {
    _connection: Connection,
    _channel: Channel,
    consumer: Consumer,
    queue: String,
}

impl EventTap {
    /// Bound to the events exchange with `deploy.#`: sees every event. The
    /// exchange is declared if missing (same arguments as the worker's), so
    /// a tap can be made before the worker starts.
    pub async fn new(settings: &AmqpSettings) -> Self {
        Self::bound(settings, "deploy.#").await
    }

    /// Bound with another pattern (`deploy.succeeded`, ...).
    pub async fn bound(settings: &AmqpSettings, pattern: &str) -> Self {
        let tap = Self::queue(settings).await;
        tap._channel
            .exchange_declare(
                settings.events_exchange.as_str().into(),
                lapin::ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare the events exchange");
        tap._channel
            .queue_bind(
                tap.queue.as_str().into(),
                settings.events_exchange.as_str().into(),
                pattern.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind the tap");
        tap
    }

    /// Bound to nothing: give [`EventTap::name`] as a job's `reply_to`.
    pub async fn queue(settings: &AmqpSettings) -> Self {
        let connection = connect(settings).await;
        let channel = connection.create_channel().await.expect("channel");
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare the tap queue")
            .name()
            .to_string();
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "tap".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consume the tap queue");
        Self {
            _connection: connection,
            _channel: channel,
            consumer,
            queue,
        }
    }

    /// The tap's (server-named) queue.
    pub fn name(&self) -> &str {
        &self.queue
    }

    /// The next message, or a panic after [`EVENT_TIMEOUT`].
    pub async fn next(&mut self) -> TappedEvent {
        self.next_within(EVENT_TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("no event on {} within {EVENT_TIMEOUT:?}", self.queue))
    }

    /// The next message within `timeout`, if any: `None` shows that nothing
    /// (more) was published.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<TappedEvent> {
        let delivery = tokio::time::timeout(timeout, self.consumer.next())
            .await
            .ok()??;
        let delivery = delivery.expect("tap delivery");
        let json = serde_json::from_slice(&delivery.data).unwrap_or_else(|e| {
            panic!(
                "event is not JSON ({e}): {}",
                String::from_utf8_lossy(&delivery.data)
            )
        });
        Some(TappedEvent {
            routing_key: delivery.routing_key.to_string(),
            json,
            properties: delivery.properties,
        })
    }
}

/// Messages ready in `queue` (not counting delivered, unacked ones), by a
/// passive declare. Panics if the queue does not exist.
pub async fn queue_depth(settings: &AmqpSettings, queue: &str) -> u32 {
    let connection = connect(settings).await;
    let channel = connection.create_channel().await.expect("channel");
    let depth = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("queue {queue}: {e}"))
        .message_count();
    let _ = connection.close(200, "done".into()).await;
    depth
}

/// `(ready, unacked)` of `queue` in vhost `/`, from `rabbitmqctl` (AMQP
/// cannot see unacked messages). Needs the broker's CLI on this machine.
pub async fn queue_counts(queue: &str) -> (u64, u64) {
    let queue = queue.to_string();
    tokio::task::spawn_blocking(move || {
        let text = rabbitmqctl(&[
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        ]);
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() == 3 && f[0] == queue)
            .map(|f| (f[1].parse().unwrap_or(0), f[2].parse().unwrap_or(0)))
            .unwrap_or_else(|| panic!("rabbitmqctl does not list {queue}: {text}"))
    })
    .await
    .expect("rabbitmqctl task")
}

/// Runs `rabbitmqctl` with `args`; its standard output.
fn rabbitmqctl(args: &[&str]) -> String {
    let out = std::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("run rabbitmqctl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Closes, from the broker's side, every connection of the worker whose
/// instance is `instance` (a forced close, as on a network failure); returns
/// how many it closed. Uses `rabbitmqctl`.
pub async fn force_close_worker_connections(instance: &str) -> usize {
    let instance = instance.to_string();
    tokio::task::spawn_blocking(move || {
        let text = rabbitmqctl(&[
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ]);
        let pids: Vec<String> = text
            .lines()
            .filter(|line| line.contains(&format!("\"{instance}\"")))
            .filter_map(|line| line.split_whitespace().next().map(str::to_string))
            .collect();
        assert!(!pids.is_empty(), "no connection of {instance}: {text}");
        for pid in &pids {
            rabbitmqctl(&["close_connection", pid, "test: forced close"]);
        }
        pids.len()
    })
    .await
    .expect("rabbitmqctl task")
}

/// Polls [`queue_counts`] until it equals `want`, for up to 10 s (the
/// broker's counters lag a little behind acks).
pub async fn wait_for_counts(queue: &str, want: (u64, u64)) {
    let mut last = (u64::MAX, u64::MAX);
    for _ in 0..40 {
        last = queue_counts(queue).await;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{queue}: (ready, unacked) is {last:?}, expected {want:?}");
}

/// Deletes the test's queues and exchanges, best-effort: the delay queues
/// of the default `worker.retry_delays` and the events log included.
pub async fn delete_topology(settings: &AmqpSettings) {
    let connection = connect(settings).await;
    let retry_queues = WorkerSettings::default()
        .retry_delays
        .into_iter()
        .map(|delay| wfp_deployer::amqp::retry_queue_name(&settings.jobs_queue, delay));
    let queues: Vec<String> = [
        &settings.jobs_queue,
        &settings.dead_letter_queue,
        &settings.events_log_queue,
    ]
    .into_iter()
    .cloned()
    .chain(retry_queues)
    .collect();
    // A failed delete closes its channel, so each gets a fresh one.
    for queue in &queues {
        if let Ok(channel) = connection.create_channel().await {
            let deleted =
                channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default());
            if deleted.await.is_ok() {
                let _ = channel.close(200, "done".into()).await;
            }
        }
    }
    let exchanges = [
        &settings.jobs_exchange,
        &settings.dead_letter_exchange,
        &settings.events_exchange,
    ];
    for exchange in exchanges {
        if let Ok(channel) = connection.create_channel().await {
            let options = ExchangeDeleteOptions::default();
            if channel
                .exchange_delete(exchange.as_str().into(), options)
                .await
                .is_ok()
            {
                let _ = channel.close(200, "done".into()).await;
            }
        }
    }
    let _ = connection.close(200, "done".into()).await;
}

/// A worker running in a task of its own.
pub struct TestWorker {
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<Result<(), WorkerError>>,
    /// Whether it consumes now (false while reconnecting).
    pub ready: Ready,
}

impl TestWorker {
    /// Cancels and waits (at most 30 s) for `run` to return.
    pub async fn stop(self) -> Result<(), WorkerError> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("worker stops within 30 s")
            .expect("worker task")
    }
}

/// Starts the worker and returns once it consumes (panics after 15 s).
pub async fn start_worker(settings: &Settings, deployer: Arc<dyn Deploy>) -> TestWorker {
    init_test_log();
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
