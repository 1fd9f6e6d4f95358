//! The consume loop: one delivery in, one deploy, its events out, then the
//! broker action; with bounded concurrency, reconnection and a graceful
//! shutdown.
//!
//! Per delivery, in this order (the core invariant): decode; publish
//! `deploy.started` (confirmed); deploy; publish the terminal event
//! (confirmed, plus the `reply_to` copy); only then ack. If an event is not
//! confirmed the job is nacked with requeue and comes back, so no job ends
//! without its event on the bus. [`disposition`] is the one place that picks
//! the broker action.
//!
//! Shutdown follows mini-redis: one [`CancellationToken`] handed down; the
//! loop watches it only while waiting for a delivery, so running deploys
//! finish, and a [`TaskTracker`] says when they all did.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicNackOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Span, error, info, warn};

use crate::amqp::{self, AmqpError, ConfirmedPublisher, DeliveryMeta};
use crate::config::{AmqpSettings, RetrySettings, Settings};
use crate::contract::{DeployJob, ErrorCode, FailureInfo, Step, decode_job};
use crate::events::{self, EventBuilder, EventError, EventPublisher};
use crate::pipeline::{Deploy, Outcome, Success};
use crate::retry::RetryPolicy;

/// How long a job whose event was not confirmed waits before it is
/// requeued.
const REQUEUE_PAUSE: Duration = Duration::from_secs(1);

/// The first wait before reconnecting (full jitter draws below it).
const RECONNECT_INITIAL_DELAY: Duration = Duration::from_millis(200);

/// Why the worker stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the worker cannot run, retrying would not help: {0}")]
    Broker(AmqpError),
}

/// What the broker is told about a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done: the terminal event is confirmed.
    Ack,
    /// Not done: nack with requeue, the job comes back.
    Requeue,
}

