//! The worker's handling of one delivery without a broker: the decision
//! ([`decision`]), and `process_one` driven with a scripted deployer and a
//! scripted publisher (which also takes retries and parks) that write what
//! they see to one log, so the order of events, deploy, copies and broker
//! action is asserted ([`delivery`], [`retries`]). This file is the harness
//! they share.

mod decision;
mod delivery;
mod retries;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use tokio_util::sync::CancellationToken;

use super::job::{JobContext, Processed, Received, Settle, process_one};
use super::reroute::Reroute;
use super::*;
use crate::amqp::Target;
use crate::amqp::{ATTEMPT_HEADER, DeliveryMeta, FIRST_FAILURE_HEADER, PublishError, header_str};
use crate::contract::{
    DeployJob, DeploymentInfo, ErrorCode, EventKind, FailureInfo, ManifestSummary, Step, Success,
    UploadSummary,
};
use crate::events::{Event, EventError, Publish};
use crate::pipeline::{DeployObserver, Outcome};

const DEFAULT_ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
/// The harness's `amqp.max_job_bytes`.
const MAX_JOB_BYTES: u64 = 4096;
/// The harness's `worker.job_timeout`.
const JOB_TIMEOUT: Duration = Duration::from_secs(900);

pub(super) fn schedule() -> RetrySchedule {
    RetrySchedule::new(vec![secs(10), secs(60), secs(300)], 5)
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn failure(retryable: bool) -> FailureInfo {
    FailureInfo::new(
        ErrorCode::CloudflareUnavailable,
        Step::Upload,
        retryable,
        "upload: HTTP 503",
    )
}

/// What the scripted parts saw, in order: `publish <routing key>`,
/// `deploy <job id> into <account>` (then `ordered by <created_at>` for an
/// ordered job), `retry <delay> as attempt <n>`, `park <code>`.
type Log = Arc<Mutex<Vec<String>>>;

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// A message the scripted reroute was given.
#[derive(Debug, Clone)]
struct Copy {
    body: Vec<u8>,
    properties: BasicProperties,
}

/// A publisher whose broker confirms every event except those of the
/// `refused` kinds, and takes every retry and park unless `refuse_copies`.
struct ScriptedPublisher {
    log: Log,
    refused: Vec<EventKind>,
    refuse_copies: bool,
    events: Mutex<Vec<Event>>,
    copies: Mutex<Vec<Copy>>,
}

impl ScriptedPublisher {
    /// A refusal, as the real publisher reports a nack.
    fn nack(&self, exchange: &str, routing_key: &str) -> PublishError {
        let target = Target {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
        };
        PublishError::Nacked { target }
    }

    /// Records a retry or park; whether the broker takes it.
    fn copy(&self, entry: String, body: &[u8], properties: BasicProperties) -> bool {
        self.log.lock().unwrap().push(entry);
        self.copies.lock().unwrap().push(Copy {
            body: body.to_vec(),
            properties,
        });
        !self.refuse_copies
    }
}

#[async_trait::async_trait]
impl Publish for ScriptedPublisher {
    async fn publish(&self, event: &Event, _reply_to: Option<&str>) -> Result<(), EventError> {
        let key = event.kind.routing_key();
        self.log.lock().unwrap().push(format!("publish {key}"));
        self.events.lock().unwrap().push(event.clone());
        if !self.refused.contains(&event.kind) {
            return Ok(());
        }
        Err(EventError::Publish {
            id: event.body.id.clone(),
            error: Box::new(self.nack("events", key)),
        })
    }
}

#[async_trait::async_trait]
impl Reroute for ScriptedPublisher {
    async fn retry_later(
        &self,
        delay: Duration,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let attempt = crate::amqp::attempt(&properties, false, u32::MAX);
        let entry = format!("retry {delay:?} as attempt {attempt}");
        match self.copy(entry, body, properties) {
            true => Ok(()),
            false => Err(self.nack("", "copies")),
        }
    }

    async fn park(&self, body: &[u8], properties: BasicProperties) -> Result<(), PublishError> {
        let code = crate::amqp::header_str(&properties, PARK_CODE_HEADER).unwrap_or_default();
        match self.copy(format!("park {code}"), body, properties) {
            true => Ok(()),
            false => Err(self.nack("", "copies")),
        }
    }
}

/// How a scripted deploy ends.
#[derive(Clone, Copy)]
enum Script {
    Succeed,
    Fail,
    /// Fails with a retryable code (Cloudflare unavailable at `upload`).
    FailRetryable,
    /// Reports each step up to this one, then panics.
    PanicAt(Step),
    /// Reports `upload` and never ends (a stalled deploy).
    Hang,
}

struct ScriptedDeployer {
    log: Log,
    script: Script,
}

#[async_trait::async_trait]
impl Deploy for ScriptedDeployer {
    async fn deploy(
        &self,
        job: &DeployJob,
        account_id: &str,
        _attempt: u32,
        observer: &DeployObserver,
    ) -> Outcome {
        self.log
            .lock()
            .unwrap()
            .push(format!("deploy {} into {account_id}", job.job_id));
        if let Some(at) = job.created_at {
            self.log
                .lock()
                .unwrap()
                .push(format!("ordered by {}", at.to_rfc3339()));
        }
        let result = match self.script {
            Script::Succeed => Ok(Success {
                manifest: ManifestSummary {
                    files: 1,
                    bytes: 2,
                    sha256: "ab".repeat(32),
                    cache_hits: None,
                    bytes_read: None,
                },
                upload: UploadSummary::default(),
                deployment: DeploymentInfo::default(),
            }),
            Script::Fail => Err(FailureInfo::new(
                ErrorCode::CloudflareRejected,
                Step::Session,
                false,
                "session for customers/acme-site: HTTP 400",
            )),
            Script::FailRetryable => Err(failure(true)),
            Script::Hang => {
                observer.step(Step::Upload);
                std::future::pending().await
            }
            Script::PanicAt(at) => {
                for step in [Step::Validate, Step::List, Step::Hash, Step::Session] {
                    observer.step(step);
                    if step == at {
                        break;
                    }
                }
                panic!("scripted bug at step {at}");
            }
        };
        Outcome {
            duration: Duration::from_millis(3),
            result,
        }
    }
}

/// One delivery's world: the context `process_one` gets and what it saw.
struct Harness {
    ctx: JobContext,
    log: Log,
    publisher: Arc<ScriptedPublisher>,
}

impl Harness {
    fn new(script: Script, refused: &[EventKind]) -> Self {
        Self::build(script, refused, false)
    }

    /// A harness whose broker refuses every retry and park.
    fn refusing_copies(script: Script) -> Self {
        Self::build(script, &[], true)
    }

    fn build(script: Script, refused: &[EventKind], refuse_copies: bool) -> Self {
        let log = Log::default();
        let publisher = Arc::new(ScriptedPublisher {
            log: log.clone(),
            refused: refused.to_vec(),
            refuse_copies,
            events: Mutex::new(Vec::new()),
            copies: Mutex::new(Vec::new()),
        });
        let deployer = Arc::new(ScriptedDeployer {
            log: log.clone(),
            script,
        });
        let ctx = JobContext {
            events: crate::events::EventBuilder::new("test-host"),
            publisher: publisher.clone(),
            reroute: publisher.clone(),
            deployer,
            default_account: DEFAULT_ACCOUNT.into(),
            retries: schedule(),
            max_job_bytes: MAX_JOB_BYTES,
            abandon: CancellationToken::new(),
            job_timeout: JOB_TIMEOUT,
            progress: false,
        };
        Self {
            ctx,
            log,
            publisher,
        }
    }

    /// Processes `body` as attempt 2 (a redelivery).
    async fn process(&self, body: &[u8]) -> Processed {
        self.process_as(body, 2, &properties()).await
    }

    async fn process_as(
        &self,
        body: &[u8],
        attempt: u32,
        properties: &BasicProperties,
    ) -> Processed {
        let meta = DeliveryMeta {
            message_id: Some("msg-1".into()),
            attempt,
            ..DeliveryMeta::of(properties, false, 5)
        };
        let message = Received {
            body,
            properties,
            meta,
        };
        process_one(&self.ctx, &message).await
    }

    fn log(&self) -> Vec<String> {
        entries(&self.log)
    }

    fn events(&self) -> Vec<Event> {
        self.publisher.events.lock().unwrap().clone()
    }

    fn copies(&self) -> Vec<Copy> {
        self.publisher.copies.lock().unwrap().clone()
    }

    /// The `error` object of the last event published.
    fn last_error(&self) -> FailureInfo {
        let last = self.events().pop().expect("an event was published");
        last.body.data.error.expect("a failed event")
    }
}

/// Delivered properties with a header of the producer's own.
fn properties() -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("tenant".into(), AMQPValue::LongString("acme".into()));
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_message_id("msg-1".into())
        .with_headers(headers)
}

const ACK: Settle = Settle::Ack;
const REQUEUE: Settle = Settle::Requeue;

fn done(disposition: Disposition, settle: Settle) -> Processed {
    Processed {
        disposition,
        settle,
    }
}

fn job(job_id: &str) -> Vec<u8> {
    serde_json::json!({
        "version": 1, "job_id": job_id, "namespace": "customers",
        "script_name": "acme-site", "bundle": {"bucket": "sites", "prefix": "acme/"}
    })
    .to_string()
    .into_bytes()
}

fn deploy_entry(job_id: &str) -> String {
    format!("deploy {job_id} into {DEFAULT_ACCOUNT}")
}
