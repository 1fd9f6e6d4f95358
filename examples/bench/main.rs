//! `make bench`: how fast and how lean deploys are on the local stack, each
//! figure beside the limit measured in the same run on the same data.
//!
//! An example rather than a second binary of the package, so the shipped
//! binary stays as it is and the bench's one extra crate (`libc`, for
//! `wait4`) is a dev-dependency. It drives the release `wfp-deployer`
//! (`BENCH_BIN`) as a person would: `deploy JOB.json` as a child process
//! per deploy, `worker` as a child for the broker figure, `cloudflare-sim`
//! for Cloudflare. For each S3 server (`BENCH_SERVERS`, default
//! `moto,s3s`) it puts seeded data in a bucket of its own, measures, and
//! deletes the bucket (`BENCH_KEEP=1` keeps it). Results go to
//! `target/bench/results.json` and `target/bench/bench.svg`; the table is
//! printed. `BENCH_QUICK=1` scales everything down to check the bench
//! itself in a couple of minutes. Each first deploy and each limit is the
//! best of `BENCH_TRIES` (3) runs: the machine is shared, and a busy moment
//! is neither a limit nor the worker's speed. Timings are never asserted anywhere:
//! targets are printed as PASS/MISS. `BENCH_ONLY=huge` measures just the
//! huge shape (four bundles of 100,000 files at once through one worker)
//! and writes `target/bench/huge.json` instead of the full results.

mod broker;
mod bucket;
mod data;
mod deploy;
mod huge;
mod limits;
mod process;
mod report;
mod shapes;
mod stack;
mod stress;
mod svg;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::report::{Machine, Results, ServerResults};
use crate::shapes::{Ctx, Scale};
use crate::stack::{Server, Stack};

/// The sizes.
const FULL: Scale = Scale {
    small_files: 2_000,
    large_files: 20,
    large_bytes: 20 * 1024 * 1024,
    many_files: 10_000,
    broker_jobs: 500,
    broker_sites: 50,
};

/// A couple of minutes, to check the bench works end to end.
const QUICK: Scale = Scale {
    small_files: 200,
    large_files: 4,
    large_bytes: 4 * 1024 * 1024,
    many_files: 1_000,
    broker_jobs: 100,
    broker_sites: 10,
};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let bin = PathBuf::from(
        std::env::var("BENCH_BIN")
            .context("BENCH_BIN: the release wfp-deployer to measure (make bench sets it)")?,
    );
    let repo = std::env::current_dir()?;
    let out = repo.join("target/bench");
    let quick = flag("BENCH_QUICK");
    let scale = if quick { QUICK } else { FULL };
    let seed = match std::env::var("BENCH_SEED") {
        Ok(s) => s.parse().context("BENCH_SEED: not an integer")?,
        Err(_) => 42,
    };
    let tries = match std::env::var("BENCH_TRIES") {
        Ok(s) => s.parse().context("BENCH_TRIES: not an integer")?,
        Err(_) => 3,
    };
    let servers = std::env::var("BENCH_SERVERS")
        .unwrap_or_else(|_| "moto,s3s".into())
        .split(',')
        .map(Server::parse)
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Names of this run: buckets, namespaces, broker names.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if !only.is_empty() && only != "huge" {
        anyhow::bail!("BENCH_ONLY={only}: the one shape that runs alone is `huge`");
    }
    let huge_files = if quick { 10_000 } else { huge::FILES };
    let run = format!("{:x}", chrono::Utc::now().timestamp());
    let machine = machine();
    println!(
        "bench {run}: seed {seed}, {}, servers {}; {} cpus, load average {:.1}",
        if quick { "quick" } else { "full" },
        servers
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
        machine.cpus,
        machine.load_average
    );

    let mut huge_only = Vec::new();
    let mut results = Results {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        quick,
        seed,
        tries,
        machine,
        digest_cache_settings: false,
        servers: Vec::new(),
    };
    for server in servers {
        println!("\n== {} ({})", server.name(), server.endpoint());
        let bucket = format!("wfp-bench-{run}");
        let run_dir = out.join("run").join(server.name());
        let stack = Stack::start(&bin, &repo, server, &run_dir, &bucket).await?;
        results.digest_cache_settings = stack.cache_settings;
        if !stack.cache_settings {
            println!("  this build has no cache.* settings: the digest cache is not there");
        }
        let ctx = Ctx {
            s3: stack.s3().await,
            stack: &stack,
            bucket,
            run: run.clone(),
            seed,
            tries,
        };
        bucket::create(&ctx.s3, &ctx.bucket).await?;
        if only == "huge" {
            let measured = measure_huge(&ctx, huge_files).await;
            if !flag("BENCH_KEEP") {
                bucket::delete(&ctx.s3, &ctx.bucket).await;
            }
            let measured = measured?;
            let target = report::huge_target(&measured);
            println!(
                "  target {} {:.1} {} {} {}",
                target.figure,
                measured.worker_peak_rss_mib,
                target.op,
                target.target,
                target.result
            );
            huge_only.push(serde_json::json!({
                "server": server.name(),
                "huge": measured,
                "target": target,
            }));
            continue;
        }
        let measured = measure(&ctx, &scale, huge_files).await;
        if !flag("BENCH_KEEP") {
            bucket::delete(&ctx.s3, &ctx.bucket).await;
        }
        results.servers.push(measured?);
    }

    std::fs::create_dir_all(&out)?;
    if only == "huge" {
        let json = out.join("huge.json");
        std::fs::write(&json, serde_json::to_vec_pretty(&huge_only)?)?;
        println!("\nwrote {}", json.display());
        return Ok(());
    }
    let json = out.join("results.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&results)?)?;
    let chart = out.join("bench.svg");
    std::fs::write(&chart, svg::chart(&results))?;
    print!("{}", table::table(&results));
    println!("\nwrote {} and {}", json.display(), chart.display());
    Ok(())
}

