//! `deploy/grafana/wfp-deployer.json`: every metric a panel queries is one
//! the worker records (a name in `src/internal_events/`, with the suffixes
//! its kind exposes) or one RabbitMQ's Prometheus plugin exports, and the
//! panels the issue asks for are there.

use std::collections::BTreeMap;

use serde_json::Value;

use super::setting;
use crate::helpers::files::{json, read};

/// Metrics that branches being merged add to `src/internal_events/`.
/// Each entry fails a test once the name is there: then delete it here.
const PENDING_METRICS: &[&str] = &[];

/// The RabbitMQ Prometheus plugin's queue metrics the dashboard reads
/// (rabbitmq_prometheus, per-object endpoint).
const RABBITMQ_METRICS: &[&str] = &[
    "rabbitmq_queue_messages",
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked",
];

/// The worker's metrics, by name, with their kind (`counter`, `gauge`,
/// `histogram`), read from the macro calls in src/internal_events/.
fn recorded_metrics() -> BTreeMap<String, String> {
    let text: String = ["mod", "job", "bundle", "cloudflare", "broker"]
        .iter()
        .map(|file| read(&format!("src/internal_events/{file}.rs")))
        .collect();
    let mut out = BTreeMap::new();
    for kind in ["counter", "gauge", "histogram"] {
        let call = format!("{kind}!(");
        for (at, _) in text.match_indices(&call) {
            let rest = text[at + call.len()..].trim_start();
            if let Some(name) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) {
                out.insert(name.to_string(), kind.to_string());
            }
        }
    }
    assert!(
        out.len() > 10,
        "metric names not found in src/internal_events/"
    );
    out
}

/// The series names a PromQL expression reads.
fn series(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if word.starts_with("wfp_deployer_") || word.starts_with("rabbitmq_") {
                names.push(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    names
}

/// Whether the worker or RabbitMQ exposes `name`: a counter or gauge as
/// named, a histogram as `_bucket`, `_sum` and `_count`.
fn exposed(name: &str, recorded: &BTreeMap<String, String>) -> bool {
    if RABBITMQ_METRICS.contains(&name) || PENDING_METRICS.contains(&name) {
        return true;
    }
    if let Some(kind) = recorded.get(name) {
        return kind != "histogram";
    }
    ["_bucket", "_sum", "_count"].iter().any(|suffix| {
        name.strip_suffix(suffix)
            .is_some_and(|base| recorded.get(base).map(String::as_str) == Some("histogram"))
    })
}

fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or_default().to_string();
            panel["targets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |t| {
                    (
                        title.clone(),
                        t["expr"].as_str().unwrap_or_default().to_string(),
                    )
                })
        })
        .collect()
}

#[test]
fn every_metric_the_dashboard_queries_is_exposed() {
    let dashboard = json("deploy/grafana/wfp-deployer.json");
    let recorded = recorded_metrics();
    let exprs = expressions(&dashboard);
    assert!(exprs.len() >= 15, "{} queries", exprs.len());
    for (title, expr) in &exprs {
        let names = series(expr);
        assert!(!names.is_empty(), "{title}: {expr} reads no known series");
        for name in names {
            assert!(exposed(&name, &recorded), "{title}: {name} is not exposed");
        }
    }
    // Every panel reads the dashboard's data source variable.
    for panel in dashboard["panels"].as_array().unwrap() {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
    }
    let queue = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "queue")
        .expect("a queue variable");
    assert_eq!(queue["query"], setting("amqp.jobs_queue").as_str());
}

#[test]
fn the_dashboard_covers_what_operators_page_on() {
    let dashboard = json("deploy/grafana/wfp-deployer.json");
    let all: Vec<String> = expressions(&dashboard)
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let reads = |needle: &str| all.iter().any(|e| e.contains(needle));
    for needle in [
        "sum by (outcome) (rate(wfp_deployer_jobs_total",
        "histogram_quantile(0.5, sum by (le) (rate(wfp_deployer_job_duration_seconds_bucket",
        "histogram_quantile(0.95, sum by (le) (rate(wfp_deployer_job_duration_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(wfp_deployer_job_duration_seconds_bucket",
        "histogram_quantile(0.5, sum by (le, step) (rate(wfp_deployer_step_duration_seconds_bucket",
        "histogram_quantile(0.95, sum by (le, step) (rate(wfp_deployer_step_duration_seconds_bucket",
        "histogram_quantile(0.99, sum by (le, step) (rate(wfp_deployer_step_duration_seconds_bucket",
        "wfp_deployer_bundle_read_bytes_total",
        "wfp_deployer_uploaded_bytes_total",
        "wfp_deployer_digest_cache_hits_total",
        "wfp_deployer_retries_total",
        "wfp_deployer_cloudflare_rate_limited_total",
        "wfp_deployer_jobs_in_flight",
        "rabbitmq_queue_messages{queue=\"$queue\"}",
    ] {
        assert!(reads(needle), "no panel reads {needle}");
    }
}

#[test]
fn pending_metrics_are_still_pending() {
    let recorded = recorded_metrics();
    for name in PENDING_METRICS {
        assert!(
            !recorded.contains_key(*name),
            "{name} is recorded now: remove it from PENDING_METRICS in {}",
            file!()
        );
    }
}
