//! The Cloudflare client against the simulator: two implementations written
//! independently from Cloudflare's description, checked against each other.
//!
//! Each test spawns its own simulator (port 0), so they run in parallel; the
//! retry policy is fast (10 ms first wait) so recovered faults cost little.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use secrecy::SecretString;
use serde_json::json;
use wfp_deployer::cloudflare::{
    AssetContent, CfStep, CloudflareClient, CloudflareError, Module, ScriptTarget, ScriptUpload,
};
use wfp_deployer::config::{CloudflareSettings, RetrySettings};
use wfp_deployer::manifest::{Manifest, ManifestEntry, asset_hash};
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
    }
}

fn client(sim: &SimServer) -> CloudflareClient {
    client_with(settings(sim))
}

fn client_with(settings: CloudflareSettings) -> CloudflareClient {
    CloudflareClient::new(&settings, &fast_retries()).expect("client")
}

/// A site held in memory: the manifest and the bytes behind each hash.
struct Site {
    manifest: Manifest,
    files: HashMap<String, Bytes>,
}

impl Site {
    fn new(files: &[(&str, &[u8])]) -> Self {
        let mut site = Site {
            manifest: Manifest::new(),
            files: HashMap::new(),
        };
        for (path, bytes) in files {
            let hash = asset_hash(bytes);
            let entry = ManifestEntry {
                hash: hash.clone(),
                size: bytes.len() as u64,
            };
            site.manifest.insert((*path).into(), entry);
            site.files.insert(hash, Bytes::copy_from_slice(bytes));
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
    async fn read(&self, hash: &str) -> std::io::Result<Bytes> {
        self.files
            .get(hash)
            .cloned()
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

#[tokio::test]
async fn full_flow_serves_every_byte_with_its_media_type() {
    let sim = spawn_sim().await;
    let png: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let site = Site::new(&[
        ("/index.html", b"<h1>hello</h1>"),
        ("/copy/index.html", b"<h1>hello</h1>"),
        ("/css/site.css", b"body{margin:0}"),
        ("/img/logo.png", &png),
        ("/LICENSE", b"MIT"),
        ("/data.json", b"{\"a\":1}"),
    ]);
    let client = client(&sim);
    let done = deploy(&client, "acme-site", &site, &with_code())
        .await
        .expect("deploy");

    assert_eq!(done.id.as_deref(), Some("acme-site"));
    assert!(done.etag.is_some() && done.modified_on.is_some());
    let unique_bytes = 14 + 14 + 3000 + 3 + 7;
    assert_eq!(done.stats.sessions, 1);
    assert_eq!(done.stats.files, 5, "the copy shares its hash");
    assert_eq!(done.stats.bytes, unique_bytes);
    assert_eq!(stats(&sim).await["bytes_uploaded"], unique_bytes);

    for (path, bytes, media_type) in [
        (
            "/index.html",
            &b"<h1>hello</h1>"[..],
            "text/html; charset=utf-8",
        ),
        (
            "/copy/index.html",
            b"<h1>hello</h1>",
            "text/html; charset=utf-8",
        ),
        (
            "/css/site.css",
            b"body{margin:0}",
            "text/css; charset=utf-8",
        ),
        ("/img/logo.png", &png, "image/png"),
        ("/LICENSE", b"MIT", "application/octet-stream"),
        ("/data.json", b"{\"a\":1}", "application/json"),
    ] {
        let (served_type, served) = asset(&sim, ACCOUNT, "customers", "acme-site", path).await;
        assert_eq!(served, bytes, "{path}");
        assert_eq!(served_type, media_type, "{path}");
    }
    let live = deployment(&sim, ACCOUNT, "customers", "acme-site").await;
    assert_eq!(live["metadata"]["main_module"], "index.js");
    assert_eq!(
        live["metadata"]["bindings"],
        json!([{ "type": "assets", "name": "ASSETS" }])
    );
    assert_eq!(
        live["metadata"]["assets"]["config"]["html_handling"],
        "auto-trailing-slash"
    );
    assert_eq!(
        live["modules"][0]["content_type"],
        "application/javascript+module"
    );
}

#[tokio::test]
async fn credentials_go_only_where_they_belong() {
    let sim = spawn_sim().await;
    let site = Site::pages(12);
    deploy(&client(&sim), "creds", &site, &assets_only())
        .await
        .expect("deploy");
    let log = log(&sim).await;
    assert!(log.iter().any(|(e, _, _)| e == "upload"), "{log:?}");
    for (endpoint, status, auth) in &log {
        let expected = if endpoint == "upload" {
            "upload_jwt"
        } else {
            "api_token"
        };
        assert_eq!(auth, expected, "{endpoint} answered {status:?}");
    }
}

#[tokio::test]
async fn an_unchanged_site_uploads_nothing() {
    let sim = spawn_sim().await;
    let site = Site::pages(4);
    let client = client(&sim);
    deploy(&client, "same", &site, &with_code())
        .await
        .expect("first deploy");
    let uploaded = stats(&sim).await["files_uploaded"].clone();

    let t = target("same");
    let session = client
        .start_session(&t, &site.manifest)
        .await
        .expect("session");
    assert!(session.buckets.is_empty());
    let assets = client
        .upload(&t, &site.manifest, &site, session)
        .await
        .expect("upload");
    assert_eq!(
        (
            assets.stats.sessions,
            assets.stats.files,
            assets.stats.buckets
        ),
        (1, 0, 0)
    );
    let done = client
        .deploy(&t, &site.manifest, &site, assets, &assets_only())
        .await
        .expect("deploy");
    assert_eq!(done.stats.sessions, 1);
    assert_eq!(stats(&sim).await["files_uploaded"], uploaded);
    let live = deployment(&sim, ACCOUNT, "customers", "same").await;
    assert_eq!(
        live["metadata"].get("main_module"),
        None,
        "assets only: no code"
    );
    assert_eq!(live["modules"], json!([]));
}

#[tokio::test]
async fn server_errors_on_every_step_are_retried() {
    let sim = spawn_sim().await;
    for endpoint in ["session", "upload", "script"] {
        add_fault(
            &sim,
            json!({ "endpoint": endpoint, "kind": "status", "status": 503, "count": 2 }),
        )
        .await;
    }
    let done = deploy(&client(&sim), "flaky", &Site::pages(3), &with_code()).await;
    assert!(done.is_ok(), "{:?}", done.err());
    let log = log(&sim).await;
    for endpoint in ["session", "upload", "script"] {
        let statuses: Vec<_> = log
            .iter()
            .filter(|(e, ..)| e == endpoint)
            .map(|(_, s, _)| *s)
            .collect();
        assert_eq!(
            &statuses[..2],
            &[Some(503), Some(503)],
            "{endpoint}: {statuses:?}"
        );
        assert_eq!(statuses.len(), 3, "{endpoint}: {statuses:?}");
    }
}

#[tokio::test]
async fn rate_limits_are_waited_out_as_asked() {
    let sim = spawn_sim().await;
    add_fault(
        &sim,
        json!({ "endpoint": "session", "kind": "429", "retry_after": 1, "count": 1 }),
    )
    .await;
    add_fault(&sim, json!({ "endpoint": "upload", "kind": "status", "status": 503, "retry_after": 1, "count": 1 })).await;
    deploy(&client(&sim), "limited", &Site::pages(2), &assets_only())
        .await
        .expect("deploy");
    let log = requests(&sim).await;
    for endpoint in ["session", "upload"] {
        let at: Vec<i64> = log
            .iter()
            .filter(|r| r["endpoint"] == endpoint)
            .filter_map(|r| r["at_ms"].as_i64())
            .collect();
        assert!(at.len() >= 2, "{endpoint}: {log:?}");
        assert!(
            at[1] - at[0] >= 1000,
            "{endpoint} retried after {} ms",
            at[1] - at[0]
        );
    }
}

#[tokio::test]
async fn retry_after_beyond_our_ceiling_fails_at_once() {
    let sim = spawn_sim().await;
    add_fault(
        &sim,
        json!({ "endpoint": "session", "kind": "429", "retry_after": 60, "count": 1 }),
    )
    .await;
    let err = deploy(&client(&sim), "patient", &Site::pages(1), &assets_only())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CloudflareError::RetryAfterTooLong { status: 429, .. }),
        "{err:?}"
    );
    assert!(err.is_transient() && err.step() == CfStep::Session);
    assert_eq!(log(&sim).await.len(), 1, "no retry sooner than asked");
}

#[tokio::test]
async fn rejected_requests_fail_without_retry_and_name_the_code() {
    let sim = spawn_sim().await;
    let err = deploy(
        &client(&sim),
        "Not-A-Valid-Name",
        &Site::pages(1),
        &assets_only(),
    )
    .await
    .unwrap_err();
    assert_eq!((err.step(), err.status()), (CfStep::Session, Some(400)));
    assert!(!err.is_transient() && !err.is_auth());
    let shown = err.to_string();
    assert!(
        shown.starts_with("session for customers/Not-A-Valid-Name: HTTP 400, code 10016"),
        "{shown}"
    );
    assert_eq!(log(&sim).await.len(), 1);

    let mut wrong = settings(&sim);
    wrong.api_token = Some(SecretString::from("wrong-token"));
    let err = deploy(&client_with(wrong), "acme", &Site::pages(1), &assets_only())
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err}");
    assert!(!err.to_string().contains("wrong-token"), "{err}");
    assert_eq!(log(&sim).await.len(), 2);
}

#[tokio::test]
async fn upload_jwt_expiring_mid_upload_opens_a_new_session() {
    let sim = spawn_sim_with(SimConfig {
        bucket_max_files: 2,
        ..SimConfig::for_tests()
    })
    .await;
    // The sim's clock jumps an hour after the first bucket: the upload JWT is
    // spent by its clock while ours still thinks it fine, so it answers 401.
    add_fault(
        &sim,
        json!({ "endpoint": "upload", "kind": "advance_clock", "seconds": 3600, "count": 1 }),
    )
    .await;
    let mut s = settings(&sim);
    s.upload_concurrency = 1;
    let site = Site::pages(5);
    let done = deploy(&client_with(s), "slow", &site, &assets_only())
        .await
        .expect("deploy");
    assert_eq!(done.stats.sessions, 2);
    assert_eq!(done.stats.files, 5, "nothing stored is sent twice");
    assert_eq!(stats(&sim).await["files_uploaded"], 5);
    let uploads: Vec<_> = log(&sim)
        .await
        .into_iter()
        .filter(|(e, ..)| e == "upload")
        .map(|(_, s, _)| s)
        .collect();
    assert_eq!(uploads, vec![Some(200), Some(401), Some(200), Some(201)]);
    for i in 0..5 {
        let (_, bytes) = asset(
            &sim,
            ACCOUNT,
            "customers",
            "slow",
            &format!("/page-{i:02}.txt"),
        )
        .await;
        assert_eq!(bytes, format!("page {i}\n").as_bytes());
    }
}

#[tokio::test]
async fn parallel_buckets_share_one_renewal() {
    let sim = spawn_sim_with(SimConfig {
        bucket_max_files: 2,
        ..SimConfig::for_tests()
    })
    .await;
    add_fault(
        &sim,
        json!({ "endpoint": "upload", "kind": "advance_clock", "seconds": 3600, "count": 1 }),
    )
    .await;
    let site = Site::pages(30);
    let done = deploy(&client(&sim), "wide", &site, &assets_only())
        .await
        .expect("deploy");
    assert_eq!(
        done.stats.sessions, 2,
        "the buckets refused together renew once"
    );
    assert_eq!(done.stats.files, 30);
    assert_eq!(
        stats(&sim).await["files_uploaded"],
        30,
        "no file sent twice"
    );
}

#[tokio::test]
async fn a_server_that_never_completes_cannot_keep_us_forever() {
    let sim = spawn_sim().await;
    // Every upload JWT looks spent to a client with a margin above its life,
    // so each session is replaced before its first bucket goes up.
    let mut s = settings(&sim);
    s.jwt_expiry_margin = Duration::from_secs(2 * 3600);
    let err = deploy(&client_with(s), "loop", &Site::pages(2), &assets_only())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CloudflareError::TooManySessions { sessions: 10, .. }),
        "{err:?}"
    );
    let log = log(&sim).await;
    assert_eq!(log.len(), 10, "ten sessions, no upload: {log:?}");
}

