//! Builds the application from settings: the shared clients, the pipeline,
//! the worker. `main` (through `cli`) and the integration tests both start
//! the worker this way, so tests run the real wiring.

use std::sync::Arc;

use crate::bundle::Bundles;
use crate::cloudflare::{CloudflareClient, CloudflareError};
use crate::config::Settings;
use crate::pipeline::Pipeline;
use crate::worker::Worker;

/// Why the application could not be built.
///
/// Transparent: the client's error already names its subject (`cloudflare
/// client: ...`), and a prefix here would print it twice under `{:#}`.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Cloudflare(#[from] CloudflareError),
}

/// The deploy pipeline with its clients, built once per process: the HTTP and
/// S3 clients pool connections across jobs.
pub async fn build_pipeline(settings: &Settings) -> Result<Pipeline, StartupError> {
    let bundles = Bundles::new(settings).await;
    let cloudflare = CloudflareClient::new(&settings.cloudflare, &settings.retry)?;
    Ok(Pipeline::new(settings, bundles, cloudflare))
}

/// The worker, ready to `run`.
pub async fn build_worker(settings: &Settings) -> Result<Worker, StartupError> {
    let pipeline = build_pipeline(settings).await?;
    Ok(Worker::new(settings, Arc::new(pipeline)))
}
