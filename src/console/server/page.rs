//! The page itself: one HTML file, one script, one style sheet, written by
//! hand and compiled into the binary (`include_str!`), so the console needs
//! no build step, no CDN and no files beside the binary.
//!
//! Every answer carries a strict Content-Security-Policy (scripts, styles
//! and connections from this origin only; no inline script; no framing),
//! so even a job id crafted as markup could not run as script; the script
//! also only ever sets text, never HTML.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::AppState;

const INDEX: &str = include_str!("../static/index.html");
const SCRIPT: &str = include_str!("../static/app.js");
const STYLE: &str = include_str!("../static/app.css");

/// Where the page finds its CSRF token.
const CSRF_PLACEHOLDER: &str = "{{CSRF_TOKEN}}";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`: the page, carrying this process's CSRF token.
pub async fn index(State(state): State<AppState>) -> Html<String> {
    Html(INDEX.replace(CSRF_PLACEHOLDER, state.auth.csrf_token()))
}

pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

pub async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

/// The security headers of every answer; nothing is cached (the page holds
/// a CSRF token, the API live data).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_a_place_for_the_token_and_loads_only_its_own_files() {
        assert_eq!(INDEX.matches(CSRF_PLACEHOLDER).count(), 1);
        assert!(INDEX.contains(r#"src="/static/app.js""#));
        assert!(INDEX.contains(r#"href="/static/app.css""#));
        for text in [INDEX, SCRIPT, STYLE] {
            // The SVG namespace is a name, not a place things load from.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "nothing from elsewhere"
            );
        }
        assert!(
            !SCRIPT.contains("innerHTML"),
            "the script sets text, never markup"
        );
    }
}
