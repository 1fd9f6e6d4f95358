//! `watch`: live events of a real deploy, filtered, as JSON and as lines;
//! `--from` replays the events log, then follows.

use serde_json::Value;

use super::{Running, wfp};
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;

const READY: &str = "watching events";

#[tokio::test]
async fn watch_json_prints_the_events_of_the_job_it_follows() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket.put("w/index.html", b"<p>w</p>".to_vec()).await;
    let mut cmd = wfp(&app.settings);
    cmd.args(["watch", "--json", "--job", "watched-1"]);
    let mut watch = Running::start(cmd, READY).await;

    // Another job first: filtered out, so the first line proves the filter.
    app.deploy_ok(&app.job("unwatched-1", "unwatched", "w/"))
        .await;
    app.deploy_ok(&app.job("watched-1", "watched", "w/")).await;

    let started: Value = serde_json::from_str(&watch.line().await).unwrap();
    assert_eq!(started["type"], "wfp.deploy.started", "{started}");
    assert_eq!(started["data"]["job_id"], "watched-1");
    assert_eq!(started["id"], "watched-1:started:1");
    // Progress events (as many as the deploy's pace gave) come between.
    let succeeded = loop {
        let event: Value = serde_json::from_str(&watch.line().await).unwrap();
        if event["type"] != "wfp.deploy.progress" {
            break event;
        }
        assert_eq!(event["data"]["job_id"], "watched-1", "{event}");
    };
    assert_eq!(succeeded["type"], "wfp.deploy.succeeded", "{succeeded}");
    assert_eq!(succeeded["id"], "watched-1:succeeded");
    assert_eq!(succeeded["data"]["manifest"]["files"], 1);
    app.stop().await;
}

#[tokio::test]
async fn watch_from_replays_the_log_then_follows_live_events() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket.put("r/index.html", b"<p>r</p>".to_vec()).await;
    // The log exists before the first deploy (the worker of this version
    // does not declare it), as it does wherever a worker keeps one.
    let connection = wfp_deployer::amqp::connect(&app.settings.amqp)
        .await
        .unwrap();
    wfp_deployer::console::feed::ensure_events_log(
        &connection,
        &app.settings.amqp,
        app.settings.events.log_max_age,
    )
    .await
    .unwrap();
    let _ = connection.close(200, "done".into()).await;
    app.deploy_ok(&app.job("before-1", "replayed", "r/")).await;

    let mut cmd = wfp(&app.settings);
    cmd.args([
        "watch",
        "--from",
        "1h",
        "--type",
        "succeeded,failed",
        "--label",
        "tenant=acme",
    ]);
    let mut watch = Running::start(cmd, READY).await;
    let replayed = watch.line().await;
    assert!(replayed.contains("succeeded"), "{replayed}");
    assert!(
        replayed.contains("customers/replayed  before-1  1 files"),
        "{replayed}"
    );
    assert!(
        !replayed.contains('\u{1b}'),
        "no colour off a terminal: {replayed:?}"
    );

    app.deploy_ok(&app.job("after-1", "followed", "r/")).await;
    let live = watch.line().await;
    assert!(live.contains("customers/followed  after-1"), "{live}");
    app.stop().await;
}

/// A reader that finds no events log declares it as the worker would: kept
/// for the configured `events.log_max_age`, not the default (the broker
/// cannot change a queue's arguments later). Its arguments are read back
/// from the management API.
#[tokio::test]
async fn a_missing_events_log_is_declared_kept_for_the_configured_max_age() {
    use wfp_deployer::console::feed::{LogState, ensure_events_log};

    let (mut settings, _topology) = crate::helpers::amqp::unique_settings();
    settings.events.log_max_age = std::time::Duration::from_secs(2 * 3600);
    let amqp = &settings.amqp;
    let connection = crate::helpers::amqp::connect(amqp).await;
    let state = ensure_events_log(&connection, amqp, settings.events.log_max_age)
        .await
        .unwrap();
    assert_eq!(state, LogState::Created);
    let _ = connection.close(200, "done".into()).await;

    let url = format!(
        "{}/api/queues/%2F/{}",
        settings.console.management_url.trim_end_matches('/'),
        amqp.events_log_queue
    );
    let queue: Value = reqwest::Client::new()
        .get(&url)
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .json()
        .await
        .unwrap();
    assert_eq!(queue["arguments"]["x-queue-type"], "stream", "{queue}");
    assert_eq!(queue["arguments"]["x-max-age"], "2h", "{queue}");
}
