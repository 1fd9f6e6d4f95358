//! The binary's edge: what an operator sees when settings are wrong, and the
//! one-shot `deploy` command against the real S3 server and the simulator.

use std::process::Command;

use crate::helpers::amqp::TEST_ACCOUNT;
use crate::helpers::s3::{S3Server, TEST_ACCESS_KEY, TEST_SECRET_KEY, test_bucket};
use crate::helpers::sim::{TEST_TOKEN, asset, spawn_sim_for};

/// The binary with a clean environment: no inherited settings.
fn wfp() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wfp-deployer"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "WFP_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        );
    cmd
}

#[test]
fn the_worker_refuses_to_start_naming_what_is_missing() {
    let out = wfp().arg("worker").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CLOUDFLARE_API_TOKEN"), "{err}");
    assert!(err.contains("CLOUDFLARE_ACCOUNT_ID"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_misspelt_setting_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[worker]\nconcurency = 3\n").unwrap();
    let out = wfp()
        .arg("--config")
        .arg(&file)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("concurency").count(), 1, "named once: {err}");
}

#[test]
fn a_bad_api_base_url_is_named_once() {
    let out = wfp()
        .arg("worker")
        .env("CLOUDFLARE_API_TOKEN", "tok")
        .env("CLOUDFLARE_ACCOUNT_ID", TEST_ACCOUNT)
        .env("CLOUDFLARE_API_BASE_URL", "ftp://x")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        r#"wfp-deployer: error: cloudflare client: api_base_url "ftp://x" is not an http(s) URL"#,
        "{err}"
    );
}

#[test]
fn check_config_never_prints_secrets() {
    let out = wfp()
        .arg("check-config")
        .env("CLOUDFLARE_API_TOKEN", "tok-secret-123")
        .env("CLOUDFLARE_ACCOUNT_ID", TEST_ACCOUNT)
        .env("AMQP_URL", "amqp://u:pw-secret-456@127.0.0.1:5672/%2f")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("ready"), "{shown}");
    assert!(!shown.contains("tok-secret-123"), "{shown}");
    assert!(!shown.contains("pw-secret-456"), "{shown}");
}

#[test]
fn check_config_hides_credentials_in_urls() {
    // Regression: `user:pass@` in api_base_url or s3.endpoint_url was
    // printed as it was.
    let out = wfp()
        .arg("check-config")
        .env("CLOUDFLARE_API_TOKEN", "tok")
        .env("CLOUDFLARE_ACCOUNT_ID", TEST_ACCOUNT)
        .env(
            "CLOUDFLARE_API_BASE_URL",
            "https://cf-user:cf-pass-123@proxy.example/client/v4",
        )
        .env(
            "WFP__S3__ENDPOINT_URL",
            "http://s3-key:s3-pass-456@127.0.0.1:9000",
        )
        .env("AMQP_URL", "amqp://u:amqp-pass-789@127.0.0.1:5672/%2f")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    for secret in [
        "cf-user",
        "cf-pass-123",
        "s3-key",
        "s3-pass-456",
        "amqp-pass-789",
    ] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    assert!(
        shown.contains("\"https://***@proxy.example/client/v4\""),
        "{shown}"
    );
    assert!(shown.contains("\"http://***@127.0.0.1:9000\""), "{shown}");
}

#[test]
fn the_worker_never_logs_credentials_in_the_cloudflare_url() {
    // Regression: the start-up line logged the Cloudflare URL whole. An
    // ftp:// URL is logged, then refused, so the worker stops at once.
    let out = wfp()
        .arg("worker")
        .env("CLOUDFLARE_API_TOKEN", "tok")
        .env("CLOUDFLARE_ACCOUNT_ID", TEST_ACCOUNT)
        .env("CLOUDFLARE_API_BASE_URL", "ftp://cf-user:cf-pass-123@x/v4")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("worker starting"), "{all}");
    assert!(
        !all.contains("cf-pass-123") && !all.contains("cf-user"),
        "{all}"
    );
    assert!(
        stderr.contains(r#"api_base_url "ftp://***@x/v4" is not an http(s) URL"#),
        "{stderr}"
    );
}

#[tokio::test]
async fn one_shot_deploy_prints_the_succeeded_event() {
    let sim = spawn_sim_for(&Default::default()).await;
    let bucket = test_bucket(S3Server::Moto).await;
    bucket
        .put("one/index.html", b"<p>one shot</p>".to_vec())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.json");
    let body = serde_json::json!({
        "version": 1, "job_id": "oneshot-1", "namespace": "customers",
        "script_name": "oneshot", "bundle": {"bucket": bucket.name(), "prefix": "one/"}
    });
    std::fs::write(&job, body.to_string()).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        wfp()
            .arg("deploy")
            .arg(&job)
            .arg("--json")
            .env("CLOUDFLARE_API_TOKEN", TEST_TOKEN)
            .env("CLOUDFLARE_ACCOUNT_ID", TEST_ACCOUNT)
            .env("CLOUDFLARE_API_BASE_URL", sim.api_base_url())
            .env("AWS_ENDPOINT_URL_S3", S3Server::Moto.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
            .env("WFP__S3__FORCE_PATH_STYLE", "true")
            .output()
            .map(|out| (out, sim))
    })
    .await
    .unwrap();
    let (out, sim) = out.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let event: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(event["id"], "oneshot-1:succeeded");
    assert_eq!(event["data"]["manifest"]["files"], 1);
    let (_, served) = asset(&sim, TEST_ACCOUNT, "customers", "oneshot", "/index.html").await;
    assert_eq!(served, b"<p>one shot</p>");
}
