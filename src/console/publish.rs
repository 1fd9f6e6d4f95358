//! Publishing a job so that it counts only once a queue took it: publisher
//! confirms plus the `mandatory` flag.
//!
//! A confirm alone is not enough for the operator commands that put jobs on
//! the jobs exchange (`enqueue`, `dlq requeue`): the broker confirms a
//! message no queue is bound to take, and drops it. With `mandatory` it
//! returns such a message instead, and that is an error here, so a requeue
//! never acks a parked job whose copy went nowhere.

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation};

use crate::amqp::publisher::Target;

/// Why a message is not known to be in a queue.
#[derive(Debug, thiserror::Error)]
pub enum RoutedPublishError {
    #[error("{target}: exchange or routing key longer than 255 bytes")]
    InvalidName { target: Target },
    #[error("{target}: publish failed: {error}")]
    Send { target: Target, error: lapin::Error },
    #[error("{target}: the broker refused the message (nack)")]
    Nacked { target: Target },
    #[error(
        "{target}: no queue is bound to take the message, so the broker returned it \
         (start a worker once, or check the amqp settings)"
    )]
    Unroutable { target: Target },
    #[error("{target}: no confirm within {after:?}")]
    Timeout { target: Target, after: Duration },
    #[error("{target}: the channel is not in confirm mode")]
    NotConfirmed { target: Target },
}

/// Publishes `body` with `properties` as a mandatory message on `channel`
/// (which must be in confirm mode) and waits up to `timeout` for the
/// broker's confirm. `Ok` means a queue holds the message.
pub async fn publish_routed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
    timeout: Duration,
) -> Result<(), RoutedPublishError> {
    let target = Target {
        exchange: exchange.to_string(),
        routing_key: routing_key.to_string(),
    };
    let (Ok(exchange), Ok(routing_key)) = (
        ShortString::try_new(exchange),
        ShortString::try_new(routing_key),
    ) else {
        return Err(RoutedPublishError::InvalidName { target });
    };
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let send = async {
        let send_error = |error| RoutedPublishError::Send {
            target: target.clone(),
            error,
        };
        let confirm = channel
            .basic_publish(exchange, routing_key, options, body, properties)
            .await
            .map_err(send_error)?;
        match confirm.await.map_err(send_error)? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(RoutedPublishError::Unroutable {
                target: target.clone(),
            }),
            Confirmation::Nack(_) => Err(RoutedPublishError::Nacked {
                target: target.clone(),
            }),
            Confirmation::NotRequested => Err(RoutedPublishError::NotConfirmed {
                target: target.clone(),
            }),
        }
    };
    match tokio::time::timeout(timeout, send).await {
        Ok(result) => result,
        Err(_) => Err(RoutedPublishError::Timeout {
            target,
            after: timeout,
        }),
    }
}
