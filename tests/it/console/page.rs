//! What the page shows while real jobs deploy: what happened before it
//! started (replayed from the events log), a deploy in flight that then
//! completes, a failure with its code and timeline, the filters, the
//! queues, and a parked job requeued from the page that then deploys.

use serde_json::json;

use super::{Browser, Console, declare_events_log};
use crate::cli_tools::dlq::{park_job, parked_by_worker};
use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::{add_fault, deployment};

#[tokio::test]
async fn an_in_flight_deploy_appears_then_completes_and_a_failure_shows_its_code() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket.put("c/index.html", b"<p>c</p>".to_vec()).await;
    // Deployed before the console starts: the page has it from the log.
    declare_events_log(&app).await;
    app.deploy_ok(&app.job("earlier-1", "earlier-site", "c/"))
        .await;
    let console = Console::start(&app.settings).await;
    let browser = Browser::start(1400, 1000).await;
    browser.open(&console).await;
    browser
        .wait_text(
            r#"#outcomes tr[data-job="earlier-1"] .status"#,
            "the replayed outcome",
            |t| t == "succeeded",
        )
        .await;

    // The script upload answers after 4 s: long enough to be seen in flight.
    add_fault(
        &app.sim,
        json!({"endpoint": "script", "kind": "latency", "ms": 4000, "count": 1}),
    )
    .await;
    app.publish(&app.job("slow-1", "slow-site", "c/")).await;
    let in_flight = r#"#inflight tr[data-job="slow-1"]"#;
    browser
        .wait_text(&format!("{in_flight} .status"), "in flight", |t| {
            t == "in flight"
        })
        .await;
    assert_eq!(
        browser.text(&format!("{in_flight} td")).await.as_deref(),
        Some("customers/slow-site")
    );
    assert_eq!(browser.text("#card-inflight").await.as_deref(), Some("1"));
    let outcome = r#"#outcomes tr[data-job="slow-1"]"#;
    browser
        .wait_text(&format!("{outcome} .status"), "succeeded", |t| {
            t == "succeeded"
        })
        .await;
    browser.wait_gone(in_flight).await;
    assert_eq!(app.terminal_event().await.json["id"], "slow-1:succeeded");

    app.publish(&app.job("fail-1", "failing-site", "nothing-here/"))
        .await;
    let failed = r#"#outcomes tr[data-job="fail-1"]"#;
    browser
        .wait_text(&format!("{failed} .code"), "the error code", |t| {
            t == "bundle_not_found"
        })
        .await;
    assert_eq!(
        browser.text(&format!("{failed} .status")).await.as_deref(),
        Some("failed")
    );
    browser
        .wait_text("#card-failed", "one failure", |t| t == "1")
        .await;
    browser
        .wait_text("#card-rate", "one failure in three", |t| t == "33.3%")
        .await;

    // Its timeline: started, then failed with the message.
    browser.click(failed).await;
    browser
        .wait_text("#timeline", "both events", |t| {
            t.contains("started") && t.contains("failed")
        })
        .await;
    // Progress events (as many as the deploy's pace gave) come between.
    assert_eq!(browser.count("#timeline li:not(.progress)").await, 2);
    let facts = browser.text("#drawer-facts").await.unwrap_or_default();
    assert!(facts.contains("bundle_not_found"), "{facts}");
    browser.click("#drawer-close").await;

    // Filtered by code, only the failure is listed.
    browser.type_into("#filter-code", "bundle_not_found").await;
    browser.wait_gone(outcome).await;
    assert_eq!(browser.count(failed).await, 1);
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_parked_job_requeued_from_the_page_deploys() {
    let app = TestApp::spawn(S3Server::Moto).await;
    app.bucket.put("p/index.html", b"<p>p</p>".to_vec()).await;
    park_job(
        &app,
        "parked-ui-1",
        "parked-ui",
        parked_by_worker("cloudflare_unavailable"),
    )
    .await;
    let console = Console::for_app(&app).await;
    let browser = Browser::start(1400, 1000).await;
    browser.open(&console).await;

    // The queues, from the management API: the worker consumes the jobs queue.
    browser
        .wait_text(
            r#"#queues tr[data-queue="jobs"] td:nth-child(4)"#,
            "one consumer",
            |t| t == "1",
        )
        .await;

    browser.click("#tab-dlq").await;
    let row = r#"#dlq tr[data-parked="parked-ui-1"]"#;
    browser
        .wait_text(&format!("{row} .reason"), "the park reason", |t| {
            t == "cloudflare_unavailable at upload: it kept failing"
        })
        .await;
    browser.click(row).await;
    browser
        .wait_text("#dlq-detail-body", "the job's body", |t| {
            t.contains("\"job_id\": \"parked-ui-1\"")
        })
        .await;

    // Requeue asks first; cancelling changes nothing.
    browser.click(&format!("{row} button.requeue")).await;
    browser
        .wait_text("#confirm-text", "the question", |t| {
            t.starts_with("Requeue parked-ui-1?")
        })
        .await;
    browser.click("#confirm-cancel").await;
    assert_eq!(browser.count(row).await, 1);

    browser.click(&format!("{row} button.requeue")).await;
    browser.click("#confirm-ok").await;
    browser
        .wait_text("#toast", "the requeue", |t| t == "Requeued parked-ui-1")
        .await;
    browser.wait_gone(row).await;

    browser.click("#tab-live").await;
    browser
        .wait_text(
            r#"#outcomes tr[data-job="parked-ui-1"] .status"#,
            "the deploy",
            |t| t == "succeeded",
        )
        .await;
    deployment(&app.sim, TEST_ACCOUNT, "customers", "parked-ui").await;
    browser.close().await;
    app.stop().await;
}