/// The one decision about a delivery's fate. `result` is the deploy's result
/// (an invalid job is a failure), `None` when the deploy never ran (its
/// `deploy.started` was not confirmed); `event` is the confirm of the last
/// event published. A job is acked only once its terminal event is
/// confirmed; failed jobs too, as their `deploy.failed` says all there is.
pub fn disposition(
    result: Option<&Result<Success, FailureInfo>>,
    event: &Result<(), EventError>,
) -> Disposition {
    match (result, event) {
        (Some(_), Ok(())) => Disposition::Ack,
        (Some(_), Err(_)) | (None, _) => Disposition::Requeue,
    }
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

/// Consumes jobs and deploys them with a [`Deploy`].
pub struct Worker {
    amqp: AmqpSettings,
    concurrency: u16,
    instance: String,
    events: EventBuilder,
    deployer: Arc<dyn Deploy>,
    ready: watch::Sender<bool>,
}

/// What each job task needs; cheap to clone.
#[derive(Clone)]
struct JobContext {
    events: EventBuilder,
    publisher: EventPublisher,
    deployer: Arc<dyn Deploy>,
}

/// A connection ready to consume.
struct Session {
    connection: Arc<lapin::Connection>,
    publisher: Arc<ConfirmedPublisher>,
    channel: lapin::Channel,
    consumer: lapin::Consumer,
    tag: String,
}

enum SessionEnd {
    Shutdown,
    Lost(String),
}

impl Worker {
    pub fn new(settings: &Settings, deployer: Arc<dyn Deploy>) -> Self {
        let instance = settings.worker.instance_name();
        Self {
            amqp: settings.amqp.clone(),
            concurrency: settings.worker.concurrency.max(1),
            events: EventBuilder::new(&instance, &settings.cloudflare.account_id),
            instance,
            deployer,
            ready: watch::Sender::new(false),
        }
    }

    /// A handle that tells when the worker consumes.
    pub fn ready(&self) -> Ready {
        Ready(self.ready.subscribe())
    }

    /// Connects, declares the topology and consumes until `shutdown` is
    /// cancelled; then stops consuming, lets running deploys finish (events
    /// published, acks sent), closes channels and connection, and returns.
    ///
    /// A lost connection is re-established with capped, jittered back-off
    /// (each attempt logged). Errors only when retrying cannot help: bad URL
    /// or credentials, or a topology the broker refuses (`PRECONDITION_FAILED`:
    /// a queue exists with other arguments).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        // Second concurrency bound, in process: at most `concurrency` deploys
        // at once, also across a reconnection while old deploys still run.
        // (The first bound is the broker's prefetch, in `open_consumer`.)
        let permits = Arc::new(Semaphore::new(usize::from(self.concurrency)));
        let tracker = TaskTracker::new();
        let mut backoff = self.backoff();
        let mut attempt = 0u32;
        let result = loop {
            let reason = match self.session(&permits, &tracker, &shutdown).await {
                Ok(SessionEnd::Shutdown) => break Ok(()),
                Ok(SessionEnd::Lost(reason)) => {
                    // It worked until now: start the back-off afresh.
                    backoff = self.backoff();
                    attempt = 0;
                    reason
                }
                Err(e) if e.is_fatal() => {
                    error!(error = %e, "amqp: giving up");
                    break Err(WorkerError::Broker(e));
                }
                Err(e) => e.to_string(),
            };
            self.ready.send_replace(false);
            attempt += 1;
            let delay = backoff.next().unwrap_or(self.amqp.reconnect_max_delay);
            warn!(attempt, delay_ms = delay.as_millis() as u64, %reason, "amqp: reconnecting");
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                _ = tokio::time::sleep(delay) => {}
            }
        };
        self.ready.send_replace(false);
        tracker.close();
        tracker.wait().await;
        result
    }

    fn backoff(&self) -> crate::retry::FullJitter {
        use backon::BackoffBuilder;
        RetryPolicy::new(&RetrySettings {
            max_attempts: usize::MAX,
            initial_delay: RECONNECT_INITIAL_DELAY.min(self.amqp.reconnect_max_delay),
            max_delay: self.amqp.reconnect_max_delay,
            max_retry_after: self.amqp.reconnect_max_delay,
        })
        .build()
    }

    /// Connects, declares the topology, opens the publisher and the
    /// consumer: everything a session needs before its first delivery.
    async fn connect(&self) -> Result<Session, AmqpError> {
        let connection = Arc::new(amqp::connect_as(&self.amqp, &self.instance).await?);
        let setup = connection
            .create_channel()
            .await
            .map_err(|error| AmqpError::Channel {
                purpose: "topology",
                error,
            })?;
        amqp::declare_topology(&setup, &self.amqp).await?;
        let _ = setup.close(200, "topology declared".into()).await;

        let publisher = Arc::new(
            ConfirmedPublisher::open(connection.clone(), self.amqp.confirm_timeout).await?,
        );
        let tag = format!(
            "{}/{}/{}",
            amqp::CONNECTION_NAME,
            self.instance,
            uuid::Uuid::new_v4()
        );
        let (channel, consumer) =
            amqp::open_consumer(&connection, &self.amqp, self.concurrency, &tag).await?;
        Ok(Session {
            connection,
            publisher,
            channel,
            consumer,
            tag,
        })
    }

    /// One connection's life: set up, consume until shutdown or loss.
    async fn session(
        &self,
        permits: &Arc<Semaphore>,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Result<SessionEnd, AmqpError> {
        // Setting up is not worth finishing once asked to stop.
        let session = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
            session = self.connect() => session?,
        };
        let Session {
            connection,
            publisher,
            channel,
            mut consumer,
            tag,
        } = session;
        let ctx = JobContext {
            events: self.events.clone(),
            publisher: EventPublisher::new(publisher.clone(), &self.amqp.events_exchange),
            deployer: self.deployer.clone(),
        };
        self.ready.send_replace(true);
        info!(queue = %self.amqp.jobs_queue, prefetch = self.concurrency, "amqp: consuming");

        let end = loop {
            let next = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break SessionEnd::Shutdown,
                next = consumer.next() => next,
            };
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(e)) => break SessionEnd::Lost(format!("consumer: {e}")),
                None => break SessionEnd::Lost("the broker cancelled the consumer".into()),
            };
            let permit = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    settle(&delivery, Disposition::Requeue).await;
                    break SessionEnd::Shutdown;
                }
                permit = permits.clone().acquire_owned() => permit,
            };
            let Ok(permit) = permit else {
                settle(&delivery, Disposition::Requeue).await;
                break SessionEnd::Shutdown;
            };
            tracker.spawn(handle(ctx.clone(), delivery, permit));
        };
        self.ready.send_replace(false);
        if let SessionEnd::Shutdown = end {
            info!("shutting down: no new jobs, waiting for running deploys");
            let _ = channel
                .basic_cancel(tag.into(), BasicCancelOptions::default())
                .await;
            tracker.close();
            tracker.wait().await;
            publisher.close().await;
            let _ = channel.close(200, "shutting down".into()).await;
            let _ = connection.close(200, "shutting down".into()).await;
            info!("stopped");
        }
        Ok(end)
    }
}

