//! Throughput through RabbitMQ: one `wfp-deployer worker` process (settings
//! as shipped, on broker names of its own), small sites deployed once to
//! warm up, then many unchanged redeploys of them published at once; the
//! clock runs from the first publish to the last terminal event seen on a
//! tap queue bound to the worker's events exchange.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use secrecy::ExposeSecret;
use wfp_deployer::amqp::Topology;
use wfp_deployer::config::Settings;

use crate::data::{DataSet, put_set};
use crate::deploy::{Source, job};
use crate::process::{self, Guarded};
use crate::report::Broker;
use crate::stack::{Stack, delete_topology, free_port, isolated};

/// How long the worker may take to become ready, and a batch to finish.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const BATCH_TIMEOUT: Duration = Duration::from_secs(600);
const FILES_PER_SITE: usize = 10;

/// What the broker run needs from the caller.
pub struct Plan<'a> {
    pub run: &'a str,
    pub seed: u64,
    /// The run's bucket; the sites go to a bucket of their own beside it.
    pub bucket: &'a str,
    pub sites: usize,
    pub jobs: usize,
}

/// Deploys `plan.sites` sites, then measures `plan.jobs` redeploys of them.
pub async fn measure(
    stack: &Stack,
    s3: &aws_sdk_s3::Client,
    plan: &Plan<'_>,
) -> anyhow::Result<Broker> {
    // The sites get a bucket of their own: moto lists a prefix by scanning
    // every key of its bucket (measured here: 9 ms per list of a 1-object
    // prefix in an empty bucket, 18 ms beside 8,000 other objects), and the
    // run's bucket holds the other shapes' 25,000 by now. That is a cost
    // of the test server, not of a deploy: S3 lists by prefix.
    let bucket = format!("{}-jobs", plan.bucket);
    crate::bucket::create(s3, &bucket).await?;
    let plan = &Plan {
        bucket: &bucket,
        ..*plan
    };
    let measured = measure_in(stack, s3, plan).await;
    if !crate::flag("BENCH_KEEP") {
        crate::bucket::delete(s3, &bucket).await;
    }
    measured
}

async fn measure_in(
    stack: &Stack,
    s3: &aws_sdk_s3::Client,
    plan: &Plan<'_>,
) -> anyhow::Result<Broker> {
    let namespace = format!("bench-jobs-{}", plan.run);
    let mut sites = Vec::with_capacity(plan.sites);
    for j in 0..plan.sites {
        let set = DataSet::small(&format!("site{j}"), plan.seed, FILES_PER_SITE);
        let prefix = format!("jobs/site{j}/");
        put_set(s3, plan.bucket, &prefix, &set, 16).await?;
        sites.push(prefix);
    }
    println!(
        "  broker: {} sites of {FILES_PER_SITE} files, {} redeploys",
        plan.sites, plan.jobs
    );

    let suffix = format!(".bench-{}-{}", plan.run, stack.server.name());
    let (settings, overrides) = isolated(&stack.settings, &suffix);
    let connection = Connection::connect(
        settings.amqp.url.expose_secret(),
        ConnectionProperties::default().with_connection_name("wfp-bench".into()),
    )
    .await
    .context("connecting to RabbitMQ")?;
    let result = run(
        stack,
        &settings,
        &overrides,
        &connection,
        &namespace,
        &sites,
        plan,
    )
    .await;
    delete_topology(&connection, &settings, &[]).await;
    let _ = connection.close(200, "done".into()).await;
    result
}

async fn run(
    stack: &Stack,
    settings: &Settings,
    overrides: &[(String, String)],
    connection: &Connection,
    namespace: &str,
    sites: &[String],
    plan: &Plan<'_>,
) -> anyhow::Result<Broker> {
    let channel = connection.create_channel().await?;
    Topology::new(settings).declare(&channel).await?;
    let mut tap = tap(&channel, &settings.amqp.events_exchange).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;

    let worker = Worker::start(stack, overrides, "worker.log").await?;

    let publish_site = |prefix: &str, id: String| {
        let script = prefix
            .trim_start_matches("jobs/")
            .trim_end_matches('/')
            .to_string();
        let body = job(&id, namespace, &script, plan.bucket, Source::Prefix(prefix)).to_string();
        publish(&channel, settings, body)
    };

    let warm: Vec<_> = sites
        .iter()
        .enumerate()
        .map(|(j, s)| publish_site(s, format!("warm-{}-{j}", plan.run)))
        .collect();
    futures::future::try_join_all(warm).await?;
    let (ok, failed) =
        terminal_events(&mut tap, &format!("warm-{}-", plan.run), sites.len()).await?;
    if failed > 0 {
        bail!(
            "{failed} of {} warm-up deploys failed (log: {})",
            ok + failed,
            stack.run_dir.join("worker.log").display()
        );
    }

    let prefix = format!("bench-{}-", plan.run);
    let started = Instant::now();
    let jobs: Vec<_> = (0..plan.jobs)
        .map(|i| publish_site(&sites[i % sites.len()], format!("{prefix}{i}")))
        .collect();
    futures::future::try_join_all(jobs).await?;
    let (succeeded, failed) = terminal_events(&mut tap, &prefix, plan.jobs).await?;
    let wall_s = started.elapsed().as_secs_f64();

    let (worker_peak_rss_mib, usage) = worker.stop().await?;
    Ok(Broker {
        jobs: plan.jobs,
        sites: sites.len(),
        files_per_job: FILES_PER_SITE,
        wall_s,
        jobs_per_s: plan.jobs as f64 / wall_s,
        succeeded,
        failed,
        worker_peak_rss_mib,
        worker_cpu_s: usage.cpu_s,
    })
}

