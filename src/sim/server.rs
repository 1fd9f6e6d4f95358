//! The HTTP side: the router, the middleware that injects faults and keeps
//! the request log, and [`SimServer`], which binds a port and serves in a
//! background task.
//!
//! The rate-limit budget and then faults are decided in the middleware,
//! before any handler runs, so a rule fires whatever the request's
//! credential or body; the request log sees every API call, refused,
//! faulted or not, with the kind of credential it carried.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::SimConfig;
use super::envelope::{self, ApiError, CODE_INTERNAL, CODE_RATE_LIMIT};
use super::faults::{Decision, Endpoint, FaultAction};
use super::state::{RequestRecord, Shared};
use super::{admin, auth, budget, script, session, upload};

/// Largest request body: big enough for a bucket of 40 MiB in base64.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;
/// How long `shutdown` waits for in-flight requests before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const SESSION_PATH: &str = "/client/v4/accounts/{account_id}/workers/dispatch/namespaces/{namespace}/scripts/{script_name}/assets-upload-session";
const UPLOAD_PATH: &str = "/client/v4/accounts/{account_id}/workers/assets/upload";
const SCRIPT_PATH: &str = "/client/v4/accounts/{account_id}/workers/dispatch/namespaces/{namespace}/scripts/{script_name}";

/// A running simulator, serving until [`SimServer::shutdown`] or drop.
#[derive(Debug)]
pub struct SimServer {
    /// The bound address (the real port when the config asked for port 0).
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl SimServer {
    /// Binds `config.listen` and serves in a tokio task.
    pub async fn spawn(config: SimConfig) -> io::Result<SimServer> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, config, shutdown.clone()));
        Ok(SimServer {
            addr,
            shutdown,
            task: Some(task),
        })
    }

    /// Base URL of the Cloudflare API, as a client would configure it.
    pub fn api_base_url(&self) -> String {
        format!("http://{}/client/v4", self.addr)
    }

    /// Base URL of the test API.
    pub fn admin_url(&self) -> String {
        format!("http://{}/__sim", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish for a few seconds,
    /// then aborts what is left.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// For the CLI: binds `config.listen` and serves until `shutdown` is cancelled.
pub async fn run(config: SimConfig, shutdown: CancellationToken) -> io::Result<()> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, api = %format!("http://{addr}/client/v4"), admin = %format!("http://{addr}/__sim"), "cloudflare simulator listening");
    serve(listener, config, shutdown).await
}

async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let app = router(Shared::new(config));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// The API routes (full paths, so the log shows them as sent), the admin
/// routes and enveloped fallbacks.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(SESSION_PATH, post(session::create_session))
        .route(
            UPLOAD_PATH,
            post(upload::upload).layer(middleware::from_fn(read_whole_body)),
        )
        .route(SCRIPT_PATH, put(script::put_script))
        .route("/metrics", get(super::metrics::metrics))
        .nest("/__sim", admin::router())
        .fallback(envelope::not_found)
        .method_not_allowed_fallback(envelope::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            api_middleware,
        ))
        .with_state(shared)
}

/// Which endpoint a path belongs to, whatever the method.
pub fn classify_path(path: &str) -> Endpoint {
    let Some(rest) = path.strip_prefix("/client/v4/") else {
        return Endpoint::Other;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        [
            "accounts",
            _,
            "workers",
            "dispatch",
            "namespaces",
            _,
            "scripts",
            _,
            "assets-upload-session",
        ] => Endpoint::Session,
        ["accounts", _, "workers", "assets", "upload"] => Endpoint::Upload,
        [
            "accounts",
            _,
            "workers",
            "dispatch",
            "namespaces",
            _,
            "scripts",
            _,
        ] => Endpoint::Script,
        _ => Endpoint::Other,
    }
}

/// Records the request in the log when the handler finishes or, if the
/// client gave up first (a stall), when the request future is dropped.
struct PendingRecord {
    shared: Arc<Shared>,
    record: Option<RequestRecord>,
}

impl Drop for PendingRecord {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            self.shared.record(record);
        }
    }
}

