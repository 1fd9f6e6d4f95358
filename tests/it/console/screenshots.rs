//! Screenshots of the console's main views with a realistic fleet behind
//! it: `make console-screenshot` runs this test with
//! `WFP_CONSOLE_SCREENSHOTS=target/console`; otherwise they go to the test
//! build's scratch directory. Either way the test checks that each view
//! rendered what it shows and that the files are PNGs.

use std::path::PathBuf;

use serde_json::json;

use super::{Browser, Console};
use crate::cli_tools::dlq::{park, park_job, parked_by_worker};
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::add_fault;

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("WFP_CONSOLE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

#[tokio::test]
async fn screenshots_of_the_main_views() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    let files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| {
            (
                format!("site/page-{i}.html"),
                format!("<p>page {i}</p>").into_bytes(),
            )
        })
        .collect();
    app.bucket.put_many(files).await;
    let console = Console::for_app(&app).await;
    let browser = Browser::start(1440, 1240).await;
    browser.open(&console).await;

    for (i, site) in [
        "acme-site",
        "globex-shop",
        "initech-docs",
        "acme-blog",
        "hooli-www",
        "umbrella-app",
    ]
    .iter()
    .enumerate()
    {
        let mut job = app.job(&format!("{site}-{}", 40 + i), site, "site/");
        job["labels"] = json!({"tenant": site.split('-').next().unwrap_or("acme")});
        app.deploy_ok(&job).await;
    }
    let failed = app
        .deploy(&app.job("stark-portal-7", "stark-portal", "missing/"))
        .await;
    assert_eq!(failed.json["type"], "wfp.deploy.failed");
    park_job(
        &app,
        "wayne-store-12",
        "wayne-store",
        parked_by_worker("cloudflare_unavailable"),
    )
    .await;
    park(
        &app.settings.amqp,
        b"{\"job_id\": \"broken\", ",
        Default::default(),
    )
    .await;

    // One deploy held in flight while the live view is taken.
    add_fault(
        &app.sim,
        json!({"endpoint": "script", "kind": "latency", "ms": 6000, "count": 1}),
    )
    .await;
    app.publish(&app.job("pied-piper-3", "pied-piper", "site/"))
        .await;
    browser
        .wait_text(
            r#"#inflight tr[data-job="pied-piper-3"] .status"#,
            "in flight",
            |t| t == "in flight",
        )
        .await;
    browser
        .wait_text("#card-succeeded", "six deploys", |t| t == "6")
        .await;
    browser
        .wait_text(
            r#"#queues tr[data-queue="jobs"] td:nth-child(4)"#,
            "the worker",
            |t| t == "1",
        )
        .await;

    let dir = screenshot_dir();
    let mut shots = Vec::new();
    shots.push(browser.screenshot(&dir.join("console-live.png")).await);

    browser
        .click(r#"#outcomes tr[data-job="stark-portal-7"]"#)
        .await;
    browser
        .wait_text("#timeline", "the failed deploy's events", |t| {
            t.contains("bundle_not_found")
        })
        .await;
    shots.push(browser.screenshot(&dir.join("console-job.png")).await);
    browser.click("#drawer-close").await;

    browser.click("#tab-dlq").await;
    let parked = r#"#dlq tr[data-parked="wayne-store-12"]"#;
    browser
        .wait_text(&format!("{parked} .reason"), "the parked job", |t| {
            t.starts_with("cloudflare_unavailable")
        })
        .await;
    browser.click(parked).await;
    browser
        .wait_text("#dlq-detail-id", "its detail", |t| t == "wayne-store-12")
        .await;
    shots.push(browser.screenshot(&dir.join("console-dlq.png")).await);

    for png in &shots {
        assert!(
            png.starts_with(PNG_MAGIC) && png.len() > 10_000,
            "a real picture"
        );
    }
    browser.close().await;
    assert_eq!(
        app.terminal_event().await.json["id"],
        "pied-piper-3:succeeded"
    );
    app.stop().await;
}
