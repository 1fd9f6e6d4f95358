//! The broker: events published and confirmed, connections, acks.

use std::time::Duration;

use metrics::{counter, histogram};
use tracing::{debug, error, info, warn};

use super::{InternalEvent, millis};

/// The broker confirmed an event.
pub struct EventPublished<'a> {
    pub routing_key: &'a str,
    /// From publish to the broker's confirm.
    pub confirm_latency: Duration,
}

impl InternalEvent for EventPublished<'_> {
    fn emit(self) {
        debug!(
            routing_key = self.routing_key,
            confirm_ms = millis(self.confirm_latency),
            "event confirmed"
        );
        counter!("wfp_deployer_events_published_total", "routing_key" => self.routing_key.to_string())
            .increment(1);
        histogram!("wfp_deployer_publish_confirm_seconds")
            .record(self.confirm_latency.as_secs_f64());
    }
}

/// An event was not confirmed by the broker: the job goes back to the queue.
pub struct EventNotConfirmed<'a> {
    pub routing_key: &'a str,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for EventNotConfirmed<'_> {
    fn emit(self) {
        error!(
            routing_key = self.routing_key,
            error = %self.error,
            "event not confirmed; the job goes back to the queue"
        );
        counter!("wfp_deployer_events_unconfirmed_total", "routing_key" => self.routing_key.to_string())
            .increment(1);
    }
}

/// A `deploy.progress` event was not confirmed: it is lost, which the
/// contract allows (the deploy goes on; the next one says more).
pub struct ProgressNotPublished<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for ProgressNotPublished<'_> {
    fn emit(self) {
        warn!(error = %self.error, "progress event lost");
        counter!("wfp_deployer_progress_events_lost_total").increment(1);
    }
}

/// The `reply_to` copy of a terminal event could not be delivered; the
/// events exchange still has the event.
pub struct ReplyToNotDelivered<'a> {
    pub event_id: &'a str,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for ReplyToNotDelivered<'_> {
    fn emit(self) {
        warn!(event_id = self.event_id, error = %self.error, "reply_to copy not delivered");
        counter!("wfp_deployer_reply_to_failures_total").increment(1);
    }
}

/// The worker consumes from the jobs queue.
pub struct BrokerConsuming<'a> {
    pub queue: &'a str,
    pub prefetch: u16,
}

impl InternalEvent for BrokerConsuming<'_> {
    fn emit(self) {
        info!(
            queue = self.queue,
            prefetch = self.prefetch,
            "amqp: consuming"
        );
    }
}

/// The broker connection was lost (or never made); the next try is in `delay`.
pub struct BrokerReconnect<'a> {
    pub attempt: u32,
    pub delay: Duration,
    pub reason: &'a str,
}

impl InternalEvent for BrokerReconnect<'_> {
    fn emit(self) {
        warn!(
            attempt = self.attempt,
            delay_ms = millis(self.delay),
            reason = self.reason,
            "amqp: reconnecting"
        );
        counter!("wfp_deployer_broker_reconnects_total").increment(1);
    }
}

/// Retrying the broker cannot help (bad credentials, a refused topology).
pub struct BrokerGaveUp<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for BrokerGaveUp<'_> {
    fn emit(self) {
        error!(error = %self.error, "amqp: giving up");
    }
}

/// An ack or nack could not be sent; the broker redelivers the job.
pub struct BrokerActionFailed<'a> {
    pub action: &'static str,
    /// `None` when the channel had closed already.
    pub error: Option<&'a dyn std::fmt::Display>,
}

impl InternalEvent for BrokerActionFailed<'_> {
    fn emit(self) {
        match self.error {
            Some(error) => warn!(
                action = self.action,
                error = %error,
                "broker action failed; the broker redelivers the job"
            ),
            None => warn!(
                action = self.action,
                "channel closed before the broker action; the broker redelivers the job"
            ),
        }
        counter!("wfp_deployer_broker_action_failures_total", "action" => self.action).increment(1);
    }
}

/// A job's copy (to a delay queue, or parked in the dead-letter queue) was
/// not confirmed: the job goes back to the queue.
pub struct RerouteNotConfirmed<'a> {
    /// `retry` or `park`.
    pub destination: &'static str,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for RerouteNotConfirmed<'_> {
    fn emit(self) {
        error!(
            destination = self.destination,
            error = %self.error,
            "the job's copy was not confirmed; the job goes back to the queue"
        );
        counter!("wfp_deployer_reroutes_unconfirmed_total", "destination" => self.destination)
            .increment(1);
    }
}
