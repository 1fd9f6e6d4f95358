//! One deploy as a person runs it: `wfp-deployer deploy JOB.json` as a child
//! process, timed from spawn to exit, its peak RSS (`VmHWM` while it runs)
//! and CPU time (`wait4`) those of that one process (see [`process`]), its
//! terminal event read from its standard output.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::process;
use crate::stack::Stack;

/// What one deploy process did and cost.
#[derive(Debug, Clone)]
pub struct DeployRun {
    pub wall_s: f64,
    /// The deploy's own `duration_ms` (without process start and settings).
    pub pipeline_s: Option<f64>,
    pub peak_rss_mib: f64,
    /// User plus system CPU time of the process.
    pub cpu_s: f64,
    pub event: Value,
}

impl DeployRun {
    /// The failed event's `data.error.code`, if the deploy failed.
    pub fn error_code(&self) -> Option<&str> {
        self.event.pointer("/data/error/code")?.as_str()
    }

    pub fn error_message(&self) -> String {
        self.event
            .pointer("/data/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string()
    }

    /// `data.manifest.bytes_read`, when this build reports it.
    pub fn bytes_read(&self) -> Option<u64> {
        self.event.pointer("/data/manifest/bytes_read")?.as_u64()
    }

    /// `data.manifest.cache_hits`, when this build reports it.
    pub fn cache_hits(&self) -> Option<u64> {
        self.event.pointer("/data/manifest/cache_hits")?.as_u64()
    }

    /// `data.upload.files`: files Cloudflare asked for and got.
    pub fn files_uploaded(&self) -> Option<u64> {
        self.event.pointer("/data/upload/files")?.as_u64()
    }

    /// Fails unless the deploy succeeded.
    pub fn succeeded(self, what: &str) -> anyhow::Result<DeployRun> {
        match self.error_code() {
            None => Ok(self),
            Some(code) => bail!("{what}: deploy failed: {code}: {}", self.error_message()),
        }
    }
}

/// The contract v1 job deploying the objects under `prefix` (or, with
/// `archive`, the one archive object) to `namespace/script`.
pub fn job(id: &str, namespace: &str, script: &str, bucket: &str, source: Source<'_>) -> Value {
    let bundle = match source {
        Source::Prefix(prefix) => serde_json::json!({"bucket": bucket, "prefix": prefix}),
        Source::Archive(key) => serde_json::json!({"bucket": bucket, "key": key}),
    };
    serde_json::json!({
        "version": 1,
        "job_id": id,
        "namespace": namespace,
        "script_name": script,
        "bundle": bundle,
    })
}

/// Where a job's bundle is.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    Prefix(&'a str),
    Archive(&'a str),
}

/// Runs `job` through `wfp-deployer deploy` and measures the process;
/// `env` goes over the stack's environment.
pub async fn run(
    stack: &Stack,
    name: &str,
    job: &Value,
    env: &[(String, String)],
) -> anyhow::Result<DeployRun> {
    let job_path = stack.run_dir.join(format!("{name}.job.json"));
    std::fs::write(&job_path, serde_json::to_vec_pretty(job)?)?;
    let log = stack.run_dir.join(format!("{name}.log"));
    let mut command = stack.command();
    command
        .arg("deploy")
        .arg(&job_path)
        .arg("--json")
        .envs(env.iter().cloned());
    tokio::task::spawn_blocking(move || measure(command, &log))
        .await
        .context("the deploy's waiting thread")?
        .with_context(|| format!("{name}: running wfp-deployer deploy"))
}

/// Spawns, reads the event, reaps the child with its usage.
fn measure(mut command: Command, log: &Path) -> anyhow::Result<DeployRun> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    let peak = process::watch_peak_rss(child.id());
    let mut stdout = String::new();
    let read = match child.stdout.take() {
        Some(mut out) => std::io::Read::read_to_string(&mut out, &mut stdout).map(drop),
        None => Ok(()),
    };
    let peak_rss_mib = peak.join().unwrap_or(0.0);
    let usage = process::reap(child)?;
    let wall_s = started.elapsed().as_secs_f64();
    read?;
    let event: Value = serde_json::from_str(&stdout).with_context(|| {
        format!(
            "no terminal event on stdout (wait status {}; log: {})",
            usage.status,
            log.display()
        )
    })?;
    Ok(DeployRun {
        wall_s,
        pipeline_s: event
            .pointer("/data/duration_ms")
            .and_then(Value::as_f64)
            .map(|ms| ms / 1000.0),
        peak_rss_mib,
        cpu_s: usage.cpu_s,
        event,
    })
}
