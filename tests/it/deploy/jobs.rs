//! Jobs that cannot deploy: each gets a `deploy.failed` with the right code
//! and step, and the worker goes on serving. Plus `reply_to`.

use lapin::BasicProperties;
use serde_json::json;

use super::error;
use crate::helpers::amqp::EventTap;
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;

#[tokio::test]
async fn malformed_jobs_fail_as_invalid_job_and_the_worker_keeps_serving() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket.put("ok/index.html", b"<p>ok</p>".to_vec()).await;

    // Not JSON at all: the AMQP message_id names it.
    app.publish_raw(
        b"{this is not json",
        BasicProperties::default().with_message_id("msg-not-json".into()),
    )
    .await;
    let event = app.terminal_event().await;
    assert_eq!(event.json["id"], "msg-not-json:failed");
    assert_eq!(error(&event)["code"], "invalid_job");
    assert_eq!(error(&event)["step"], "validate");
    assert!(
        error(&event)["message"].as_str().unwrap().contains("JSON"),
        "{}",
        event.json
    );

    // Valid JSON that breaks the schema: its own job_id names it.
    let mut bad = app.job("bad-schema-1", "bad", "ok/");
    bad["surprise"] = json!(true);
    let event = app.deploy(&bad).await;
    assert_eq!(event.json["id"], "bad-schema-1:failed");
    assert_eq!(error(&event)["code"], "invalid_job");
    assert!(
        error(&event)["message"]
            .as_str()
            .unwrap()
            .contains("surprise")
    );

    // Neither id: a generated one, still a failed event.
    app.publish_raw(b"[1,2,3]", BasicProperties::default())
        .await;
    let event = app.terminal_event().await;
    assert_eq!(error(&event)["code"], "invalid_job");
    assert!(event.json["id"].as_str().unwrap().ends_with(":failed"));

    // And the next good job deploys.
    app.deploy_ok(&app.job("after-bad-1", "good-site", "ok/"))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn bundle_and_account_problems_have_their_own_codes() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket
        .put("site/index.html", b"<p>x</p>".to_vec())
        .await;
    app.bucket
        .put("code/other.js", b"export default {}".to_vec())
        .await;

    let event = app.deploy(&app.job("nf-1", "nf", "nothing-here/")).await;
    assert_eq!(error(&event)["code"], "bundle_not_found");
    assert_eq!(error(&event)["step"], "list");

    let mut job = app.job("acct-1", "acct", "site/");
    job["account_id"] = json!("ffffffffffffffffffffffffffffffff");
    let event = app.deploy(&job).await;
    assert_eq!(error(&event)["code"], "invalid_job");
    assert_eq!(error(&event)["step"], "validate");

    let mut job = app.job("main-1", "main", "site/");
    job["worker"] = json!({"main_module": "index.js", "prefix": "code/"});
    let event = app.deploy(&job).await;
    assert_eq!(error(&event)["code"], "bundle_invalid");
    assert!(
        error(&event)["message"]
            .as_str()
            .unwrap()
            .contains("index.js")
    );
    app.stop().await;
}

#[tokio::test]
async fn reply_to_also_gets_the_terminal_event() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket.put("rt/index.html", b"<p>rt</p>".to_vec()).await;
    let mut replies = EventTap::queue(&app.settings.amqp).await;
    let job = app.job("rt-1", "reply-site", "rt/");
    app.publish_raw(
        job.to_string().as_bytes(),
        BasicProperties::default()
            .with_reply_to(replies.name().into())
            .with_correlation_id("amqp-corr".into()),
    )
    .await;
    let reply = replies.next().await;
    assert_eq!(reply.json["id"], "rt-1:succeeded");
    assert_eq!(reply.json["type"], "wfp.deploy.succeeded");
    let published = app.terminal_event().await;
    assert_eq!(published.json, reply.json, "the reply is the same event");
    app.stop().await;
    replies
        .assert_drained("only the terminal event goes to reply_to")
        .await;
}