/// The huge shape: four bundles of `files` files at once, one worker.
async fn measure_huge(ctx: &Ctx<'_>, files: usize) -> anyhow::Result<report::Huge> {
    let huge = huge::measure(ctx.stack, &ctx.s3, &ctx.run, ctx.seed, &ctx.bucket, files).await?;
    println!(
        "  huge: {} bundles of {} files at once: {:.1} s, worker peak RSS {:.1} MiB",
        huge.jobs, huge.files_per_job, huge.wall_s, huge.worker_peak_rss_mib
    );
    Ok(huge)
}

/// Every shape on one server.
async fn measure(ctx: &Ctx<'_>, scale: &Scale, huge_files: usize) -> anyhow::Result<ServerResults> {
    let first_deploy = shapes::first_deploys(ctx, scale).await?;
    let (unchanged_redeploy, new_build) = shapes::redeploys(ctx, scale).await?;
    let plan = broker::Plan {
        run: &ctx.run,
        seed: ctx.seed,
        bucket: &ctx.bucket,
        sites: scale.broker_sites,
        jobs: scale.broker_jobs,
    };
    let broker = broker::measure(ctx.stack, &ctx.s3, &plan).await?;
    println!(
        "  broker: {:.1} jobs/s ({} succeeded, {} failed)",
        broker.jobs_per_s, broker.succeeded, broker.failed
    );
    let stress = stress::measure(
        ctx.stack,
        &ctx.run,
        &ctx.bucket,
        shapes::MANY_V1,
        unchanged_redeploy.files,
        unchanged_redeploy.bytes,
    )
    .await?;
    println!(
        "  stress: {} bundles of {} files at once: worker peak RSS {:.1} MiB",
        stress.jobs, stress.files_per_job, stress.worker_peak_rss_mib
    );
    let huge = measure_huge(ctx, huge_files).await?;
    let targets = report::targets(
        &first_deploy,
        &unchanged_redeploy,
        &new_build,
        &broker,
        &stress,
        &huge,
    );
    Ok(ServerResults {
        server: ctx.stack.server.name().into(),
        endpoint: ctx.stack.server.endpoint().into(),
        first_deploy,
        unchanged_redeploy,
        new_build_1pct_changed: new_build,
        broker,
        stress,
        huge,
        targets,
    })
}

pub(crate) fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn machine() -> Machine {
    let mem_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0.0);
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        load_average,
    }
}