/// One delivery, start to broker action. The permit is held until the job
/// is settled.
#[tracing::instrument(name = "job", skip_all, fields(job_id, namespace, script, attempt))]
async fn handle(ctx: JobContext, delivery: Delivery, _permit: OwnedSemaphorePermit) {
    let received = Instant::now();
    let meta = DeliveryMeta::of(&delivery.properties);
    Span::current().record("attempt", meta.attempt);
    let action = match decode_job(&delivery.data) {
        Ok(job) => run_job(&ctx, &job, &meta).await,
        Err(invalid) => {
            let event = ctx
                .events
                .invalid(&invalid, &meta, received.elapsed(), Utc::now());
            Span::current().record("job_id", event.body.data.job.job_id.as_str());
            warn!(error = %invalid, "invalid job");
            let published = ctx
                .publisher
                .publish(&event, meta.reply_to.as_deref())
                .await;
            log_terminal(&published, "deploy.failed (invalid_job)");
            disposition(Some(&Err(events::invalid_failure(&invalid))), &published)
        }
    };
    if action == Disposition::Requeue {
        // The broker refused or lost an event; an instant redelivery would
        // most likely meet the same broker trouble. A short pause (the job
        // stays unacked, its slot taken) keeps a broken event path from
        // spinning every job through its delivery limit in milliseconds.
        tokio::time::sleep(REQUEUE_PAUSE).await;
    }
    settle(&delivery, action).await;
}

async fn run_job(ctx: &JobContext, job: &DeployJob, meta: &DeliveryMeta) -> Disposition {
    let span = Span::current();
    span.record("job_id", job.job_id.as_str());
    span.record("namespace", job.namespace.as_str());
    span.record("script", job.script_name.as_str());

    let started = ctx.events.started(job, meta, Utc::now());
    if let Err(e) = ctx.publisher.publish(&started, None).await {
        error!(error = %e, "deploy.started not confirmed; the job goes back to the queue");
        return disposition(None, &Err(e));
    }
    let outcome = deploy_guarded(ctx.deployer.clone(), job, meta.attempt).await;
    let event = ctx.events.terminal(job, meta, &outcome, Utc::now());
    let published = ctx
        .publisher
        .publish(&event, meta.reply_to.as_deref())
        .await;
    let what = match &outcome.result {
        Ok(_) => "deploy.succeeded".to_string(),
        Err(f) => format!("deploy.failed ({}, step {})", f.code, f.step),
    };
    log_terminal(&published, &what);
    disposition(Some(&outcome.result), &published)
}

/// Runs the deploy in a task of its own, so even a panic (a bug: `Deploy`
/// promises not to) becomes an `internal` failure instead of killing the
/// worker with the job unsettled.
async fn deploy_guarded(deployer: Arc<dyn Deploy>, job: &DeployJob, attempt: u32) -> Outcome {
    let started = Instant::now();
    let owned = job.clone();
    match tokio::spawn(async move { deployer.deploy(&owned, attempt).await }).await {
        Ok(outcome) => outcome,
        Err(e) => {
            error!(error = %e, "the deploy task died");
            Outcome {
                account_id: job.account_id.clone(),
                duration: started.elapsed(),
                result: Err(FailureInfo {
                    code: ErrorCode::Internal,
                    message: format!("deploy: the task died ({e})"),
                    step: Step::Deploy,
                    retryable: false,
                }),
            }
        }
    }
}

fn log_terminal(published: &Result<(), EventError>, what: &str) {
    match published {
        Ok(()) => info!(event = what, "job done"),
        Err(e) => {
            error!(error = %e, event = what, "terminal event not confirmed; the job goes back to the queue")
        }
    }
}

/// Sends the broker action. A failure is logged only: the broker redelivers
/// any delivery whose channel closed unsettled.
async fn settle(delivery: &Delivery, action: Disposition) {
    let sent = match action {
        Disposition::Ack => delivery.acker.ack(BasicAckOptions::default()).await,
        Disposition::Requeue => {
            let requeue = BasicNackOptions {
                requeue: true,
                multiple: false,
            };
            delivery.acker.nack(requeue).await
        }
    };
    match sent {
        Ok(true) => {}
        Ok(false) => warn!(
            ?action,
            "channel closed before the broker action; the broker redelivers the job"
        ),
        Err(e) => warn!(?action, error = %e, "broker action failed; the broker redelivers the job"),
    }
}

#[cfg(test)]
mod tests;
