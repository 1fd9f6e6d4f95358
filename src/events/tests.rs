//! Event building and the AMQP properties each event carries.
use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::BasicProperties;

use super::build::invalid_job_id;
use super::*;
use crate::amqp::DeliveryMeta;
use crate::contract::{DeployJob, ErrorCode, FailureInfo, InvalidJob, Step, Success, decode_job};

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

fn job(correlation: Option<&str>) -> DeployJob {
    let mut body = serde_json::json!({
        "version": 1, "job_id": "acme-42", "namespace": "customers",
        "script_name": "acme-site", "bundle": {"bucket": "sites", "prefix": "acme/"},
        "labels": {"tenant": "acme"}
    });
    if let Some(id) = correlation {
        body["correlation_id"] = id.into();
    }
    decode_job(body.to_string().as_bytes()).unwrap()
}

fn meta(attempt: u32) -> DeliveryMeta {
    DeliveryMeta {
        message_id: Some("msg-1".into()),
        correlation_id: Some("amqp-corr".into()),
        reply_to: None,
        attempt,
        first_failure: None,
    }
}

fn now() -> DateTime<Utc> {
    "2026-01-02T03:04:05Z".parse().unwrap()
}

fn builder() -> EventBuilder {
    EventBuilder::new("host-1")
}

fn header(props: &BasicProperties, name: &str) -> Option<String> {
    crate::amqp::header_str(props, name)
}

