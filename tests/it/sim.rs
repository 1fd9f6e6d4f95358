//! Tests of the Cloudflare simulator itself, driven with plain reqwest (not
//! the project's client), one simulator per test on port 0.
//!
//! The small [`Api`] driver here speaks the three calls raw, so each test
//! can send exactly the malformed request it wants refused.

mod auth;
mod faults;
mod flow;
mod hashing;
mod rate_limit;
mod script_checks;
mod special_files;
mod validation;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wfp_deployer::sim::{SimConfig, SimServer};

use crate::helpers::sim::{TEST_TOKEN, spawn_sim_with};

pub const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
pub const NS: &str = "customers";
pub const DATE: &str = "2025-01-24";

/// The manifest hash: first 32 hex characters of the SHA-256.
pub fn hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `{"manifest": {...}}` for these files.
pub fn manifest(files: &[(&str, &[u8])]) -> Value {
    let entries: serde_json::Map<String, Value> = files
        .iter()
        .map(|(path, bytes)| {
            (
                (*path).to_owned(),
                json!({"hash": hash(bytes), "size": bytes.len()}),
            )
        })
        .collect();
    json!({ "manifest": entries })
}

/// The first error code of an envelope.
pub fn code(body: &Value) -> i64 {
    assert_eq!(
        body["success"],
        json!(false),
        "not an error envelope: {body}"
    );
    body["errors"][0]["code"].as_i64().unwrap_or(-1)
}

pub fn message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A simulator and a client speaking its API.
pub struct Api {
    pub sim: SimServer,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn start() -> Api {
        Api::with(SimConfig::for_tests()).await
    }

    pub async fn with(config: SimConfig) -> Api {
        Api {
            sim: spawn_sim_with(config).await,
            http: reqwest::Client::new(),
        }
    }

    pub fn session_url(&self, account: &str, ns: &str, script: &str) -> String {
        format!(
            "{}/accounts/{account}/workers/dispatch/namespaces/{ns}/scripts/{script}/assets-upload-session",
            self.sim.api_base_url()
        )
    }

    pub fn upload_url(&self, account: &str) -> String {
        format!(
            "{}/accounts/{account}/workers/assets/upload?base64=true",
            self.sim.api_base_url()
        )
    }

    pub fn script_url(&self, account: &str, ns: &str, script: &str) -> String {
        format!(
            "{}/accounts/{account}/workers/dispatch/namespaces/{ns}/scripts/{script}",
            self.sim.api_base_url()
        )
    }

