//! Helpers around the in-process Cloudflare simulator: spawn one on port 0
//! and read what it holds through its `/__sim` test API.
//!
//! They use plain reqwest, never the project's Cloudflare client, so a test
//! that checks the client against the simulator checks two independent
//! implementations against each other. They panic on failure: they are
//! test set-up, and a panic names the step that broke.

#![allow(dead_code)]

use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use wfp_deployer::config::{HashScheme, ManifestSettings, TenantKey};
use wfp_deployer::sim::{SimConfig, SimHashing, SimServer, SimTenantKey};

/// The API token `SimConfig::for_tests()` accepts.
pub const TEST_TOKEN: &str = "test-token";

/// A simulator with the test defaults, on a free loopback port.
pub async fn spawn_sim() -> SimServer {
    spawn_sim_with(SimConfig::for_tests()).await
}

/// A simulator that checks hashes as a worker with `manifest` settings
/// makes them (as an operator would start it next to that worker).
pub async fn spawn_sim_for(manifest: &ManifestSettings) -> SimServer {
    let mut config = SimConfig::for_tests();
    config.set_hashing(sim_hashing(manifest));
    spawn_sim_with(config).await
}

/// The simulator's `--hash-scheme`, `--tenant-key` and `--hash-secret` for
/// a worker's `manifest` settings.
pub fn sim_hashing(manifest: &ManifestSettings) -> SimHashing {
    match manifest.hash_scheme {
        HashScheme::Content => SimHashing::Content,
        HashScheme::Salted => SimHashing::Salted {
            tenant: match &manifest.tenant_key {
                TenantKey::Script => SimTenantKey::Script,
                TenantKey::Account => SimTenantKey::Account,
                TenantKey::None => SimTenantKey::None,
                TenantKey::Label(name) => SimTenantKey::Label(name.clone()),
            },
            secret: manifest
                .hash_secret
                .as_ref()
                .map(|s| s.expose_secret().as_bytes().to_vec()),
        },
    }
}

/// A simulator with a tailored config (limits, accounts, faults...).
pub async fn spawn_sim_with(config: SimConfig) -> SimServer {
    match SimServer::spawn(config).await {
        Ok(sim) => sim,
        Err(e) => panic!("spawning the Cloudflare simulator: {e}"),
    }
}

fn admin(sim: &SimServer, segments: &[&str]) -> Url {
    let mut url = Url::parse(&sim.admin_url()).unwrap_or_else(|e| panic!("admin url: {e}"));
    url.path_segments_mut()
        .unwrap_or_else(|()| panic!("admin url cannot have segments"))
        .extend(segments);
    url
}

async fn get_json(url: Url) -> (StatusCode, Value) {
    let response = reqwest::get(url.clone())
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status();
    let body = response
        .json::<Value>()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: body is not JSON: {e}"));
    (status, body)
}

/// The live deployment of a script, or `Value::Null` when none.
pub async fn deployment(sim: &SimServer, account: &str, namespace: &str, script: &str) -> Value {
    let (status, body) = get_json(admin(sim, &["scripts", account, namespace, script])).await;
    match status {
        StatusCode::OK => body,
        StatusCode::NOT_FOUND => Value::Null,
        other => panic!("deployment of {namespace}/{script}: HTTP {other}: {body}"),
    }
}

/// The content type and bytes the live deployment serves for `path`
/// (a manifest path such as `/index.html`).
pub async fn asset(
    sim: &SimServer,
    account: &str,
    namespace: &str,
    script: &str,
    path: &str,
) -> (String, Vec<u8>) {
    let mut segments = vec!["scripts", account, namespace, script, "assets"];
    segments.extend(path.trim_start_matches('/').split('/'));
    let url = admin(sim, &segments);
    let response = reqwest::get(url.clone())
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "asset {path} of {namespace}/{script}"
    );
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("asset {path}: {e}"));
    (content_type, bytes.to_vec())
}

/// Counters: sessions, files and bytes uploaded, deploys, requests by status.
pub async fn stats(sim: &SimServer) -> Value {
    get_json(admin(sim, &["stats"])).await.1
}

/// Adds a fault rule, e.g. `json!({"endpoint": "upload", "kind": "status", "status": 503, "count": 2})`.
pub async fn add_fault(sim: &SimServer, rule: Value) {
    let url = admin(sim, &["faults"]);
    let response = reqwest::Client::new()
        .post(url)
        .json(&rule)
        .send()
        .await
        .unwrap_or_else(|e| panic!("adding fault {rule}: {e}"));
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "adding fault {rule}"
    );
}

/// Moves the sim clock forward, e.g. past a JWT's one-hour lifetime.
pub async fn advance_clock(sim: &SimServer, seconds: i64) {
    let url = admin(sim, &["clock", "advance"]);
    let response = reqwest::Client::new()
        .post(url)
        .json(&json!({ "seconds": seconds }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("advancing the sim clock: {e}"));
    assert_eq!(response.status(), StatusCode::OK, "advancing the sim clock");
}

/// The recent API requests, oldest first: endpoint, method, path, status,
/// credential kind (`auth`) and fault.
pub async fn requests(sim: &SimServer) -> Vec<Value> {
    match get_json(admin(sim, &["requests"])).await.1 {
        Value::Array(items) => items,
        other => panic!("request log is not an array: {other}"),
    }
}
