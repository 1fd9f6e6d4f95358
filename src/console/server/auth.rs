//! Who may use the console, and which requests may change anything.
//!
//! **Authentication.** With `console.token` set, every request needs it: as
//! `Authorization: Bearer <token>` (scripts, curl) or as the password of
//! HTTP basic auth with any user name (browsers ask for it, then send it
//! with every request of the page, the event stream included). Without a
//! token the console serves anyone who can connect, which is why it then
//! refuses to listen anywhere but on loopback (see [`super::bind`]).
//!
//! **Cross-site requests.** Requeue and purge are POSTs, checked three
//! ways, each enough on its own against a page on another site: the
//! browser's `Sec-Fetch-Site` must say `same-origin` when present; an
//! `Origin` must be this console's own; and the `X-CSRF-Token` header must
//! carry the token the page was served with (a custom header, which a form
//! cannot send and a cross-origin `fetch` cannot send without a CORS
//! preflight this server never answers). Tokens are compared in constant
//! time, over their SHA-256 digests so their lengths leak nothing either.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::AppState;

/// The header the page's `fetch` calls carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The console's credentials: the configured token, and the CSRF token of
/// this process (random, embedded in the page).
pub struct Auth {
    token: Option<SecretString>,
    csrf: String,
}

/// Equal in constant time, whatever the lengths.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

impl Auth {
    pub fn new(token: Option<SecretString>) -> Self {
        let token = token.filter(|t| !t.expose_secret().trim().is_empty());
        let csrf = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        Self { token, csrf }
    }

    /// Whether requests must carry the token.
    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    /// The token the page embeds for its POSTs.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// Whether `headers` carry the configured token (always, without one).
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let expected = token.expose_secret().as_bytes();
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        if let Some(bearer) = given.strip_prefix("Bearer ") {
            return same_secret(bearer.trim().as_bytes(), expected);
        }
        let Some(basic) = given.strip_prefix("Basic ") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(basic.trim()) else {
            return false;
        };
        match decoded.iter().position(|&b| b == b':') {
            Some(colon) => same_secret(&decoded[colon + 1..], expected),
            None => false,
        }
    }

    /// Why a state-changing request is refused, if it is.
    fn cross_site(&self, headers: &HeaderMap) -> Option<&'static str> {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &header::HeaderValue| v.to_str().ok())
        };
        if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
            && site != "same-origin"
        {
            return Some("cross-site request refused (Sec-Fetch-Site)");
        }
        // The scheme is not compared: a proxy may terminate TLS in front.
        if let Some(origin) = text(header::ORIGIN) {
            let origin_host = origin.split_once("://").map(|(_, host)| host);
            if origin_host.is_none() || origin_host != text(header::HOST) {
                return Some("cross-site request refused (Origin)");
            }
        }
        match text(header::HeaderName::from_static(CSRF_HEADER)) {
            Some(given) if same_secret(given.as_bytes(), self.csrf.as_bytes()) => None,
            _ => Some("missing or wrong X-CSRF-Token: reload the page"),
        }
    }
}

/// Every route: the token, when one is configured.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.auth.admits(request.headers()) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            r#"Basic realm="wfp-deployer console", charset="UTF-8""#,
        )],
        "the console needs its token (console.token): as a bearer token, or as the basic-auth password\n",
    )
        .into_response()
}

/// State-changing routes: same-origin requests from the console's own page.
pub async fn same_origin_only(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match state.auth.cross_site(request.headers()) {
        None => next.run(request).await,
        Some(reason) => (StatusCode::FORBIDDEN, format!("{reason}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn the_token_is_taken_as_bearer_or_basic_password() {
        let auth = Auth::new(Some(SecretString::from("s3cret")));
        assert!(auth.required());
        assert!(auth.admits(&headers(&[("authorization", "Bearer s3cret")])));
        let basic = base64::engine::general_purpose::STANDARD.encode("anyone:s3cret");
        assert!(auth.admits(&headers(&[("authorization", &format!("Basic {basic}"))])));
        assert!(!auth.admits(&headers(&[("authorization", "Bearer s3cre")])));
        assert!(!auth.admits(&headers(&[])));
        let open = Auth::new(Some(SecretString::from("  ")));
        assert!(!open.required(), "a blank token is no token");
        assert!(open.admits(&headers(&[])));
    }

    #[test]
    fn posts_need_the_page_token_and_the_same_origin() {
        let auth = Auth::new(None);
        let csrf = auth.csrf_token().to_string();
        let ok = [
            ("host", "127.0.0.1:9465"),
            ("origin", "http://127.0.0.1:9465"),
            ("sec-fetch-site", "same-origin"),
            (CSRF_HEADER, csrf.as_str()),
        ];
        assert_eq!(auth.cross_site(&headers(&ok)), None);
        assert_eq!(
            auth.cross_site(&headers(&ok[..1]))
                .map(|r| r.contains("X-CSRF-Token")),
            Some(true)
        );
        let mut other_site = ok;
        other_site[2] = ("sec-fetch-site", "cross-site");
        assert!(auth.cross_site(&headers(&other_site)).is_some());
        let mut other_origin = ok;
        other_origin[1] = ("origin", "http://evil.example");
        assert!(auth.cross_site(&headers(&other_origin)).is_some());
        let mut wrong = ok;
        wrong[3] = (CSRF_HEADER, "guess");
        assert!(auth.cross_site(&headers(&wrong)).is_some());
    }
}
