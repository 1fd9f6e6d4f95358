//! A publisher whose `publish` returns only once the broker confirmed the
//! message, so the worker can ack a job only after its event is safe.
//!
//! The channel is in confirm mode (publisher confirms); a `Nack`, a missing
//! confirm within the timeout and a closed channel are all errors, never
//! ignored (vector's AMQP sink does the same). A channel the broker closed
//! (publishing to a missing exchange does that) or that timed out is dropped
//! and a fresh one opened on the next publish, so one refused message does
//! not break every later one. Given the worker's [`Topology`], a publish that
//! finds an exchange or queue of it missing (deleted at run time) declares it
//! all again and tries once more, instead of failing every job until an
//! operator re-creates it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::ConfirmSelectOptions;
use lapin::{BasicProperties, Channel, Connection};
use tokio::sync::Mutex;
use tracing::{info, warn};

use super::confirm::{Message, PublishError, Target, publish_confirmed};
use super::{AmqpError, Topology};

/// Publishes on a confirm-mode channel and waits for each confirm.
///
/// Cheap to share (`Arc`): concurrent publishes use the same channel, and
/// lapin matches each confirm to its message.
pub struct ConfirmedPublisher {
    connection: Arc<Connection>,
    channel: Mutex<Option<Channel>>,
    confirm_timeout: Duration,
    /// Declared again when a publish finds part of it missing.
    topology: Option<Topology>,
}

impl fmt::Debug for ConfirmedPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfirmedPublisher")
            .field("confirm_timeout", &self.confirm_timeout)
            .finish_non_exhaustive()
    }
}

async fn confirm_channel(connection: &Connection) -> Result<Channel, lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

impl ConfirmedPublisher {
    /// Opens the confirm-mode channel now, so a broker that refuses it fails
    /// the start-up rather than the first event.
    pub async fn open(
        connection: Arc<Connection>,
        confirm_timeout: Duration,
    ) -> Result<Self, AmqpError> {
        let channel = confirm_channel(&connection)
            .await
            .map_err(|error| AmqpError::Channel {
                purpose: "publishing",
                error,
            })?;
        Ok(Self {
            connection,
            channel: Mutex::new(Some(channel)),
            confirm_timeout,
            topology: None,
        })
    }

    /// Makes a publish that finds an exchange or queue missing declare
    /// `topology` again and try once more.
    pub fn redeclaring(mut self, topology: Topology) -> Self {
        self.topology = Some(topology);
        self
    }

    /// The current channel, or a fresh one if the last was closed.
    async fn channel(&self) -> Result<Channel, lapin::Error> {
        let mut slot = self.channel.lock().await;
        if let Some(channel) = slot.as_ref().filter(|c| c.status().connected()) {
            return Ok(channel.clone());
        }
        let channel = confirm_channel(&self.connection).await?;
        *slot = Some(channel.clone());
        Ok(channel)
    }

    /// Forgets `channel` if it is still the current one, so the next publish
    /// opens a fresh channel (and late confirms of this one are dropped).
    async fn discard(&self, channel: &Channel) {
        let old = {
            let mut slot = self.channel.lock().await;
            match slot.as_ref() {
                Some(current) if current.id() == channel.id() => slot.take(),
                _ => None,
            }
        };
        if let Some(old) = old
            && old.status().connected()
        {
            let _ = old.close(200, "discarded".into()).await;
        }
    }

    /// Publishes one persistent-or-not message (as `properties` say) and
    /// waits up to the confirm timeout for the broker's `Ack`.
    ///
    /// `exchange` `""` is the default exchange: `routing_key` is then a queue
    /// name (how `reply_to` copies are sent).
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        self.send_or_redeclare(exchange, routing_key, false, payload, properties)
            .await
    }

    /// Publishes straight to `queue` (through the default exchange) and
    /// waits for the confirm, like [`ConfirmedPublisher::publish`]; a queue
    /// that does not exist is an error ([`PublishError::Unroutable`]), not a
    /// message silently dropped. For a message that must land in one queue:
    /// a job sent to a delay queue or parked in the dead-letter queue.
    pub async fn publish_to_queue(
        &self,
        queue: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        self.send_or_redeclare("", queue, true, payload, properties)
            .await
    }

    /// [`ConfirmedPublisher::send`]; when it finds its exchange or queue
    /// missing and there is a topology to declare, declares it and sends
    /// once more. The second answer is final.
    async fn send_or_redeclare(
        &self,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let first = self
            .send(
                exchange,
                routing_key,
                mandatory,
                payload,
                properties.clone(),
            )
            .await;
        let (Some(topology), Err(error)) = (&self.topology, &first) else {
            return first;
        };
        if !error.is_missing() {
            return first;
        }
        warn!(%error, "amqp: part of the topology is missing; declaring it again");
        match tokio::time::timeout(self.confirm_timeout, self.declare(topology)).await {
            Ok(Ok(())) => info!("amqp: topology declared again"),
            Ok(Err(again)) => {
                warn!(error = %again, "amqp: declaring the topology again failed");
                return first;
            }
            Err(_) => {
                warn!(after = ?self.confirm_timeout, "amqp: declaring the topology again timed out");
                return first;
            }
        }
        self.send(exchange, routing_key, mandatory, payload, properties)
            .await
    }

    /// Declares `topology` on a channel of its own (a refused declaration
    /// closes its channel).
    async fn declare(&self, topology: &Topology) -> Result<(), AmqpError> {
        let channel =
            self.connection
                .create_channel()
                .await
                .map_err(|error| AmqpError::Channel {
                    purpose: "topology",
                    error,
                })?;
        topology.declare(&channel).await?;
        let _ = channel.close(200, "topology declared".into()).await;
        Ok(())
    }

    /// One publish and its confirm ([`publish_confirmed`]) on the current
    /// channel. A channel that timed out or is not in confirm mode is
    /// discarded, so the next publish gets a fresh one.
    async fn send(
        &self,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let target = Target::new(exchange, routing_key);
        // Opening a fresh channel waits on the broker too: bounded by the
        // same timeout, so a wedged connection cannot hold every job's event.
        let channel = match tokio::time::timeout(self.confirm_timeout, self.channel()).await {
            Ok(Ok(channel)) => channel,
            Ok(Err(error)) => return Err(PublishError::Channel { target, error }),
            Err(_) => {
                return Err(PublishError::Timeout {
                    target,
                    after: self.confirm_timeout,
                });
            }
        };
        let message = Message {
            mandatory,
            payload,
            properties,
        };
        let result = publish_confirmed(&channel, target, message, self.confirm_timeout).await;
        if matches!(
            result,
            Err(PublishError::Timeout { .. } | PublishError::NotConfirmed { .. })
        ) {
            self.discard(&channel).await;
        }
        result
    }

    /// Closes the channel; the publisher opens a new one if used again.
    pub async fn close(&self) {
        let channel = self.channel.lock().await.take();
        if let Some(channel) = channel
            && channel.status().connected()
        {
            let _ = channel.close(200, "shutting down".into()).await;
        }
    }
}
