//! One pass over the dead-letter queue: every message read once, the
//! selected ones requeued or purged, the rest put back.
//!
//! Messages are taken with `basic.get` and manual acks, and those left
//! alone stay unacknowledged on the sweep's channel until the end, so the
//! pass reads each message once (an unacked message is not handed out
//! again) and then returns them all with one `basic.nack(requeue)`. Every
//! error path closes the channel, which returns whatever is unacked: a
//! sweep that fails half-way loses nothing.
//!
//! Returning a message to a quorum queue may count as a delivery. RabbitMQ
//! 4.0 to 4.2 count every return against a default `x-delivery-limit` of
//! 20 and drop the message past it (the dead-letter queue has no
//! dead-letter exchange of its own), so a job listed twenty times would be
//! gone. A message read back with [`REFRESH_AT`] deliveries or more is
//! therefore not returned but copied to the queue's tail (confirmed) and
//! the old copy acked: its count starts again. RabbitMQ 4.3 and later no
//! longer count a `basic.nack` at all; 3.x has no default limit.

use std::time::Duration;

use chrono::Utc;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, ConfirmSelectOptions};
use lapin::types::DeliveryTag;
use lapin::{Channel, Connection};
use serde::Serialize;

use super::DlqError;
use super::entry::ParkedJob;
use super::headers::{self, DELIVERY_COUNT};
use crate::amqp::{AmqpError, Message, Target, publish_confirmed};
use crate::config::AmqpSettings;

/// Deliveries after which a message read back is refreshed rather than
/// returned: well under RabbitMQ 4.0's default delivery limit of 20.
pub const REFRESH_AT: u64 = 10;

/// What to do with the selected messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Only read (list, show).
    Keep,
    /// Publish to the jobs exchange (confirmed, routed), then ack.
    Requeue,
    /// Ack: the message is gone.
    Purge,
}

/// Which messages an action applies to: all of them, or those matching
/// every criterion given (ids are alternatives). Nothing given selects
/// nothing, so a forgotten flag never purges the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub all: bool,
    pub ids: Vec<String>,
    pub code: Option<String>,
    pub older_than: Option<Duration>,
}

impl Selection {
    pub fn matches(&self, job: &ParkedJob, now: chrono::DateTime<Utc>) -> bool {
        if self.all {
            return true;
        }
        if self.ids.is_empty() && self.code.is_none() && self.older_than.is_none() {
            return false;
        }
        let old_enough = |min: &Duration| {
            let min = chrono::Duration::from_std(*min).unwrap_or(chrono::Duration::MAX);
            job.age(now).is_some_and(|age| age >= min)
        };
        (self.ids.is_empty() || self.ids.contains(&job.id))
            && self
                .code
                .as_deref()
                .is_none_or(|code| job.reason.code() == Some(code))
            && self.older_than.as_ref().is_none_or(old_enough)
    }
}

/// What a sweep saw and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sweep {
    /// Messages left in the queue, in queue order.
    pub kept: Vec<ParkedJob>,
    /// Messages requeued or purged.
    pub acted: Vec<ParkedJob>,
    /// Kept messages copied to the tail to reset their delivery count.
    pub refreshed: usize,
    /// Whether the limit stopped the pass before the end of the queue.
    pub more: bool,
}

fn broker(settings: &AmqpSettings) -> impl Fn(lapin::Error) -> DlqError + '_ {
    move |error| DlqError::Broker {
        queue: settings.dead_letter_queue.clone(),
        error,
    }
}

/// Runs one pass on a channel of its own (see the module doc), reading at
/// most `limit` messages.
pub(super) async fn sweep(
    connection: &Connection,
    settings: &AmqpSettings,
    selection: &Selection,
    action: Action,
    limit: usize,
) -> Result<Sweep, DlqError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|error| AmqpError::Channel {
            purpose: "dead-letter queue",
            error,
        })?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(broker(settings))?;
    let result = pass(&channel, settings, selection, action, limit).await;
    // Returns whatever an error left unacked, too.
    let _ = channel.close(200, "done".into()).await;
    result
}

