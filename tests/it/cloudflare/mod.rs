//! The Cloudflare client against the simulator: two implementations written
//! independently from Cloudflare's description, checked against each other.
//!
//! Each test spawns its own simulator (port 0), so they run in parallel; the
//! retry policy is fast (10 ms first wait) so recovered faults cost little.
//! This file holds the fixtures; the tests are grouped by concern below.

mod budget;
mod concurrency;
mod faults;
mod flow;
mod jwt;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use secrecy::SecretString;
use serde_json::{Value, json};
use wfp_deployer::cloudflare::{
    AssetBody, AssetContent, CfStep, CloudflareClient, CloudflareError, Module, ScriptTarget,
    ScriptUpload,
};
use wfp_deployer::config::{CloudflareSettings, RetrySettings};
use wfp_deployer::manifest::{ContentDigest, Manifest, ManifestEntry, asset_hash};
use wfp_deployer::sim::{SimConfig, SimServer};

use crate::helpers::sim::{
    TEST_TOKEN, add_fault, advance_clock, asset, deployment, requests, spawn_sim, spawn_sim_with,
    stats,
};

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

fn target(script: &str) -> ScriptTarget {
    ScriptTarget {
        account_id: ACCOUNT.into(),
        namespace: "customers".into(),
        script_name: script.into(),
    }
}

fn settings(sim: &SimServer) -> CloudflareSettings {
    CloudflareSettings {
        api_base_url: sim.api_base_url(),
        api_token: Some(SecretString::from(TEST_TOKEN)),
        account_id: ACCOUNT.into(),
        upload_concurrency: 3,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        ..CloudflareSettings::default()
    }
}

fn fast_retries() -> RetrySettings {
    RetrySettings {
        max_attempts: 4,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
        max_retry_after: Duration::from_secs(2),
    }
}

fn client(sim: &SimServer) -> CloudflareClient {
    client_with(settings(sim))
}

fn client_with(settings: CloudflareSettings) -> CloudflareClient {
    CloudflareClient::new(&settings, &fast_retries()).expect("client")
}

/// A site held in memory: the manifest (contract v1's content hashes) and
/// the bytes of each content.
struct Site {
    manifest: Manifest,
    files: HashMap<ContentDigest, Bytes>,
}

impl Site {
    fn new(files: &[(&str, &[u8])]) -> Self {
        let mut site = Site {
            manifest: Manifest::new(),
            files: HashMap::new(),
        };
        for (path, bytes) in files {
            let entry = ManifestEntry {
                hash: asset_hash(bytes),
                size: bytes.len() as u64,
            };
            let content = ContentDigest::of(bytes);
            site.manifest.insert((*path).into(), entry, content);
            site.files.insert(content, Bytes::copy_from_slice(bytes));
        }
        site
    }

    /// `n` small text files, `/page-00.txt`...
    fn pages(n: usize) -> Self {
        let bodies: Vec<(String, String)> = (0..n)
            .map(|i| (format!("/page-{i:02}.txt"), format!("page {i}\n")))
            .collect();
        let files: Vec<(&str, &[u8])> = bodies
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_bytes()))
            .collect();
        Site::new(&files)
    }
}

#[async_trait::async_trait]
impl AssetContent for Site {
    async fn locate(&self, content: &ContentDigest) -> std::io::Result<AssetBody> {
        self.files
            .get(content)
            .cloned()
            .map(AssetBody::Memory)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "not in the spool"))
    }
}

fn assets_only() -> ScriptUpload {
    ScriptUpload {
        compatibility_date: "2025-01-24".into(),
        ..ScriptUpload::default()
    }
}

fn with_code() -> ScriptUpload {
    ScriptUpload {
        main_module: Some("index.js".into()),
        modules: vec![Module {
            name: "index.js".into(),
            bytes: Bytes::from_static(
                b"export default { fetch(r, env) { return env.ASSETS.fetch(r) } }",
            ),
        }],
        assets_config: Some(json!({ "html_handling": "auto-trailing-slash" })),
        assets_binding: Some("ASSETS".into()),
        ..assets_only()
    }
}

/// The three steps, as the pipeline runs them.
async fn deploy(
    client: &CloudflareClient,
    script: &str,
    site: &Site,
    upload: &ScriptUpload,
) -> Result<wfp_deployer::cloudflare::Deployment, CloudflareError> {
    let t = target(script);
    let session = client.start_session(&t, &site.manifest).await?;
    let assets = client.upload(&t, &site.manifest, site, session).await?;
    client
        .deploy(&t, &site.manifest, site, assets, upload)
        .await
}

/// `(endpoint, status, auth)` of every API request, oldest first.
async fn log(sim: &SimServer) -> Vec<(String, Option<u64>, String)> {
    requests(sim)
        .await
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("endpoint"), r["status"].as_u64(), s("auth"))
        })
        .collect()
}
