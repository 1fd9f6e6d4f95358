//! The root special files through whole deploys: `_headers` and
//! `_redirects` arrive byte-exact in the script metadata (and the
//! simulator's view of the deployment), `.assetsignore` keeps files back,
//! and none of the three is ever an asset; the same from an archive.

use serde_json::{Value, json};

use super::{archive_job, on_both_servers};
use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::app::TestApp;
use crate::helpers::archives::{build, file};
use crate::helpers::s3::S3Server;
use crate::helpers::sim::{asset, deployment};

const HEADERS: &str = "# security\r\n/*\r\n  X-Frame-Options: DENY\r\n/assets/*\r\n  Cache-Control: max-age=31536000\r\n";
const REDIRECTS: &str = "/old /new 301\n/blog/* /posts/:splat 302 # moved\n";

/// The served paths of the live deployment of `script`, sorted.
async fn served(app: &TestApp, script: &str) -> (Value, Vec<String>) {
    let live = deployment(&app.sim, TEST_ACCOUNT, "customers", script).await;
    let mut paths: Vec<String> = live["manifest"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    paths.sort();
    (live, paths)
}

fn assert_special_files(live: &Value) {
    assert_eq!(
        live["special_files"],
        json!({
            "_headers": {"text": HEADERS, "rules": 2},
            "_redirects": {"text": REDIRECTS, "static_rules": 1, "dynamic_rules": 1},
        }),
        "{live}"
    );
    let config = &live["metadata"]["assets"]["config"];
    assert_eq!(config["_headers"], HEADERS);
    assert_eq!(config["_redirects"], REDIRECTS);
    assert_eq!(
        config["html_handling"], "drop-trailing-slash",
        "the job's own config kept"
    );
}

async fn special_files_configure_the_site_and_are_never_assets(server: S3Server) {
    let mut app = TestApp::spawn(server).await;
    let site = [
        ("index.html", "<h1>hi</h1>"),
        ("assets/app.js", "console.log(1)"),
        ("assets/app.js.map", "{}"),
        ("drafts/wip.html", "wip"),
        ("sub/_headers", "an ordinary file below the root"),
        ("_worker.js", "export default {}"),
        (".assetsignore", "drafts/\n*.map\n"),
        ("_headers", HEADERS),
        ("_redirects", REDIRECTS),
    ];
    app.bucket
        .put_many(
            site.iter()
                .map(|(k, v)| (format!("special/{k}"), v.as_bytes().to_vec())),
        )
        .await;
    let mut job = app.job("special-1", "special", "special/");
    job["assets_config"] = json!({"html_handling": "drop-trailing-slash"});
    app.deploy_ok(&job).await;
    let (live, paths) = served(&app, "special").await;
    // With an .assetsignore, _worker.js is an ordinary asset (as in wrangler).
    assert_eq!(
        paths,
        [
            "/_worker.js",
            "/assets/app.js",
            "/index.html",
            "/sub/_headers"
        ],
        "{live}"
    );
    assert_special_files(&live);

    // Without one, a root _worker.js (file or directory) is private code:
    // never uploaded.
    for (i, key) in ["_worker.js", "_worker.js/lib.js"].into_iter().enumerate() {
        app.bucket
            .put(format!("bare{i}/index.html"), "<p>bare</p>")
            .await;
        app.bucket.put(format!("bare{i}/{key}"), "secret").await;
        let script = format!("bare{i}");
        app.deploy_ok(&app.job(&format!("special-bare-{i}"), &script, &format!("bare{i}/")))
            .await;
        let (live, paths) = served(&app, &script).await;
        assert_eq!(paths, ["/index.html"], "{live}");
        assert_eq!(
            live["special_files"],
            json!({"_headers": null, "_redirects": null}),
            "{live}"
        );
    }

    // The same site as a zip under a root directory.
    let entries: Vec<_> = site
        .iter()
        .map(|(k, v)| file(format!("dist/{k}"), v))
        .chain([file("README.md", "outside the root")])
        .collect();
    app.bucket.put("special.zip", build("zip", &entries)).await;
    let mut job = archive_job(
        &app,
        "special-3",
        "special-zip",
        "special.zip",
        json!({"root": "dist"}),
    );
    job["assets_config"] = json!({"html_handling": "drop-trailing-slash"});
    app.deploy_ok(&job).await;
    let (live, paths) = served(&app, "special-zip").await;
    assert_eq!(
        paths,
        [
            "/_worker.js",
            "/assets/app.js",
            "/index.html",
            "/sub/_headers"
        ],
        "{live}"
    );
    assert_special_files(&live);
    let (media, bytes) = asset(
        &app.sim,
        TEST_ACCOUNT,
        "customers",
        "special-zip",
        "/assets/app.js",
    )
    .await;
    assert_eq!(bytes, b"console.log(1)");
    assert_eq!(media, "text/javascript; charset=utf-8");
    app.stop().await;
}

on_both_servers!(special_files_configure_the_site_and_are_never_assets);
