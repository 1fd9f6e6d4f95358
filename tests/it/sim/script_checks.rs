//! Script uploads the real API would refuse: bad metadata keys, dates,
//! `assets.config` values and module parts.

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use super::validation::assert_refused;
use super::{ACCOUNT, Api, DATE, NS};
use crate::helpers::sim::{TEST_TOKEN, advance_clock};

/// Script modules: (name, content type, bytes).
type Modules<'a> = Vec<(&'a str, &'a str, Vec<u8>)>;

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
    let cases: Vec<(Value, Modules, &str)> = vec![
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
