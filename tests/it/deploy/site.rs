//! Sites deployed whole: bytes and media types as served back, redeploys
//! that upload only what changed, worker code, and bundles over 1,000 files.

use std::collections::BTreeMap;

use serde_json::json;
use wfp_deployer::sim::SimConfig;

use super::upload;
use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;
use crate::helpers::sim::{asset, deployment, stats};

fn site() -> BTreeMap<&'static str, (Vec<u8>, &'static str)> {
    let png: Vec<u8> = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]
        .into_iter()
        .chain((0..2000u32).map(|i| (i * 7 % 256) as u8))
        .collect();
    BTreeMap::from([
        (
            "index.html",
            (
                b"<!doctype html><h1>Acme</h1>".to_vec(),
                "text/html; charset=utf-8",
            ),
        ),
        (
            "about/index.html",
            (b"<p>About</p>".to_vec(), "text/html; charset=utf-8"),
        ),
        (
            "css/site.css",
            (b"body{color:red}".to_vec(), "text/css; charset=utf-8"),
        ),
        (
            "js/app.js",
            (b"console.log(1)".to_vec(), "text/javascript; charset=utf-8"),
        ),
        ("img/logo.png", (png, "image/png")),
        (
            "data/feed.json",
            (b"{\"a\":1}".to_vec(), "application/json"),
        ),
        ("fonts/x.woff2", (vec![1, 2, 3, 4], "font/woff2")),
        (
            "blob.unknownext",
            (vec![0, 255, 0], "application/octet-stream"),
        ),
    ])
}

async fn multi_file_site_is_served_back_byte_for_byte(server: S3Server) {
    let mut app = TestApp::spawn(server).await;
    let files = site();
    app.bucket
        .put_many(
            files
                .iter()
                .map(|(k, (b, _))| (format!("acme/1/{k}"), b.clone())),
        )
        .await;
    let event = app
        .deploy_ok(&app.job("site-1", "acme-site", "acme/1/"))
        .await;

    let data = event.data();
    assert_eq!(data["manifest"]["files"], files.len());
    let total: usize = files.values().map(|(b, _)| b.len()).sum();
    assert_eq!(data["manifest"]["bytes"], total);
    assert_eq!(upload(&event)["files"], files.len());
    assert_eq!(upload(&event)["sessions"], 1);
    assert_eq!(data["deployment"]["id"], "acme-site");
    for (path, (bytes, media_type)) in &files {
        let (served_type, served) = asset(
            &app.sim,
            TEST_ACCOUNT,
            "customers",
            "acme-site",
            &format!("/{path}"),
        )
        .await;
        assert_eq!(&served, bytes, "bytes of /{path}");
        assert_eq!(&served_type, media_type, "media type of /{path}");
    }
    let live = deployment(&app.sim, TEST_ACCOUNT, "customers", "acme-site").await;
    assert!(
        live["modules"].as_array().is_some_and(|m| m.is_empty()),
        "assets-only: {live}"
    );
    assert!(live["metadata"].get("main_module").is_none());
    app.stop().await;
}

#[tokio::test]
async fn multi_file_site_is_served_back_byte_for_byte_moto() {
    multi_file_site_is_served_back_byte_for_byte(S3Server::Moto).await;
}

#[tokio::test]
async fn multi_file_site_is_served_back_byte_for_byte_s3s() {
    multi_file_site_is_served_back_byte_for_byte(S3Server::S3s).await;
}

#[tokio::test]
async fn unchanged_redeploy_uploads_nothing_and_one_change_uploads_one_file() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    let files = site();
    app.bucket
        .put_many(
            files
                .iter()
                .map(|(k, (b, _))| (format!("v1/{k}"), b.clone())),
        )
        .await;
    app.deploy_ok(&app.job("redeploy-1", "redeploy", "v1/"))
        .await;
    let uploaded_before = stats(&app.sim).await["files_uploaded"].clone();

    let again = app
        .deploy_ok(&app.job("redeploy-2", "redeploy", "v1/"))
        .await;
    assert_eq!(upload(&again)["files"], 0, "{}", again.json);
    assert_eq!(upload(&again)["buckets"], 0);
    // Nothing read either: every digest came from the cache.
    assert_eq!(again.data()["manifest"]["cache_hits"], files.len());
    assert_eq!(again.data()["manifest"]["bytes_read"], 0);
    assert_eq!(stats(&app.sim).await["files_uploaded"], uploaded_before);

    // The same site with one file changed, under a new prefix.
    app.bucket
        .put_many(files.iter().map(|(k, (b, _))| {
            let body = if *k == "css/site.css" {
                b"body{color:blue}".to_vec()
            } else {
                b.clone()
            };
            (format!("v2/{k}"), body)
        }))
        .await;
    let changed = app
        .deploy_ok(&app.job("redeploy-3", "redeploy", "v2/"))
        .await;
    assert_eq!(upload(&changed)["files"], 1, "{}", changed.json);
    assert_eq!(upload(&changed)["bytes"], "body{color:blue}".len());
    let (_, css) = asset(
        &app.sim,
        TEST_ACCOUNT,
        "customers",
        "redeploy",
        "/css/site.css",
    )
    .await;
    assert_eq!(css, b"body{color:blue}");
    app.stop().await;
}

