//! The worker's own topology at run time: declared again when a publish
//! finds part of it deleted, and never written to through a `reply_to`.

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, LongString};
use serde_json::json;

use super::events_log::read_log;
use super::{app, events_until_terminal, stop, timeline};
use crate::helpers::amqp::{connect, queue_depth, wait_for_counts};
use crate::helpers::sim::add_fault;

#[tokio::test]
async fn a_deleted_events_exchange_is_declared_again_and_the_job_deploys() {
    // No progress events: the log read below holds the job's others only.
    let app = app(|s| s.events.progress = false).await;
    app.bucket.put("x/index.html", b"<p>x</p>".to_vec()).await;
    let connection = connect(&app.settings.amqp).await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .exchange_delete(
            app.settings.amqp.events_exchange.as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await
        .expect("delete the events exchange");
    let _ = connection.close(200, "done".into()).await;

    // Regression: every job failed to publish deploy.started, used up its
    // deliveries in seconds and was dead-lettered without being deployed.
    app.publish(&app.job("lost-exchange-1", "lost-exchange", "x/"))
        .await;
    // The tap's binding went with the exchange; the events log's binding is
    // the worker's own, declared again with it.
    let first = AMQPValue::LongString(LongString::from("first"));
    assert_eq!(
        read_log(&app, first, 2).await,
        ["lost-exchange-1:started:1", "lost-exchange-1:succeeded"]
    );
    wait_for_counts(&app.settings.amqp.jobs_queue, (0, 0)).await;
    assert_eq!(
        queue_depth(&app.settings.amqp, &app.settings.amqp.dead_letter_queue).await,
        0
    );
    stop(app).await;
}

#[tokio::test]
async fn a_deleted_delay_queue_is_declared_again_and_the_retry_goes_through() {
    let delay = Duration::from_millis(300);
    let mut app = app(|s| s.worker.retry_delays = vec![delay]).await;
    app.bucket.put("d/index.html", b"<p>d</p>".to_vec()).await;
    let queue = wfp_deployer::amqp::retry_queue_name(&app.settings.amqp.jobs_queue, delay);
    let connection = connect(&app.settings.amqp).await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("delete the delay queue");
    let _ = connection.close(200, "done".into()).await;
    add_fault(
        &app.sim,
        json!({"endpoint": "session", "kind": "status", "status": 503, "count": 3}),
    )
    .await;
    app.publish(&app.job("lost-delay-1", "lost-delay", "d/"))
        .await;
    let events = events_until_terminal(&mut app).await;
    assert_eq!(
        timeline(&events),
        [
            "deploy.started 1",
            "deploy.retrying 1",
            "deploy.started 2",
            "deploy.succeeded 2"
        ]
    );
    // Through the delay queue, declared again (a requeue after a refused
    // retry would also end so, but leave the queue missing).
    assert_eq!(queue_depth(&app.settings.amqp, &queue).await, 0);
    stop(app).await;
}

#[tokio::test]
async fn a_reply_to_naming_a_queue_of_the_worker_gets_no_copy() {
    // No progress events: the log read below holds the jobs' others only.
    let mut app = app(|s| {
        s.worker.concurrency = 1;
        s.events.progress = false;
    })
    .await;
    app.bucket.put("r/index.html", b"<p>r</p>".to_vec()).await;
    let amqp = app.settings.amqp.clone();
    // Regression: a reply_to naming the jobs queue put the event copy into
    // the jobs queue, which then failed as a job.
    for (job_id, queue) in [
        ("reply-jobs-1", &amqp.jobs_queue),
        ("reply-dlq-1", &amqp.dead_letter_queue),
        ("reply-log-1", &amqp.events_log_queue),
    ] {
        let job = app.job(job_id, "reply-own", "r/");
        let props = BasicProperties::default().with_reply_to(queue.as_str().into());
        app.publish_raw(job.to_string().as_bytes(), props).await;
        let event = app.terminal_event().await;
        assert_eq!(event.json["id"], format!("{job_id}:succeeded"));
    }
    // One at a time, in order: a copy in the jobs queue would be taken
    // (and fail) before this sentinel.
    let sentinel = app
        .deploy_ok(&app.job("reply-sentinel", "reply-own", "r/"))
        .await;
    assert_eq!(sentinel.json["id"], "reply-sentinel:succeeded");
    assert_eq!(queue_depth(&amqp, &amqp.dead_letter_queue).await, 0);
    // The log holds the four jobs' events once each, no copy among them.
    let first = AMQPValue::LongString(LongString::from("first"));
    let logged = read_log(&app, first, 8).await;
    assert!(
        logged.iter().all(|id| id.starts_with("reply-")),
        "{logged:?}"
    );
    stop(app).await;
}
