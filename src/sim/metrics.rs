//! `/metrics` of the simulator: its counters in Prometheus text format, so
//! a demo or soak run can chart what the "Cloudflare" side saw next to the
//! worker's own metrics.
//!
//! The counters already live in [`Stats`](super::state::Stats); each scrape
//! copies them into a fresh Prometheus recorder of its own (never the
//! process-wide one, which a worker in the same process may own) and
//! renders that: the exposition format comes from the exporter crate, not
//! from hand-written text.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::PrometheusBuilder;

use super::state::Shared;

/// `GET /metrics`.
pub(super) async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    {
        let inner = shared.lock();
        let stats = &inner.stats;
        metrics::with_local_recorder(&recorder, || {
            counter!("wfp_sim_sessions_total").absolute(stats.sessions);
            counter!("wfp_sim_files_uploaded_total").absolute(stats.files_uploaded);
            counter!("wfp_sim_uploaded_bytes_total").absolute(stats.bytes_uploaded);
            counter!("wfp_sim_deploys_total").absolute(stats.deploys);
            gauge!("wfp_sim_live_sessions").set(inner.sessions.len() as f64);
            for (endpoint, statuses) in &stats.requests {
                for (status, count) in statuses {
                    counter!(
                        "wfp_sim_requests_total",
                        "endpoint" => endpoint.clone(),
                        "status" => status.clone()
                    )
                    .absolute(*count);
                }
            }
        });
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
}
