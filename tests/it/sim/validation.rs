//! Every request the real API would refuse is refused, with the status,
//! code and a message naming the subject.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use wfp_deployer::sim::SimConfig;

use super::{ACCOUNT, Api, DATE, NS, code, hash, manifest, message};
use crate::helpers::sim::{TEST_TOKEN, advance_clock, stats};

const H: &str = "0123456789abcdef0123456789abcdef";

fn assert_refused(
    status: StatusCode,
    body: &Value,
    want_status: StatusCode,
    want_code: i64,
    mentions: &str,
) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(code(body), want_code, "{body}");
    assert!(
        message(body).contains(mentions),
        "{:?} does not mention {mentions:?}",
        message(body)
    );
}

#[tokio::test]
async fn bad_manifests_are_refused_naming_path_and_field() {
    let mut config = SimConfig::for_tests();
    config.max_files = 2;
    config.max_file_bytes = 100;
    let api = Api::with(config).await;
    let cases = [
        (json!({}), "manifest"),
        (json!({"manifest": {}}), "at least one"),
        (
            json!({"manifest": {"/a": {"hash": H, "size": 1}}, "force": true}),
            "\"force\"",
        ),
        (
            json!({"manifest": {"/a": {"hash": H.to_uppercase(), "size": 1}}}),
            "\"/a\": hash",
        ),
        (
            json!({"manifest": {"/a": {"hash": "abc123", "size": 1}}}),
            "\"/a\": hash",
        ),
        (
            json!({"manifest": {"/a": {"hash": H, "size": 1.5}}}),
            "\"/a\": size",
        ),
        (
            json!({"manifest": {"/a": {"hash": H, "size": 1.0}}}),
            "\"/a\": size",
        ),
        (
            json!({"manifest": {"/a": {"hash": H, "size": "1"}}}),
            "\"/a\": size",
        ),
        (
            json!({"manifest": {"/a": {"hash": H, "size": -1}}}),
            "\"/a\": size",
        ),
        (
            json!({"manifest": {"/a": {"hash": H, "size": 101}}}),
            "over the limit",
        ),
        (
            json!({"manifest": {"/a": {"hash": H, "size": 1, "mime": "x"}}}),
            "\"mime\"",
        ),
        (json!({"manifest": {"/a": {"hash": H}}}), "size is required"),
        (
            json!({"manifest": {"a.txt": {"hash": H, "size": 1}}}),
            "\"a.txt\"",
        ),
        (
            json!({"manifest": {"/a/../b": {"hash": H, "size": 1}}}),
            "\"..\"",
        ),
        (
            json!({"manifest": {"/a//b": {"hash": H, "size": 1}}}),
            "empty segment",
        ),
        (
            json!({"manifest": {"/a\u{1}": {"hash": H, "size": 1}}}),
            "control",
        ),
        (
            json!({"manifest": {"/1": {"hash": H, "size": 1}, "/2": {"hash": H, "size": 1}, "/3": {"hash": H, "size": 1}}}),
            "limit of 2",
        ),
    ];
    for (body, mentions) in cases {
        let (status, answer) = api.session("acme-site", &body).await;
        assert_refused(status, &answer, StatusCode::BAD_REQUEST, 10021, mentions);
    }
    let url = api.session_url(ACCOUNT, NS, "acme-site");
    let text = manifest(&[("/a", b"x")]).to_string();
    let (status, answer) = api
        .send(
            api.http
                .post(url.clone())
                .bearer_auth(TEST_TOKEN)
                .body(text),
        )
        .await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        10021,
        "application/json",
    );
    let duplicate = format!(
        r#"{{"manifest":{{"/a":{{"hash":"{H}","size":1}},"/a":{{"hash":"{H}","size":1}}}}}}"#
    );
    let request = api
        .http
        .post(url)
        .bearer_auth(TEST_TOKEN)
        .header("content-type", "application/json");
    let (status, answer) = api.send(request.body(duplicate)).await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        10021,
        "duplicate key",
    );
    assert_eq!(stats(&api.sim).await["sessions"], json!(0));
}

