//! The consume loop: one delivery in, one deploy, its events out, then the
//! broker action; with bounded concurrency, reconnection and a graceful
//! shutdown.
//!
//! Per delivery, in this order (the core invariant): decode; resolve the
//! job's account once; publish `deploy.started` (confirmed); deploy; publish
//! the event that ends the delivery's handling (confirmed, plus the
//! `reply_to` copy of a terminal one); send the message to a delay queue or
//! the dead-letter queue when its disposition says so (confirmed); only then
//! ack. If anything is not confirmed the job is nacked with requeue and
//! comes back, so no job ends without its event on the bus. [`disposition`]
//! is the one place that picks the broker action: ack, requeue, retry later,
//! park.
//!
//! `session` is the connection's life (connect, consume, reconnect, shut
//! down); `job` is one delivery's handling, with `process_one` as the entry
//! unit tests drive with a scripted deployer, publisher and reroute;
//! `disposition` is the decision and the retry schedule; `reroute` sends a
//! job's own message to a delay queue or the dead-letter queue; `progress`
//! publishes a running deploy's `deploy.progress` events beside it.
//!
//! Shutdown follows mini-redis: one [`CancellationToken`] handed down; the
//! loop watches it only while waiting for a delivery, so running deploys
//! finish, and a [`TaskTracker`] says when they all did — within
//! `worker.shutdown_grace`, after which the deploys still running are
//! stopped and their jobs requeued, so a shutdown is bounded.
//!
//! [`CancellationToken`]: tokio_util::sync::CancellationToken
//! [`TaskTracker`]: tokio_util::task::TaskTracker

mod disposition;
mod job;
mod progress;
mod reroute;
mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::amqp::{AmqpError, Topology};
use crate::config::{AmqpSettings, Settings};
use crate::events::EventBuilder;
use crate::pipeline::Deploy;

pub use disposition::{Disposition, Handled, RetrySchedule, disposition};
pub use reroute::{
    PARK_ATTEMPTS_HEADER, PARK_CODE_HEADER, PARK_FIRST_FAILURE_HEADER, PARK_LAST_FAILURE_HEADER,
    PARK_MESSAGE_HEADER, PARK_STEP_HEADER, ParkReason, park_properties, retry_properties,
};

/// Why the worker stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the worker cannot run, retrying would not help: {0}")]
    Broker(AmqpError),
}

/// Tells when the worker consumes. Take it with [`Worker::ready`] before
/// `run`; tests wait on it instead of sleeping.
#[derive(Debug, Clone)]
pub struct Ready(watch::Receiver<bool>);

impl Ready {
    /// Waits until the worker consumes; `false` if it stopped first.
    pub async fn wait(&mut self) -> bool {
        self.0.wait_for(|ready| *ready).await.is_ok()
    }

    /// Whether the worker consumes now (false while reconnecting).
    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
    }
}

/// Consumes jobs and deploys them with a [`Deploy`]; [`Worker::run`] drives
/// it.
pub struct Worker {
    amqp: AmqpSettings,
    concurrency: u16,
    instance: String,
    events: EventBuilder,
    /// The configured account, for jobs that name none.
    default_account: Arc<str>,
    deployer: Arc<dyn Deploy>,
    retries: RetrySchedule,
    /// How long running deploys may take to finish on shutdown.
    shutdown_grace: Duration,
    /// Longest one deploy may run.
    job_timeout: Duration,
    /// Whether deploys publish `deploy.progress` events.
    progress: bool,
    /// What the worker declares on each connection.
    topology: Topology,
    ready: watch::Sender<bool>,
}

impl Worker {
    pub fn new(settings: &Settings, deployer: Arc<dyn Deploy>) -> Self {
        let instance = settings.worker.instance_name();
        Self {
            amqp: settings.amqp.clone(),
            concurrency: settings.worker.concurrency.max(1),
            events: EventBuilder::new(&instance),
            default_account: settings.cloudflare.account_id.as_str().into(),
            instance,
            deployer,
            retries: RetrySchedule::from_settings(&settings.worker),
            shutdown_grace: settings.worker.shutdown_grace,
            job_timeout: settings.worker.job_timeout,
            progress: settings.events.progress,
            topology: Topology::new(settings),
            ready: watch::Sender::new(false),
        }
    }

    /// A handle that tells when the worker consumes.
    pub fn ready(&self) -> Ready {
        Ready(self.ready.subscribe())
    }
}

#[cfg(test)]
mod tests;
