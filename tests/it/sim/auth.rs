//! Each credential works only where Cloudflare accepts it: the API token on
//! the session and script calls, the upload JWT on uploads, the completion
//! JWT in `assets.jwt`, each for its own account and script, until the sim
//! clock passes its expiry.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use super::{ACCOUNT, Api, NS, code, hash, manifest, message};
use crate::helpers::sim::{TEST_TOKEN, advance_clock, requests, stats};

fn assert_unauthorized(status: StatusCode, body: &Value, mentions: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(code(body), 10000, "{body}");
    assert!(
        message(body).contains(mentions),
        "{:?} does not mention {mentions:?}",
        message(body)
    );
}

/// An upload JWT for a session that still misses `/a.txt`.
async fn upload_jwt(api: &Api, script: &str) -> String {
    let (_, body) = api
        .session(script, &manifest(&[("/a.txt", b"alpha")]))
        .await;
    body["result"]["jwt"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn api_calls_need_a_known_api_token() {
    let api = Api::start().await;
    let url = api.session_url(ACCOUNT, NS, "acme-site");
    let body = manifest(&[("/a.txt", b"alpha")]);
    let (status, answer) = api.send(api.http.post(url.clone()).json(&body)).await;
    assert_unauthorized(status, &answer, "Authentication error");
    let (status, answer) = api
        .send(
            api.http
                .post(url.clone())
                .header("authorization", "Token test-token")
                .json(&body),
        )
        .await;
    assert_unauthorized(status, &answer, "Authentication error");
    let (status, answer) = api
        .send(
            api.http
                .post(url.clone())
                .bearer_auth("wrong-secret-token")
                .json(&body),
        )
        .await;
    assert_unauthorized(status, &answer, "unknown API token");
    assert!(
        !answer.to_string().contains("wrong-secret-token"),
        "the credential is echoed: {answer}"
    );
    let upload = upload_jwt(&api, "acme-site").await;
    let (status, answer) = api
        .send(api.http.post(url).bearer_auth(&upload).json(&body))
        .await;
    assert_unauthorized(status, &answer, "upload JWT is not an API token");
    assert!(!answer.to_string().contains(&upload));
    let form = Form::new().text("metadata", "{}");
    let request = api
        .http
        .put(api.script_url(ACCOUNT, NS, "acme-site"))
        .bearer_auth(&upload)
        .multipart(form);
    let (status, answer) = api.send(request).await;
    assert_unauthorized(status, &answer, "not an API token");

    let auths: Vec<Value> = requests(&api.sim)
        .await
        .iter()
        .map(|r| r["auth"].clone())
        .collect();
    let expected = [
        "none",
        "invalid",
        "invalid",
        "api_token",
        "upload_jwt",
        "upload_jwt",
    ];
    assert_eq!(auths, expected.map(|a| json!(a)).to_vec());
}

#[tokio::test]
async fn uploads_need_the_upload_jwt() {
    let api = Api::start().await;
    let (status, answer) = api
        .upload_files(TEST_TOKEN, &[(b"alpha", "text/plain")])
        .await;
    assert_unauthorized(status, &answer, "not an API token");
    let (status, answer) = api
        .upload_files("not.a.jwt", &[(b"alpha", "text/plain")])
        .await;
    assert_unauthorized(status, &answer, "invalid upload JWT");
    let (_, all_stored) = {
        api.upload_all("acme-site", &[("/b.txt", b"beta", "text/plain")])
            .await;
        api.session("acme-site", &manifest(&[("/b.txt", b"beta")]))
            .await
    };
    let completion = all_stored["result"]["jwt"].as_str().unwrap_or_default();
    let (status, answer) = api
        .upload_files(completion, &[(b"beta", "text/plain")])
        .await;
    assert_unauthorized(status, &answer, "completion JWT is not an upload JWT");

    let jwt = upload_jwt(&api, "acme-site").await;
    let other_account = "ffffffffffffffffffffffffffffffff";
    let part = Part::text(STANDARD.encode("alpha"))
        .mime_str("text/plain")
        .unwrap_or_else(|e| panic!("{e}"));
    let request = api
        .http
        .post(api.upload_url(other_account))
        .bearer_auth(&jwt)
        .multipart(Form::new().part(hash(b"alpha"), part));
    let (status, answer) = api.send(request).await;
    assert_unauthorized(status, &answer, "another account");
}

#[tokio::test]
async fn an_upload_jwt_expires_by_the_sim_clock() {
    let api = Api::start().await;
    let jwt = upload_jwt(&api, "acme-site").await;
    advance_clock(&api.sim, 3590).await;
    // Still valid ten seconds before expiry.
    let (status, _) = api.upload_files(&jwt, &[(b"alpha", "text/plain")]).await;
    assert_eq!(status, StatusCode::CREATED);
    advance_clock(&api.sim, 10).await;
    let (status, answer) = api.upload_files(&jwt, &[(b"alpha", "text/plain")]).await;
    assert_unauthorized(status, &answer, "upload JWT expired");
    let clock = api
        .http
        .get(format!("{}/clock", api.sim.admin_url()))
        .send()
        .await;
    let clock: Value = match clock {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(clock["offset_seconds"], json!(3600));
    assert!(
        clock["now"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
    );
}

#[tokio::test]
async fn assets_jwt_must_be_a_live_completion_jwt_for_this_script() {
    let api = Api::start().await;
    let completion = api
        .upload_all("acme-site", &[("/a.txt", b"alpha", "text/plain")])
        .await;

    let (status, answer) = api
        .put_script("other-site", &Api::metadata(&completion), Api::worker())
        .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::BAD_REQUEST, 10021),
        "{answer}"
    );
    assert!(message(&answer).contains("assets.jwt"), "{answer}");

    let (status, answer) = api
        .put_script("acme-site", &Api::metadata("garbage"), Api::worker())
        .await;
    assert_unauthorized(status, &answer, "assets.jwt: invalid");
    // A file not stored yet, so the session answers with an upload JWT.
    let (_, session) = api
        .session("acme-site", &manifest(&[("/new.txt", b"new")]))
        .await;
    let upload = session["result"]["jwt"].as_str().unwrap_or_default();
    assert!(session["result"]["buckets"].is_array());
    let (status, answer) = api
        .put_script("acme-site", &Api::metadata(upload), Api::worker())
        .await;
    assert_unauthorized(status, &answer, "assets.jwt: invalid");

    advance_clock(&api.sim, 3600).await;
    let (status, answer) = api
        .put_script("acme-site", &Api::metadata(&completion), Api::worker())
        .await;
    assert_unauthorized(status, &answer, "assets.jwt: expired");
    assert_eq!(
        crate::helpers::sim::deployment(&api.sim, ACCOUNT, NS, "acme-site").await,
        Value::Null
    );
}

#[tokio::test]
async fn sessions_are_pruned_once_their_last_jwt_expires() {
    let api = Api::start().await;
    let completed = upload_jwt(&api, "acme-site").await;
    let abandoned = upload_jwt(&api, "other-site").await;
    advance_clock(&api.sim, 3000).await;
    // Completing late issues a completion JWT valid until offset 6600.
    let (status, answer) = api
        .upload_files(&completed, &[(b"alpha", "text/plain")])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let completion = answer["result"]["jwt"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let live = |stats: &Value| (stats["sessions"].clone(), stats["live_sessions"].clone());
    assert_eq!(live(&stats(&api.sim).await), (json!(2), json!(2)));

    // Both upload JWTs have expired; creating a session prunes the abandoned
    // one but keeps the one its completion JWT still reaches.
    advance_clock(&api.sim, 600).await;
    let (status, _) = api
        .session("third-site", &manifest(&[("/c.txt", b"gamma")]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(live(&stats(&api.sim).await), (json!(3), json!(2)));
    let (status, answer) = api
        .upload_files(&abandoned, &[(b"alpha", "text/plain")])
        .await;
    assert_unauthorized(status, &answer, "upload JWT expired");
    let (status, answer) = api
        .put_script("acme-site", &Api::metadata(&completion), Api::worker())
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // Past the completion JWT too: the completed session goes as well.
    advance_clock(&api.sim, 3000).await;
    let (status, _) = api
        .session("fourth-site", &manifest(&[("/d.txt", b"delta")]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(live(&stats(&api.sim).await), (json!(4), json!(2)));
    let (status, answer) = api
        .put_script("acme-site", &Api::metadata(&completion), Api::worker())
        .await;
    assert_unauthorized(status, &answer, "assets.jwt: expired");
}
