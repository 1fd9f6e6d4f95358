//! Reads every Cloudflare answer through its envelope.
//!
//! Cloudflare wraps each answer, error statuses included, in
//! `{success, errors: [{code, message}], messages, result}`. Reading all of
//! them the same way means a 400's reason reaches the job's failure message,
//! a `success: false` hidden behind a 200 is still an error, and an answer
//! that is not an envelope at all (a proxy's HTML error page, say) is named
//! with its status and the start of its body instead of a bare parse error.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::{ApiMessage, CfStep, CloudflareError};

/// Characters of a non-envelope body quoted in the error.
const SNIPPET_CHARS: usize = 200;

#[derive(Deserialize)]
struct Envelope {
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    #[serde(default)]
    result: serde_json::Value,
}

/// Who is asking: the step and the `namespace/script` subject, for errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub step: CfStep,
    pub subject: &'a str,
}

impl Call<'_> {
    /// An error for an answer we cannot use.
    pub fn invalid(&self, status: u16, reason: impl Into<String>, body: &[u8]) -> CloudflareError {
        CloudflareError::InvalidAnswer {
            step: self.step,
            subject: self.subject.to_string(),
            status,
            reason: reason.into(),
            snippet: snippet(body),
        }
    }
}

/// Reads one answer: the `result` as `T` when the status is 2xx and
/// `success` is true, the envelope's errors otherwise.
///
/// A missing or `null` result reads as JSON `null`, so `T = Option<..>`
/// accepts it and a required struct reports it as an invalid answer.
pub(crate) fn read<T: DeserializeOwned>(
    call: Call<'_>,
    status: u16,
    body: &[u8],
) -> Result<T, CloudflareError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(call.invalid(status, "empty body", body));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| call.invalid(status, "not JSON", body))?;
    let envelope: Envelope = serde_json::from_value(value)
        .map_err(|_| call.invalid(status, "not a Cloudflare envelope", body))?;
    if !(200..300).contains(&status) || !envelope.success {
        return Err(CloudflareError::Api {
            step: call.step,
            subject: call.subject.to_string(),
            status,
            errors: envelope.errors,
            attempts: 1,
        });
    }
    serde_json::from_value(envelope.result)
        .map_err(|e| call.invalid(status, format!("unexpected result: {e}"), body))
}

/// The start of a body, on one line, for an error message. Anything that
/// looks like a JWT is cut out first: a successful answer we could not read
/// may well carry one, and error messages end up in logs and events.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = redact_jwts(&String::from_utf8_lossy(body));
    let mut out: String = text
        .chars()
        .take(SNIPPET_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > SNIPPET_CHARS {
        out.push('…');
    }
    out.trim().to_string()
}

/// Replaces every JWT-shaped token (`eyJ` then base64url and dots: every
/// JWT's header starts with `{"`) with `<redacted>`.
fn redact_jwts(text: &str) -> String {
    let is_jwt_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("eyJ") {
        out.push_str(&rest[..at]);
        let token_len = rest[at..]
            .find(|c: char| !is_jwt_char(c))
            .unwrap_or(rest.len() - at);
        out.push_str("<redacted>");
        rest = &rest[at + token_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: Call<'static> = Call {
        step: CfStep::Session,
        subject: "customers/acme-site",
    };

    #[derive(Debug, Deserialize, PartialEq)]
    struct Jwt {
        jwt: String,
    }

    #[test]
    fn success_gives_the_result() {
        let body = br#"{"success":true,"errors":[],"messages":[],"result":{"jwt":"x"}}"#;
        let r: Jwt = read(CALL, 201, body).unwrap();
        assert_eq!(r.jwt, "x");
    }

    #[test]
    fn null_result_is_none_for_optional_results() {
        let body = br#"{"success":true,"errors":[],"messages":[],"result":null}"#;
        let r: Option<Jwt> = read(CALL, 200, body).unwrap();
        assert_eq!(r, None);
        let r: Option<Jwt> = read(CALL, 200, br#"{"success":true}"#).unwrap();
        assert_eq!(r, None);
        let err = read::<Jwt>(CALL, 200, body).unwrap_err();
        assert!(
            matches!(err, CloudflareError::InvalidAnswer { status: 200, .. }),
            "{err}"
        );
    }

    #[test]
    fn errors_carry_status_codes_and_messages() {
        let body = br#"{"success":false,"errors":[{"code":10021,"message":"manifest: bad"}],"messages":[],"result":null}"#;
        let err = read::<Jwt>(CALL, 400, body).unwrap_err();
        assert_eq!(err.status(), Some(400));
        assert_eq!(
            err.to_string(),
            "session for customers/acme-site: HTTP 400, code 10021: manifest: bad"
        );
    }

    #[test]
    fn success_false_with_2xx_is_an_error() {
        let body =
            br#"{"success":false,"errors":[{"code":7,"message":"nope"}],"result":{"jwt":"x"}}"#;
        let err = read::<Jwt>(CALL, 200, body).unwrap_err();
        assert!(
            matches!(err, CloudflareError::Api { status: 200, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("code 7: nope"));
    }

    #[test]
    fn error_status_with_success_true_is_still_an_error() {
        let body = br#"{"success":true,"errors":[],"result":null}"#;
        let err = read::<Option<Jwt>>(CALL, 500, body).unwrap_err();
        assert_eq!(err.status(), Some(500));
        assert!(err.is_transient());
    }

    #[test]
    fn non_json_names_step_status_and_snippet() {
        let err = read::<Jwt>(CALL, 502, b"<html>\n<b>Bad gateway</b></html>").unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.starts_with(
                "session for customers/acme-site: invalid answer (HTTP 502): not JSON"
            ),
            "{shown}"
        );
        assert!(
            shown.contains("<html> <b>Bad gateway</b></html>"),
            "{shown}"
        );
        assert!(err.is_transient(), "a 502 page is worth retrying");
    }

    #[test]
    fn empty_bodies_say_so() {
        let err = read::<Jwt>(CALL, 503, b"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "session for customers/acme-site: invalid answer (HTTP 503): empty body"
        );
    }

    #[test]
    fn json_without_envelope_is_invalid() {
        let err = read::<Jwt>(CALL, 200, br#"{"jwt":"x"}"#).unwrap_err();
        assert!(
            err.to_string().contains("not a Cloudflare envelope"),
            "{err}"
        );
        assert!(!err.is_transient());
    }

    #[test]
    fn snippets_never_quote_a_jwt() {
        let body = br#"{"success":true,"result":{"jwt":"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln","buckets":[[1]]}}"#;
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Session {
            jwt: String,
            buckets: Vec<Vec<String>>,
        }
        let err = read::<Session>(CALL, 200, body).unwrap_err().to_string();
        assert!(!err.contains("eyJ"), "{err}");
        assert!(err.contains("<redacted>"), "{err}");
        assert_eq!(
            redact_jwts("a eyJx.y-z_ b eyJ"),
            "a <redacted> b <redacted>"
        );
    }

    #[test]
    fn snippets_are_bounded() {
        let long = "a".repeat(1000);
        let s = snippet(long.as_bytes());
        assert_eq!(s.chars().count(), SNIPPET_CHARS + 1);
        assert_eq!(snippet(b""), "");
    }
}
