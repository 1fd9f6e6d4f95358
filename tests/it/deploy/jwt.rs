//! JWT lifetimes: the upload JWT expiring between buckets, and the
//! completion JWT expiring before the script PUT. The simulator's clock is
//! moved by a fault rule right after a chosen request, so expiry happens at
//! an exact point of the flow, not by waiting.

use serde_json::json;
use wfp_deployer::sim::SimConfig;

use super::upload;
use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::{add_fault, asset, requests};

async fn app_with_small_buckets() -> TestApp {
    let mut sim = SimConfig::for_tests();
    sim.bucket_max_files = 2;
    TestApp::spawn_with(S3Server::Moto, sim, |s| s.cloudflare.upload_concurrency = 1).await
}

#[tokio::test]
async fn upload_jwt_expiring_mid_upload_opens_a_new_session() {
    let mut app = app_with_small_buckets().await;
    app.bucket
        .put_many((0..6).map(|i| (format!("exp/f{i}.txt"), format!("body {i}").into_bytes())))
        .await;
    // After the first bucket, an hour passes: the upload JWT is dead.
    add_fault(
        &app.sim,
        json!({"endpoint": "upload", "kind": "advance_clock", "seconds": 3600, "count": 1}),
    )
    .await;
    let event = app.deploy_ok(&app.job("exp-1", "exp-site", "exp/")).await;
    assert_eq!(upload(&event)["sessions"], 2, "{}", event.json);
    assert_eq!(event.data()["manifest"]["files"], 6);
    for i in 0..6 {
        let (_, body) = asset(
            &app.sim,
            TEST_ACCOUNT,
            "customers",
            "exp-site",
            &format!("/f{i}.txt"),
        )
        .await;
        assert_eq!(body, format!("body {i}").into_bytes());
    }
    let sessions = requests(&app.sim)
        .await
        .into_iter()
        .filter(|r| r["endpoint"] == "session")
        .count();
    assert_eq!(sessions, 2);
    app.stop().await;
}

#[tokio::test]
async fn completion_jwt_expired_before_the_put_is_renewed() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket
        .put("done/index.html", b"<p>done</p>".to_vec())
        .await;
    // The one bucket's answer carries the completion JWT; then two hours pass.
    add_fault(
        &app.sim,
        json!({"endpoint": "upload", "kind": "advance_clock", "seconds": 7200, "count": 1}),
    )
    .await;
    let event = app
        .deploy_ok(&app.job("done-1", "done-site", "done/"))
        .await;
    assert_eq!(upload(&event)["sessions"], 2, "{}", event.json);
    assert_eq!(upload(&event)["files"], 1, "nothing uploaded twice");
    let log = requests(&app.sim).await;
    let puts: Vec<_> = log.iter().filter(|r| r["endpoint"] == "script").collect();
    assert_eq!(
        puts.len(),
        2,
        "a refused PUT, then one with a fresh JWT: {puts:?}"
    );
    assert_eq!(puts[0]["status"], 401);
    assert_eq!(puts[1]["status"], 200);
    app.stop().await;
}

#[tokio::test]
async fn an_upload_jwt_about_to_expire_is_renewed_before_cloudflare_refuses_it() {
    // JWTs live 10 s and count as expiring 7 s before that: after 2-3 s of
    // one-second uploads the worker must open a new session on its own
    // reading of `exp`, long before the simulator would refuse the JWT.
    let mut sim = SimConfig::for_tests();
    sim.bucket_max_files = 1;
    sim.jwt_ttl = std::time::Duration::from_secs(10);
    let mut app = TestApp::spawn_with(S3Server::Moto, sim, |s| {
        s.cloudflare.upload_concurrency = 1;
        s.cloudflare.jwt_expiry_margin = std::time::Duration::from_secs(7);
    })
    .await;
    app.bucket
        .put_many((0..5).map(|i| (format!("pro/f{i}.txt"), format!("pro {i}").into_bytes())))
        .await;
    add_fault(
        &app.sim,
        json!({"endpoint": "upload", "kind": "latency", "ms": 1000}),
    )
    .await;
    let event = app.deploy_ok(&app.job("pro-1", "pro-site", "pro/")).await;
    let sessions = upload(&event)["sessions"].as_u64().unwrap();
    assert!(sessions >= 2, "renewed before expiry: {}", event.json);
    assert_eq!(upload(&event)["files"], 5, "nothing uploaded twice");
    let refused: Vec<_> = requests(&app.sim)
        .await
        .into_iter()
        .filter(|r| r["status"] == 401)
        .collect();
    assert!(
        refused.is_empty(),
        "no JWT was used after it expired: {refused:?}"
    );
    app.stop().await;
}