#[tokio::test]
async fn an_upload_jwt_refused_every_time_ends_as_auth_error() {
    let sim = spawn_sim().await;
    add_fault(
        &sim,
        json!({ "endpoint": "upload", "kind": "status", "status": 401 }),
    )
    .await;
    let err = deploy(&client(&sim), "refused", &Site::pages(2), &assets_only())
        .await
        .unwrap_err();
    assert!(err.is_auth() && err.step() == CfStep::Upload, "{err}");
    let log = log(&sim).await;
    let count = |e: &str| log.iter().filter(|(x, ..)| x == e).count();
    assert_eq!(
        (count("session"), count("upload")),
        (4, 4),
        "three renewals, then give up"
    );
}

#[tokio::test]
async fn a_completion_jwt_about_to_expire_is_replaced_before_the_put() {
    let sim = spawn_sim().await;
    let site = Site::pages(3);
    let t = target("late");
    let uploader = client(&sim);
    let session = uploader
        .start_session(&t, &site.manifest)
        .await
        .expect("session");
    let assets = uploader
        .upload(&t, &site.manifest, &site, session)
        .await
        .expect("upload");
    // A margin longer than the JWT's life: the deployer sees it as spent.
    let mut s = settings(&sim);
    s.jwt_expiry_margin = Duration::from_secs(2 * 3600);
    let done = client_with(s)
        .deploy(&t, &site.manifest, &site, assets, &with_code())
        .await
        .expect("deploy");
    assert_eq!(done.stats.sessions, 2);
    let log = log(&sim).await;
    let scripts: Vec<_> = log
        .iter()
        .filter(|(e, ..)| e == "script")
        .map(|(_, s, _)| *s)
        .collect();
    assert_eq!(scripts, vec![Some(200)], "the stale JWT was never sent");
}

