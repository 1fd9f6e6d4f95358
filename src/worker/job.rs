//! One delivery's handling, from its body to the broker action.
//!
//! [`process_one`] does everything but talk to the delivery's acker: decode,
//! resolve the account once, `deploy.started` (confirmed) before the deploy,
//! then the [`disposition`] of how it went, carried out: the event that ends
//! this delivery's handling (`deploy.succeeded`, `deploy.failed` or
//! `deploy.retrying`, confirmed), and for a retry or a parked message its
//! copy in a delay queue or the dead-letter queue (confirmed). Only once all
//! of that is confirmed is the delivery acked; otherwise it is requeued.
//! [`handle`] wraps it for a real delivery and tells the acker. Tests drive
//! `process_one` with a scripted deployer, publisher and reroute.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Span;

use super::disposition::{Disposition, Handled, RetrySchedule, disposition};
use super::reroute::{ParkReason, Reroute, park_properties, retry_properties};
use crate::amqp::DeliveryMeta;
use crate::contract::{DeployJob, EventKind, FailureInfo, InvalidJob, decode_job};
use crate::events::{Event, EventBuilder, Publish};
use crate::internal_events::{
    BrokerActionFailed, DeployAbandoned, DeployPanicked, DeployTimedOut, EventNotConfirmed,
    InvalidJobReceived, JobOutcome, JobSettled, JobStarted, RerouteNotConfirmed, emit,
};
use crate::pipeline::{self, Deploy, DeployObserver, Outcome};

/// How long a job whose event or copy was not confirmed waits before it is
/// requeued.
const REQUEUE_PAUSE: Duration = Duration::from_secs(1);

/// What the delivery's acker is told, once everything its disposition
/// published is confirmed (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Ack,
    /// Nack with requeue: the broker delivers the job again.
    Requeue,
}

/// What became of one delivery: its fate, and what the acker was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processed {
    pub disposition: Disposition,
    pub settle: Settle,
}

/// One delivery as the broker gave it.
#[derive(Debug, Clone)]
pub(super) struct Received<'a> {
    pub(super) body: &'a [u8],
    pub(super) properties: &'a BasicProperties,
    pub(super) meta: DeliveryMeta,
}

/// What each job task needs; cheap to clone.
#[derive(Clone)]
pub(super) struct JobContext {
    pub(super) events: EventBuilder,
    pub(super) publisher: Arc<dyn Publish>,
    pub(super) reroute: Arc<dyn Reroute>,
    pub(super) deployer: Arc<dyn Deploy>,
    /// The configured account, for jobs that name none.
    pub(super) default_account: Arc<str>,
    pub(super) retries: RetrySchedule,
    /// Largest body parsed (`amqp.max_job_bytes`).
    pub(super) max_job_bytes: u64,
    /// Cancelled when shutdown's grace runs out: deploys still running stop
    /// and their jobs are requeued.
    pub(super) abandon: CancellationToken,
    /// Longest a deploy may run (`worker.job_timeout`).
    pub(super) job_timeout: Duration,
    /// Whether deploys publish `deploy.progress` (`events.progress`).
    pub(super) progress: bool,
}

/// One delivery, start to broker action. The permit is held until the job
/// is settled.
#[tracing::instrument(
    name = "job",
    skip_all,
    fields(job_id, namespace, script, attempt, correlation_id)
)]
pub(super) async fn handle(ctx: JobContext, delivery: Delivery, _permit: OwnedSemaphorePermit) {
    let meta = DeliveryMeta::of(
        &delivery.properties,
        delivery.redelivered,
        ctx.retries.max_attempts(),
    );
    let received = Instant::now();
    emit(JobStarted);
    Span::current().record("attempt", meta.attempt);
    let message = Received {
        body: &delivery.data,
        properties: &delivery.properties,
        meta,
    };
    let processed = process_one(&ctx, &message).await;
    if processed.settle == Settle::Requeue {
        emit(JobSettled {
            outcome: JobOutcome::Requeued,
            duration: received.elapsed(),
        });
    }
    if processed.settle == Settle::Requeue && !ctx.abandon.is_cancelled() {
        // The broker refused or lost an event; an instant redelivery would
        // most likely meet the same broker trouble. A short pause (the job
        // stays unacked, its slot taken) keeps a broken event path from
        // spinning every job through its delivery limit in milliseconds.
        tokio::time::sleep(REQUEUE_PAUSE).await;
    }
    settle(&delivery, processed.settle).await;
}

