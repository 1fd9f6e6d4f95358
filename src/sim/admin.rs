//! The test API under `/__sim/`: what was deployed, the bytes of each asset
//! and module, counters, the request log, the sim clock and fault rules.
//!
//! It has no authentication and answers plain JSON (not Cloudflare's
//! envelope): it is for tests and developers, never for the client under
//! test, which must only ever see the three API endpoints.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::faults::{FaultJson, FaultSpec};
use super::state::Shared;

/// Routes mounted at `/__sim`.
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"ok": true})) }))
        .route("/stats", get(stats))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance_clock))
        .route(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/scripts/{account}/{namespace}/{script}", get(deployment))
        .route(
            "/scripts/{account}/{namespace}/{script}/assets/{*path}",
            get(asset),
        )
        .route(
            "/scripts/{account}/{namespace}/{script}/modules/{*name}",
            get(module),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such simulator route") })
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// The counters, plus `live_sessions` (sessions created and not pruned yet)
/// and `rate_limit` (the budget and the answers it refused).
async fn stats(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let inner = shared.lock();
    let mut stats = json!(inner.stats);
    stats["live_sessions"] = json!(inner.sessions.len());
    stats["rate_limit"] = shared.budget.stats();
    Json(stats)
}

async fn requests(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!(shared.lock().requests))
}

/// Forgets the logged requests (stats stay), so a test can look at one phase.
async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().requests.clear();
    StatusCode::NO_CONTENT
}

async fn clock(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let inner = shared.lock();
    Json(json!({"now": inner.now().to_rfc3339(), "offset_seconds": inner.clock_offset}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let advance: Advance = match serde_json::from_slice(&body) {
        Ok(advance) => advance,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("body: {e}; expected {{\"seconds\": N}}"),
            );
        }
    };
    let now = shared.advance_clock(advance.seconds);
    let offset = shared.lock().clock_offset;
    Json(json!({"now": now.to_rfc3339(), "offset_seconds": offset})).into_response()
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.lock_faults().to_json())
}

async fn add_fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let spec = serde_json::from_slice::<FaultJson>(&body)
        .map_err(|e| e.to_string())
        .and_then(FaultSpec::try_from);
    match spec {
        Ok(spec) => {
            let id = shared.lock_faults().add(spec);
            (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, format!("fault rule: {e}")),
    }
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock_faults().clear();
    StatusCode::NO_CONTENT
}

type ScriptKey = (String, String, String);

async fn deployment(State(shared): State<Arc<Shared>>, Path(key): Path<ScriptKey>) -> Response {
    let inner = shared.lock();
    let Some(d) = inner.deployments.get(&key) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("script {}/{}/{} is not deployed", key.0, key.1, key.2),
        );
    };
    let manifest: serde_json::Map<String, Value> = d
        .manifest
        .iter()
        .map(|(path, e)| (path.clone(), json!({"hash": e.hash, "size": e.size})))
        .collect();
    let modules: Vec<Value> = d
        .modules
        .iter()
        .map(|m| json!({"name": m.name, "content_type": m.content_type, "size": m.bytes.len()}))
        .collect();
    Json(json!({
        "metadata": d.metadata,
        "manifest": manifest,
        "modules": modules,
        "special_files": d.special_files.to_json(),
        "etag": d.etag,
        "created_on": d.created_on.to_rfc3339(),
        "modified_on": d.modified_on.to_rfc3339(),
        "deployment_id": d.deployment_id,
        "version": d.version,
    }))
    .into_response()
}

async fn asset(
    State(shared): State<Arc<Shared>>,
    Path((account, namespace, script, path)): Path<(String, String, String, String)>,
) -> Response {
    let inner = shared.lock();
    let path = format!("/{path}");
    let key = (account.clone(), namespace.clone(), script);
    let file = inner
        .deployments
        .get(&key)
        .and_then(|d| d.manifest.get(&path))
        .and_then(|entry| inner.store(&account, &namespace)?.get(&entry.hash));
    match file {
        Some(file) => bytes_response(
            file.content_type.as_deref().unwrap_or(OCTET_STREAM),
            file.bytes.clone(),
        ),
        None => error(
            StatusCode::NOT_FOUND,
            format!("asset {path} is not in the live deployment"),
        ),
    }
}

async fn module(
    State(shared): State<Arc<Shared>>,
    Path((account, namespace, script, name)): Path<(String, String, String, String)>,
) -> Response {
    let inner = shared.lock();
    let module = inner
        .deployments
        .get(&(account, namespace, script))
        .and_then(|d| d.modules.iter().find(|m| m.name == name));
    match module {
        Some(m) => bytes_response(&m.content_type, m.bytes.clone()),
        None => error(
            StatusCode::NOT_FOUND,
            format!("module {name:?} is not in the live deployment"),
        ),
    }
}

/// Served for an asset uploaded without a Content-Type.
const OCTET_STREAM: &str = "application/octet-stream";

fn bytes_response(content_type: &str, bytes: Bytes) -> Response {
    let mut response = bytes.into_response();
    let value = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static(OCTET_STREAM));
    response.headers_mut().insert(header::CONTENT_TYPE, value);
    response
}
