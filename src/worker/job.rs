//! One delivery's handling, from its body to the broker action.
//!
//! [`process_one`] does everything but talk to the broker's acker: decode,
//! resolve the account once, `deploy.started` (confirmed) before the deploy,
//! the terminal event (confirmed) after it, and the [`Disposition`] that
//! follows. [`handle`] wraps it for a real delivery and sends that action,
//! so nothing is acked before its terminal event is confirmed. Tests drive
//! `process_one` with a scripted deployer and publisher.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio::sync::OwnedSemaphorePermit;
use tracing::Span;

use crate::amqp::DeliveryMeta;
use crate::contract::{DeployJob, ErrorCode, EventKind, FailureInfo, InvalidJob, decode_job};
use crate::events::{EventBuilder, EventError, Publish};
use crate::internal_events::{
    BrokerActionFailed, DeployPanicked, EventNotConfirmed, InvalidJobReceived, JobOutcome,
    JobSettled, JobStarted, emit,
};
use crate::pipeline::{self, Deploy, DeployObserver, Outcome};

/// How long a job whose event was not confirmed waits before it is
/// requeued.
const REQUEUE_PAUSE: Duration = Duration::from_secs(1);

/// What the broker is told about a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done: the terminal event is confirmed.
    Ack,
    /// Not done: nack with requeue, the job comes back.
    Requeue,
}

/// How far a delivery's handling got: all its broker action depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// `deploy.started` was not confirmed, so the deploy never ran.
    StartedNotConfirmed,
    /// The job ended (deployed, failed, or not a valid job) and its terminal
    /// event was published; `confirmed` says whether the broker took it.
    Terminal { confirmed: bool },
}

/// The one decision about a delivery's fate. A job is acked only once its
/// terminal event is confirmed; failed jobs too, as their `deploy.failed`
/// says all there is. Anything else comes back.
pub fn disposition(handled: Handled) -> Disposition {
    match handled {
        Handled::Terminal { confirmed: true } => Disposition::Ack,
        Handled::Terminal { confirmed: false } | Handled::StartedNotConfirmed => {
            Disposition::Requeue
        }
    }
}

/// What each job task needs; cheap to clone.
#[derive(Clone)]
pub(super) struct JobContext {
    pub(super) events: EventBuilder,
    pub(super) publisher: Arc<dyn Publish>,
    pub(super) deployer: Arc<dyn Deploy>,
    /// The configured account, for jobs that name none.
    pub(super) default_account: Arc<str>,
}

/// One delivery, start to broker action. The permit is held until the job
/// is settled.
#[tracing::instrument(name = "job", skip_all, fields(job_id, namespace, script, attempt))]
pub(super) async fn handle(ctx: JobContext, delivery: Delivery, _permit: OwnedSemaphorePermit) {
    let received = Instant::now();
    emit(JobStarted);
    let meta = DeliveryMeta::of(&delivery.properties);
    Span::current().record("attempt", meta.attempt);
    let action = process_one(&ctx, &delivery.data, &meta).await;
    if action == Disposition::Requeue {
        emit(JobSettled {
            outcome: JobOutcome::Requeued,
            duration: received.elapsed(),
        });
        // The broker refused or lost an event; an instant redelivery would
        // most likely meet the same broker trouble. A short pause (the job
        // stays unacked, its slot taken) keeps a broken event path from
        // spinning every job through its delivery limit in milliseconds.
        tokio::time::sleep(REQUEUE_PAUSE).await;
    }
    settle(&delivery, action).await;
}

/// One delivery's body and properties, handled up to the broker action it
/// calls for, which the caller sends.
pub(super) async fn process_one(ctx: &JobContext, body: &[u8], meta: &DeliveryMeta) -> Disposition {
    let received = Instant::now();
    let handled = match decode_job(body) {
        Ok(job) => run_job(ctx, &job, meta).await,
        Err(invalid) => report_invalid(ctx, &invalid, meta, received).await,
    };
    disposition(handled)
}

/// A message that is not a valid job: its `deploy.failed`, nothing else.
async fn report_invalid(
    ctx: &JobContext,
    invalid: &InvalidJob,
    meta: &DeliveryMeta,
    received: Instant,
) -> Handled {
    let event = ctx
        .events
        .invalid(invalid, meta, received.elapsed(), Utc::now());
    Span::current().record("job_id", event.body.data.job.job_id.as_str());
    emit(InvalidJobReceived { error: invalid });
    let published = ctx
        .publisher
        .publish(&event, meta.reply_to.as_deref())
        .await;
    settled(
        &published,
        JobOutcome::Failed(ErrorCode::InvalidJob),
        received.elapsed(),
    );
    Handled::Terminal {
        confirmed: published.is_ok(),
    }
}

async fn run_job(ctx: &JobContext, job: &DeployJob, meta: &DeliveryMeta) -> Handled {
    let span = Span::current();
    span.record("job_id", job.job_id.as_str());
    span.record("namespace", job.namespace.as_str());
    span.record("script", job.script_name.as_str());

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
        return Handled::StartedNotConfirmed;
    }
    let outcome = deploy_guarded(ctx.deployer.clone(), job, &account_id, meta.attempt).await;
    let event = events.terminal(&outcome.result, outcome.duration, Utc::now());
    let published = ctx
        .publisher
        .publish(&event, meta.reply_to.as_deref())
        .await;
    let outcome_kind = match &outcome.result {
        Ok(_) => JobOutcome::Succeeded,
        Err(f) => JobOutcome::Failed(f.code),
    };
    settled(&published, outcome_kind, outcome.duration);
    Handled::Terminal {
        confirmed: published.is_ok(),
    }
}

/// Runs the deploy in a task of its own, so even a panic (a bug: `Deploy`
/// promises not to) becomes an `internal` failure, at the step the deploy
/// last reported, instead of killing the worker with the job unsettled.
async fn deploy_guarded(
    deployer: Arc<dyn Deploy>,
    job: &DeployJob,
    account_id: &str,
    attempt: u32,
) -> Outcome {
    let started = Instant::now();
    let observer = DeployObserver::new();
    let task = {
        let (job, account_id, observer) = (job.clone(), account_id.to_string(), observer.clone());
        tokio::spawn(async move { deployer.deploy(&job, &account_id, attempt, &observer).await })
    };
    match task.await {
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
    }
}

/// The terminal event's confirm decides: a confirmed one settles the job
/// (acked next); an unconfirmed one sends it back (counted as requeued by
/// [`handle`]).
fn settled(published: &Result<(), EventError>, outcome: JobOutcome, duration: Duration) {
    match published {
        Ok(()) => emit(JobSettled { outcome, duration }),
        Err(e) => emit(EventNotConfirmed {
            routing_key: match outcome {
                JobOutcome::Succeeded => EventKind::Succeeded.routing_key(),
                _ => EventKind::Failed.routing_key(),
            },
            error: e,
        }),
    }
}

/// Sends the broker action. A failure is logged only: the broker redelivers
/// any delivery whose channel closed unsettled.
pub(super) async fn settle(delivery: &Delivery, action: Disposition) {
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
    let action = match action {
        Disposition::Ack => "ack",
        Disposition::Requeue => "requeue",
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