/// A `wfp-deployer worker` child, watched for its peak RSS, ready.
pub struct Worker {
    child: Guarded,
    peak: Option<std::thread::JoinHandle<f64>>,
}

impl Worker {
    /// Starts a worker with `overrides` on top of the stack's settings,
    /// logging to `log` in the run's directory, and waits until it is ready.
    pub async fn start(
        stack: &Stack,
        overrides: &[(String, String)],
        log: &str,
    ) -> anyhow::Result<Worker> {
        let ops = format!("127.0.0.1:{}", free_port()?);
        let log = std::fs::File::create(stack.run_dir.join(log))?;
        let child = Guarded::new(
            stack
                .command()
                .arg("worker")
                .envs(overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("WFP__OPS__LISTEN", &ops)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting wfp-deployer worker")?,
        );
        let peak = child.pid().map(process::watch_peak_rss);
        wait_ready(&ops).await?;
        Ok(Worker { child, peak })
    }

    /// Shuts the worker down gracefully; its peak RSS (MiB) and usage.
    pub async fn stop(self) -> anyhow::Result<(f64, process::Usage)> {
        let pid = self.child.pid().context("the worker is gone")?;
        process::terminate(pid)?;
        let child = self.child.disarm().context("the worker is gone")?;
        let peak = self.peak;
        tokio::task::spawn_blocking(move || {
            let peak = peak.map_or(0.0, |p| p.join().unwrap_or(0.0));
            process::reap(child).map(|usage| (peak, usage))
        })
        .await?
    }
}

/// Publishes one job message, persistent, and waits for its confirm.
pub async fn publish(channel: &Channel, settings: &Settings, body: String) -> anyhow::Result<()> {
    channel
        .basic_publish(
            settings.amqp.jobs_exchange.as_str().into(),
            settings.amqp.jobs_routing_key.as_str().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into()),
        )
        .await?
        .await?;
    Ok(())
}

/// A private queue seeing every terminal event.
pub async fn tap(channel: &Channel, exchange: &str) -> anyhow::Result<Consumer> {
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?
        .name()
        .to_string();
    for key in ["deploy.succeeded", "deploy.failed"] {
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let options = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    Ok(channel
        .basic_consume(
            queue.as_str().into(),
            "bench-tap".into(),
            options,
            FieldTable::default(),
        )
        .await?)
}

/// Reads terminal events of jobs whose id starts with `prefix` until
/// `count` distinct jobs ended; (succeeded, failed).
pub async fn terminal_events(
    tap: &mut Consumer,
    prefix: &str,
    count: usize,
) -> anyhow::Result<(usize, usize)> {
    let deadline = tokio::time::Instant::now() + BATCH_TIMEOUT;
    let (mut seen, mut failed) = (HashSet::new(), 0);
    while seen.len() < count {
        let delivery = tokio::time::timeout_at(deadline, tap.next())
            .await
            .with_context(|| {
                format!(
                    "{} of {count} jobs ended within {BATCH_TIMEOUT:?}",
                    seen.len()
                )
            })?
            .context("the tap was cancelled")??;
        let event: serde_json::Value = serde_json::from_slice(&delivery.data)?;
        let id = event
            .pointer("/data/job_id")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if id.starts_with(prefix)
            && seen.insert(id.to_string())
            && delivery.routing_key.as_str() == "deploy.failed"
        {
            failed += 1;
            if failed == 1 {
                eprintln!(
                    "  first failure: {}",
                    event.pointer("/data/error").unwrap_or(&event)
                );
            }
        }
    }
    Ok((seen.len() - failed, failed))
}

/// Polls the worker's `/readyz` until it answers 200.
async fn wait_ready(ops: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        let answer = http.get(format!("http://{ops}/readyz")).send().await;
        if answer.is_ok_and(|a| a.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the worker was not ready on {ops} within {READY_TIMEOUT:?}")
}
