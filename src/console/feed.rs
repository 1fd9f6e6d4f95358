//! Reading the events: live through a private queue, or from the events log.
//!
//! - [`EventFeed::live`]: an exclusive, auto-delete, server-named queue
//!   bound to the events exchange, so each reader gets every event from the
//!   moment it bound, and the broker drops the queue when the reader goes.
//! - [`EventFeed::replay`]: the events log (a stream queue the worker keeps,
//!   `amqp.events_log_queue`) read from a point in time with the
//!   `x-stream-offset` consumer argument. Reading a stream removes nothing;
//!   the consumer goes on with live events once it has caught up.
//!
//! The log may not exist yet (an older worker, a fresh broker):
//! [`ensure_events_log`] declares it then, with the worker's arguments, so
//! it keeps events from now on and the next replay finds them.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, Consumer};

use super::event::FeedEvent;
use crate::amqp::{AmqpError, connect, topology};
use crate::config::AmqpSettings;

/// How far ahead of the reader's acks the log may deliver (streams need a
/// prefetch, and acks, to be read over AMQP 0-9-1).
const LOG_PREFETCH: u16 = 200;

/// Why events cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Amqp(#[from] AmqpError),
    #[error("events: the broker ended the subscription (connection or channel closed)")]
    Closed,
    #[error("events: {0}")]
    Delivery(lapin::Error),
    /// One message that is not a CloudEvent; the feed goes on after it.
    #[error("events: a {routing_key} message is unreadable: {reason}")]
    Unreadable { routing_key: String, reason: String },
}

/// Whether the events log was there or had to be declared just now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogState {
    Existed,
    /// Declared now: it holds nothing from before this moment.
    Created,
}

/// A subscription to the events.
pub struct EventFeed {
    connection: Connection,
    consumer: Consumer,
    /// Log deliveries are acked (a stream needs it to send more); live
    /// ones come unacknowledged-free (`no_ack`) from a private queue.
    ack: bool,
}

fn channel_error(error: lapin::Error) -> AmqpError {
    AmqpError::Channel {
        purpose: "events",
        error,
    }
}

/// Makes sure the events log exists: a passive declaration first (so a log
/// the operator declared with another `x-max-age` is used as it is), else
/// the worker's own declarations of it (kept for `log_max_age`, the
/// configured `events.log_max_age`), after the events exchange. A refused
/// passive declaration closes its channel, so each step gets a channel of
/// its own.
pub async fn ensure_events_log(
    connection: &Connection,
    settings: &AmqpSettings,
    log_max_age: Duration,
) -> Result<LogState, AmqpError> {
    let name = settings.events_log_queue.as_str();
    let probe = connection.create_channel().await.map_err(channel_error)?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    if probe
        .queue_declare(name.into(), passive, FieldTable::default())
        .await
        .is_ok()
    {
        let _ = probe.close(200, "done".into()).await;
        return Ok(LogState::Existed);
    }
    let channel = connection.create_channel().await.map_err(channel_error)?;
    let mut declarations = vec![topology::events_exchange(settings)];
    declarations.extend(topology::events_log_declarations(settings, log_max_age));
    topology::declare_all(&channel, &declarations).await?;
    let _ = channel.close(200, "done".into()).await;
    Ok(LogState::Created)
}

impl EventFeed {
    /// Events published from now on whose routing key matches `pattern`
    /// (`deploy.#` for all of them).
    pub async fn live(settings: &AmqpSettings, pattern: &str) -> Result<Self, FeedError> {
        let connection = connect(settings).await?;
        let channel = connection.create_channel().await.map_err(channel_error)?;
        topology::events_exchange(settings).run(&channel).await?;
        let private = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let queue = channel
            .queue_declare("".into(), private, FieldTable::default())
            .await
            .map_err(|error| AmqpError::Queue {
                name: "(private events queue)".into(),
                error,
            })?;
        let name = queue.name().as_str().to_string();
        topology::bind(&channel, &name, &settings.events_exchange, pattern).await?;
        let options = BasicConsumeOptions {
            no_ack: true,
            exclusive: true,
            ..BasicConsumeOptions::default()
        };
        let consumer = channel
            .basic_consume(
                name.as_str().into(),
                "wfp-deployer-events".into(),
                options,
                FieldTable::default(),
            )
            .await
            .map_err(|error| AmqpError::Consume { queue: name, error })?;
        Ok(Self {
            connection,
            consumer,
            ack: false,
        })
    }

    /// Events from the log from `since` on (to the second, as the stream
    /// finds them), then live ones as they are published. Declares the log
    /// first if it is missing ([`ensure_events_log`], kept for
    /// `log_max_age`).
    pub async fn replay(
        settings: &AmqpSettings,
        log_max_age: Duration,
        since: DateTime<Utc>,
    ) -> Result<(Self, LogState), FeedError> {
        let connection = connect(settings).await?;
        let state = ensure_events_log(&connection, settings, log_max_age).await?;
        let channel = connection.create_channel().await.map_err(channel_error)?;
        let queue = settings.events_log_queue.clone();
        let consume_error = |error| AmqpError::Consume {
            queue: queue.clone(),
            error,
        };
        channel
            .basic_qos(LOG_PREFETCH, BasicQosOptions { global: false })
            .await
            .map_err(consume_error)?;
        let mut args = FieldTable::default();
        let seconds = u64::try_from(since.timestamp()).unwrap_or(0);
        args.insert("x-stream-offset".into(), AMQPValue::Timestamp(seconds));
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "wfp-deployer-replay".into(),
                BasicConsumeOptions::default(),
                args,
            )
            .await
            .map_err(consume_error)?;
        let feed = Self {
            connection,
            consumer,
            ack: true,
        };
        Ok((feed, state))
    }

    /// The next event; [`FeedError::Unreadable`] for a message that is not
    /// an event (the feed goes on), other errors when it ended.
    pub async fn next(&mut self) -> Result<FeedEvent, FeedError> {
        let delivery = match self.consumer.next().await {
            None => return Err(FeedError::Closed),
            Some(Err(error)) => return Err(FeedError::Delivery(error)),
            Some(Ok(delivery)) => delivery,
        };
        if self.ack {
            delivery
                .ack(BasicAckOptions::default())
                .await
                .map_err(FeedError::Delivery)?;
        }
        let routing_key = delivery.routing_key.as_str();
        FeedEvent::parse(routing_key, &delivery.data).map_err(|reason| FeedError::Unreadable {
            routing_key: routing_key.to_string(),
            reason,
        })
    }

    /// Closes the connection (the private queue goes with it).
    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}
