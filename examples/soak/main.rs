//! `make soak`: many jobs through three worker processes while everything
//! around them fails, then a check of every job (README, "Soak").
//!
//! Like `make bench` it is an example driving the release `wfp-deployer`
//! (`SOAK_BIN`) as an operator would: `cloudflare-sim` with failures in
//! force throughout, three `worker` children on broker names of this run's
//! own. It reuses the bench's stack (the simulator, the children's
//! environment) and child-process guard. During the run it kills a worker
//! with SIGKILL, cuts the workers' broker connections, makes Cloudflare
//! answer 503 for a while, restarts the broker (`rabbitmqctl stop_app` /
//! `start_app`: every client on this machine sees it, so never from `make
//! test`), publishes malformed messages and bursts of builds of one script,
//! and restarts every worker with SIGTERM, one at a time. Then it checks
//! ([`checks`]) and writes `target/soak/summary.json`; the exit status is
//! non-zero when a job was lost or a check failed.
//!
//! `SOAK_QUICK=1` runs 150 jobs with a 30 s outage (a few minutes);
//! `SOAK_JOBS`, `SOAK_OUTAGE_SECS`, `SOAK_SERVER` (moto or s3s) and
//! `SOAK_SEED` adjust a run; `SOAK_KEEP=1` keeps its broker names.

mod broker;
mod checks;
mod fleet;
mod jobs;
mod ledger;
mod phases;
#[allow(dead_code)]
#[path = "../bench/process.rs"]
mod process;
mod sim;
#[allow(dead_code)]
#[path = "../bench/stack.rs"]
mod stack;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::stack::{Server, Stack};

/// The size of a run.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub jobs: usize,
    pub bursts: usize,
    pub burst_len: usize,
    /// Builds of each regular script.
    pub builds_per_script: usize,
    pub outage: Duration,
    pub broker_down: Duration,
    /// How long every job may take to end once all were published.
    pub settle: Duration,
}

const FULL: Scale = Scale {
    jobs: 1000,
    bursts: 3,
    burst_len: 20,
    builds_per_script: 20,
    outage: Duration::from_secs(90),
    broker_down: Duration::from_secs(20),
    settle: Duration::from_secs(1200),
};

const QUICK: Scale = Scale {
    jobs: 150,
    bursts: 3,
    burst_len: 10,
    builds_per_script: 10,
    outage: Duration::from_secs(30),
    broker_down: Duration::from_secs(10),
    settle: Duration::from_secs(600),
};

/// The workers' settings for the run: short job-level delays, enough
/// attempts to outlast the outage, a quick grace, quick in-call back-off,
/// and a per-process request pace that does not make the run wait.
pub const WORKER_ENV: [(&str, &str); 6] = [
    ("WFP__WORKER__RETRY_DELAYS", "3s,10s,30s"),
    ("WFP__WORKER__MAX_ATTEMPTS", "12"),
    ("WFP__WORKER__SHUTDOWN_GRACE", "10s"),
    ("WFP__RETRY__MAX_DELAY", "5s"),
    ("WFP__CLOUDFLARE__MAX_REQUESTS_PER_MINUTE", "1200"),
    ("WFP__LOG__FILTER", "info"),
];

/// The delays of [`WORKER_ENV`], for the driver's own copy of the topology.
pub const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(3),
    Duration::from_secs(10),
    Duration::from_secs(30),
];

pub const WORKERS: usize = 3;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("soak: FAILED (see the checks above and target/soak/summary.json)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("soak: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn number(name: &str) -> anyhow::Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) => {
            Ok(Some(v.parse().with_context(|| {
                format!("{name}: {v:?} is not a whole number")
            })?))
        }
        Err(_) => Ok(None),
    }
}

async fn run() -> anyhow::Result<bool> {
    let bin = PathBuf::from(
        std::env::var("SOAK_BIN")
            .context("SOAK_BIN: the release wfp-deployer to soak (make soak sets it)")?,
    );
    let repo = std::env::current_dir()?;
    let out = repo.join("target/soak");
    let quick = flag("SOAK_QUICK");
    let mut scale = if quick { QUICK } else { FULL };
    if let Some(jobs) = number("SOAK_JOBS")? {
        scale.jobs = usize::try_from(jobs)?;
    }
    if let Some(secs) = number("SOAK_OUTAGE_SECS")? {
        scale.outage = Duration::from_secs(secs);
    }
    let seed = number("SOAK_SEED")?.unwrap_or(7);
    let server = Server::parse(&std::env::var("SOAK_SERVER").unwrap_or_else(|_| "moto".into()))?;
    let run = format!("{:x}", chrono::Utc::now().timestamp());
    println!(
        "soak {run}: {} jobs over {WORKERS} workers, {} mode, {}, outage {:?}",
        scale.jobs,
        if quick { "quick" } else { "full" },
        server.name(),
        scale.outage
    );
    let bucket = format!("wfp-soak-{run}");
    let stack = Stack::start(&bin, &repo, server, &out.join("run"), &bucket).await?;
    anyhow::ensure!(
        stack.cache_settings,
        "this build has no cache.* settings: build order across workers needs the markers in S3"
    );
    let s3 = stack.s3().await;
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{bucket}: {}", aws_sdk_s3::error::DisplayErrorContext(e)))?;

    let mut settings = stack.settings.clone();
    settings.worker.retry_delays = RETRY_DELAYS.to_vec();
    let (settings, overrides) = stack::isolated(&settings, &format!(".soak-{run}"));
    broker::declare(&settings, &run).await?;
    let ctx = phases::Ctx {
        run: run.clone(),
        quick,
        seed,
        scale,
        bucket,
        namespace: format!("soak-{run}"),
        settings: settings.clone(),
        stack: &stack,
        s3,
    };
    let result = phases::soak(&ctx, overrides).await;
    if !flag("SOAK_KEEP") {
        broker::delete_topology(&settings, &run).await;
    }
    let summary = result?;
    std::fs::create_dir_all(&out)?;
    let path = out.join("summary.json");
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(&path, &text)?;
    println!("{text}\nwrote {}", path.display());
    Ok(summary["ok"].as_bool().unwrap_or(false))
}
