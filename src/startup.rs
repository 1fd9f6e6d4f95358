//! Builds the application from settings: the shared clients, the pipeline,
//! the worker. `main` (through `cli`) and the integration tests both start
//! the worker this way, so tests run the real wiring.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::amqp::BrokerLease;
use crate::bundle::Bundles;
use crate::cache::DigestCache;
use crate::cloudflare::{CloudflareClient, CloudflareError};
use crate::config::Settings;
use crate::internal_events::{OrderingScope, emit};
use crate::ops::OpsError;
use crate::pipeline::{Markers, Pipeline, ProcessLease, ScriptLease, ScriptOrder};
use crate::spool::SpoolArea;
use crate::worker::{Ready, Worker};

/// Why the application could not be built.
///
/// Transparent: the client's error already names its subject (`cloudflare
/// client: ...`), and a prefix here would print it twice under `{:#}`.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error(transparent)]
    Cloudflare(#[from] CloudflareError),
    /// The spool directory cannot be made or locked.
    #[error("worker.spool_dir {dir}: {error}")]
    Spool { dir: String, error: std::io::Error },
}

/// The deploy pipeline with its clients, built once per process: the HTTP and
/// S3 clients pool connections across jobs, and the digest cache's memory
/// serves every job (its index objects, in `cache.bucket`, are read with
/// the same S3 client as bundles, and so are the last-deployed markers).
///
/// Without a broker (the one-shot `deploy` command): the script lease is
/// the process's own locks; markers are still read and written.
pub async fn build_pipeline(settings: &Settings) -> Result<Pipeline, StartupError> {
    pipeline_with(settings, Arc::new(ProcessLease)).await
}

/// The worker's pipeline: [`build_pipeline`] with the script lease kept by
/// the broker, so build order holds across the fleet (with `cache.bucket`
/// set; else within this process only, which it says at start-up).
pub async fn build_worker_pipeline(settings: &Settings) -> Result<Pipeline, StartupError> {
    let lease = BrokerLease::new(&settings.amqp, &settings.worker.instance_name());
    let pipeline = pipeline_with(settings, Arc::new(lease)).await?;
    emit(OrderingScope {
        markers_shared: settings.cache.bucket.is_some(),
    });
    Ok(pipeline)
}

async fn pipeline_with(
    settings: &Settings,
    lease: Arc<dyn ScriptLease>,
) -> Result<Pipeline, StartupError> {
    let bundles = Bundles::new(settings).await;
    let cache = DigestCache::new(&settings.cache, Some(bundles.s3_client().clone()));
    let markers = Markers::new(&settings.cache, bundles.s3_client());
    let order = ScriptOrder::new(lease, markers, settings.worker.lease_wait);
    let cloudflare = CloudflareClient::new(&settings.cloudflare, &settings.retry)?;
    let root = settings.worker.spool_root();
    let (spools, removed) =
        SpoolArea::open(&root, settings.worker.spool_max_bytes).map_err(|error| {
            StartupError::Spool {
                dir: root.display().to_string(),
                error,
            }
        })?;
    if removed > 0 {
        tracing::info!(
            removed,
            dir = %root.display(),
            "removed the spools of processes that died"
        );
    }
    Ok(Pipeline::new(
        settings,
        bundles,
        cloudflare,
        Arc::new(cache),
        Arc::new(spools),
        order,
    ))
}

/// The worker, ready to `run`.
pub async fn build_worker(settings: &Settings) -> Result<Worker, StartupError> {
    let pipeline = build_worker_pipeline(settings).await?;
    Ok(Worker::new(settings, Arc::new(pipeline)))
}

/// Starts the ops server (`/metrics`, `/healthz`, `/readyz`) on
/// `ops.listen`, with the Prometheus recorder installed, until `stop` is
/// cancelled. Returns the bound address, `None` when `ops.listen` is empty.
///
/// `stop` should outlive the worker's own shutdown, so probes keep
/// answering (`/readyz`: not ready) while running deploys drain.
pub async fn start_ops(
    settings: &Settings,
    ready: Ready,
    stop: CancellationToken,
) -> Result<Option<SocketAddr>, StartupError> {
    let Some(addr) = settings
        .ops
        .listen_addr()
        .map_err(|e| StartupError::Ops(OpsError::Listen(e)))?
    else {
        return Ok(None);
    };
    let metrics = crate::ops::metrics_handle()?;
    let (bound, server) = crate::ops::bind(addr, metrics, ready, stop).await?;
    tokio::spawn(server);
    tracing::info!(listen = %bound, "ops: serving /metrics, /healthz, /readyz");
    Ok(Some(bound))
}
