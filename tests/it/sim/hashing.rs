//! The simulator checks each uploaded file against its manifest hash under
//! the scheme the worker uses (`--hash-scheme`, `--tenant-key`,
//! `--hash-secret`), recomputing it with its own code; the hashes here come
//! from the worker's `AssetHashing`, so the two implementations are checked
//! against each other.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wfp_deployer::manifest::{AssetHashing, ContentDigest, HashKey, TenantSalt};
use wfp_deployer::sim::{SimConfig, SimHashing, SimTenantKey};

use super::{Api, code, hash, message};

fn salted(secret: Option<&str>) -> SimConfig {
    let mut config = SimConfig::for_tests();
    config.set_hashing(SimHashing::Salted {
        tenant: SimTenantKey::Script,
        secret: secret.map(|s| s.as_bytes().to_vec()),
    });
    config
}

/// The worker's hash of `bytes` at `path` for script `acme`.
fn worker_hash(bytes: &[u8], path: &str, secret: Option<&str>) -> String {
    let key = secret.map(|s| HashKey::new(&s.to_string().into()));
    AssetHashing::salted(
        &TenantSalt::Script {
            namespace: super::NS.into(),
            script: "acme".into(),
        },
        key.as_ref(),
    )
    .asset_hash(&ContentDigest::of(bytes), path)
}

/// Opens a session for `files` (path, hash, size) and returns its upload JWT.
async fn session(api: &Api, files: &[(&str, &str, usize)]) -> String {
    let manifest: serde_json::Map<String, Value> = files
        .iter()
        .map(|(path, hash, size)| ((*path).to_owned(), json!({"hash": hash, "size": size})))
        .collect();
    let (status, body) = api.session("acme", &json!({ "manifest": manifest })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["result"]["jwt"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn upload_one(api: &Api, jwt: &str, hash: &str, bytes: &[u8]) -> (StatusCode, Value) {
    api.upload(
        jwt,
        vec![(hash.to_owned(), "text/css", STANDARD.encode(bytes))],
    )
    .await
}

#[tokio::test]
async fn a_salted_simulator_takes_the_worker_s_hashes_and_refuses_others() {
    let api = Api::with(salted(None)).await;
    let good = worker_hash(b"a{}", "/a.css", None);
    let plain = hash(b"b{}");
    let other_ext = worker_hash(b"c{}", "/c.js", None);
    let jwt = session(
        &api,
        &[
            ("/a.css", &good, 3),
            ("/b.css", &plain, 3),
            ("/c.css", &other_ext, 3),
        ],
    )
    .await;

    let (status, body) = upload_one(&api, &jwt, &good, b"a{}").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (hash, bytes, path) in [(&plain, b"b{}", "/b.css"), (&other_ext, b"c{}", "/c.css")] {
        let (status, body) = upload_one(&api, &jwt, hash, bytes).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(code(&body), 10021);
        let message = message(&body);
        assert!(
            message.starts_with(&format!("part {hash}: content hashes to ")),
            "{message}"
        );
        assert!(message.contains(path), "{message}");
    }
}

#[tokio::test]
async fn keyed_hashes_need_the_same_secret() {
    let api = Api::with(salted(Some("s3cret"))).await;
    let right = worker_hash(b"k{}", "/k.css", Some("s3cret"));
    let wrong = worker_hash(b"w{}", "/w.css", Some("other"));
    let jwt = session(&api, &[("/k.css", &right, 3), ("/w.css", &wrong, 3)]).await;
    let (status, body) = upload_one(&api, &jwt, &right, b"k{}").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = upload_one(&api, &jwt, &wrong, b"w{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), 10021);
}

#[tokio::test]
async fn a_label_salt_cannot_be_recomputed_so_only_the_size_is_checked() {
    let mut config = SimConfig::for_tests();
    config.set_hashing(SimHashing::Salted {
        tenant: SimTenantKey::Label("tenant".into()),
        secret: None,
    });
    let api = Api::with(config).await;
    let any = "0123456789abcdef0123456789abcdef";
    let jwt = session(&api, &[("/a.css", any, 3)]).await;
    let (status, body) = upload_one(&api, &jwt, any, b"toolong").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = upload_one(&api, &jwt, any, b"a{}").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
