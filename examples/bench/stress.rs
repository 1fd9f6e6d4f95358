//! Memory under load: one `wfp-deployer worker` with `worker.concurrency`
//! = 4 deploying four large bundles at once, each to a script of its own
//! (asset hashes salted per script, an index of its own: everything is
//! hashed and uploaded), so the worker holds four bundles' listings,
//! manifests and uploads together. Its peak RSS is the figure; with the
//! files per bundle it gives the memory each listed file costs, which is
//! what a bundle at Cloudflare's limit (100,000 files) would hold.

use std::time::Instant;

use anyhow::{Context, bail};
use lapin::options::ConfirmSelectOptions;
use lapin::{Connection, ConnectionProperties};
use secrecy::ExposeSecret;
use wfp_deployer::amqp::Topology;

use crate::broker::{Worker, publish, tap, terminal_events};
use crate::deploy::{Source, job};
use crate::report::Stress;
use crate::stack::{Stack, delete_topology, isolated};

/// Jobs at once: the worker's concurrency and the number of bundles.
const JOBS: usize = 4;

/// Deploys the bundle under `prefix` (`files` files, `bytes` bytes) as four
/// scripts at once through one worker of concurrency 4.
pub async fn measure(
    stack: &Stack,
    run: &str,
    bucket: &str,
    prefix: &str,
    files: usize,
    bytes: u64,
) -> anyhow::Result<Stress> {
    let sources = [Source::Prefix(prefix); JOBS];
    let done = at_once(stack, run, "stress", bucket, &sources).await?;
    Ok(Stress {
        jobs: done.succeeded,
        files_per_job: files,
        bytes_per_job: bytes,
        wall_s: done.wall_s,
        worker_peak_rss_mib: done.worker_peak_rss_mib,
    })
}

/// What deploying bundles at once through one worker came to.
pub struct AtOnce {
    pub succeeded: usize,
    pub wall_s: f64,
    pub worker_peak_rss_mib: f64,
}

/// Deploys each of `sources` as a script of its own (`{name}-{i}`), all at
/// once, through one worker whose concurrency is their number, on broker
/// names of its own; fails if any deploy does.
pub async fn at_once(
    stack: &Stack,
    run: &str,
    name: &str,
    bucket: &str,
    sources: &[Source<'_>],
) -> anyhow::Result<AtOnce> {
    let jobs = sources.len();
    let (settings, mut overrides) = isolated(
        &stack.settings,
        &format!(".bench-{run}-{name}-{}", stack.server.name()),
    );
    overrides.push(("WFP__WORKER__CONCURRENCY".into(), jobs.to_string()));
    let connection = Connection::connect(
        settings.amqp.url.expose_secret(),
        ConnectionProperties::default().with_connection_name(format!("wfp-bench-{name}").into()),
    )
    .await
    .context("connecting to RabbitMQ")?;
    let log = format!("{name}-worker.log");
    let result = async {
        let channel = connection.create_channel().await?;
        Topology::new(&settings).declare(&channel).await?;
        let mut tap = tap(&channel, &settings.amqp.events_exchange).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let worker = Worker::start(stack, &overrides, &log).await?;
        let namespace = format!("bench-{name}-{run}");
        let ids = format!("{name}-{run}-");
        let started = Instant::now();
        for (i, source) in sources.iter().enumerate() {
            let body = job(
                &format!("{ids}{i}"),
                &namespace,
                &format!("{name}-{i}"),
                bucket,
                *source,
            );
            publish(&channel, &settings, body.to_string()).await?;
        }
        let (succeeded, failed) = terminal_events(&mut tap, &ids, jobs).await?;
        let wall_s = started.elapsed().as_secs_f64();
        let (worker_peak_rss_mib, _) = worker.stop().await?;
        if failed > 0 {
            bail!(
                "{failed} of {jobs} {name} deploys failed (log: {})",
                stack.run_dir.join(&log).display()
            );
        }
        Ok(AtOnce {
            succeeded,
            wall_s,
            worker_peak_rss_mib,
        })
    }
    .await;
    delete_topology(&connection, &settings, &[]).await;
    let _ = connection.close(200, "done".into()).await;
    result
}