async fn api_middleware(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path == "/__sim" || path.starts_with("/__sim/") {
        return next.run(request).await;
    }
    let endpoint = classify_path(path);
    // The budget first: a request refused for it consumes no fault rule.
    let admission = budget::admit(&shared, &request);
    let decision = match admission.fault() {
        Some(_) => Decision::default(),
        None => shared.lock_faults().decide(endpoint),
    };
    let mut pending = PendingRecord {
        shared: Arc::clone(&shared),
        record: Some(RequestRecord {
            at_ms: chrono::Utc::now().timestamp_millis(),
            endpoint: endpoint.name(),
            method: request.method().to_string(),
            path: request
                .uri()
                .path_and_query()
                .map(|pq| pq.to_string())
                .unwrap_or_default(),
            status: None,
            auth: auth::classify(&shared, request.headers()),
            fault: admission.fault().or(decision.kind()),
        }),
    };
    if decision.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(decision.latency_ms)).await;
    }
    if let Some(mut refusal) = admission.refusal() {
        drain(request).await;
        admission.stamp(&mut refusal);
        if let Some(record) = pending.record.as_mut() {
            record.status = Some(refusal.status().as_u16());
        }
        return refusal;
    }
    let mut response = match decision.terminal {
        Some(FaultAction::Reset) => reset_response(),
        Some(FaultAction::Status {
            status,
            retry_after,
        }) => {
            drain(request).await;
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut error = ApiError::new(
                status,
                CODE_INTERNAL,
                format!("simulated fault: HTTP {}", status.as_u16()),
            );
            error.retry_after = retry_after;
            error.into_response()
        }
        Some(FaultAction::RateLimit { retry_after }) => {
            drain(request).await;
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                CODE_RATE_LIMIT,
                "Please wait and consider throttling your request speed",
            );
            error.retry_after = Some(retry_after);
            error.into_response()
        }
        Some(FaultAction::Latency { .. } | FaultAction::AdvanceClock { .. }) | None => {
            let response = next.run(request).await;
            if let Some(seconds) = decision.advance_clock {
                shared.advance_clock(seconds);
            }
            response
        }
    };
    admission.stamp(&mut response);
    if let Some(record) = pending.record.as_mut() {
        if !matches!(decision.terminal, Some(FaultAction::Reset)) {
            record.status = Some(response.status().as_u16());
        }
        tracing::debug!(
            endpoint = record.endpoint,
            method = %record.method,
            path = %record.path,
            status = ?record.status,
            fault = ?record.fault,
            "cloudflare-sim request"
        );
    }
    drop(pending);
    response
}

/// Reads and drops a request's body before an injected error answer, as a
/// real front end does: answering while the client still streams a large
/// upload makes the client see a broken pipe instead of the status (and its
/// `Retry-After`), which would test the transport, not the fault asked for.
async fn drain(request: Request) {
    let _ = axum::body::to_bytes(request.into_body(), DRAIN_LIMIT).await;
}

/// Reads an upload's whole body before its handler runs, for the reason
/// [`drain`] gives: the handler may refuse it (an expired upload JWT, a bad
/// part) before reading it all, and a front end that answered mid-stream
/// would show the client a broken pipe instead of the refusal.
async fn read_whole_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, DRAIN_LIMIT).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => {
            ApiError::validation(format!("body: could not be read whole: {e}")).into_response()
        }
    }
}

/// The most an injected fault reads of a body (the multipart limit).
const DRAIN_LIMIT: usize = 256 * 1024 * 1024;

/// A response whose body fails at once: hyper then closes the connection
/// without writing anything, so the client sees a dropped connection.
fn reset_response() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        ))
    });
    Body::from_stream(failing).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_endpoint() {
        let a = "0123456789abcdef0123456789abcdef";
        let cases = [
            (
                format!(
                    "/client/v4/accounts/{a}/workers/dispatch/namespaces/n/scripts/s/assets-upload-session"
                ),
                Endpoint::Session,
            ),
            (
                format!("/client/v4/accounts/{a}/workers/assets/upload"),
                Endpoint::Upload,
            ),
            (
                format!("/client/v4/accounts/{a}/workers/dispatch/namespaces/n/scripts/s"),
                Endpoint::Script,
            ),
            (
                format!("/client/v4/accounts/{a}/workers/scripts/s"),
                Endpoint::Other,
            ),
            ("/__sim/stats".to_owned(), Endpoint::Other),
        ];
        for (path, endpoint) in cases {
            assert_eq!(classify_path(&path), endpoint, "{path}");
        }
    }

    #[tokio::test]
    async fn run_serves_until_cancelled() {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(SimConfig::for_tests(), shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        shutdown.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(5), task).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    }
}
