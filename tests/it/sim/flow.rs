//! The three-step flow end to end: buckets, 200 then 201, deploy, and the
//! assets and modules served back byte for byte with their media types.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use wfp_deployer::sim::SimConfig;

use super::{ACCOUNT, Api, DATE, NS, code, hash, manifest};
use crate::helpers::sim::{asset, deployment, requests, stats};

fn binary() -> Vec<u8> {
    (0..=255u8).cycle().take(3000).collect()
}

#[tokio::test]
async fn full_flow_serves_assets_byte_exact_with_media_types() {
    let mut config = SimConfig::for_tests();
    config.bucket_max_files = 2;
    let api = Api::with(config).await;
    let png = binary();
    let files: [(&str, &[u8], &str); 3] = [
        ("/index.html", b"<h1>hello</h1>", "text/html; charset=utf-8"),
        ("/img/a b.png", &png, "image/png"),
        ("/style.css", b"h1{color:red}", "text/css"),
    ];
    let listed: Vec<(&str, &[u8])> = files.iter().map(|(p, b, _)| (*p, *b)).collect();
    let (status, body) = api.session("acme-site", &manifest(&listed)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let upload_jwt = body["result"]["jwt"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Path order: /img/a b.png, /index.html | /style.css; two hashes per bucket.
    let expected = json!([
        [hash(&png), hash(b"<h1>hello</h1>")],
        [hash(b"h1{color:red}")]
    ]);
    assert_eq!(body["result"]["buckets"], expected);

    let (status, body) = api
        .upload_files(
            &upload_jwt,
            &[
                (&png, "image/png"),
                (b"<h1>hello</h1>", "text/html; charset=utf-8"),
            ],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "first bucket leaves one file missing: {body}"
    );
    assert_eq!(body["result"], json!({"jwt": null}));
    assert_eq!(body["success"], json!(true));
    let (status, body) = api
        .upload_files(&upload_jwt, &[(b"h1{color:red}", "text/css")])
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "last file completes the session: {body}"
    );
    let completion = body["result"]["jwt"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!completion.is_empty() && completion != upload_jwt);

    let (status, body) = api
        .put_script("acme-site", &Api::metadata(&completion), Api::worker())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["result"];
    assert_eq!(result["id"], json!("acme-site"));
    assert_eq!(result["has_assets"], json!(true));
    assert_eq!(result["has_modules"], json!(true));
    assert_eq!(result["compatibility_date"], json!(DATE));
    assert_eq!(result["usage_model"], json!("standard"));
    assert_eq!(result["etag"].as_str().map(str::len), Some(64));
    assert!(
        result["deployment_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );
    assert!(
        result["modified_on"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
    );

    for (path, bytes, content_type) in files {
        let (served_type, served) = asset(&api.sim, ACCOUNT, NS, "acme-site", path).await;
        assert_eq!(served, bytes, "{path}");
        assert_eq!(served_type, content_type, "{path}");
    }
    let live = deployment(&api.sim, ACCOUNT, NS, "acme-site").await;
    assert_eq!(live["version"], json!(1));
    assert_eq!(live["metadata"]["assets"]["jwt"], json!("<redacted>"));
    assert_eq!(
        live["manifest"]["/style.css"],
        json!({"hash": hash(b"h1{color:red}"), "size": 13})
    );
    assert_eq!(
        live["modules"],
        json!([{"name": "index.js", "content_type": "application/javascript+module", "size": 17}])
    );
    assert_eq!(live["deployment_id"], result["deployment_id"]);

    let module_url = format!(
        "{}/scripts/{ACCOUNT}/{NS}/acme-site/modules/index.js",
        api.sim.admin_url()
    );
    let response = api
        .http
        .get(module_url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        response.headers()["content-type"],
        "application/javascript+module"
    );
    assert_eq!(
        response.bytes().await.map(|b| b.to_vec()).ok(),
        Some(b"export default {}".to_vec())
    );
    assert_eq!(
        deployment(&api.sim, ACCOUNT, NS, "other-site").await,
        Value::Null
    );
}

#[tokio::test]
async fn a_second_session_asks_only_for_new_hashes() {
    let api = Api::start().await;
    let first = api
        .upload_all(
            "acme-site",
            &[
                ("/a.txt", b"alpha", "text/plain"),
                ("/b.txt", b"beta", "text/plain"),
            ],
        )
        .await;
    let (status, v1) = api
        .put_script("acme-site", &Api::metadata(&first), Api::worker())
        .await;
    assert_eq!(status, StatusCode::OK, "{v1}");

    let body = manifest(&[
        ("/a.txt", b"alpha"),
        ("/b.txt", b"beta 2"),
        ("/c.txt", b"gamma"),
        ("/copy.txt", b"gamma"),
    ]);
    let (_, session) = api.session("acme-site", &body).await;
    assert_eq!(
        session["result"]["buckets"],
        json!([[hash(b"beta 2"), hash(b"gamma")]])
    );

    // Everything stored already: only a completion JWT, no buckets.
    let (status, session) = api
        .session(
            "acme-site",
            &manifest(&[("/a.txt", b"alpha"), ("/old.txt", b"beta")]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let result = session["result"].as_object().cloned().unwrap_or_default();
    assert_eq!(result.keys().collect::<Vec<_>>(), vec!["jwt"]);
    let completion = result["jwt"].as_str().unwrap_or_default();
    let (status, v2) = api
        .put_script("acme-site", &Api::metadata(completion), Api::worker())
        .await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!(v2["result"]["created_on"], v1["result"]["created_on"]);
    assert_ne!(v2["result"]["deployment_id"], v1["result"]["deployment_id"]);

    let live = deployment(&api.sim, ACCOUNT, NS, "acme-site").await;
    assert_eq!(live["version"], json!(2));
    let paths: Vec<&String> = live["manifest"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        paths,
        vec!["/a.txt", "/old.txt"],
        "the new deployment replaces the old manifest"
    );
    assert_eq!(
        asset(&api.sim, ACCOUNT, NS, "acme-site", "/old.txt")
            .await
            .1,
        b"beta"
    );
}

#[tokio::test]
async fn re_uploading_a_received_file_is_idempotent() {
    let api = Api::start().await;
    let (_, session) = api
        .session(
            "acme-site",
            &manifest(&[("/a.txt", b"alpha"), ("/b.txt", b"beta")]),
        )
        .await;
    let jwt = session["result"]["jwt"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for _ in 0..2 {
        let (status, body) = api.upload_files(&jwt, &[(b"alpha", "text/plain")]).await;
        assert_eq!(
            (status, &body["result"]),
            (StatusCode::OK, &json!({"jwt": null}))
        );
    }
    let (status, body) = api.upload_files(&jwt, &[(b"beta", "text/plain")]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A retry after a lost 201 gets a completion JWT again, and it deploys.
    let (status, body) = api.upload_files(&jwt, &[(b"beta", "text/plain")]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let completion = body["result"]["jwt"].as_str().unwrap_or_default();
    let (status, body) = api
        .put_script("acme-site", &Api::metadata(completion), Api::worker())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(stats(&api.sim).await["files_uploaded"], json!(4));
}

#[tokio::test]
async fn buckets_follow_file_and_byte_caps() {
    let mut config = SimConfig::for_tests();
    config.bucket_max_files = 3;
    config.bucket_max_bytes = 10;
    let api = Api::with(config).await;
    let files: [(&str, &[u8]); 5] = [
        ("/1", b"aaaa"),
        ("/2", b"bbbb"),
        ("/3", b"cccc"),
        ("/4", b"a file over ten bytes"),
        ("/5", b"e"),
    ];
    let (_, body) = api.session("acme-site", &manifest(&files)).await;
    let expected = json!([
        [hash(b"aaaa"), hash(b"bbbb")],
        [hash(b"cccc")],
        [hash(b"a file over ten bytes")],
        [hash(b"e")]
    ]);
    assert_eq!(body["result"]["buckets"], expected);
}

#[tokio::test]
async fn assets_only_deploys_need_no_module() {
    let api = Api::start().await;
    let completion = api
        .upload_all("static-only", &[("/index.html", b"<p>hi</p>", "text/html")])
        .await;
    let metadata = json!({"assets": {"jwt": completion}, "compatibility_date": DATE});
    let (status, body) = api.put_script("static-only", &metadata, vec![]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["has_modules"], json!(false));
    assert_eq!(
        deployment(&api.sim, ACCOUNT, NS, "static-only").await["modules"],
        json!([])
    );
}

#[tokio::test]
async fn keep_assets_redeploys_code_over_the_live_assets() {
    let api = Api::start().await;
    let completion = api
        .upload_all("acme-site", &[("/a.txt", b"alpha", "text/plain")])
        .await;
    let (status, _) = api
        .put_script("acme-site", &Api::metadata(&completion), Api::worker())
        .await;
    assert_eq!(status, StatusCode::OK);
    let metadata = json!({
        "main_module": "index.js",
        "keep_assets": true,
        "compatibility_date": DATE,
        "bindings": [{"type": "assets", "name": "ASSETS"}],
    });
    let new_code = vec![(
        "index.js",
        "application/javascript+module",
        b"export default {fetch(){}}".to_vec(),
    )];
    let (status, body) = api.put_script("acme-site", &metadata, new_code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["has_assets"], json!(true));
    let live = deployment(&api.sim, ACCOUNT, NS, "acme-site").await;
    assert_eq!(live["version"], json!(2));
    assert_eq!(live["modules"][0]["size"], json!(26));
    assert_eq!(
        asset(&api.sim, ACCOUNT, NS, "acme-site", "/a.txt").await.1,
        b"alpha"
    );
}

#[tokio::test]
async fn a_part_without_content_type_is_accepted_and_served_as_octet_stream() {
    let api = Api::start().await;
    let files: [(&str, &[u8]); 2] = [("/a.txt", b"alpha"), ("/data.bin", b"\x00\x01raw")];
    let (status, body) = api.session("acme-site", &manifest(&files)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let jwt = body["result"]["jwt"].as_str().unwrap_or_default();
    // As Cloudflare's `curl -F "<hash>=<base64>"` example sends it: no
    // Content-Type on the bare part (reqwest adds none to a text part
    // without `mime_str`), next to one that has it.
    let bare = Part::text(STANDARD.encode(b"\x00\x01raw"));
    let typed = Part::text(STANDARD.encode("alpha"))
        .mime_str("text/plain")
        .unwrap_or_else(|e| panic!("{e}"));
    let form = Form::new()
        .part(hash(b"\x00\x01raw"), bare)
        .part(hash(b"alpha"), typed);
    let request = api
        .http
        .post(api.upload_url(ACCOUNT))
        .bearer_auth(jwt)
        .multipart(form);
    let (status, body) = api.send(request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let completion = body["result"]["jwt"].as_str().unwrap_or_default();
    let (status, body) = api
        .put_script("acme-site", &Api::metadata(completion), Api::worker())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (served_type, served) = asset(&api.sim, ACCOUNT, NS, "acme-site", "/data.bin").await;
    assert_eq!(served_type, "application/octet-stream");
    assert_eq!(served, b"\x00\x01raw");
    let (served_type, _) = asset(&api.sim, ACCOUNT, NS, "acme-site", "/a.txt").await;
    assert_eq!(served_type, "text/plain");
}

#[tokio::test]
async fn stats_and_request_log_record_each_call() {
    let api = Api::start().await;
    let completion = api
        .upload_all("acme-site", &[("/a.txt", b"alpha", "text/plain")])
        .await;
    api.put_script("acme-site", &Api::metadata(&completion), Api::worker())
        .await;

    let stats = stats(&api.sim).await;
    assert_eq!(stats["sessions"], json!(1));
    assert_eq!(stats["files_uploaded"], json!(1));
    assert_eq!(stats["bytes_uploaded"], json!(5));
    assert_eq!(stats["deploys"], json!(1));
    assert_eq!(stats["requests"]["session"], json!({"200": 1}));
    assert_eq!(stats["requests"]["upload"], json!({"201": 1}));
    assert_eq!(stats["requests"]["script"], json!({"200": 1}));

    let log = requests(&api.sim).await;
    let seen: Vec<(&str, &str, &str, i64)> = log
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default();
            (
                text("endpoint"),
                text("method"),
                text("auth"),
                r["status"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("session", "POST", "api_token", 200),
            ("upload", "POST", "upload_jwt", 201),
            ("script", "PUT", "api_token", 200),
        ]
    );
    assert_eq!(
        log[1]["path"],
        json!(format!(
            "/client/v4/accounts/{ACCOUNT}/workers/assets/upload?base64=true"
        ))
    );
    assert!(
        log.iter()
            .all(|r| r["fault"].is_null() && r["at_ms"].as_i64().is_some())
    );
    let cleared = api
        .http
        .delete(format!("{}/requests", api.sim.admin_url()))
        .send()
        .await;
    assert!(cleared.is_ok_and(|r| r.status().is_success()));
    assert!(requests(&api.sim).await.is_empty());
}

#[tokio::test]
async fn unknown_paths_and_methods_get_enveloped_errors() {
    let api = Api::start().await;
    let base = api.sim.api_base_url();
    let (status, body) = api
        .send(api.http.get(format!("{base}/accounts/{ACCOUNT}/nothing")))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, 7003));
    let (status, body) = api
        .send(api.http.get(api.script_url(ACCOUNT, NS, "acme-site")))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, 7001)
    );
    let (status, _) = api
        .send(api.http.put(api.session_url(ACCOUNT, NS, "acme-site")))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let health = api
        .http
        .get(format!("{}/health", api.sim.admin_url()))
        .send()
        .await;
    let health: Option<Value> = match health {
        Ok(r) => r.json().await.ok(),
        Err(_) => None,
    };
    assert_eq!(health, Some(json!({"ok": true})));
}