#[tokio::test]
async fn identifiers_in_the_path_are_checked() {
    let mut config = SimConfig::for_tests();
    config.accounts = vec![ACCOUNT.to_owned()];
    config.namespaces = vec![NS.to_owned()];
    let api = Api::with(config).await;
    let body = manifest(&[("/a", b"x")]);
    let post = |url: String| api.http.post(url).bearer_auth(TEST_TOKEN).json(&body);
    let (status, answer) = api
        .send(post(api.session_url("not-an-account", NS, "acme")))
        .await;
    assert_refused(
        status,
        &answer,
        StatusCode::NOT_FOUND,
        7003,
        "Could not route",
    );
    let (status, answer) = api
        .send(post(api.session_url(&"f".repeat(32), NS, "acme")))
        .await;
    assert_refused(status, &answer, StatusCode::FORBIDDEN, 10000, "account");
    let (status, answer) = api
        .send(post(api.session_url(ACCOUNT, "staging", "acme")))
        .await;
    assert_refused(status, &answer, StatusCode::NOT_FOUND, 100119, "staging");
    for script in ["Acme", "-acme", "acme-", "acme.site", &"a".repeat(64)] {
        let (status, answer) = api.send(post(api.session_url(ACCOUNT, NS, script))).await;
        assert_refused(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            10016,
            "script name",
        );
    }
    let request = api
        .http
        .put(api.script_url(ACCOUNT, NS, "-acme"))
        .bearer_auth(TEST_TOKEN);
    let (status, answer) = api
        .send(request.multipart(Form::new().text("metadata", "{}")))
        .await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        10016,
        "script name",
    );
}

#[tokio::test]
async fn bad_upload_parts_are_refused_naming_the_hash() {
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
    let (a, b) = (hash(b"alpha"), hash(b"beta"));
    let cases: Vec<(Vec<(String, &str, String)>, String)> = vec![
        (
            vec![(a.clone(), "text/plain", STANDARD_NO_PAD.encode("alpha"))],
            format!("part {a}: value is not canonical"),
        ),
        (
            vec![(
                a.clone(),
                "text/plain",
                format!("{}\n", STANDARD.encode("alpha")),
            )],
            format!("part {a}"),
        ),
        (
            vec![(a.clone(), "text/plain", STANDARD.encode("alphas"))],
            format!("part {a}: decoded size 6"),
        ),
        (
            vec![(a.clone(), "text/plain", STANDARD.encode("ALPHA"))],
            format!("part {a}: content hashes"),
        ),
        (
            vec![(hash(b"other"), "text/plain", STANDARD.encode("other"))],
            format!("\"{}\": not a hash", hash(b"other")),
        ),
        (
            vec![
                (a.clone(), "text/plain", STANDARD.encode("alpha")),
                (a.clone(), "text/plain", STANDARD.encode("alpha")),
            ],
            format!("part {a}: sent twice"),
        ),
        // One bad part spoils the request: the good one must not be stored.
        (
            vec![
                (b.clone(), "text/plain", STANDARD.encode("beta")),
                (a.clone(), "text/plain", STANDARD.encode("alpha!")),
            ],
            format!("part {a}"),
        ),
    ];
    for (parts, mentions) in cases {
        let (status, answer) = api.upload(&jwt, parts).await;
        assert_refused(status, &answer, StatusCode::BAD_REQUEST, 10021, &mentions);
    }
    // reqwest refuses to send a bad media type, so this part is written raw.
    let boundary = "sim-test-boundary";
    let raw = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{a}\"\r\nContent-Type: not a type\r\n\r\n{}\r\n--{boundary}--\r\n",
        STANDARD.encode("alpha")
    );
    let request = api
        .http
        .post(api.upload_url(ACCOUNT))
        .bearer_auth(&jwt)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(raw);
    let (status, answer) = api.send(request).await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        10021,
        &format!("part {a}: needs a Content-Type"),
    );
    let (status, answer) = api.upload(&jwt, vec![]).await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        10021,
        "no file parts",
    );
    let part = Part::text(STANDARD.encode("alpha"));
    let request = api
        .http
        .post(api.upload_url(ACCOUNT))
        .bearer_auth(&jwt)
        .multipart(Form::new().part(a.clone(), part));
    let (status, answer) = api.send(request).await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        10021,
        "Content-Type",
    );
    let no_flag = api.upload_url(ACCOUNT).replace("?base64=true", "");
    let form = Form::new().part(
        a.clone(),
        Part::text(STANDARD.encode("alpha"))
            .mime_str("text/plain")
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let (status, answer) = api
        .send(api.http.post(no_flag).bearer_auth(&jwt).multipart(form))
        .await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        10021,
        "base64=true",
    );
    let (status, answer) = api
        .send(
            api.http
                .post(api.upload_url(ACCOUNT))
                .bearer_auth(&jwt)
                .body("x"),
        )
        .await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        10021,
        "multipart/form-data",
    );
    assert_eq!(
        stats(&api.sim).await["files_uploaded"],
        json!(0),
        "nothing was stored"
    );
}

