//! Asset identity end to end: salted hashes keep tenants apart and give
//! identical bytes under two extensions their own media types; `content`
//! keeps contract v1's plain SHA-256 prefixes; a label tenant key shares
//! assets across one customer's sites; a secret keys every hash. The
//! simulator recomputes every uploaded file's hash with its own code.

use serde_json::{Value, json};
use wfp_deployer::config::{HashScheme, TenantKey};
use wfp_deployer::manifest::{AssetHashing, ContentDigest, HashKey, TenantSalt, asset_hash};
use wfp_deployer::sim::SimConfig;

use super::{error, upload};
use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::{asset, deployment};

/// The hash the live deployment of `script` gives `path`.
async fn live_hash(app: &TestApp, script: &str, path: &str) -> String {
    let live = deployment(&app.sim, TEST_ACCOUNT, "customers", script).await;
    match &live["manifest"][path]["hash"] {
        Value::String(hash) => hash.clone(),
        other => panic!("no hash for {path} in {live}: {other}"),
    }
}

fn salted_for(script: &str) -> AssetHashing {
    AssetHashing::salted(
        &TenantSalt::Script {
            namespace: "customers".into(),
            script: script.into(),
        },
        None,
    )
}

async fn identical_bytes_under_two_extensions_keep_their_media_types(server: S3Server) {
    let mut app = TestApp::spawn(server).await;
    app.bucket
        .put_many([
            ("twins/empty.css", ""),
            ("twins/empty.js", ""),
            ("twins/same.css", "x{}"),
            ("twins/same.js", "x{}"),
        ])
        .await;
    let event = app.deploy_ok(&app.job("twins-1", "twins", "twins/")).await;
    // Four assets: each extension is its own, the shared bytes read once.
    assert_eq!(upload(&event)["files"], 4, "{}", event.json);
    assert_ne!(
        live_hash(&app, "twins", "/empty.css").await,
        live_hash(&app, "twins", "/empty.js").await
    );
    for (path, bytes, media_type) in [
        ("/empty.css", &b""[..], "text/css; charset=utf-8"),
        ("/empty.js", b"", "text/javascript; charset=utf-8"),
        ("/same.css", b"x{}", "text/css; charset=utf-8"),
        ("/same.js", b"x{}", "text/javascript; charset=utf-8"),
    ] {
        let (served_type, served) = asset(&app.sim, TEST_ACCOUNT, "customers", "twins", path).await;
        assert_eq!(
            (served_type.as_str(), &served[..]),
            (media_type, bytes),
            "{path}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn identical_bytes_under_two_extensions_keep_their_media_types_moto() {
    identical_bytes_under_two_extensions_keep_their_media_types(S3Server::Moto).await;
}

#[tokio::test]
async fn identical_bytes_under_two_extensions_keep_their_media_types_s3s() {
    identical_bytes_under_two_extensions_keep_their_media_types(S3Server::S3s).await;
}

#[tokio::test]
async fn two_tenants_deploying_the_same_file_get_different_hashes_by_default() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket.put("shared/index.html", "<h1>same</h1>").await;
    for script in ["tenant-a", "tenant-b"] {
        let event = app
            .deploy_ok(&app.job(&format!("{script}-1"), script, "shared/"))
            .await;
        // Nothing is shared: each tenant uploads its own copy.
        assert_eq!(upload(&event)["files"], 1, "{}", event.json);
    }
    let a = live_hash(&app, "tenant-a", "/index.html").await;
    let b = live_hash(&app, "tenant-b", "/index.html").await;
    assert_ne!(a, b);
    let digest = ContentDigest::of(b"<h1>same</h1>");
    assert_eq!(a, salted_for("tenant-a").asset_hash(&digest, "/index.html"));
    assert_ne!(a, asset_hash(b"<h1>same</h1>"), "not the plain SHA-256");
    app.stop().await;
}

#[tokio::test]
async fn the_content_scheme_gives_plain_sha256_prefixes_shared_by_tenants() {
    let mut app = TestApp::spawn_with(S3Server::Moto, SimConfig::for_tests(), |s| {
        s.manifest.hash_scheme = HashScheme::Content;
    })
    .await;
    app.bucket.put("shared/index.html", "<h1>same</h1>").await;
    app.bucket.put("shared/empty.css", "").await;
    app.bucket.put("shared/empty.js", "").await;
    let first = app
        .deploy_ok(&app.job("plain-a", "plain-a", "shared/"))
        .await;
    // Contract v1: one asset for both empty files.
    assert_eq!(upload(&first)["files"], 2, "{}", first.json);
    let second = app
        .deploy_ok(&app.job("plain-b", "plain-b", "shared/"))
        .await;
    assert_eq!(upload(&second)["files"], 0, "{}", second.json);
    for script in ["plain-a", "plain-b"] {
        assert_eq!(
            live_hash(&app, script, "/index.html").await,
            asset_hash(b"<h1>same</h1>")
        );
        assert_eq!(live_hash(&app, script, "/empty.js").await, asset_hash(b""));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_label_tenant_key_shares_a_customer_s_assets_and_needs_the_label() {
    let mut app = TestApp::spawn_with(S3Server::Moto, SimConfig::for_tests(), |s| {
        s.manifest.tenant_key = TenantKey::Label("tenant".into());
    })
    .await;
    app.bucket.put("shared/index.html", "<h1>acme</h1>").await;
    // `TestApp::job` labels every job `tenant: acme`.
    let shop = app
        .deploy_ok(&app.job("acme-shop", "acme-shop", "shared/"))
        .await;
    assert_eq!(upload(&shop)["files"], 1);
    let blog = app
        .deploy_ok(&app.job("acme-blog", "acme-blog", "shared/"))
        .await;
    assert_eq!(
        upload(&blog)["files"],
        0,
        "one customer's sites share assets"
    );
    assert_eq!(
        live_hash(&app, "acme-shop", "/index.html").await,
        live_hash(&app, "acme-blog", "/index.html").await
    );

    let mut unlabelled = app.job("no-label", "other", "shared/");
    unlabelled["labels"] = json!({"team": "x"});
    let event = app.deploy(&unlabelled).await;
    let error = error(&event);
    assert_eq!(error["code"], "invalid_job", "{}", event.json);
    assert_eq!(error["retryable"], false);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("\"tenant\""), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn a_hash_secret_keys_every_hash_and_the_simulator_checks_it() {
    let secret = "a-platform-secret";
    let mut app = TestApp::spawn_with(S3Server::Moto, SimConfig::for_tests(), |s| {
        s.manifest.hash_secret = Some(secret.to_string().into());
    })
    .await;
    app.bucket.put("keyed/index.html", "<h1>keyed</h1>").await;
    app.deploy_ok(&app.job("keyed-1", "keyed", "keyed/")).await;
    let digest = ContentDigest::of(b"<h1>keyed</h1>");
    let keyed = AssetHashing::salted(
        &TenantSalt::Script {
            namespace: "customers".into(),
            script: "keyed".into(),
        },
        Some(&HashKey::new(&secret.to_string().into())),
    );
    let live = live_hash(&app, "keyed", "/index.html").await;
    assert_eq!(live, keyed.asset_hash(&digest, "/index.html"));
    assert_ne!(live, salted_for("keyed").asset_hash(&digest, "/index.html"));
    app.stop().await;
}