#[test]
fn started_carries_job_fields_attempt_and_the_resolved_account() {
    let event = builder()
        .job(&job(Some("req-1")), ACCOUNT, &meta(3))
        .started(now());
    assert_eq!(event.kind, EventKind::Started);
    let data = &event.body.data;
    assert_eq!(data.attempt, 3);
    assert_eq!(data.job.correlation_id.as_deref(), Some("req-1"));
    assert_eq!(
        data.job.account_id.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(
        data.job.labels.get("tenant").map(String::as_str),
        Some("acme")
    );
    assert_eq!(data.duration_ms, None);
    assert_eq!(event.body.id, "acme-42:started:3");
}

#[test]
fn properties_follow_the_contract() {
    let event = builder()
        .job(&job(Some("req-1")), ACCOUNT, &meta(1))
        .started(now());
    let props = properties(&event.body, now());
    assert_eq!(
        props.content_type().as_ref().unwrap().as_str(),
        CONTENT_TYPE
    );
    assert_eq!(*props.delivery_mode(), Some(2));
    assert_eq!(
        props.message_id().as_ref().unwrap().as_str(),
        "acme-42:started:1"
    );
    assert_eq!(
        props.kind().as_ref().unwrap().as_str(),
        "wfp.deploy.started"
    );
    assert_eq!(props.correlation_id().as_ref().unwrap().as_str(), "req-1");
    assert_eq!(*props.timestamp(), Some(1_767_323_045));
    assert_eq!(props.app_id().as_ref().unwrap().as_str(), "wfp-deployer");
    assert_eq!(header(&props, "job_id").as_deref(), Some("acme-42"));
    assert_eq!(header(&props, "namespace").as_deref(), Some("customers"));
    assert_eq!(header(&props, "script_name").as_deref(), Some("acme-site"));
}

#[test]
fn correlation_id_falls_back_to_the_amqp_one() {
    let event = builder().job(&job(None), ACCOUNT, &meta(1)).started(now());
    assert_eq!(
        event.body.data.job.correlation_id.as_deref(),
        Some("amqp-corr")
    );
    let props = properties(&event.body, now());
    assert_eq!(
        props.correlation_id().as_ref().unwrap().as_str(),
        "amqp-corr"
    );
}

#[test]
fn an_overlong_correlation_id_stays_in_the_body_only() {
    let long = "c".repeat(256);
    let event = builder()
        .job(&job(Some(&long)), ACCOUNT, &meta(1))
        .started(now());
    let props = properties(&event.body, now());
    assert_eq!(*props.correlation_id(), None);
    assert_eq!(
        event.body.data.job.correlation_id.as_deref(),
        Some(long.as_str())
    );
}

#[test]
fn terminal_events_come_from_how_the_deploy_ended() {
    let other = "ffffffffffffffffffffffffffffffff";
    let builder = builder();
    let events = builder.job(&job(None), other, &meta(2));
    let failed = Err(FailureInfo::new(
        ErrorCode::CloudflareRejected,
        Step::Session,
        false,
        "session: HTTP 400",
    ));
    let event = events.terminal(&failed, Duration::from_millis(1500), now());
    assert_eq!(event.kind, EventKind::Failed);
    assert_eq!(event.body.id, "acme-42:failed");
    let data = &event.body.data;
    assert_eq!(data.duration_ms, Some(1500));
    assert_eq!(data.attempt, 2);
    assert_eq!(data.job.account_id.as_deref(), Some(other));
    assert_eq!(
        data.error.as_ref().unwrap().code,
        ErrorCode::CloudflareRejected
    );
    assert!(data.manifest.is_none());

    let succeeded = Ok(Success {
        manifest: crate::contract::ManifestSummary {
            files: 1,
            bytes: 2,
            sha256: "ab".into(),
            cache_hits: None,
            bytes_read: None,
        },
        upload: Default::default(),
        deployment: Default::default(),
    });
    let event = events.terminal(&succeeded, Duration::from_millis(7), now());
    assert_eq!(event.kind, EventKind::Succeeded);
    assert_eq!(event.body.id, "acme-42:succeeded");
    assert_eq!(event.body.data.manifest.as_ref().unwrap().files, 1);
    assert!(event.body.data.upload.is_some() && event.body.data.deployment.is_some());
    assert!(event.body.data.error.is_none());
    assert_eq!(event.body.data.duration_ms, Some(7));
}

#[test]
fn invalid_jobs_use_the_best_id_available() {
    let mut invalid = InvalidJob {
        job_id: Some("from-body".into()),
        message: "namespace: missing".into(),
        ..InvalidJob::default()
    };
    assert_eq!(invalid_job_id(&invalid, &meta(1)), "from-body");
    invalid.job_id = None;
    assert_eq!(invalid_job_id(&invalid, &meta(1)), "msg-1");
    let mut long_id = meta(1);
    long_id.message_id = Some("m".repeat(200));
    let generated = invalid_job_id(&invalid, &long_id);
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let none = DeliveryMeta::default();
    assert!(uuid::Uuid::parse_str(&invalid_job_id(&invalid, &none)).is_ok());
}

#[test]
fn invalid_event_is_a_permanent_validate_failure() {
    let invalid = InvalidJob {
        correlation_id: Some("c-9".into()),
        message: "job is not valid JSON: expected value".into(),
        ..InvalidJob::default()
    };
    let event = builder().invalid(&invalid, &meta(1), Duration::ZERO, now());
    assert_eq!(event.kind, EventKind::Failed);
    assert_eq!(event.body.id, "msg-1:failed");
    let error = event.body.data.error.as_ref().unwrap();
    assert_eq!(
        (error.code, error.step, error.retryable),
        (ErrorCode::InvalidJob, Step::Validate, false)
    );
    assert!(error.message.contains("not valid JSON"));
    assert_eq!(event.body.data.job.correlation_id.as_deref(), Some("c-9"));
    let props = properties(&event.body, now());
    assert_eq!(header(&props, "job_id").as_deref(), Some("msg-1"));
    assert_eq!(header(&props, "namespace"), None);
}

#[test]
fn retrying_carries_the_error_and_when_the_next_attempt_is_due() {
    let retryable = FailureInfo::new(
        ErrorCode::StorageError,
        Step::List,
        true,
        "s3://sites/acme/: connection reset",
    );
    let next = "2026-01-02T03:05:05Z".parse().unwrap();
    let event = builder()
        .job(&job(Some("req-1")), ACCOUNT, &meta(2))
        .retrying(&retryable, next, now());
    assert_eq!(event.kind, EventKind::Retrying);
    assert!(!event.kind.is_terminal());
    assert_eq!(event.body.id, "acme-42:retrying:2");
    let data = &event.body.data;
    assert_eq!(data.attempt, 2);
    assert_eq!(data.error.as_ref(), Some(&retryable));
    assert_eq!(
        data.next_attempt_at.as_deref(),
        Some("2026-01-02T03:05:05.000Z")
    );
    assert_eq!(data.duration_ms, None);
    let props = properties(&event.body, now());
    assert_eq!(
        props.kind().as_ref().unwrap().as_str(),
        "wfp.deploy.retrying"
    );
    assert_eq!(
        props.message_id().as_ref().unwrap().as_str(),
        "acme-42:retrying:2"
    );
}

#[test]
fn reply_to_gets_terminal_events_unless_it_names_a_queue_of_the_worker() {
    let own = vec![
        "wfp.deploy.jobs".to_string(),
        "wfp.deploy.jobs.dlq".to_string(),
    ];
    assert_eq!(
        reply_target(EventKind::Succeeded, Some("replies"), &own),
        Some("replies")
    );
    assert_eq!(
        reply_target(EventKind::Failed, Some("replies"), &own),
        Some("replies")
    );
    assert_eq!(
        reply_target(EventKind::Started, Some("replies"), &own),
        None
    );
    assert_eq!(
        reply_target(EventKind::Retrying, Some("replies"), &own),
        None
    );
    assert_eq!(reply_target(EventKind::Succeeded, None, &own), None);
    // Regression: a reply_to naming the jobs queue put the event copy in
    // the jobs queue, which then failed as a job.
    for queue in &own {
        assert_eq!(reply_target(EventKind::Failed, Some(queue), &own), None);
    }
}

#[test]
fn an_event_carries_at_most_the_bounded_error_message() {
    // A failure built by hand (its fields are public) skips the bound of
    // `FailureInfo::new`; the builder still cuts it, so the event fits the
    // broker's message size limit.
    let failure = FailureInfo {
        code: ErrorCode::BundleInvalid,
        message: format!("bundle: {}", "x".repeat(40 * 1024 * 1024)),
        step: Step::List,
        retryable: false,
    };
    let event =
        builder()
            .job(&job(None), ACCOUNT, &meta(1))
            .terminal(&Err(failure), Duration::ZERO, now());
    let message = &event.body.data.error.as_ref().unwrap().message;
    assert!(message.starts_with("bundle: xxx"));
    assert!(
        message.ends_with("… (41943048 bytes in all)"),
        "{message:.40}"
    );
    let size = serde_json::to_vec(&event.body).unwrap().len();
    assert!(size < 16 * 1024, "{size} bytes");

    let invalid = InvalidJob {
        message: "y".repeat(1_000_000),
        ..InvalidJob::default()
    };
    let event = builder().invalid(&invalid, &meta(1), Duration::ZERO, now());
    let size = serde_json::to_vec(&event.body).unwrap().len();
    assert!(size < 16 * 1024, "{size} bytes");
}