#[tokio::test]
async fn a_completion_jwt_refused_at_the_put_is_renewed_once() {
    let sim = spawn_sim().await;
    let site = Site::pages(3);
    let t = target("skewed");
    let client = client(&sim);
    let session = client
        .start_session(&t, &site.manifest)
        .await
        .expect("session");
    let assets = client
        .upload(&t, &site.manifest, &site, session)
        .await
        .expect("upload");
    advance_clock(&sim, 2 * 3600).await;
    let done = client
        .deploy(&t, &site.manifest, &site, assets, &with_code())
        .await
        .expect("deploy");
    assert_eq!(done.stats.sessions, 2);
    let tail: Vec<_> = log(&sim)
        .await
        .into_iter()
        .rev()
        .take(3)
        .rev()
        .map(|(e, s, _)| (e, s))
        .collect();
    assert_eq!(
        tail,
        vec![
            ("script".into(), Some(401)),
            ("session".into(), Some(200)),
            ("script".into(), Some(200))
        ]
    );
}

#[tokio::test]
async fn a_stalled_answer_times_out_instead_of_hanging() {
    let sim = spawn_sim().await;
    add_fault(
        &sim,
        json!({ "endpoint": "session", "kind": "latency", "ms": 30_000 }),
    )
    .await;
    let mut s = settings(&sim);
    s.request_timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = deploy(&client_with(s), "stalled", &Site::pages(1), &assets_only())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            CloudflareError::Transport {
                kind: wfp_deployer::cloudflare::TransportKind::Timeout,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_missing_asset_is_a_local_error() {
    let sim = spawn_sim().await;
    let mut site = Site::new(&[("/gone.html", b"bye")]);
    site.files.clear();
    let err = deploy(&client(&sim), "local", &site, &assets_only())
        .await
        .unwrap_err();
    assert!(err.is_local(), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.starts_with("upload for customers/local: reading asset /gone.html"),
        "{shown}"
    );
    assert!(!log(&sim).await.iter().any(|(e, ..)| e == "upload"));
}

#[test]
fn errors_and_debug_never_show_the_token() {
    let s = CloudflareSettings {
        api_token: Some(SecretString::from("tok-very-secret")),
        ..CloudflareSettings::default()
    };
    let client = CloudflareClient::new(&s, &fast_retries()).expect("client");
    assert!(!format!("{client:?}").contains("tok-very-secret"));
}
