//! `dlq`: parked jobs listed, shown, requeued and purged, with nothing
//! lost: a requeued job deploys, a requeue that cannot be routed leaves the
//! job parked, and reading the queue often never drops a job.
//!
//! Jobs are parked by publishing them to the dead-letter queue with the
//! headers the worker (`x-wfp-park-*`) or the broker (`x-death`) write.

use chrono::{Duration as Ago, SecondsFormat, Utc};
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString};
use serde_json::Value;
use wfp_deployer::config::AmqpSettings;
use wfp_deployer::console::dlq::{DeadLetters, REFRESH_AT};

use super::run;
use crate::helpers::amqp::{TEST_ACCOUNT, connect, queue_depth};
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::deployment;

fn text(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

/// Headers of a job the worker parked with `code` after 5 attempts.
pub fn parked_by_worker(code: &str) -> FieldTable {
    let at = (Utc::now() - Ago::minutes(3)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut h = FieldTable::default();
    h.insert("x-wfp-park-code".into(), text(code));
    h.insert("x-wfp-park-message".into(), text("it kept failing"));
    h.insert("x-wfp-park-step".into(), text("upload"));
    h.insert("x-wfp-park-attempts".into(), AMQPValue::LongLongInt(5));
    h.insert("x-wfp-park-first-failure".into(), text(&at));
    h.insert("x-wfp-park-last-failure".into(), text(&at));
    h.insert("x-wfp-attempt".into(), AMQPValue::LongLongInt(5));
    h.insert("tenant-header".into(), text("kept"));
    h
}

/// Headers of a message the broker dead-lettered at its delivery limit,
/// two hours ago.
fn dead_lettered_by_broker() -> FieldTable {
    let two_hours_ago = u64::try_from((Utc::now() - Ago::hours(2)).timestamp()).unwrap();
    let mut death = FieldTable::default();
    death.insert("reason".into(), text("delivery_limit"));
    death.insert("queue".into(), text("wfp.deploy.jobs"));
    death.insert("count".into(), AMQPValue::LongLongInt(1));
    death.insert("time".into(), AMQPValue::Timestamp(two_hours_ago));
    let mut h = FieldTable::default();
    let deaths = FieldArray::from(vec![AMQPValue::FieldTable(death)]);
    h.insert("x-death".into(), AMQPValue::FieldArray(deaths));
    h.insert("x-delivery-count".into(), AMQPValue::LongLongInt(10));
    h
}

/// Puts a message straight into the dead-letter queue (confirmed).
pub async fn park(settings: &AmqpSettings, body: &[u8], headers: FieldTable) {
    let connection = connect(settings).await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_headers(headers);
    let confirm = channel
        .basic_publish(
            "".into(),
            settings.dead_letter_queue.as_str().into(),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack(), "parking: {confirm:?}");
    let _ = connection.close(200, "done".into()).await;
}

/// Parks a valid job of `app` whose bundle exists.
pub async fn park_job(app: &TestApp, job_id: &str, script: &str, headers: FieldTable) {
    let body = app.job(job_id, script, "p/").to_string();
    park(&app.settings.amqp, body.as_bytes(), headers).await;
}

#[tokio::test]
async fn parked_jobs_are_listed_shown_requeued_and_purged() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket.put("p/index.html", b"<p>p</p>".to_vec()).await;
    let s = app.settings.clone();
    park_job(
        &app,
        "parked-a",
        "parked-a",
        parked_by_worker("cloudflare_unavailable"),
    )
    .await;
    park_job(
        &app,
        "parked-b",
        "parked-b",
        parked_by_worker("storage_error"),
    )
    .await;
    park(&s.amqp, b"{not a job", dead_lettered_by_broker()).await;

    let list = run(&s, &["dlq", "list"]).await;
    assert!(list.success, "{list:?}");
    let rows: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(rows.len(), 4, "a header and three jobs: {}", list.stdout);
    assert!(rows[1].starts_with("parked-a"), "{}", list.stdout);
    assert!(rows[1].contains("customers/parked-a"), "{}", rows[1]);
    assert!(
        rows[1].contains("cloudflare_unavailable at upload: it kept failing"),
        "{}",
        rows[1]
    );
    let tail: Vec<&str> = rows[1].split_whitespace().rev().take(3).collect();
    assert_eq!(tail[2], "5", "attempts, then the age (3m Ns): {}", rows[1]);
    assert_eq!(tail[1], "3m", "{}", rows[1]);
    assert!(
        rows[3].starts_with("sha256:"),
        "no job id, no message id: {}",
        rows[3]
    );
    assert!(
        rows[3].contains("delivery_limit (dead-lettered from wfp.deploy.jobs)"),
        "{}",
        rows[3]
    );
    assert!(list.stderr.contains("3 jobs parked"), "{}", list.stderr);

    let json = run(&s, &["dlq", "list", "--json"]).await;
    let jobs: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 3);
    assert_eq!(jobs[0]["attempts"], 5);
    assert_eq!(jobs[0]["reason"]["code"], "cloudflare_unavailable");
    assert_eq!(jobs[2]["reason"]["reason"], "delivery_limit");

    let show = run(&s, &["dlq", "show", "parked-b"]).await;
    assert!(show.success, "{show:?}");
    assert!(
        show.stdout
            .contains("reason:        storage_error at upload"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("\"job_id\": \"parked-b\""),
        "{}",
        show.stdout
    );

    // A requeued job deploys, as a first attempt: the parked attempts are gone.
    let requeue = run(&s, &["dlq", "requeue", "parked-a"]).await;
    assert!(requeue.success, "{requeue:?}");
    assert_eq!(
        requeue.stdout.trim(),
        "requeued parked-a (customers/parked-a)"
    );
    let event = app.terminal_event().await;
    assert_eq!(event.json["id"], "parked-a:succeeded", "{}", event.json);
    assert_eq!(event.data()["attempt"], 1);
    deployment(&app.sim, TEST_ACCOUNT, "customers", "parked-a").await;
    assert_eq!(queue_depth(&s.amqp, &s.amqp.dead_letter_queue).await, 2);

    let by_code = run(&s, &["dlq", "requeue", "--code", "storage_error"]).await;
    assert!(by_code.success, "{by_code:?}");
    assert_eq!(app.terminal_event().await.json["id"], "parked-b:succeeded");

    let unknown = run(&s, &["dlq", "requeue", "no-such-job"]).await;
    assert!(!unknown.success);
    assert!(
        unknown.stderr.contains("no parked job no-such-job"),
        "{}",
        unknown.stderr
    );
    let bare = run(&s, &["dlq", "purge"]).await;
    assert!(!bare.success);
    assert!(bare.stderr.contains("purge what?"), "{}", bare.stderr);
    assert_eq!(
        queue_depth(&s.amqp, &s.amqp.dead_letter_queue).await,
        1,
        "refusals change nothing"
    );

    let young = run(&s, &["dlq", "purge", "--older-than", "3h"]).await;
    assert!(young.success, "{young:?}");
    assert!(
        young.stderr.contains("purged 0 jobs; 1 job left"),
        "{}",
        young.stderr
    );
    let old = run(&s, &["dlq", "purge", "--older-than", "1h"]).await;
    assert!(
        old.stderr.contains("purged 1 job; 0 jobs left"),
        "{}",
        old.stderr
    );
    assert_eq!(queue_depth(&s.amqp, &s.amqp.dead_letter_queue).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_requeue_no_queue_takes_leaves_the_job_parked() {
    let app = TestApp::spawn(S3Server::Moto).await;
    let s = app.settings.clone();
    park_job(
        &app,
        "unroutable-1",
        "unroutable",
        parked_by_worker("internal"),
    )
    .await;
    // Nothing bound to the jobs exchange any more: the copy would go nowhere.
    let connection = connect(&s.amqp).await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_unbind(
            s.amqp.jobs_queue.as_str().into(),
            s.amqp.jobs_exchange.as_str().into(),
            s.amqp.jobs_routing_key.as_str().into(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;

    let requeue = run(&s, &["dlq", "requeue", "--all"]).await;
    assert!(!requeue.success, "{requeue:?}");
    assert!(
        requeue.stderr.contains("no queue is bound"),
        "{}",
        requeue.stderr
    );
    assert_eq!(
        queue_depth(&s.amqp, &s.amqp.dead_letter_queue).await,
        1,
        "still parked"
    );
    assert_eq!(queue_depth(&s.amqp, &s.amqp.jobs_queue).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn reading_the_queue_again_and_again_never_drops_a_job() {
    let app = TestApp::spawn(S3Server::Moto).await;
    let s = app.settings.clone();
    park_job(
        &app,
        "often-read",
        "often-read",
        parked_by_worker("internal"),
    )
    .await;
    let dlq = DeadLetters::open(&s.amqp).await.unwrap();
    let (mut refreshed, mut most_returns) = (0, 0);
    for _ in 0..(2 * REFRESH_AT + 2) {
        let sweep = dlq.list(100).await.unwrap();
        assert_eq!(sweep.kept.len(), 1);
        assert_eq!(sweep.kept[0].id, "often-read");
        let returns = sweep.kept[0].properties["headers"]["x-delivery-count"]
            .as_u64()
            .unwrap_or(0);
        assert!(
            returns <= REFRESH_AT,
            "the count is reset before it grows: {returns}"
        );
        most_returns = most_returns.max(returns);
        refreshed += sweep.refreshed;
    }
    dlq.close().await;
    // A broker that counts returns (this one, and 4.0 to 4.2 with their
    // default limit) gets refreshed copies; one that does not (4.3+) needs none.
    assert!(
        most_returns == 0 || refreshed >= 2,
        "{most_returns} returns, {refreshed} refreshed"
    );
    let last = DeadLetters::open(&s.amqp).await.unwrap();
    let sweep = last.list(100).await.unwrap();
    last.close().await;
    assert_eq!(sweep.kept.len(), 1, "still exactly one copy");
    assert_eq!(sweep.kept[0].properties["headers"]["tenant-header"], "kept");
    app.stop().await;
}