/// One delivery handled up to the broker action it calls for, which the
/// caller sends.
pub(super) async fn process_one(ctx: &JobContext, message: &Received<'_>) -> Processed {
    let received = Instant::now();
    match decode(message.body, ctx.max_job_bytes) {
        Ok(job) => run_job(ctx, &job, message, received).await,
        Err(invalid) => {
            let event = ctx
                .events
                .invalid(&invalid, &message.meta, received.elapsed(), Utc::now());
            Span::current().record("job_id", event.body.data.job.job_id.as_str());
            emit(InvalidJobReceived { error: &invalid });
            let failure = FailureInfo::invalid_job(invalid.message.clone());
            let handled = Handled::Invalid(&failure);
            let action = disposition(&handled, message.meta.attempt, &ctx.retries);
            conclude(ctx, message, action, &handled, &event, received).await
        }
    }
}

/// The job in `body`, unless the body is over `max_bytes`: then it is not
/// parsed at all, since parsing JSON can take many times a body's size in
/// memory.
fn decode(body: &[u8], max_bytes: u64) -> Result<DeployJob, Box<InvalidJob>> {
    let size = u64::try_from(body.len()).unwrap_or(u64::MAX);
    if size > max_bytes {
        return Err(Box::new(InvalidJob {
            message: format!(
                "job: {size} bytes, over the limit of {max_bytes} (amqp.max_job_bytes); not parsed"
            ),
            ..InvalidJob::default()
        }));
    }
    decode_job(body)
}

async fn run_job(
    ctx: &JobContext,
    job: &DeployJob,
    message: &Received<'_>,
    received: Instant,
) -> Processed {
    let job = &ordered(job, message.properties);
    let span = Span::current();
    span.record("job_id", job.job_id.as_str());
    span.record("namespace", job.namespace.as_str());
    span.record("script", job.script_name.as_str());
    let meta = &message.meta;
    // The job's own, else the AMQP property (already checked by the rules).
    if let Some(id) = job
        .correlation_id
        .as_deref()
        .or(meta.correlation_id.as_deref())
    {
        span.record("correlation_id", id);
    }

    // Once, here: `deploy.started`, the deploy and the terminal event all
    // name this account, whatever happens in between.
    let account_id = pipeline::account_for(job, &ctx.default_account);
    let events = ctx.events.job(job, &account_id, meta);
    if let Err(e) = ctx
        .publisher
        .publish(&events.started(Utc::now()), None)
        .await
    {
        emit(EventNotConfirmed {
            routing_key: EventKind::Started.routing_key(),
            error: &e,
        });
        let handled = Handled::StartedNotConfirmed;
        return Processed {
            disposition: disposition(&handled, meta.attempt, &ctx.retries),
            settle: Settle::Requeue,
        };
    }
    let observer = DeployObserver::new();
    let deploy = deploy_guarded(ctx, job, &account_id, meta.attempt, &observer);
    let outcome = if ctx.progress {
        super::progress::alongside(deploy, ctx.publisher.as_ref(), &events, &observer).await
    } else {
        deploy.await
    };
    let Some(outcome) = outcome else {
        emit(DeployAbandoned);
        let handled = Handled::Abandoned;
        return Processed {
            disposition: disposition(&handled, meta.attempt, &ctx.retries),
            settle: Settle::Requeue,
        };
    };
    let handled = match &outcome.result {
        Ok(_) => Handled::Succeeded,
        Err(failure) => Handled::Failed(failure),
    };
    let action = disposition(&handled, meta.attempt, &ctx.retries);
    let now = Utc::now();
    let event = match (action, &outcome.result) {
        (Disposition::RetryLater { delay }, Err(failure)) => {
            events.retrying(failure, now + delay, now)
        }
        _ => events.terminal(&outcome.result, outcome.duration, now),
    };
    conclude(ctx, message, action, &handled, &event, received).await
}

/// The job with the time that orders it among its script's builds: its own
/// `created_at`, else the AMQP `timestamp` property its producer set
/// (which a retry's copy keeps); with neither it stays unordered.
fn ordered<'a>(job: &'a DeployJob, properties: &BasicProperties) -> Cow<'a, DeployJob> {
    match (job.created_at, crate::amqp::timestamp(properties)) {
        (None, Some(at)) => Cow::Owned(DeployJob {
            created_at: Some(at),
            ..job.clone()
        }),
        _ => Cow::Borrowed(job),
    }
}

