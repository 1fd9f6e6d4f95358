//! The soak's side of RabbitMQ: broker names of the run's own, a publishing
//! link that reconnects after the broker restart, the tap queue feeding the
//! ledger every event, the management API (closing the workers' connections,
//! counting messages in a queue), `rabbitmqctl stop_app`/`start_app`, and
//! reading the dead-letter queue back at the end.
//!
//! The tap is a quorum queue, not an exclusive one: it must keep the events
//! published while the driver's own connection is down (the broker restart
//! drops it like every other), and a quorum queue keeps its messages
//! across a restart of the broker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use secrecy::ExposeSecret;
use serde_json::Value;
use wfp_deployer::amqp::Topology;
use wfp_deployer::config::Settings;

use crate::ledger::Ledger;

/// The management API of the local broker.
const MANAGEMENT: &str = "http://127.0.0.1:15672/api";
const USER: &str = "guest";

/// The tap queue's name.
pub fn tap_queue(run: &str) -> String {
    format!("wfp.soak.{run}.tap")
}

async fn connect(settings: &Settings, name: &str) -> anyhow::Result<Connection> {
    Connection::connect(
        settings.amqp.url.expose_secret(),
        ConnectionProperties::default().with_connection_name(name.into()),
    )
    .await
    .context("connecting to RabbitMQ")
}

