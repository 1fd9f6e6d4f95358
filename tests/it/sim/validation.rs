//! Every request the real API would refuse is refused, with the status,
//! code and a message naming the subject.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use wfp_deployer::sim::SimConfig;

use super::{ACCOUNT, Api, NS, code, hash, manifest, message};
use crate::helpers::sim::{TEST_TOKEN, stats};

const H: &str = "0123456789abcdef0123456789abcdef";

/// Upload parts: (name, content type, value).
type Parts<'a> = Vec<(String, &'a str, String)>;

pub fn assert_refused(
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
    let cases: Vec<(Parts, String)> = vec![
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
        &format!("part {a}: Content-Type is not a valid media type"),
    );
    // An empty form, as reqwest writes it (a closing boundary only).
    let (status, answer) = api.upload(&jwt, vec![]).await;
    assert_refused(status, &answer, StatusCode::BAD_REQUEST, 10021, "body:");
    let empty = api
        .http
        .post(api.upload_url(ACCOUNT))
        .bearer_auth(&jwt)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(format!("--{boundary}--\r\n"));
    let (status, answer) = api.send(empty).await;
    assert_refused(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        10021,
        "no file parts",
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