/// Carries out `disposition`, decided from `handled`: `event` (the one
/// that ends this delivery's handling), then the copy the disposition calls
/// for, then the ack; a step the broker does not confirm stops there and
/// requeues the delivery instead.
async fn conclude(
    ctx: &JobContext,
    message: &Received<'_>,
    disposition: Disposition,
    handled: &Handled<'_>,
    event: &Event,
    received: Instant,
) -> Processed {
    let meta = &message.meta;
    let requeue = Processed {
        disposition,
        settle: Settle::Requeue,
    };
    if disposition == Disposition::Requeue {
        return requeue;
    }
    if let Err(e) = ctx.publisher.publish(event, meta.reply_to.as_deref()).await {
        emit(EventNotConfirmed {
            routing_key: event.kind.routing_key(),
            error: &e,
        });
        return requeue;
    }
    let now = Utc::now();
    let first_failure = meta.first_failure.unwrap_or(now);
    let copied = match (disposition, handled) {
        (Disposition::RetryLater { delay }, _) => {
            let next = meta.attempt.saturating_add(1);
            let properties = retry_properties(message.properties, next, first_failure);
            ctx.reroute
                .retry_later(delay, message.body, properties)
                .await
        }
        (Disposition::Park, Handled::Failed(failure) | Handled::Invalid(failure)) => {
            let reason = ParkReason {
                failure,
                attempts: meta.attempt,
                first_failure,
                last_failure: now,
            };
            let properties = park_properties(message.properties, &reason);
            ctx.reroute.park(message.body, properties).await
        }
        _ => Ok(()),
    };
    if let Err(e) = copied {
        emit(RerouteNotConfirmed {
            destination: match disposition {
                Disposition::RetryLater { .. } => "retry",
                _ => "park",
            },
            error: &e,
        });
        return requeue;
    }
    let code = match handled {
        Handled::Failed(failure) | Handled::Invalid(failure) => Some(failure.code),
        _ => None,
    };
    let outcome = match (disposition, code) {
        (Disposition::RetryLater { .. }, Some(code)) => JobOutcome::Retrying(code),
        (Disposition::Park, Some(code)) => JobOutcome::Parked(code),
        (_, Some(code)) => JobOutcome::Failed(code),
        (_, None) => JobOutcome::Succeeded,
    };
    emit(JobSettled {
        outcome,
        duration: received.elapsed(),
    });
    Processed {
        disposition,
        settle: Settle::Ack,
    }
}

/// Runs the deploy in a task of its own, so even a panic (a bug: `Deploy`
/// promises not to) becomes an `internal` failure, at the step the deploy
/// last reported, instead of killing the worker with the job unsettled. A
/// deploy still running after `ctx.job_timeout` is stopped (the task is
/// aborted, which drops it where it was) and fails as a retryable
/// `internal` at its step, before RabbitMQ's `consumer_timeout` would close
/// the channel. `None` when `ctx.abandon` stopped it first (or before it
/// began).
async fn deploy_guarded(
    ctx: &JobContext,
    job: &DeployJob,
    account_id: &str,
    attempt: u32,
    observer: &DeployObserver,
) -> Option<Outcome> {
    if ctx.abandon.is_cancelled() {
        return None;
    }
    let started = Instant::now();
    let mut task = {
        let deployer = ctx.deployer.clone();
        let (job, account_id, observer) = (job.clone(), account_id.to_string(), observer.clone());
        tokio::spawn(async move { deployer.deploy(&job, &account_id, attempt, &observer).await })
    };
    let joined = tokio::select! {
        joined = &mut task => joined,
        _ = ctx.abandon.cancelled() => {
            task.abort();
            return None;
        }
        _ = tokio::time::sleep(ctx.job_timeout) => {
            task.abort();
            let step = observer.current_step();
            emit(DeployTimedOut {
                step,
                timeout: ctx.job_timeout,
            });
            return Some(Outcome {
                duration: started.elapsed(),
                result: Err(FailureInfo::timed_out(step, ctx.job_timeout)),
            });
        }
    };
    Some(match joined {
        Ok(outcome) => outcome,
        Err(e) => {
            let step = observer.current_step();
            emit(DeployPanicked { step, error: &e });
            Outcome {
                duration: started.elapsed(),
                result: Err(FailureInfo::bug(
                    step,
                    format!("{step}: the deploy task died ({e})"),
                )),
            }
        }
    })
}

/// Sends the broker action. A failure is logged only: the broker redelivers
/// any delivery whose channel closed unsettled.
pub(super) async fn settle(delivery: &Delivery, action: Settle) {
    let sent = match action {
        Settle::Ack => delivery.acker.ack(BasicAckOptions::default()).await,
        Settle::Requeue => {
            let requeue = BasicNackOptions {
                requeue: true,
                multiple: false,
            };
            delivery.acker.nack(requeue).await
        }
    };
    let action = match action {
        Settle::Ack => "ack",
        Settle::Requeue => "requeue",
    };
    match sent {
        Ok(true) => {}
        Ok(false) => emit(BrokerActionFailed {
            action,
            error: None,
        }),
        Err(e) => emit(BrokerActionFailed {
            action,
            error: Some(&e),
        }),
    }
}
