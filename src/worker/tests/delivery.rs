//! One delivery through `process_one`: events confirmed before the deploy
//! and before the ack, invalid messages, panics.
use super::*;

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
async fn a_deploy_stopped_by_shutdown_is_requeued_without_a_terminal_event() {
    let h = Harness::new(Script::Hang, &[]);
    let abandon = h.ctx.abandon.clone();
    let stop = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        abandon.cancel();
    });
    let processed = h.process(&job("stuck-1")).await;
    stop.await.unwrap();
    assert_eq!(processed, done(Disposition::Requeue, REQUEUE));
    assert_eq!(
        h.log(),
        [
            "publish deploy.started".to_string(),
            deploy_entry("stuck-1")
        ]
    );

    // Once shutdown's grace is over, no deploy starts at all.
    let h = Harness::new(Script::Succeed, &[]);
    h.ctx.abandon.cancel();
    let processed = h.process(&job("late-1")).await;
    assert_eq!(processed, done(Disposition::Requeue, REQUEUE));
    assert_eq!(h.log(), ["publish deploy.started"]);
}

#[tokio::test]
async fn the_amqp_timestamp_orders_a_job_without_created_at_and_never_overrides_it() {
    let h = Harness::new(Script::Succeed, &[]);
    let stamped = properties().with_timestamp(1_764_064_800);
    h.process_as(&job("stamped-1"), 1, &stamped).await;
    let mut body: serde_json::Value = serde_json::from_slice(&job("own-1")).unwrap();
    body["created_at"] = "2026-01-02T03:04:05.5Z".into();
    h.process_as(body.to_string().as_bytes(), 1, &stamped).await;
    h.process_as(&job("unordered-1"), 1, &properties()).await;
    let ordered: Vec<String> = h
        .log()
        .into_iter()
        .filter(|e| e.starts_with("deploy ") || e.starts_with("ordered "))
        .collect();
    assert_eq!(
        ordered,
        [
            deploy_entry("stamped-1"),
            "ordered by 2025-11-25T10:00:00+00:00".to_string(),
            deploy_entry("own-1"),
            "ordered by 2026-01-02T03:04:05.500+00:00".to_string(),
            deploy_entry("unordered-1"),
        ]
    );
}
