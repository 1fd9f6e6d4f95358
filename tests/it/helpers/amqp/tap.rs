//! Watching what the worker publishes: a private queue bound to the events
//! exchange (or given as a job's `reply_to`), and the marker that proves
//! nothing more came.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, Consumer};
use wfp_deployer::config::AmqpSettings;

use super::{EVENT_TIMEOUT, connect};

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
        use lapin::types::AMQPValue;
        match self.properties.headers().as_ref()?.inner().get(name)? {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
            _ => None,
        }
    }

    /// The CloudEvent's `data`.
    pub fn data(&self) -> &serde_json::Value {
        &self.json["data"]
    }
}

/// A private, exclusive, auto-ack queue to watch events with.
pub struct EventTap {
    _connection: Connection,
    channel: Channel,
    consumer: Consumer,
    queue: String,
    /// Whether `deploy.progress` events are shown: most tests follow a
    /// job's started/retrying/terminal events, which progress (best effort,
    /// its number a matter of timing) would interleave unpredictably.
    progress: bool,
}

impl EventTap {
    /// Bound to the events exchange with `deploy.#`: sees every event but
    /// `deploy.progress` ones. The exchange is declared if missing (same
    /// arguments as the worker's), so a tap can be made before the worker
    /// starts.
    pub async fn new(settings: &AmqpSettings) -> Self {
        Self::bound(settings, "deploy.#").await
    }

    /// Like [`EventTap::new`], `deploy.progress` events included.
    pub async fn with_progress(settings: &AmqpSettings) -> Self {
        let mut tap = Self::bound(settings, "deploy.#").await;
        tap.progress = true;
        tap
    }

    /// Bound with another pattern (`deploy.succeeded`, ...).
    pub async fn bound(settings: &AmqpSettings, pattern: &str) -> Self {
        let tap = Self::queue(settings).await;
        tap.channel
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
        tap.channel
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
            channel,
            consumer,
            queue,
            progress: false,
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

    /// The next message within `timeout`, if any. `None` proves nothing:
    /// use [`EventTap::assert_drained`] to show that nothing more came.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<TappedEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        let delivery = loop {
            let delivery = tokio::time::timeout_at(deadline, self.consumer.next())
                .await
                .ok()??;
            let delivery = delivery.expect("tap delivery");
            if self.progress || delivery.routing_key.as_str() != "deploy.progress" {
                break delivery;
            }
        };
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

    /// Proves that nothing more reached this tap: [`EventTap::mark`], then
    /// [`EventTap::expect_marker`]. Call it once whoever could publish is
    /// done (the worker stopped).
    pub async fn assert_drained(&mut self, what: &str) {
        let marker = self.mark().await;
        self.expect_marker(&marker, what).await;
    }

    /// Sends a marker straight to the tap's queue (default exchange) and
    /// returns it. Whatever was published to the tap and confirmed before
    /// this call is queued ahead of it, so reading up to the marker shows
    /// all of it (the worker's publishes are confirmed before it goes on).
    pub async fn mark(&self) -> String {
        let marker = uuid::Uuid::new_v4().to_string();
        let body = serde_json::json!({ "marker": marker }).to_string();
        self.channel
            .basic_publish(
                "".into(),
                self.queue.as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish the marker");
        marker
    }

    /// Requires the next message to be `marker` (from [`EventTap::mark`]):
    /// nothing else is queued ahead of it.
    pub async fn expect_marker(&mut self, marker: &str, what: &str) {
        let next = self.next().await;
        assert_eq!(
            next.json["marker"], marker,
            "{what}: got {} {}",
            next.routing_key, next.json
        );
    }
}