    /// Sends a request and returns status and JSON body; the body must be
    /// an envelope (every API answer is).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("request failed: {e}"));
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("body not JSON: {e}"));
        assert!(
            body.get("success").is_some() && body.get("errors").is_some(),
            "not an envelope: {body}"
        );
        assert!(
            body.get("messages").is_some() && body.get("result").is_some(),
            "not an envelope: {body}"
        );
        (status, body)
    }

    /// Step 1 with the test token, for `script` in [`NS`].
    pub async fn session(&self, script: &str, body: &Value) -> (StatusCode, Value) {
        let url = self.session_url(ACCOUNT, NS, script);
        self.send(self.http.post(url).bearer_auth(TEST_TOKEN).json(body))
            .await
    }

    /// Step 2 with these `(hash, content type, base64 value)` parts.
    pub async fn upload(
        &self,
        jwt: &str,
        parts: Vec<(String, &str, String)>,
    ) -> (StatusCode, Value) {
        let mut form = Form::new();
        for (name, content_type, value) in parts {
            let part = Part::text(value)
                .mime_str(content_type)
                .unwrap_or_else(|e| panic!("{e}"));
            form = form.part(name, part);
        }
        let request = self
            .http
            .post(self.upload_url(ACCOUNT))
            .bearer_auth(jwt)
            .multipart(form);
        self.send(request).await
    }

    /// Step 2 for whole files: base64 of `bytes`, named by their hash.
    pub async fn upload_files(&self, jwt: &str, files: &[(&[u8], &str)]) -> (StatusCode, Value) {
        let parts = files
            .iter()
            .map(|(bytes, content_type)| (hash(bytes), *content_type, STANDARD.encode(bytes)))
            .collect();
        self.upload(jwt, parts).await
    }

    /// Step 3 with the test token: metadata plus `(name, type, bytes)` modules.
    pub async fn put_script(
        &self,
        script: &str,
        metadata: &Value,
        modules: Vec<(&str, &str, Vec<u8>)>,
    ) -> (StatusCode, Value) {
        let metadata_part = Part::text(metadata.to_string())
            .mime_str("application/json")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut form = Form::new().part("metadata", metadata_part);
        for (name, content_type, bytes) in modules {
            let part = Part::bytes(bytes)
                .file_name(name.to_owned())
                .mime_str(content_type)
                .unwrap_or_else(|e| panic!("{e}"));
            form = form.part(name.to_owned(), part);
        }
        let request = self
            .http
            .put(self.script_url(ACCOUNT, NS, script))
            .bearer_auth(TEST_TOKEN)
            .multipart(form);
        self.send(request).await
    }

    /// Steps 1 and 2 for `files` (path, bytes, content type): returns the
    /// completion JWT.
    pub async fn upload_all(&self, script: &str, files: &[(&str, &[u8], &str)]) -> String {
        let listed: Vec<(&str, &[u8])> = files.iter().map(|(p, b, _)| (*p, *b)).collect();
        let (status, body) = self.session(script, &manifest(&listed)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let jwt = body["result"]["jwt"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Some(buckets) = body["result"]["buckets"].as_array() else {
            return jwt;
        };
        let mut completion = String::new();
        for bucket in buckets {
            let parts: Vec<(&[u8], &str)> = bucket
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| {
                    files
                        .iter()
                        .find(|(_, b, _)| Some(hash(b).as_str()) == h.as_str())
                })
                .map(|(_, b, ct)| (*b, *ct))
                .collect();
            let (status, body) = self.upload_files(&jwt, &parts).await;
            assert!(status.is_success(), "{body}");
            completion = body["result"]["jwt"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
        completion
    }

    /// Metadata for an assets deploy with `index.js` as main module.
    pub fn metadata(completion: &str) -> Value {
        json!({
            "main_module": "index.js",
            "assets": {"jwt": completion, "config": {"html_handling": "auto-trailing-slash"}},
            "compatibility_date": DATE,
            "bindings": [{"type": "assets", "name": "ASSETS"}],
        })
    }

    /// The `index.js` module the metadata names.
    pub fn worker() -> Vec<(&'static str, &'static str, Vec<u8>)> {
        vec![(
            "index.js",
            "application/javascript+module",
            b"export default {}".to_vec(),
        )]
    }
}

/// The simulator's `/metrics`: what it saw, in Prometheus text format.
#[tokio::test]
async fn metrics_show_what_the_simulator_saw() {
    let sim = crate::helpers::sim::spawn_sim().await;
    // One refused call (no token) counts as a session request with its status.
    let client = reqwest::Client::new();
    let url = format!(
        "{}/accounts/0123456789abcdef0123456789abcdef/workers/dispatch/namespaces/ns/scripts/s/assets-upload-session",
        sim.api_base_url()
    );
    let refused = client
        .post(&url)
        .json(&json!({"manifest": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let metrics_url = sim.api_base_url().replace("/client/v4", "/metrics");
    let text = client
        .get(metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("# TYPE wfp_sim_requests_total counter"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("wfp_sim_requests_total")
                && l.contains("endpoint=\"session\"")
                && l.contains("status=\"401\"")
        })
        .unwrap_or_else(|| panic!("no session 401 sample: {text}"));
    assert!(line.ends_with(" 1"), "{line}");
    assert!(text.contains("wfp_sim_sessions_total 0"), "{text}");
    sim.shutdown().await;
}
