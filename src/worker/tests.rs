//! The broker decision, and one delivery's handling driven through
//! `process_one` with a scripted deployer and a scripted publisher that
//! write what they see to one log, so the order of events, deploy and
//! broker action is asserted without a broker.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};

use super::job::{JobContext, Received, process_one};
use super::reroute::Reroute;
use super::*;
use crate::amqp::publisher::Target;
use crate::amqp::{ATTEMPT_HEADER, DeliveryMeta, FIRST_FAILURE_HEADER, PublishError, header_str};
use crate::contract::{
    DeployJob, DeploymentInfo, ErrorCode, EventKind, FailureInfo, ManifestSummary, Step, Success,
    UploadSummary,
};
use crate::events::{Event, EventError, Publish};
use crate::pipeline::{DeployObserver, Outcome};
use crate::retry::RetryPolicy;

const DEFAULT_ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

fn schedule() -> RetrySchedule {
    RetrySchedule::new(vec![secs(10), secs(60), secs(300)], 5)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn failure(retryable: bool) -> FailureInfo {
    FailureInfo::new(
        ErrorCode::CloudflareUnavailable,
        Step::Upload,
        retryable,
        "upload: HTTP 503",
    )
}

#[test]
fn a_success_or_a_permanent_failure_is_acked() {
    assert_eq!(
        disposition(&Handled::Succeeded, 1, &schedule()),
        Disposition::Ack
    );
    let permanent = failure(false);
    assert_eq!(
        disposition(&Handled::Failed(&permanent), 1, &schedule()),
        Disposition::Ack
    );
}

#[test]
fn an_unconfirmed_started_requeues() {
    assert_eq!(
        disposition(&Handled::StartedNotConfirmed, 1, &schedule()),
        Disposition::Requeue
    );
}

#[test]
fn a_retryable_failure_retries_later_until_the_last_attempt_then_parks() {
    let retryable = failure(true);
    let failed = Handled::Failed(&retryable);
    let fate = |attempt| disposition(&failed, attempt, &schedule());
    assert_eq!(fate(1), Disposition::RetryLater { delay: secs(10) });
    assert_eq!(fate(2), Disposition::RetryLater { delay: secs(60) });
    assert_eq!(fate(3), Disposition::RetryLater { delay: secs(300) });
    assert_eq!(
        fate(4),
        Disposition::RetryLater { delay: secs(300) },
        "the last delay is reused"
    );
    assert_eq!(fate(5), Disposition::Park);
    assert_eq!(fate(u32::MAX), Disposition::Park);
}

#[test]
fn only_outage_codes_are_retried_by_the_worker() {
    let retried = |code| {
        let failure = FailureInfo::new(code, Step::List, true, "x");
        disposition(&Handled::Failed(&failure), 1, &schedule()) != Disposition::Ack
    };
    assert!(retried(ErrorCode::StorageError));
    assert!(retried(ErrorCode::CloudflareUnavailable));
    assert!(retried(ErrorCode::Internal));
    assert!(
        !retried(ErrorCode::BundleNotFound),
        "retryable by the producer, failed at once"
    );
    let bug = FailureInfo::bug(Step::Upload, "the deploy task died");
    assert_eq!(
        disposition(&Handled::Failed(&bug), 1, &schedule()),
        Disposition::Ack
    );
}

#[test]
fn an_invalid_message_is_parked() {
    let invalid = FailureInfo::invalid_job("job is not valid JSON");
    assert_eq!(
        disposition(&Handled::Invalid(&invalid), 1, &schedule()),
        Disposition::Park
    );
}

#[test]
fn one_attempt_in_all_never_retries() {
    let once = RetrySchedule::new(vec![secs(10)], 1);
    assert_eq!(once.delay_after(1), None);
    let no_delays = RetrySchedule::new(Vec::new(), 0);
    assert_eq!(no_delays.max_attempts(), 1);
    assert_eq!(
        RetrySchedule::new(Vec::new(), 3).delay_after(1),
        Some(secs(60))
    );
}

#[test]
fn the_reconnect_back_off_never_runs_out_and_stays_under_its_cap() {
    let max = Duration::from_secs(2);
    let waits: Vec<_> = RetryPolicy::unlimited(Duration::from_millis(200), max)
        .build()
        .take(10_000)
        .collect();
    assert_eq!(waits.len(), 10_000);
    assert!(waits.iter().all(|w| *w <= max));
}

/// What the scripted parts saw, in order: `publish <routing key>`,
/// `deploy <job id> into <account>`, `retry <delay> as attempt <n>`,
/// `park <code>`.
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
        let result = match self.script {
            Script::Succeed => Ok(Success {
                manifest: ManifestSummary {
                    files: 1,
                    bytes: 2,
                    sha256: "ab".repeat(32),
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

#[tokio::test]
async fn started_is_confirmed_before_the_deploy_and_the_terminal_event_before_the_ack() {
    let h = Harness::new(Script::Succeed, &[]);
    let action = h.process(&job("ok-1")).await;
    // The action exists only once `process_one` returned: the log is
    // complete by then, so the terminal event precedes any ack.
    assert_eq!(action, done(Disposition::Ack, ACK));
    assert_eq!(
        h.log(),
        [
            "publish deploy.started".to_string(),
            deploy_entry("ok-1"),
            "publish deploy.succeeded".to_string(),
        ]
    );
    let events = h.events();
    assert_eq!(events[0].body.id, "ok-1:started:2");
    assert_eq!(events[1].body.id, "ok-1:succeeded");
}

#[tokio::test]
async fn an_unconfirmed_started_requeues_and_the_deploy_never_runs() {
    let h = Harness::new(Script::Succeed, &[EventKind::Started]);
    assert_eq!(
        h.process(&job("blocked-1")).await,
        done(Disposition::Requeue, REQUEUE)
    );
    assert_eq!(h.log(), ["publish deploy.started"]);
}

#[tokio::test]
async fn an_unconfirmed_terminal_event_requeues_after_the_deploy() {
    let h = Harness::new(Script::Succeed, &[EventKind::Succeeded]);
    assert_eq!(
        h.process(&job("lost-1")).await,
        done(Disposition::Ack, REQUEUE)
    );
    assert_eq!(
        h.log(),
        [
            "publish deploy.started".to_string(),
            deploy_entry("lost-1"),
            "publish deploy.succeeded".to_string(),
        ]
    );
}

#[tokio::test]
async fn a_failed_deploy_is_acked_once_its_failed_event_is_confirmed() {
    let h = Harness::new(Script::Fail, &[]);
    assert_eq!(h.process(&job("fail-1")).await, done(Disposition::Ack, ACK));
    assert_eq!(h.log().last().unwrap(), "publish deploy.failed");
    assert_eq!(h.last_error().code, ErrorCode::CloudflareRejected);

    let h = Harness::new(Script::Fail, &[EventKind::Failed]);
    assert_eq!(h.process(&job("fail-2")).await.settle, REQUEUE);
}

#[tokio::test]
async fn an_invalid_job_gets_its_failed_event_and_is_parked_without_a_deploy() {
    let h = Harness::new(Script::Succeed, &[]);
    assert_eq!(h.process(b"not json").await, done(Disposition::Park, ACK));
    assert_eq!(h.log(), ["publish deploy.failed", "park invalid_job"]);
    let event = h.events().pop().unwrap();
    assert_eq!(event.body.id, "msg-1:failed");
    let error = h.last_error();
    assert_eq!(
        (error.code, error.step, error.retryable),
        (ErrorCode::InvalidJob, Step::Validate, false)
    );

    let h = Harness::new(Script::Succeed, &[EventKind::Failed]);
    assert_eq!(h.process(b"not json").await.settle, REQUEUE);
    assert_eq!(h.log(), ["publish deploy.failed"], "nothing parked");
}

#[tokio::test]
async fn a_panic_is_an_internal_failure_at_the_step_it_happened_in() {
    // Regression: a panic was always reported at step `deploy`.
    for step in [Step::Validate, Step::Hash, Step::Session] {
        let h = Harness::new(Script::PanicAt(step), &[]);
        assert_eq!(h.process(&job("panic-1")).await.settle, ACK);
        let error = h.last_error();
        assert_eq!(
            (error.code, error.step, error.retryable),
            (ErrorCode::Internal, step, false)
        );
        assert!(
            error
                .message
                .starts_with(&format!("{step}: the deploy task died")),
            "{}",
            error.message
        );
    }
}

#[tokio::test]
async fn a_panicking_deploy_reports_the_account_deploy_started_named() {
    // Regression: the account was resolved twice, by the events and by the
    // pipeline, and a terminal event without the deploy's account disagreed
    // with `deploy.started`.
    let h = Harness::new(Script::PanicAt(Step::List), &[]);
    h.process(&job("panic-2")).await;
    assert_eq!(h.log()[1], deploy_entry("panic-2"));
    let accounts: Vec<_> = h
        .events()
        .into_iter()
        .map(|e| e.body.data.job.account_id)
        .collect();
    assert_eq!(
        accounts,
        [Some(DEFAULT_ACCOUNT.into()), Some(DEFAULT_ACCOUNT.into())]
    );
}

#[tokio::test]
async fn a_retryable_failure_is_announced_then_sent_to_its_delay_queue_then_acked() {
    let h = Harness::new(Script::FailRetryable, &[]);
    let before = chrono::Utc::now();
    let processed = h.process_as(&job("retry-1"), 1, &properties()).await;
    assert_eq!(
        processed,
        done(Disposition::RetryLater { delay: secs(10) }, ACK)
    );
    assert_eq!(
        h.log(),
        [
            "publish deploy.started".to_string(),
            deploy_entry("retry-1"),
            "publish deploy.retrying".to_string(),
            "retry 10s as attempt 2".to_string(),
        ]
    );
    let retrying = h.events().pop().unwrap();
    assert_eq!(retrying.kind, EventKind::Retrying);
    assert_eq!(retrying.body.id, "retry-1:retrying:1");
    let data = &retrying.body.data;
    assert_eq!(data.attempt, 1);
    assert_eq!(data.error, Some(failure(true)));
    let next: chrono::DateTime<chrono::Utc> =
        data.next_attempt_at.as_deref().unwrap().parse().unwrap();
    let wait = (next - before).num_milliseconds();
    // Less a millisecond: the time is written to the millisecond.
    assert!((9_999..11_000).contains(&wait), "next attempt in {wait} ms");

    // The job itself, byte for byte, with its next attempt and the time it
    // first failed; the producer's own headers kept.
    let copy = h.copies().pop().unwrap();
    assert_eq!(copy.body, job("retry-1"));
    assert_eq!(copy.properties.message_id(), properties().message_id());
    assert_eq!(
        header_str(&copy.properties, "tenant").as_deref(),
        Some("acme")
    );
    let first = header_str(&copy.properties, FIRST_FAILURE_HEADER).unwrap();
    let first: chrono::DateTime<chrono::Utc> = first.parse().unwrap();
    assert!(
        first >= before - chrono::Duration::milliseconds(1),
        "{first}"
    );
}

#[tokio::test]
async fn a_retry_keeps_the_time_of_the_first_failure_and_counts_on() {
    let h = Harness::new(Script::FailRetryable, &[]);
    let mut headers = FieldTable::default();
    let first = "2026-01-02T03:04:05.000Z";
    headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongLongInt(3));
    headers.insert(
        FIRST_FAILURE_HEADER.into(),
        AMQPValue::LongString(first.into()),
    );
    let delivered = properties().with_headers(headers);
    let processed = h.process_as(&job("retry-3"), 3, &delivered).await;
    assert_eq!(
        processed.disposition,
        Disposition::RetryLater { delay: secs(300) }
    );
    assert_eq!(h.log().last().unwrap(), "retry 300s as attempt 4");
    let copy = h.copies().pop().unwrap();
    assert_eq!(
        header_str(&copy.properties, FIRST_FAILURE_HEADER).as_deref(),
        Some(first)
    );
}

#[tokio::test]
async fn the_last_attempt_fails_for_good_and_is_parked_with_the_reason() {
    let h = Harness::new(Script::FailRetryable, &[]);
    let processed = h.process_as(&job("retry-5"), 5, &properties()).await;
    assert_eq!(processed, done(Disposition::Park, ACK));
    assert_eq!(
        h.log()[2..],
        [
            "publish deploy.failed".to_string(),
            "park cloudflare_unavailable".to_string()
        ]
    );
    let failed = h.events().pop().unwrap();
    assert_eq!(failed.body.id, "retry-5:failed");
    assert_eq!(
        failed.body.data.error,
        Some(failure(true)),
        "still retryable"
    );
    let copy = h.copies().pop().unwrap();
    assert_eq!(copy.body, job("retry-5"));
    let header = |name| header_str(&copy.properties, name).unwrap_or_default();
    assert_eq!(header(PARK_STEP_HEADER), "upload");
    assert_eq!(header(PARK_MESSAGE_HEADER), "upload: HTTP 503");
    assert_eq!(
        copy.properties
            .headers()
            .as_ref()
            .unwrap()
            .inner()
            .get(PARK_ATTEMPTS_HEADER),
        Some(&AMQPValue::LongLongInt(5))
    );
    assert!(!header(PARK_FIRST_FAILURE_HEADER).is_empty());
    assert!(!header(PARK_LAST_FAILURE_HEADER).is_empty());
}

#[tokio::test]
async fn nothing_is_acked_before_the_retry_or_the_park_is_confirmed() {
    let h = Harness::refusing_copies(Script::FailRetryable);
    let processed = h.process_as(&job("retry-x"), 1, &properties()).await;
    assert_eq!(
        processed,
        done(Disposition::RetryLater { delay: secs(10) }, REQUEUE)
    );
    let processed = h.process_as(&job("retry-y"), 5, &properties()).await;
    assert_eq!(processed, done(Disposition::Park, REQUEUE));
    let h = Harness::refusing_copies(Script::Succeed);
    assert_eq!(h.process(b"{").await, done(Disposition::Park, REQUEUE));
}

#[tokio::test]
async fn an_unconfirmed_retrying_event_requeues_without_a_copy() {
    let h = Harness::new(Script::FailRetryable, &[EventKind::Retrying]);
    let processed = h.process_as(&job("retry-z"), 1, &properties()).await;
    assert_eq!(processed.settle, REQUEUE);
    assert_eq!(h.log().last().unwrap(), "publish deploy.retrying");
    assert!(h.copies().is_empty());
}

#[tokio::test]
async fn a_poison_message_is_parked_byte_exact() {
    let h = Harness::new(Script::Succeed, &[]);
    let body = b"\xff\xfe not utf-8 \x00".to_vec();
    let processed = h.process_as(&body, 1, &properties()).await;
    assert_eq!(processed, done(Disposition::Park, ACK));
    let copy = h.copies().pop().unwrap();
    assert_eq!(copy.body, body);
    assert_eq!(
        header_str(&copy.properties, PARK_CODE_HEADER).as_deref(),
        Some("invalid_job")
    );
    let without_park: FieldTable = copy
        .properties
        .headers()
        .as_ref()
        .unwrap()
        .inner()
        .iter()
        .filter(|(name, _)| !name.as_str().starts_with("x-wfp-park-"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into();
    assert_eq!(
        copy.properties.clone().with_headers(without_park),
        properties(),
        "every property kept"
    );
}
