//! The broker decision, and one delivery's handling driven through
//! `process_one` with a scripted deployer and a scripted publisher that
//! write what they see to one log, so the order of events, deploy and
//! broker action is asserted without a broker.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder;

use super::job::{JobContext, process_one};
use super::*;
use crate::amqp::publisher::Target;
use crate::amqp::{DeliveryMeta, PublishError};
use crate::contract::{
    DeployJob, DeploymentInfo, ErrorCode, EventKind, FailureInfo, ManifestSummary, Step, Success,
    UploadSummary,
};
use crate::events::{Event, EventError, Publish};
use crate::pipeline::{DeployObserver, Outcome};
use crate::retry::RetryPolicy;

const DEFAULT_ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn a_confirmed_terminal_event_acks_whatever_the_outcome() {
    assert_eq!(
        disposition(Handled::Terminal { confirmed: true }),
        Disposition::Ack
    );
}

#[test]
fn an_unconfirmed_event_requeues() {
    assert_eq!(
        disposition(Handled::Terminal { confirmed: false }),
        Disposition::Requeue
    );
    assert_eq!(
        disposition(Handled::StartedNotConfirmed),
        Disposition::Requeue
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
/// `deploy <job id> into <account>`.
type Log = Arc<Mutex<Vec<String>>>;

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// A publisher whose broker confirms every event except those of the
/// `refused` kinds.
struct ScriptedPublisher {
    log: Log,
    refused: Vec<EventKind>,
    events: Mutex<Vec<Event>>,
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
        let target = Target {
            exchange: "events".into(),
            routing_key: key.into(),
        };
        Err(EventError::Publish {
            id: event.body.id.clone(),
            error: Box::new(PublishError::Nacked { target }),
        })
    }
}

/// How a scripted deploy ends.
#[derive(Clone, Copy)]
enum Script {
    Succeed,
    Fail,
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
        let log = Log::default();
        let publisher = Arc::new(ScriptedPublisher {
            log: log.clone(),
            refused: refused.to_vec(),
            events: Mutex::new(Vec::new()),
        });
        let deployer = Arc::new(ScriptedDeployer {
            log: log.clone(),
            script,
        });
        let ctx = JobContext {
            events: crate::events::EventBuilder::new("test-host"),
            publisher: publisher.clone(),
            deployer,
            default_account: DEFAULT_ACCOUNT.into(),
        };
        Self {
            ctx,
            log,
            publisher,
        }
    }

    async fn process(&self, body: &[u8]) -> Disposition {
        let meta = DeliveryMeta {
            message_id: Some("msg-1".into()),
            attempt: 2,
            ..DeliveryMeta::default()
        };
        process_one(&self.ctx, body, &meta).await
    }

    fn log(&self) -> Vec<String> {
        entries(&self.log)
    }

    fn events(&self) -> Vec<Event> {
        self.publisher.events.lock().unwrap().clone()
    }

    /// The `error` object of the last event published.
    fn last_error(&self) -> FailureInfo {
        let last = self.events().pop().expect("an event was published");
        last.body.data.error.expect("a failed event")
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
    assert_eq!(action, Disposition::Ack);
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
    assert_eq!(h.process(&job("blocked-1")).await, Disposition::Requeue);
    assert_eq!(h.log(), ["publish deploy.started"]);
}

#[tokio::test]
async fn an_unconfirmed_terminal_event_requeues_after_the_deploy() {
    let h = Harness::new(Script::Succeed, &[EventKind::Succeeded]);
    assert_eq!(h.process(&job("lost-1")).await, Disposition::Requeue);
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
    assert_eq!(h.process(&job("fail-1")).await, Disposition::Ack);
    assert_eq!(h.log().last().unwrap(), "publish deploy.failed");
    assert_eq!(h.last_error().code, ErrorCode::CloudflareRejected);

    let h = Harness::new(Script::Fail, &[EventKind::Failed]);
    assert_eq!(h.process(&job("fail-2")).await, Disposition::Requeue);
}

#[tokio::test]
async fn an_invalid_job_gets_its_failed_event_and_is_acked_without_a_deploy() {
    let h = Harness::new(Script::Succeed, &[]);
    assert_eq!(h.process(b"not json").await, Disposition::Ack);
    assert_eq!(h.log(), ["publish deploy.failed"]);
    let event = h.events().pop().unwrap();
    assert_eq!(event.body.id, "msg-1:failed");
    let error = h.last_error();
    assert_eq!(
        (error.code, error.step, error.retryable),
        (ErrorCode::InvalidJob, Step::Validate, false)
    );

    let h = Harness::new(Script::Succeed, &[EventKind::Failed]);
    assert_eq!(h.process(b"not json").await, Disposition::Requeue);
}

#[tokio::test]
async fn a_panic_is_an_internal_failure_at_the_step_it_happened_in() {
    // Regression: a panic was always reported at step `deploy`.
    for step in [Step::Validate, Step::Hash, Step::Session] {
        let h = Harness::new(Script::PanicAt(step), &[]);
        assert_eq!(h.process(&job("panic-1")).await, Disposition::Ack);
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
