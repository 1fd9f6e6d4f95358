//! What a job may read: the empty prefix (the whole bucket), buckets and
//! folders outside what the platform configured are refused at `validate`
//! with `invalid_job`, before anything is read; what is allowed deploys.

use wfp_deployer::sim::SimConfig;

use super::error;
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;

/// Asserts `event` is `invalid_job` at `validate` whose message starts so.
fn refused(event: &crate::helpers::amqp::TappedEvent, start: &str) {
    let error = error(event);
    assert_eq!(error["code"], "invalid_job", "{}", event.json);
    assert_eq!(error["step"], "validate");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with(start), "{message}");
}

#[tokio::test]
async fn a_job_reads_only_its_tenants_folder_and_never_the_whole_bucket() {
    // Regression: `bundle.prefix: ""` deployed the whole bucket, other
    // tenants' files included.
    let mut app = TestApp::spawn_with(S3Server::Moto, SimConfig::for_tests(), |s| {
        s.s3.allowed_prefixes = vec!["{tenant}/".into()];
    })
    .await;
    app.bucket
        .put("acme/site/index.html", b"<p>acme</p>".to_vec())
        .await;
    app.bucket
        .put("globex/secret.html", b"<p>globex</p>".to_vec())
        .await;

    let whole = app.deploy(&app.job("whole-1", "whole", "")).await;
    refused(
        &whole,
        "bundle.prefix: an empty prefix names the whole bucket",
    );
    let other = app.deploy(&app.job("other-1", "other", "globex/")).await;
    refused(&other, "bundle.prefix: \"globex/\" is outside the folders");
    let mut worker_code = app.job("code-1", "code", "acme/site/");
    worker_code["worker"] = serde_json::json!({"main_module": "secret.html", "prefix": "globex"});
    refused(
        &app.deploy(&worker_code).await,
        "worker.prefix: \"globex/\"",
    );

    let own = app.deploy_ok(&app.job("own-1", "own", "acme/site/")).await;
    assert_eq!(own.data()["manifest"]["files"], 1);
    app.stop().await;
}

#[tokio::test]
async fn a_bucket_outside_the_allowed_list_is_refused() {
    let mut app = TestApp::spawn_with(S3Server::Moto, SimConfig::for_tests(), |s| {
        s.s3.allowed_buckets = vec!["some-other-bucket".into()];
    })
    .await;
    app.bucket
        .put("site/index.html", b"<p>x</p>".to_vec())
        .await;
    let event = app.deploy(&app.job("bucket-1", "bucket", "site/")).await;
    refused(&event, &format!("bundle.bucket: \"{}\"", app.bucket.name()));
    app.stop().await;
}
