//! The run itself: the jobs published in five waves, one fault injected
//! after each while the jobs of that wave are in flight, then the wait for
//! every job to end and the checks.
//!
//! The driver never publishes while the broker is down: a publish that
//! times out there might still have been taken, and publishing it again
//! would be a duplicate of the driver's making.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use lapin::BasicProperties;
use serde_json::{Value, json};
use wfp_deployer::config::Settings;

use crate::broker::{self, Link};
use crate::checks;
use crate::fleet::Fleet;
use crate::jobs::{self, JobSpec};
use crate::ledger::Ledger;
use crate::sim;
use crate::stack::Stack;
use crate::{Scale, WORKER_ENV, WORKERS};

pub struct Ctx<'a> {
    pub run: String,
    pub quick: bool,
    pub seed: u64,
    pub scale: Scale,
    pub bucket: String,
    pub namespace: String,
    pub settings: Settings,
    pub stack: &'a Stack,
    pub s3: aws_sdk_s3::Client,
}

/// What was done to the fleet, for the summary.
#[derive(Default, serde::Serialize)]
pub struct Injected {
    pub worker_killed: usize,
    pub connections_closed: usize,
    pub outage_s: u64,
    pub broker_down_s: u64,
    pub rolling_restarts: usize,
}

/// Publishes jobs with strictly increasing `created_at`.
struct Publisher {
    link: Link,
    ledger: Arc<Mutex<Ledger>>,
    last: DateTime<Utc>,
}

impl Publisher {
    async fn jobs(&mut self, ctx: &Ctx<'_>, jobs: &[JobSpec]) -> anyhow::Result<()> {
        for job in jobs {
            // Whole milliseconds, as published: two jobs within one
            // millisecond would otherwise be sent with equal times, which
            // the worker rightly does not order.
            let mut now = Utc::now().trunc_subsecs(3);
            if now <= self.last {
                now = self.last + chrono::Duration::milliseconds(1);
            }
            self.last = now;
            let created = now.to_rfc3339_opts(SecondsFormat::Millis, true);
            let body = job.body(&ctx.run, &ctx.namespace, &ctx.bucket, &created);
            self.ledger
                .lock()
                .expect("ledger")
                .published(&job.id, false);
            self.link.publish_job(&body, properties(&job.id)).await?;
        }
        Ok(())
    }
}

fn properties(id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(id.into())
}