/// Declares the worker's topology and the tap queue bound to every event.
pub async fn declare(settings: &Settings, run: &str) -> anyhow::Result<()> {
    let connection = connect(settings, "wfp-soak").await?;
    let channel = connection.create_channel().await?;
    Topology::new(settings).declare(&channel).await?;
    let tap = tap_queue(run);
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(tap.as_str().into(), durable, args)
        .await?;
    channel
        .queue_bind(
            tap.as_str().into(),
            settings.amqp.events_exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let _ = connection.close(200, "declared".into()).await;
    Ok(())
}

/// A confirmed-publish channel, opened again whenever it was lost.
pub struct Link {
    settings: Settings,
    open: Option<(Connection, Channel)>,
}

impl Link {
    pub fn new(settings: &Settings) -> Link {
        Link {
            settings: settings.clone(),
            open: None,
        }
    }

    async fn channel(&mut self) -> anyhow::Result<Channel> {
        if let Some((connection, channel)) = &self.open
            && connection.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        let connection = connect(&self.settings, "wfp-soak-publisher").await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        self.open = Some((connection, channel.clone()));
        Ok(channel)
    }

    /// Publishes one message to the jobs exchange and waits for its
    /// confirm, reconnecting for up to two minutes.
    pub async fn publish_job(&mut self, body: &[u8], props: BasicProperties) -> anyhow::Result<()> {
        let amqp = self.settings.amqp.clone();
        let mut last = None;
        for _ in 0..120 {
            let attempt = async {
                let channel = self.channel().await?;
                let confirm = channel
                    .basic_publish(
                        amqp.jobs_exchange.as_str().into(),
                        amqp.jobs_routing_key.as_str().into(),
                        BasicPublishOptions::default(),
                        body,
                        props.clone(),
                    )
                    .await?
                    .await?;
                anyhow::ensure!(confirm.is_ack(), "the broker refused the job: {confirm:?}");
                Ok(())
            };
            match attempt.await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.open = None;
                    last = Some(e);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no publish attempt")))
    }
}

/// Consumes the tap queue into `ledger` until the process ends, connecting
/// again whenever the connection is lost (the broker restart).
pub fn spawn_tap(settings: Settings, run: String, ledger: Arc<Mutex<Ledger>>) {
    tokio::spawn(async move {
        loop {
            if tap_once(&settings, &run, &ledger).await.is_err() {
                ledger.lock().expect("ledger").note_tap_error();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

async fn tap_once(
    settings: &Settings,
    run: &str,
    ledger: &Arc<Mutex<Ledger>>,
) -> anyhow::Result<()> {
    let connection = connect(settings, "wfp-soak-tap").await?;
    let channel = connection.create_channel().await?;
    channel.basic_qos(500, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(
            tap_queue(run).as_str().into(),
            "soak-tap".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let event: Value = serde_json::from_slice(&delivery.data).unwrap_or(Value::Null);
        ledger.lock().expect("ledger").record(
            delivery.routing_key.as_str(),
            &event,
            delivery.redelivered,
        );
        delivery.acker.ack(BasicAckOptions::default()).await?;
    }
    bail!("the tap consumer ended")
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// The management API's names of the connections of the workers whose
/// `instance` starts with `prefix`.
async fn worker_connections(prefix: &str) -> anyhow::Result<Vec<String>> {
    let connections: Vec<Value> = http()
        .get(format!("{MANAGEMENT}/connections"))
        .basic_auth(USER, Some(USER))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(connections
        .iter()
        .filter(|c| {
            c.pointer("/client_properties/instance")
                .and_then(Value::as_str)
                .is_some_and(|i| i.starts_with(prefix))
        })
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect())
}

/// Closes every connection of the workers whose `instance` starts with
/// `prefix`, from the broker's side (as a network failure would); returns
/// how many it closed. The management API lists a connection only once its
/// statistics were collected (every 5 s), so it waits (up to 30 s) until it
/// lists at least `at_least`.
pub async fn close_worker_connections(prefix: &str, at_least: usize) -> anyhow::Result<usize> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut names = worker_connections(prefix).await?;
    while names.len() < at_least && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        names = worker_connections(prefix).await?;
    }
    let mut closed = 0;
    for name in names {
        let mut url = reqwest::Url::parse(&format!("{MANAGEMENT}/connections/"))?;
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("management url"))?
            .pop_if_empty()
            .push(&name);
        let answer = http()
            .delete(url)
            .basic_auth(USER, Some(USER))
            .header("X-Reason", "soak: connection cut")
            .send()
            .await?;
        if answer.status().is_success() {
            closed += 1;
        }
    }
    Ok(closed)
}

/// Messages in `queue` (ready and unacked), from the management API; `None`
/// when it cannot be read.
pub async fn queue_messages(queue: &str) -> Option<u64> {
    let mut url = reqwest::Url::parse(&format!("{MANAGEMENT}/queues/")).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .push("/")
        .push(queue);
    let answer: Value = http()
        .get(url)
        .basic_auth(USER, Some(USER))
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .json()
        .await
        .ok()?;
    answer.get("messages").and_then(Value::as_u64)
}

/// `rabbitmqctl ARGS`, failing with its output when it fails.
pub async fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .await
        .context("running rabbitmqctl (needs the broker on this machine, as root)")?;
    if !out.status.success() {
        bail!(
            "rabbitmqctl {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Waits until a connection to the broker opens again (after `start_app`).
pub async fn wait_broker(settings: &Settings, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Ok(c) = connect(settings, "wfp-soak-probe").await {
            let _ = c.close(200, "up".into()).await;
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the broker did not come back within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A message as the broker held it: its body and its AMQP `message_id`.
pub type Held = (Vec<u8>, Option<String>);

/// Takes every message of `queue` (acking them): what the DLQ held.
pub async fn drain(settings: &Settings, queue: &str) -> anyhow::Result<Vec<Held>> {
    let connection = connect(settings, "wfp-soak-drain").await?;
    let channel = connection.create_channel().await?;
    let mut bodies = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await?
    {
        let id = message
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str().to_string());
        bodies.push((message.delivery.data, id));
    }
    let _ = connection.close(200, "drained".into()).await;
    Ok(bodies)
}

/// Deletes this run's queues and exchanges, best effort.
pub async fn delete_topology(settings: &Settings, run: &str) {
    let Ok(connection) = connect(settings, "wfp-soak-cleanup").await else {
        return;
    };
    crate::stack::delete_topology(&connection, settings, &[tap_queue(run)]).await;
}
