//! `assets.config._headers` and `_redirects` through the script upload:
//! accepted files are stored byte-exact with the deployment and shown by
//! `/__sim/scripts/...`; broken ones and rule-limit overflows answer 400
//! with code 100324, naming the line, and deploy nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::validation::assert_refused;
use super::{ACCOUNT, Api, NS};
use crate::helpers::sim::{deployment, stats};

/// The reference metadata with these keys added to `assets.config`.
fn metadata_with(completion: &str, config: Value) -> Value {
    let mut metadata = Api::metadata(completion);
    if let (Some(target), Some(extra)) = (
        metadata["assets"]["config"].as_object_mut(),
        config.as_object(),
    ) {
        target.extend(extra.clone());
    }
    metadata
}

#[tokio::test]
async fn special_files_are_stored_byte_exact_and_shown() {
    let api = Api::start().await;
    let completion = api
        .upload_all("acme-site", &[("/index.html", b"<h1>hi</h1>", "text/html")])
        .await;
    let headers =
        "# security\r\n/*\r\n\tX-Frame-Options: DENY\r\n/*.jpg\r\n  ! X-Frame-Options\r\n";
    let redirects = "/old /new 301 # moved\n/blog/* /posts/:splat\n/a /b 200\n";
    let metadata = metadata_with(
        &completion,
        json!({"_headers": headers, "_redirects": redirects}),
    );
    let (status, body) = api.put_script("acme-site", &metadata, Api::worker()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let live = deployment(&api.sim, ACCOUNT, NS, "acme-site").await;
    assert_eq!(
        live["special_files"],
        json!({
            "_headers": {"text": headers, "rules": 2},
            "_redirects": {"text": redirects, "static_rules": 1, "dynamic_rules": 2},
        })
    );
    assert_eq!(
        live["metadata"]["assets"]["config"]["_headers"],
        json!(headers)
    );

    // A later upload without them shows none.
    let completion = api
        .upload_all("acme-site", &[("/index.html", b"<h1>hi</h1>", "text/html")])
        .await;
    let (status, body) = api
        .put_script("acme-site", &Api::metadata(&completion), Api::worker())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let live = deployment(&api.sim, ACCOUNT, NS, "acme-site").await;
    assert_eq!(
        live["special_files"],
        json!({"_headers": null, "_redirects": null})
    );
}

#[tokio::test]
async fn broken_or_oversized_special_files_answer_100324_and_deploy_nothing() {
    let api = Api::start().await;
    let completion = api
        .upload_all("acme-site", &[("/a.txt", b"alpha", "text/plain")])
        .await;
    let header_rules: String = (0..101).map(|i| format!("/r{i}\n  X-N: {i}\n")).collect();
    let dynamic_rules: String = (0..101).map(|i| format!("/d{i}/* /t/:splat\n")).collect();
    let cases = [
        (
            json!({"_headers": "X-Frame-Options: DENY\n"}),
            "Invalid _headers configuration:\nLine 1: Expected a path before headers",
        ),
        (
            json!({"_headers": header_rules}),
            "Invalid _headers configuration:\nLine 201: Maximum number of rules supported is 100.",
        ),
        (
            json!({"_redirects": dynamic_rules}),
            "Invalid _redirects configuration:\nLine 101: Maximum number of dynamic rules supported is 100.",
        ),
        (
            json!({"_redirects": "/ok /fine\n/* /index.html 200\n"}),
            "Invalid _redirects configuration:\nLine 2: Infinite loop detected",
        ),
        (
            json!({"_redirects": "/a /b 404\n"}),
            "Line 1: Valid status codes are 200, 301, 302 (default), 303, 307, or 308. Got 404.",
        ),
    ];
    for (config, mentions) in cases {
        let metadata = metadata_with(&completion, config);
        let (status, body) = api.put_script("acme-site", &metadata, Api::worker()).await;
        assert_refused(status, &body, StatusCode::BAD_REQUEST, 100324, mentions);
    }
    let metadata = metadata_with(&completion, json!({"_redirects": 5}));
    let (status, body) = api.put_script("acme-site", &metadata, Api::worker()).await;
    assert_refused(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        10021,
        "config._redirects: invalid value 5",
    );

    assert_eq!(
        deployment(&api.sim, ACCOUNT, NS, "acme-site").await,
        Value::Null
    );
    assert_eq!(stats(&api.sim).await["deploys"], json!(0));
}