/// Waits until `n` jobs ended, or `within` passed (the final checks say
/// what did not end); returns whether they did.
async fn wait_ended(ledger: &Arc<Mutex<Ledger>>, n: usize, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ledger.lock().expect("ledger").ended() >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

fn say(started: Instant, ledger: &Arc<Mutex<Ledger>>, what: &str) {
    let l = ledger.lock().expect("ledger");
    println!(
        "  [{:>6.1} s] {what} ({} of {} ended)",
        started.elapsed().as_secs_f64(),
        l.ended(),
        l.total()
    );
}

/// Runs the soak and returns the summary.
pub async fn soak(ctx: &Ctx<'_>, overrides: Vec<(String, String)>) -> anyhow::Result<Value> {
    let scale = ctx.scale;
    let regular = scale.jobs.saturating_sub(scale.bursts * scale.burst_len);
    let scripts = regular.div_ceil(scale.builds_per_script).max(1);
    let (regular_jobs, bursts) =
        jobs::plan(&ctx.run, regular, scripts, scale.bursts, scale.burst_len);
    let all: Vec<JobSpec> = regular_jobs
        .iter()
        .chain(bursts.iter().flatten())
        .cloned()
        .collect();
    println!(
        "  {} jobs: {regular} over {scripts} scripts, {} bursts of {}; putting their builds",
        all.len(),
        bursts.len(),
        scale.burst_len
    );
    jobs::put_builds(&ctx.s3, &ctx.bucket, &ctx.run, &all).await?;
    let max_job_bytes = usize::try_from(ctx.settings.amqp.max_job_bytes)?;
    let malformed = jobs::malformed(&ctx.run, &ctx.namespace, &ctx.bucket, max_job_bytes);

    sim::noise_only(&ctx.stack.sim_url, ctx.seed).await?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    broker::spawn_tap(ctx.settings.clone(), ctx.run.clone(), ledger.clone());
    let mut env = overrides;
    env.extend(
        WORKER_ENV
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let mut fleet = Fleet::new(ctx.stack, env, &ctx.run);
    fleet.start(WORKERS).await?;

    let mut publisher = Publisher {
        link: Link::new(&ctx.settings),
        ledger: ledger.clone(),
        last: Utc::now().trunc_subsecs(3),
    };
    let mut injected = Injected::default();
    let waves: Vec<&[JobSpec]> = regular_jobs.chunks(regular.div_ceil(5).max(1)).collect();
    let wave = |i: usize| waves.get(i).copied().unwrap_or(&[]);
    let burst = |i: usize| bursts.get(i).map_or(&[][..], Vec::as_slice);
    let started = Instant::now();
    let some = |ledger: &Arc<Mutex<Ledger>>, of: usize| {
        let l = ledger.lock().expect("ledger");
        l.total() - of * 3 / 4
    };
    let phase_wait = Duration::from_secs(120);

    // 1. A worker killed with SIGKILL mid-run, and started again.
    publisher.jobs(ctx, wave(0)).await?;
    wait_ended(&ledger, some(&ledger, wave(0).len()), phase_wait).await;
    say(started, &ledger, "kill -9 worker 0");
    fleet.kill_and_restart(0).await?;
    injected.worker_killed = 1;

    // 2. Every connection of the workers closed by the broker.
    publisher.jobs(ctx, wave(1)).await?;
    wait_ended(&ledger, some(&ledger, wave(1).len()), phase_wait).await;
    injected.connections_closed =
        broker::close_worker_connections(&fleet.instance_prefix, WORKERS).await?;
    say(
        started,
        &ledger,
        &format!("closed {} worker connections", injected.connections_closed),
    );

    // 3. Cloudflare answering 503 to everything, with a burst in flight.
    publisher.jobs(ctx, wave(2)).await?;
    publisher.jobs(ctx, burst(0)).await?;
    wait_ended(&ledger, some(&ledger, wave(2).len()), phase_wait).await;
    say(
        started,
        &ledger,
        &format!("Cloudflare outage for {:?}", scale.outage),
    );
    let mut fired = sim::fired(&ctx.stack.sim_url).await;
    sim::outage(&ctx.stack.sim_url).await?;
    tokio::time::sleep(scale.outage).await;
    sim::add_fired(&mut fired, &sim::fired(&ctx.stack.sim_url).await);
    sim::noise_only(&ctx.stack.sim_url, ctx.seed + 10).await?;
    injected.outage_s = scale.outage.as_secs();
    say(started, &ledger, "Cloudflare back");

    // 4. Malformed messages, then the broker restarted.
    for bad in &malformed {
        ledger.lock().expect("ledger").published(&bad.id, true);
        publisher
            .link
            .publish_job(&bad.body, properties(&bad.id))
            .await?;
    }
    publisher.jobs(ctx, wave(3)).await?;
    wait_ended(&ledger, some(&ledger, wave(3).len()), phase_wait).await;
    say(started, &ledger, "rabbitmqctl stop_app");
    broker::rabbitmqctl(&["stop_app"]).await?;
    tokio::time::sleep(scale.broker_down).await;
    broker::rabbitmqctl(&["start_app"]).await?;
    broker::wait_broker(&ctx.settings, Duration::from_secs(120)).await?;
    injected.broker_down_s = scale.broker_down.as_secs();
    say(started, &ledger, "broker back");

    // 5. The last wave and two bursts, and every worker restarted in turn
    // while they deploy (once they are back on the broker and busy).
    for i in 0..WORKERS {
        fleet.wait_ready(i).await?;
    }
    let before = ledger.lock().expect("ledger").ended();
    publisher.jobs(ctx, wave(4)).await?;
    for b in 1..bursts.len() {
        publisher.jobs(ctx, burst(b)).await?;
    }
    wait_ended(&ledger, before + wave(4).len() / 4, phase_wait).await;
    say(started, &ledger, "rolling SIGTERM restart");
    fleet.rolling_restart().await?;
    injected.rolling_restarts = WORKERS;
    say(started, &ledger, "all restarted");

    let total = ledger.lock().expect("ledger").total();
    let all_ended = wait_ended(&ledger, total, scale.settle).await;
    say(
        started,
        &ledger,
        if all_ended {
            "every job ended"
        } else {
            "gave up waiting"
        },
    );
    let queues = checks::wait_queues_settled(ctx, malformed.len()).await;
    let wall_s = started.elapsed().as_secs_f64();
    // The tap keeps consuming until its queue is empty.
    checks::wait_tap_drained(&ctx.run).await;
    fleet.stop_all().await?;
    say(started, &ledger, "workers stopped");

    let found = checks::Found {
        queues,
        dlq: broker::drain(&ctx.settings, &ctx.settings.amqp.dead_letter_queue).await?,
        bad_exits: fleet.bad_exits.clone(),
    };
    let tally = ledger.lock().expect("ledger").tally();
    let scripts = checks::newest_per_script(&all);
    let live = checks::live(ctx, &scripts, &ledger).await?;
    let checks = checks::run(&tally, &found, &malformed, live);
    let ok = checks.iter().all(|c| c.ok);
    sim::add_fired(&mut fired, &sim::fired(&ctx.stack.sim_url).await);
    Ok(json!({
        "run": ctx.run,
        "mode": if ctx.quick { "quick" } else { "full" },
        "server": ctx.stack.server.name(),
        "workers": WORKERS,
        "jobs": tally.jobs,
        "malformed": malformed.len(),
        "scripts": scripts.len(),
        "succeeded": tally.succeeded,
        "failed": tally.failed,
        "retried": tally.retried,
        "retrying_events": tally.retrying_events,
        "superseded": tally.failed.get("superseded").copied().unwrap_or(0),
        "duplicates": tally.duplicates,
        "lost": tally.lost.len(),
        "latency_ms": {"p50": tally.p50_ms, "p99": tally.p99_ms},
        "wall_s": (wall_s * 10.0).round() / 10.0,
        "injected": injected,
        "restarts": fleet.restarts,
        "faults_fired": fired,
        "tap_reconnects": tally.tap_errors,
        "checks": checks,
        "ok": ok,
    }))
}