#[tokio::test]
async fn bad_metadata_is_refused_naming_the_key() {
    let api = Api::start().await;
    let completion = api
        .upload_all("acme-site", &[("/a.txt", b"alpha", "text/plain")])
        .await;
    let good = Api::metadata(&completion);
    let with = |key: &str, value: Value| {
        let mut m = good.clone();
        m[key] = value;
        m
    };
    let config = |config: Value| with("assets", json!({"jwt": completion, "config": config}));
    let cases = [
        (
            with("body_part", json!("index.js")),
            "unknown key \"body_part\"",
        ),
        (
            with("compatibility_date", json!("2999-01-01")),
            "in the future",
        ),
        (
            with("compatibility_date", json!("24/01/2025")),
            "YYYY-MM-DD",
        ),
        (
            with("compatibility_flags", json!("nodejs_compat")),
            "compatibility_flags",
        ),
        (with("bindings", json!([{"type": "assets"}])), "bindings[0]"),
        (
            config(json!({"html_handling": "trailing"})),
            "html_handling",
        ),
        (
            config(json!({"not_found_handling": "404"})),
            "not_found_handling",
        ),
        (
            config(json!({"run_worker_first": ["api/*"]})),
            "run_worker_first",
        ),
        (config(json!({"serve_directly": 1})), "serve_directly"),
        (
            config(json!({"redirects": []})),
            "unknown key \"redirects\"",
        ),
        (
            with("assets", json!({"jwt": completion, "binding": "ASSETS"})),
            "unknown key \"binding\"",
        ),
    ];
    for (metadata, mentions) in cases {
        let (status, answer) = api.put_script("acme-site", &metadata, Api::worker()).await;
        assert_refused(status, &answer, StatusCode::BAD_REQUEST, 10021, mentions);
    }
    let mut no_date = good.clone();
    no_date
        .as_object_mut()
        .map(|m| m.remove("compatibility_date"));
    let (status, answer) = api.put_script("acme-site", &no_date, Api::worker()).await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        10021,
        "compatibility_date: required",
    );
    let tomorrow = (chrono::Utc::now() + chrono::TimeDelta::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let (status, answer) = api
        .put_script(
            "acme-site",
            &with("compatibility_date", json!(tomorrow)),
            Api::worker(),
        )
        .await;
    assert_refused(status, &answer, StatusCode::BAD_REQUEST, 10021, "future");
    // Two days on the sim clock later, the same date is in the past.
    advance_clock(&api.sim, 2 * 86_400).await;
    let fresh = api
        .upload_all("acme-site", &[("/a.txt", b"alpha", "text/plain")])
        .await;
    let mut later = Api::metadata(&fresh);
    later["compatibility_date"] = json!(tomorrow);
    let (status, answer) = api.put_script("acme-site", &later, Api::worker()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn module_parts_are_checked() {
    let api = Api::start().await;
    let completion = api
        .upload_all("acme-site", &[("/a.txt", b"alpha", "text/plain")])
        .await;
    let metadata = Api::metadata(&completion);
    let js = || b"export default {}".to_vec();
    let cases: Vec<(Value, Vec<(&str, &str, Vec<u8>)>, &str)> = vec![
        (
            metadata.clone(),
            vec![("index.js", "text/html", js())],
            "part \"index.js\": Content-Type",
        ),
        (
            metadata.clone(),
            vec![
                ("index.js", "application/javascript+module", js()),
                ("page.html", "text/html", js()),
            ],
            "\"page.html\"",
        ),
        (
            metadata.clone(),
            vec![("main.js", "application/javascript+module", js())],
            "no part named \"index.js\"",
        ),
        (
            metadata.clone(),
            vec![("index.js", "application/wasm", js())],
            "main module must be JavaScript",
        ),
        (
            json!({"assets": {"jwt": completion}, "compatibility_date": DATE}),
            Api::worker(),
            "main_module is not set",
        ),
        (
            json!({"compatibility_date": DATE}),
            vec![],
            "nothing to deploy",
        ),
    ];
    for (metadata, modules, mentions) in cases {
        let (status, answer) = api.put_script("acme-site", &metadata, modules).await;
        assert_refused(status, &answer, StatusCode::BAD_REQUEST, 10021, mentions);
    }
    let ok = vec![
        ("index.js", "application/javascript+module", js()),
        ("lib.wasm", "application/wasm", vec![0, 97, 115, 109]),
        ("data.json", "application/json", b"{}".to_vec()),
    ];
    let (status, answer) = api.put_script("acme-site", &metadata, ok).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let url = api.script_url(ACCOUNT, NS, "acme-site");
    let wrong_type = Form::new().part(
        "metadata",
        Part::text(metadata.to_string())
            .mime_str("text/plain")
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let (status, answer) = api
        .send(
            api.http
                .put(url.clone())
                .bearer_auth(TEST_TOKEN)
                .multipart(wrong_type),
        )
        .await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        10021,
        "\"metadata\": Content-Type",
    );
    let no_metadata = Form::new().part(
        "index.js",
        Part::bytes(js())
            .mime_str("application/javascript+module")
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let (status, answer) = api
        .send(
            api.http
                .put(url)
                .bearer_auth(TEST_TOKEN)
                .multipart(no_metadata),
        )
        .await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        10021,
        "metadata part is required",
    );
}
