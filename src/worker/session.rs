//! The connection's life: connect, declare the topology, consume until
//! shutdown or loss, reconnect with back-off, and on shutdown let running
//! deploys finish — within the grace — before closing.
//!
//! Each delivery is handed to its own task ([`super::job`]), bounded twice:
//! the broker's prefetch and an in-process semaphore.

use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use futures::StreamExt;
use lapin::options::BasicCancelOptions;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::job::{JobContext, Settle, handle, settle};
use super::reroute::BrokerReroute;
use super::{Worker, WorkerError};
use crate::amqp::{self, AmqpError, ConfirmedPublisher};
use crate::events::EventPublisher;
use crate::internal_events::{BrokerConsuming, BrokerGaveUp, BrokerReconnect, emit};
use crate::retry::{FullJitter, RetryPolicy};

/// The first wait before reconnecting (full jitter draws below it).
const RECONNECT_INITIAL_DELAY: Duration = Duration::from_millis(200);

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

/// The job tasks of every session of one run.
struct Jobs {
    /// Second concurrency bound, in process: at most `concurrency` deploys
    /// at once, also across a reconnection while old deploys still run.
    /// (The first bound is the broker's prefetch, in `open_consumer`.)
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    /// Stops the deploys still running when shutdown's grace is over.
    abandon: CancellationToken,
}

impl Jobs {
    /// Waits up to `grace` for every job to settle; then stops the deploys
    /// still running (their jobs are requeued) and waits for those to
    /// settle, which takes at most a confirm timeout. No new job starts.
    async fn drain(&self, grace: Duration) {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return;
        }
        warn!(
            grace_ms = grace.as_millis() as u64,
            running = self.tracker.len(),
            "shutdown grace over: stopping the deploys still running; their jobs go back to the queue"
        );
        self.abandon.cancel();
        self.tracker.wait().await;
    }
}

impl Worker {
    /// Connects, declares the topology and consumes until `shutdown` is
    /// cancelled; then stops consuming, lets running deploys finish (events
    /// published, acks sent) within `worker.shutdown_grace`, requeues those
    /// that did not, closes channels and connection, and returns.
    ///
    /// A lost connection is re-established with capped, jittered back-off
    /// (each attempt logged). Errors only when retrying cannot help: bad URL
    /// or credentials, or a topology the broker refuses (`PRECONDITION_FAILED`:
    /// a queue exists with other arguments).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let jobs = Jobs {
            permits: Arc::new(Semaphore::new(usize::from(self.concurrency))),
            tracker: TaskTracker::new(),
            abandon: CancellationToken::new(),
        };
        let mut backoff = self.backoff();
        let mut attempt = 0u32;
        let result = loop {
            let reason = match self.session(&jobs, &shutdown).await {
                Ok(SessionEnd::Shutdown) => break Ok(()),
                Ok(SessionEnd::Lost(reason)) => {
                    // It worked until now: start the back-off afresh.
                    backoff = self.backoff();
                    attempt = 0;
                    reason
                }
                Err(e) if e.is_fatal() => {
                    emit(BrokerGaveUp { error: &e });
                    break Err(WorkerError::Broker(e));
                }
                Err(e) => e.to_string(),
            };
            self.ready.send_replace(false);
            attempt += 1;
            let delay = backoff.next().unwrap_or(self.amqp.reconnect_max_delay);
            emit(BrokerReconnect {
                attempt,
                delay,
                reason: &reason,
            });
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                _ = tokio::time::sleep(delay) => {}
            }
        };
        self.ready.send_replace(false);
        // Jobs of a lost session may still run (their acks cannot reach the
        // broker any more, but their events can).
        jobs.drain(self.shutdown_grace).await;
        result
    }

    /// The waits between reconnects: capped, jittered, never running out
    /// (the loop stops on shutdown or a fatal error, not after N tries).
    fn backoff(&self) -> FullJitter {
        let max = self.amqp.reconnect_max_delay;
        RetryPolicy::unlimited(RECONNECT_INITIAL_DELAY.min(max), max).build()
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
        self.topology.declare(&setup).await?;
        let _ = setup.close(200, "topology declared".into()).await;

        let publisher = Arc::new(
            ConfirmedPublisher::open(connection.clone(), self.amqp.confirm_timeout)
                .await?
                .redeclaring(self.topology.clone()),
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
        jobs: &Jobs,
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
            publisher: Arc::new(
                EventPublisher::new(publisher.clone(), &self.amqp.events_exchange)
                    .refusing_reply_to(self.topology.own_queues()),
            ),
            reroute: Arc::new(BrokerReroute::new(publisher.clone(), &self.amqp)),
            deployer: self.deployer.clone(),
            default_account: self.default_account.clone(),
            retries: self.retries.clone(),
            max_job_bytes: self.amqp.max_job_bytes,
            abandon: jobs.abandon.clone(),
            job_timeout: self.job_timeout,
            progress: self.progress,
        };
        self.ready.send_replace(true);
        emit(BrokerConsuming {
            queue: &self.amqp.jobs_queue,
            prefetch: self.concurrency,
        });

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
                    settle(&delivery, Settle::Requeue).await;
                    break SessionEnd::Shutdown;
                }
                permit = jobs.permits.clone().acquire_owned() => permit,
            };
            let Ok(permit) = permit else {
                settle(&delivery, Settle::Requeue).await;
                break SessionEnd::Shutdown;
            };
            jobs.tracker.spawn(handle(ctx.clone(), delivery, permit));
        };
        self.ready.send_replace(false);
        if let SessionEnd::Shutdown = end {
            info!(
                grace_ms = self.shutdown_grace.as_millis() as u64,
                "shutting down: no new jobs, waiting for running deploys"
            );
            let _ = channel
                .basic_cancel(tag.into(), BasicCancelOptions::default())
                .await;
            jobs.drain(self.shutdown_grace).await;
            // Every event and copy is confirmed by now; deliveries the
            // consumer had not handed out yet go back with the channel.
            publisher.close().await;
            let _ = channel.close(200, "shutting down".into()).await;
            let _ = connection.close(200, "shutting down".into()).await;
            info!("stopped");
        }
        Ok(end)
    }
}
