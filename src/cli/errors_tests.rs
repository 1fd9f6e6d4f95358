//! What `main` prints for an error: its whole chain on one line (`{:#}`),
//! with each cause once.
//!
//! An error whose message repeats the error it holds as `source()` makes an
//! operator read the same words two or three times (it once printed
//! `cloudflare client: cloudflare client: api_base_url ... : cloudflare
//! client: api_base_url ...`). These tests build each error through the code
//! that produces it and render it the way `main` does, through `anyhow`.

use anyhow::Context;
use clap::Parser;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::Cli;
use crate::bundle::{BundleError, BundleStep};
use crate::cloudflare::CloudflareError;
use crate::config::Settings;

/// What `main` prints after `wfp-deployer: error: `. Also checks that no
/// link of the chain repeats the message of its source.
fn rendered(error: anyhow::Error) -> String {
    for link in error.chain() {
        if let Some(source) = link.source() {
            let (outer, inner) = (link.to_string(), source.to_string());
            assert!(
                !outer.contains(&inner),
                "{outer:?} repeats its source {inner:?}"
            );
        }
    }
    format!("{error:#}")
}

fn assert_once(shown: &str, cause: &str) {
    assert_eq!(shown.matches(cause).count(), 1, "{cause:?} in {shown:?}");
}

/// Settings the worker could start from, but for what a test breaks.
fn startable() -> Settings {
    let mut settings = Settings::default();
    settings.cloudflare.api_token = Some(SecretString::from("token"));
    settings.cloudflare.api_base_url = "http://127.0.0.1:9/client/v4".into();
    // Named, so the AWS SDK never asks instance metadata for one.
    settings.s3.region = Some("us-east-1".into());
    settings
}

/// `Cli::settings` (`loading settings`, as every command does) over a
/// `default.toml` holding `toml`.
fn load_error(toml: &str) -> String {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("default.toml"), toml).expect("write default.toml");
    let arg = std::ffi::OsStr::new;
    let cli = Cli::try_parse_from([
        arg("wfp-deployer"),
        arg("--config-dir"),
        dir.path().as_os_str(),
        arg("check-config"),
    ])
    .expect("arguments parse");
    match cli.settings() {
        Ok(_) => panic!("{toml:?} loaded"),
        Err(e) => rendered(e),
    }
}

#[test]
fn an_unknown_setting_is_named_once() {
    let shown = load_error("[worker]\nconcurency = 2\n");
    assert!(shown.starts_with("loading settings: "), "{shown}");
    assert_once(&shown, "unknown field `concurency`");
    assert_once(&shown, "loading settings");
}

#[test]
fn a_setting_of_the_wrong_type_is_named_once() {
    let shown = load_error("[worker]\nconcurrency = \"x\"\n");
    assert_once(&shown, "invalid type: string \"x\"");
    assert_once(&shown, "worker.concurrency");
}

#[test]
fn a_setting_out_of_range_is_named_once() {
    let shown = load_error("[worker]\nconcurrency = 0\n");
    assert_eq!(
        shown,
        "loading settings: worker.concurrency must be at least 1"
    );
}

#[tokio::test]
async fn a_bad_api_base_url_is_named_once() {
    let mut settings = startable();
    settings.cloudflare.api_base_url = "ftp://x".into();
    let shown = match crate::startup::build_worker(&settings).await {
        Ok(_) => panic!("a worker was built for ftp://x"),
        Err(e) => rendered(e.into()),
    };
    assert_eq!(
        shown,
        "cloudflare client: api_base_url \"ftp://x\" is not an http(s) URL"
    );
    // `deploy` says what it was doing first.
    let shown = match crate::startup::build_pipeline(&settings)
        .await
        .context("building the pipeline")
    {
        Ok(_) => panic!("a pipeline was built for ftp://x"),
        Err(e) => rendered(e),
    };
    assert_once(&shown, "cloudflare client");
    assert_once(&shown, "is not an http(s) URL");
}

#[tokio::test]
async fn a_worker_that_cannot_run_says_why_once() {
    let mut settings = startable();
    settings.amqp.url = SecretString::from("bogus://nowhere");
    let cause = match crate::amqp::connect(&settings.amqp).await {
        Ok(_) => panic!("connected to bogus://nowhere"),
        Err(e) => e.to_string(),
    };
    let worker = match crate::startup::build_worker(&settings).await {
        Ok(worker) => worker,
        Err(e) => panic!("{e}"),
    };
    let shown = match worker.run(CancellationToken::new()).await {
        Ok(()) => panic!("the worker ran on bogus://nowhere"),
        Err(e) => rendered(e.into()),
    };
    assert_eq!(
        shown,
        format!("the worker cannot run, retrying would not help: {cause}")
    );
    assert_once(&shown, &cause);
}

#[test]
fn an_io_error_under_a_deploy_is_written_once() {
    let read = CloudflareError::AssetRead {
        subject: "customers/acme-site".into(),
        hash: "0123456789abcdef0123456789abcdef".into(),
        path: "/index.html".into(),
        error: std::io::Error::other("disk gone"),
    };
    assert_once(&rendered(read.into()), "disk gone");
    let spool = BundleError::Local {
        step: BundleStep::Hash,
        subject: "s3://sites/acme/index.html".into(),
        error: std::io::Error::other("no space left"),
    };
    assert_once(&rendered(spool.into()), "no space left");
}