async fn pass(
    channel: &Channel,
    settings: &AmqpSettings,
    selection: &Selection,
    action: Action,
    limit: usize,
) -> Result<Sweep, DlqError> {
    let queue = settings.dead_letter_queue.as_str();
    let timeout = settings.confirm_timeout;
    let now = Utc::now();
    let mut sweep = Sweep::default();
    let mut held: Option<DeliveryTag> = None;
    // The queue's length at the first read bounds the pass, so refreshed
    // copies (at the tail) and jobs parked meanwhile are left for next time.
    let mut budget: Option<u64> = None;
    let mut read = 0u64;
    loop {
        if budget.is_some_and(|b| read >= b) {
            break;
        }
        if read >= limit as u64 {
            sweep.more = budget.is_none_or(|b| read < b);
            break;
        }
        let got = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await
            .map_err(broker(settings))?;
        let Some(message) = got else { break };
        read += 1;
        budget.get_or_insert(u64::from(message.message_count) + 1);
        let delivery = message.delivery;
        let job = ParkedJob::read(&delivery.data, &delivery.properties);
        let ack = |tag| channel.basic_ack(tag, BasicAckOptions::default());
        // A copy of this message, confirmed and taken by a queue.
        let republish = |target, properties| {
            let copy = Message::mandatory(&delivery.data, properties);
            publish_confirmed(channel, target, copy, timeout)
        };
        if action != Action::Keep && selection.matches(&job, now) {
            if action == Action::Requeue {
                let properties = headers::requeue_properties(&delivery.properties);
                let (exchange, key) = (&settings.jobs_exchange, &settings.jobs_routing_key);
                republish(Target::new(exchange, key), properties).await?;
            }
            // Only now: the job is in the jobs queue (or meant to be gone).
            ack(delivery.delivery_tag).await.map_err(broker(settings))?;
            sweep.acted.push(job);
            continue;
        }
        let returns = delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| headers::count(h, DELIVERY_COUNT))
            .unwrap_or(0);
        if delivery.redelivered && returns >= REFRESH_AT {
            let properties = headers::refreshed_properties(&delivery.properties);
            republish(Target::new("", queue), properties).await?;
            ack(delivery.delivery_tag).await.map_err(broker(settings))?;
            sweep.refreshed += 1;
        } else {
            held = Some(delivery.delivery_tag);
        }
        sweep.kept.push(job);
    }
    if let Some(tag) = held {
        let back = BasicNackOptions {
            multiple: true,
            requeue: true,
        };
        channel
            .basic_nack(tag, back)
            .await
            .map_err(broker(settings))?;
    }
    Ok(sweep)
}

#[cfg(test)]
mod tests {
    use lapin::BasicProperties;

    use super::*;

    fn job(id: &str, code: &str, age_minutes: i64) -> ParkedJob {
        let mut job = ParkedJob::read(
            format!(r#"{{"job_id":"{id}"}}"#).as_bytes(),
            &BasicProperties::default(),
        );
        job.reason = super::super::Reason::Parked {
            code: code.into(),
            message: String::new(),
            step: None,
        };
        job.parked_at = Some(Utc::now() - chrono::Duration::minutes(age_minutes));
        job
    }

    #[test]
    fn nothing_given_selects_nothing() {
        let now = Utc::now();
        assert!(!Selection::default().matches(&job("a", "internal", 5), now));
        let all = Selection {
            all: true,
            ..Selection::default()
        };
        assert!(all.matches(&job("a", "internal", 5), now));
    }

    #[test]
    fn every_criterion_given_must_hold() {
        let now = Utc::now();
        let s = Selection {
            ids: vec!["a".into(), "b".into()],
            code: Some("storage_error".into()),
            older_than: Some(Duration::from_secs(600)),
            ..Selection::default()
        };
        assert!(s.matches(&job("b", "storage_error", 11), now));
        assert!(!s.matches(&job("c", "storage_error", 11), now), "id");
        assert!(!s.matches(&job("a", "internal", 11), now), "code");
        assert!(!s.matches(&job("a", "storage_error", 9), now), "age");
        let by_code = Selection {
            code: Some("internal".into()),
            ..Selection::default()
        };
        assert!(by_code.matches(&job("z", "internal", 0), now));
    }
}
