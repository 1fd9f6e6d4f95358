//! `deploy/` kept honest without a container engine: every file parses, and
//! what the files say (names, ports, probe paths, environment variables,
//! settings, metrics) is checked against the code's own defaults, settings
//! loader, ops server and metric names. `hadolint` lints the Dockerfile.
//!
//! Not verified here (no Docker engine, no cluster on these machines): that
//! the image builds, that Compose brings the stack up, and that Kubernetes
//! and KEDA accept the manifests. README says so.

mod docker;
mod grafana;
mod kubernetes;

use std::collections::HashMap;

use clap::CommandFactory;
use serde_json::Value;
use wfp_deployer::config::{CONVENTIONAL_ENV, Settings};

use crate::helpers::files::{files_under, json, repo_path, yaml_documents};
use crate::helpers::settings::setting_defaults;

/// Settings that branches being merged add, with the default they will
/// have, so the files can already use them. Each entry fails a test as soon
/// as the key really exists: then delete it here, and the files are checked
/// against the real setting.
const PENDING_KEYS: &[(&str, &str)] = &[];

/// Variables the binary reads that are not `WFP__` settings: the
/// conventional ones, its command line's (clap `env`), and the AWS SDK's
/// chain, which S3 uses as it is.
fn known_plain_env() -> Vec<String> {
    fn clap_env(command: &clap::Command, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.push(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            clap_env(sub, out);
        }
    }
    let mut known: Vec<String> = CONVENTIONAL_ENV
        .iter()
        .map(|(v, _)| v.to_string())
        .collect();
    clap_env(&wfp_deployer::cli::Cli::command(), &mut known);
    known.extend(
        [
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ]
        .map(String::from),
    );
    known
}

/// A setting's default as text: the real one, or the pending one.
fn setting(key: &str) -> String {
    match setting_defaults().get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => PENDING_KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| panic!("{key} is not a setting")),
    }
}

/// A duration setting in whole seconds.
fn setting_seconds(key: &str) -> u64 {
    let text = setting(key);
    humantime::parse_duration(&text)
        .unwrap_or_else(|e| panic!("{key} = {text:?}: {e}"))
        .as_secs()
}

/// The dotted key a `WFP__SECTION__KEY` variable sets.
fn key_of(var: &str) -> Option<String> {
    var.strip_prefix("WFP__").map(|rest| {
        rest.split("__")
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(".")
    })
}

/// Checks the environment a file gives the binary: each `WFP__` variable
/// names a real setting and its value loads through the settings loader;
/// every other variable is one the binary (or the AWS SDK) reads.
fn check_env(file: &str, vars: &[(String, String)]) {
    let defaults = setting_defaults();
    let known = known_plain_env();
    for (name, value) in vars {
        match key_of(name) {
            Some(key) if defaults.contains_key(&key) => {
                let env = HashMap::from([(name.clone(), value.clone())]);
                if let Err(e) = Settings::load_from(&repo_path("config"), None, &env) {
                    panic!("{file}: {name}={value}: {e}");
                }
            }
            Some(key) => assert!(
                PENDING_KEYS.iter().any(|(k, _)| *k == key),
                "{file}: {name} names no setting ({key})"
            ),
            None => assert!(
                known.contains(name),
                "{file}: {name} is read by nothing (known: {known:?})"
            ),
        }
    }
}

/// The port of the ops server's default address.
fn ops_port() -> u16 {
    let listen = setting("ops.listen");
    listen
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("ops.listen {listen:?} has no port"))
}

/// A container's `WFP__OPS__LISTEN` must listen on every interface (probes
/// and Prometheus come from outside) at the default port.
fn check_container_listen(file: &str, vars: &[(String, String)]) {
    let listen = vars
        .iter()
        .find(|(k, _)| k == "WFP__OPS__LISTEN")
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| {
            panic!("{file}: no WFP__OPS__LISTEN: the ops server would be loopback only")
        });
    assert_eq!(listen, format!("0.0.0.0:{}", ops_port()), "{file}");
}

#[test]
fn pending_keys_are_still_pending() {
    let defaults = setting_defaults();
    for (key, _) in PENDING_KEYS {
        assert!(
            !defaults.contains_key(*key),
            "{key} is a real setting now: remove it from PENDING_KEYS in {}",
            file!()
        );
    }
}

#[test]
fn every_yaml_and_json_file_parses() {
    let files = [
        files_under("deploy", &[".yaml", ".yml", ".json"]),
        files_under("contract", &[".yaml", ".yml", ".json"]),
    ]
    .concat();
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        if file.ends_with(".json") {
            json(&file);
        } else {
            assert!(!yaml_documents(&file).is_empty(), "{file}: empty");
        }
    }
}

/// The paths the probes, health checks and scrapers use are served by the
/// real ops server: `/healthz` and `/metrics` answer 200, `/readyz` 503 for
/// a worker that is not consuming (never 404).
#[tokio::test]
async fn probe_paths_are_served_by_the_ops_server() {
    let (mut settings, _topology) = crate::helpers::amqp::unique_settings();
    settings.cloudflare.api_token = Some(crate::helpers::sim::TEST_TOKEN.into());
    let worker = wfp_deployer::startup::build_worker(&settings)
        .await
        .expect("a worker");
    let metrics = wfp_deployer::ops::metrics_handle().expect("the recorder");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (addr, server) = wfp_deployer::ops::bind(
        "127.0.0.1:0".parse().unwrap(),
        metrics,
        worker.ready(),
        shutdown.clone(),
    )
    .await
    .expect("the ops server binds");
    let server = tokio::spawn(server);
    let status = |path: &'static str| async move {
        reqwest::get(format!("http://{addr}{path}"))
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .status()
            .as_u16()
    };
    assert_eq!(status(HEALTHZ).await, 200);
    assert_eq!(status(METRICS).await, 200);
    assert_eq!(status(READYZ).await, 503, "not consuming: not ready");
    shutdown.cancel();
    server.await.unwrap();
}

/// The ops server's routes, as the files must name them.
const HEALTHZ: &str = "/healthz";
const READYZ: &str = "/readyz";
const METRICS: &str = "/metrics";
