//! Builds the application from settings: the shared clients, the pipeline,
//! the worker. `main` (through `cli`) and the integration tests both start
//! the worker this way, so tests run the real wiring.

use std::sync::Arc;

use crate::bundle::Bundles;
use crate::cache::DigestCache;
use crate::cloudflare::{CloudflareClient, CloudflareError};
use crate::config::Settings;
use crate::pipeline::Pipeline;
use crate::worker::Worker;

/// Why the application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cloudflare client: {0}")]
    Cloudflare(#[from] CloudflareError),
}

/// The deploy pipeline with its clients, built once per process: the HTTP and
/// S3 clients pool connections across jobs, and the digest cache's memory
/// serves every job (its index objects, in `cache.bucket`, are read with
/// the same S3 client as bundles).
pub async fn build_pipeline(settings: &Settings) -> Result<Pipeline, StartupError> {
    let bundles = Bundles::new(settings).await;
    let cache = DigestCache::new(&settings.cache, Some(bundles.s3_client().clone()));
    let cloudflare = CloudflareClient::new(&settings.cloudflare, &settings.retry)?;
    Ok(Pipeline::new(
        settings,
        bundles,
        cloudflare,
        Arc::new(cache),
    ))
}

/// The worker, ready to `run`.
pub async fn build_worker(settings: &Settings) -> Result<Worker, StartupError> {
    let pipeline = build_pipeline(settings).await?;
    Ok(Worker::new(settings, Arc::new(pipeline)))
}
