//! The operator surface: `/metrics` (Prometheus text format), `/healthz`
//! (the process answers) and `/readyz` (the worker consumes: broker
//! connected, consumer open, not shutting down).
//!
//! Metrics are recorded through the `metrics` facade by
//! [`crate::internal_events`]; this module installs the Prometheus recorder
//! (once per process) and renders it. The exporter's own HTTP listener is
//! not used: the routes live on one small axum server so health and metrics
//! share a port and a shutdown.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::worker::Ready;

/// Bucket bounds for every `_seconds` histogram: from a cached redeploy
/// (tens of milliseconds) to a large first deploy (minutes).
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

/// Why the ops server could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("ops: cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("ops: {0}")]
    Listen(String),
    #[error("ops: cannot install the metrics recorder: {0}")]
    Recorder(String),
}

/// The process-wide Prometheus recorder, installed on first use.
///
/// One per process because the `metrics` facade has one global recorder;
/// a second worker in the same process (tests) shares it.
pub fn metrics_handle() -> Result<PrometheusHandle, OpsError> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .map_err(|e| OpsError::Recorder(e.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    // Losing the race to another thread is fine: use the winner's handle.
    if metrics::set_global_recorder(recorder).is_err() {
        return HANDLE
            .get()
            .cloned()
            .ok_or_else(|| OpsError::Recorder("another metrics recorder is installed".into()));
    }
    Ok(HANDLE.get_or_init(|| handle).clone())
}

#[derive(Clone)]
struct OpsState {
    metrics: PrometheusHandle,
    ready: Ready,
}

/// The routes, for [`serve`] and for tests that call them directly.
pub fn router(metrics: PrometheusHandle, ready: Ready) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .with_state(OpsState { metrics, ready })
}

/// Binds `addr` (port 0 picks a free one) and returns the bound address and
/// the server future, which ends when `shutdown` is cancelled.
pub async fn bind(
    addr: SocketAddr,
    metrics: PrometheusHandle,
    ready: Ready,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, impl Future<Output = ()>), OpsError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| OpsError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| OpsError::Bind { addr, source })?;
    let app = router(metrics, ready);
    let server = async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "ops server stopped");
        }
    };
    Ok((local, server))
}

async fn render_metrics(State(state): State<OpsState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn readiness(State(state): State<OpsState>) -> impl IntoResponse {
    if state.ready.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not consuming (connecting to the broker, or shutting down)\n",
        )
    }
}