/// Publishes a CloudEvent of `kind` for job `job_id` to the events exchange,
/// as a worker that reports progress would.
async fn publish_event(
    settings: &wfp_deployer::config::AmqpSettings,
    job_id: &str,
    kind: &str,
    data: serde_json::Value,
) {
    use lapin::options::BasicPublishOptions;
    let connection = crate::helpers::amqp::connect(settings).await;
    let channel = connection.create_channel().await.unwrap();
    let mut data = data;
    data["job_id"] = json!(job_id);
    data["namespace"] = json!("customers");
    data["script_name"] = json!("progressing");
    data["attempt"] = json!(1);
    let event = json!({
        "specversion": "1.0", "id": format!("{job_id}:{kind}:{}", uuid::Uuid::new_v4()),
        "source": "/wfp-deployer/test", "type": format!("wfp.deploy.{kind}"),
        "subject": "customers/progressing", "time": chrono::Utc::now().to_rfc3339(),
        "datacontenttype": "application/json", "data": data,
    });
    channel
        .basic_publish(
            settings.events_exchange.as_str().into(),
            format!("deploy.{kind}").as_str().into(),
            BasicPublishOptions::default(),
            event.to_string().as_bytes(),
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test]
async fn progress_events_show_the_step_and_how_far_it_got() {
    let (settings, _topology) = crate::helpers::amqp::unique_settings();
    let console = Console::start(&settings).await;
    let browser = Browser::start(1400, 1000).await;
    browser.open(&console).await;
    let amqp = &settings.amqp;
    publish_event(amqp, "progress-1", "started", json!({})).await;
    let progress = json!({"step": "hash", "files_done": 3, "files_total": 9,
                          "bytes_done": 1024, "bytes_total": 4096});
    publish_event(amqp, "progress-1", "progress", progress).await;
    let row = r#"#inflight tr[data-job="progress-1"]"#;
    browser
        .wait_text(&format!("{row} .step"), "the step", |t| t == "hash")
        .await;
    let shown = browser
        .text(&format!("{row} .progress"))
        .await
        .unwrap_or_default();
    assert_eq!(shown, "3/9 files · 1.0 KiB/4.0 KiB");
    assert_eq!(
        browser
            .count(&format!("{row} progress[max=\"4096\"][value=\"1024\"]"))
            .await,
        1
    );
    let retrying = json!({"error": {"code": "cloudflare_unavailable", "message": "HTTP 503",
                                    "step": "upload", "retryable": true}});
    publish_event(amqp, "progress-1", "retrying", retrying).await;
    browser
        .wait_text(&format!("{row} .status"), "retrying", |t| t == "retrying")
        .await;
    browser.close().await;
}
