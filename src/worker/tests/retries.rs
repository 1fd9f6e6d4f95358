//! Retries and parks through `process_one`: the event, then the copy, then
//! the ack, each confirmed; the copy is the delivered message byte for byte.
use super::*;

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

#[tokio::test]
async fn a_body_over_the_size_limit_is_parked_unparsed() {
    let h = Harness::new(Script::Succeed, &[]);
    // Valid JSON, one byte over the limit: never parsed, so never deployed.
    let mut body = job("big-1");
    let padding = usize::try_from(MAX_JOB_BYTES).unwrap() + 1 - body.len();
    body.splice(1..1, std::iter::repeat_n(b' ', padding));
    assert_eq!(body.len() as u64, MAX_JOB_BYTES + 1);
    let processed = h.process_as(&body, 1, &properties()).await;
    assert_eq!(processed, done(Disposition::Park, ACK));
    assert_eq!(h.log(), ["publish deploy.failed", "park invalid_job"]);
    let error = h.last_error();
    assert_eq!(
        error.message,
        "job: 4097 bytes, over the limit of 4096 (amqp.max_job_bytes); not parsed"
    );
    assert_eq!(h.events()[0].body.id, "msg-1:failed", "named by message_id");
    assert_eq!(h.copies()[0].body, body);

    // At the limit it is a job like any other.
    body.remove(1);
    let h = Harness::new(Script::Succeed, &[]);
    let processed = h.process_as(&body, 1, &properties()).await;
    assert_eq!(processed, done(Disposition::Ack, ACK));
}

#[tokio::test(start_paused = true)]
async fn a_deploy_over_the_job_timeout_fails_retryably_at_its_step_and_is_retried() {
    let h = Harness::new(Script::Hang, &[]);
    let processed = h.process_as(&job("stuck-2"), 1, &properties()).await;
    assert_eq!(
        processed,
        done(Disposition::RetryLater { delay: secs(10) }, ACK)
    );
    let error = h.last_error();
    assert_eq!(
        (error.code, error.step, error.retryable),
        (ErrorCode::Internal, Step::Upload, true)
    );
    assert_eq!(error.message, "upload: job timed out after 15m");
    assert_eq!(h.log().last().unwrap(), "retry 10s as attempt 2");
}
