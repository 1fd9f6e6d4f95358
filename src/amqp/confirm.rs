//! One publish and its confirm on a given confirm-mode channel: the
//! worker's [`ConfirmedPublisher`](super::ConfirmedPublisher) and the
//! operator commands that put jobs on the broker (`enqueue`, `dlq requeue`)
//! all publish through [`publish_confirmed`], so a message counts the same
//! way everywhere: only once the broker confirmed it.
//!
//! A confirm alone does not say a queue took the message: the broker
//! confirms a message no queue is bound to take, and drops it. With
//! `mandatory` it returns such a message instead (before its `Ack`), and
//! that is an error here ([`PublishError::Unroutable`]).

use std::fmt;
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation};

use super::connection::{NOT_FOUND, reply_code};

/// Where a message went: named in every publish error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub exchange: String,
    pub routing_key: String,
}

impl Target {
    /// `routing_key` on `exchange` (`""`: the default exchange, the routing
    /// key then a queue's name).
    pub fn new(exchange: &str, routing_key: &str) -> Self {
        Self {
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exchange.is_empty() {
            write!(f, "queue {} (default exchange)", self.routing_key)
        } else {
            write!(
                f,
                "exchange {} (routing key {})",
                self.exchange, self.routing_key
            )
        }
    }
}

/// Why a message is not known to be safe with the broker.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{target}: exchange or routing key longer than 255 bytes")]
    InvalidName { target: Target },
    #[error("{target}: no publishing channel: {error}")]
    Channel { target: Target, error: lapin::Error },
    #[error("{target}: publish failed: {error}")]
    Send { target: Target, error: lapin::Error },
    #[error("{target}: the broker refused the message (nack)")]
    Nacked { target: Target },
    #[error("{target}: no confirm within {after:?}")]
    Timeout { target: Target, after: Duration },
    #[error("{target}: the channel is not in confirm mode")]
    NotConfirmed { target: Target },
    #[error(
        "{target}: no queue is bound to take the message (or no such queue), so the \
         broker returned it"
    )]
    Unroutable { target: Target },
}

impl PublishError {
    /// Whether the message found its exchange or queue missing: the broker
    /// closed the channel with `NOT_FOUND`, or returned a mandatory message.
    pub(super) fn is_missing(&self) -> bool {
        match self {
            PublishError::Unroutable { .. } => true,
            PublishError::Channel { error, .. } | PublishError::Send { error, .. } => {
                reply_code(error) == Some(NOT_FOUND)
            }
            _ => false,
        }
    }
}

/// What is published: the body, its properties, and whether the broker
/// must return it when no queue takes it.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub mandatory: bool,
    pub payload: &'a [u8],
    pub properties: BasicProperties,
}

impl<'a> Message<'a> {
    /// A message the broker must return when no queue takes it: for a job
    /// that must not count as sent until a queue holds it.
    pub fn mandatory(payload: &'a [u8], properties: BasicProperties) -> Self {
        Self {
            mandatory: true,
            payload,
            properties,
        }
    }
}

/// Publishes `message` to `target` on `channel` (which must be in confirm
/// mode) and waits up to `timeout` for the broker's confirm. `Ok` means the
/// broker has the message (and, with `mandatory`, a queue took it).
pub async fn publish_confirmed(
    channel: &Channel,
    target: Target,
    message: Message<'_>,
    timeout: Duration,
) -> Result<(), PublishError> {
    let (Ok(exchange), Ok(routing_key)) = (
        ShortString::try_new(target.exchange.as_str()),
        ShortString::try_new(target.routing_key.as_str()),
    ) else {
        return Err(PublishError::InvalidName { target });
    };
    let options = BasicPublishOptions {
        mandatory: message.mandatory,
        ..BasicPublishOptions::default()
    };
    let send_and_confirm = async {
        let send_error = |error| PublishError::Send {
            target: target.clone(),
            error,
        };
        let confirm = channel
            .basic_publish(
                exchange,
                routing_key,
                options,
                message.payload,
                message.properties,
            )
            .await
            .map_err(send_error)?;
        match confirm.await.map_err(send_error)? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(PublishError::Unroutable {
                target: target.clone(),
            }),
            Confirmation::Nack(_) => Err(PublishError::Nacked {
                target: target.clone(),
            }),
            Confirmation::NotRequested => Err(PublishError::NotConfirmed {
                target: target.clone(),
            }),
        }
    };
    match tokio::time::timeout(timeout, send_and_confirm).await {
        Ok(result) => result,
        Err(_) => Err(PublishError::Timeout {
            target,
            after: timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_where_the_message_went() {
        let events = Target {
            exchange: "wfp.deploy.events".into(),
            routing_key: "deploy.started".into(),
        };
        let err = PublishError::Nacked { target: events };
        assert_eq!(
            err.to_string(),
            "exchange wfp.deploy.events (routing key deploy.started): the broker refused the message (nack)"
        );
        let reply = Target {
            exchange: String::new(),
            routing_key: "amq.gen-1".into(),
        };
        assert_eq!(reply.to_string(), "queue amq.gen-1 (default exchange)");
    }
}
