//! Cloudflare's JSON envelope, `{"success", "errors", "messages", "result"}`,
//! on every answer under `/client/v4`, errors included.
//!
//! A client must parse this envelope even on a 404 or a 405, so the simulator
//! never answers with a bare body there; [`ApiError`] is the one way a handler
//! fails, and it always renders as an envelope.

use axum::Json;
use axum::extract::multipart::MultipartError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Authentication failed or the credential is of the wrong kind.
pub const CODE_AUTH: u32 = 10000;
/// The script name breaks Cloudflare's naming rules.
pub const CODE_SCRIPT_NAME: u32 = 10016;
/// Request body, query or multipart part failed validation.
pub const CODE_VALIDATION: u32 = 10021;
/// Something the simulator was told to fail with, or an internal error.
pub const CODE_INTERNAL: u32 = 10013;
/// The object identifier in the path (account id) cannot be routed.
pub const CODE_ROUTE: u32 = 7003;
/// The method is not served on this path.
pub const CODE_METHOD: u32 = 7001;
/// The dispatch namespace does not exist.
pub const CODE_NAMESPACE: u32 = 100119;
/// Injected rate limiting (Cloudflare's "please wait" code).
pub const CODE_RATE_LIMIT: u32 = 971;

/// A failed API call: HTTP status, Cloudflare error code and a message that
/// names its subject. Messages never contain a credential.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    /// `Retry-After` seconds, for injected 429/503 answers.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 code 10021: the body, query or a part is invalid.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, CODE_VALIDATION, message)
    }

    /// 401 code 10000 with an explanation that never echoes the credential.
    pub fn auth(reason: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            CODE_AUTH,
            format!("Authentication error: {reason}"),
        )
    }

    /// The answer to any path the API does not serve.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, CODE_ROUTE, "No route for that URI")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, CODE_INTERNAL, message)
    }
}

/// A broken multipart body is a validation error, or 413 when too large.
impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> ApiError {
        let mut error =
            ApiError::validation(format!("body: bad multipart/form-data ({})", e.body_text()));
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            error.status = StatusCode::PAYLOAD_TOO_LARGE;
        }
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "success": false,
            "errors": [{"code": self.code, "message": self.message}],
            "messages": [],
            "result": Value::Null,
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A successful envelope around `result`.
pub fn success(status: StatusCode, result: Value) -> Response {
    let body = json!({
        "success": true,
        "errors": [],
        "messages": [],
        "result": result,
    });
    (status, Json(body)).into_response()
}

/// Fallback for paths the API does not serve.
pub async fn not_found() -> ApiError {
    ApiError::no_route()
}

/// Fallback for a served path asked with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        CODE_METHOD,
        "Method not allowed for this path",
    )
}