#[tokio::test]
async fn worker_code_is_deployed_with_its_assets() {
    let mut app = TestApp::spawn(S3Server::Moto).await;
    app.bucket
        .put("full/site/index.html", b"<h1>hi</h1>".to_vec())
        .await;
    app.bucket
        .put(
            "full/code/index.js",
            b"export default { fetch() {} }".to_vec(),
        )
        .await;
    app.bucket
        .put("full/code/lib/util.mjs", b"export const x = 1".to_vec())
        .await;
    app.bucket.put("full/code/data.json", b"{}".to_vec()).await;
    let mut job = app.job("code-1", "with-code", "full/site/");
    job["worker"] = json!({"main_module": "index.js", "prefix": "full/code/"});
    job["assets_binding"] = json!("STATIC");
    job["bindings"] = json!([{"type": "plain_text", "name": "GREETING", "text": "hi"}]);
    job["compatibility_flags"] = json!(["nodejs_compat"]);
    app.deploy_ok(&job).await;

    let live = deployment(&app.sim, TEST_ACCOUNT, "customers", "with-code").await;
    assert_eq!(live["metadata"]["main_module"], "index.js");
    let mut modules: Vec<(String, String)> = live["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().into(),
                m["content_type"].as_str().unwrap().into(),
            )
        })
        .collect();
    modules.sort();
    assert_eq!(
        modules,
        vec![
            ("data.json".into(), "application/json".into()),
            ("index.js".into(), "application/javascript+module".into()),
            (
                "lib/util.mjs".into(),
                "application/javascript+module".into()
            ),
        ]
    );
    let bindings = live["metadata"]["bindings"].as_array().unwrap();
    assert!(
        bindings.contains(&json!({"type": "assets", "name": "STATIC"})),
        "{bindings:?}"
    );
    assert!(
        bindings.iter().any(|b| b["name"] == "GREETING"),
        "{bindings:?}"
    );
    assert_eq!(
        live["metadata"]["compatibility_flags"],
        json!(["nodejs_compat"])
    );
    let (_, html) = asset(
        &app.sim,
        TEST_ACCOUNT,
        "customers",
        "with-code",
        "/index.html",
    )
    .await;
    assert_eq!(html, b"<h1>hi</h1>");
    app.stop().await;
}

#[tokio::test]
async fn bundles_over_a_thousand_files_are_listed_across_pages() {
    // 112 calls (110 buckets): the default pacing would add half a minute
    // to a test about listing.
    let mut app = TestApp::spawn_with(S3Server::Moto, SimConfig::for_tests(), |s| {
        s.cloudflare.max_requests_per_minute = 0;
    })
    .await;
    let n = 1_100;
    app.bucket
        .put_many((0..n).map(|i| {
            (
                format!("big/p{}/f{i}.txt", i % 7),
                format!("file {i}").into_bytes(),
            )
        }))
        .await;
    let event = app.deploy_ok(&app.job("big-1", "big-site", "big/")).await;
    assert_eq!(event.data()["manifest"]["files"], n);
    assert_eq!(upload(&event)["files"], n);
    let live = deployment(&app.sim, TEST_ACCOUNT, "customers", "big-site").await;
    assert_eq!(live["manifest"].as_object().unwrap().len(), n);
    let (_, last) = asset(
        &app.sim,
        TEST_ACCOUNT,
        "customers",
        "big-site",
        "/p1/f1093.txt",
    )
    .await;
    assert_eq!(last, b"file 1093");
    app.stop().await;
}
