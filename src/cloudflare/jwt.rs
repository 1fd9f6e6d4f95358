//! The short-lived JWTs of the assets flow: kept secret, read for expiry.
//!
//! Cloudflare hands out two JWTs (the upload JWT of a session, the completion
//! JWT after the last upload), each valid for about an hour. A big site can
//! take longer than that to upload, and a job can wait between steps, so we
//! read the `exp` claim before each use and open a new session instead of
//! sending a token that is about to be refused. We cannot verify the
//! signature (the key is Cloudflare's); we only decode the payload.
//!
//! A JWT is a bearer credential: [`Jwt`] keeps it in a `SecretString` and its
//! `Debug` shows nothing of it, and no error here quotes it.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use secrecy::{ExposeSecret, SecretString};

/// base64url that accepts the payload with or without padding.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A JWT from Cloudflare; never shown.
#[derive(Clone)]
pub(crate) struct Jwt(SecretString);

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Jwt(<redacted>)")
    }
}

impl Jwt {
    pub fn new(token: String) -> Self {
        Self(SecretString::from(token))
    }

    /// The token, for an `Authorization` header or the script's metadata only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The `exp` claim: seconds since the Unix epoch.
    pub fn expires_at(&self) -> Result<i64, &'static str> {
        expiry_of(self.expose())
    }

    /// Whether the token has expired, or will within `margin` of `now`
    /// (seconds since the epoch): too close to trust for a request.
    pub fn is_expiring(&self, now: i64, margin: Duration) -> Result<bool, &'static str> {
        let margin = i64::try_from(margin.as_secs()).unwrap_or(i64::MAX);
        Ok(self.expires_at()? <= now.saturating_add(margin))
    }
}

/// Now, in seconds since the Unix epoch, as JWT claims count time.
pub(crate) fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Decodes the payload (second part) and reads a numeric `exp`. The reasons
/// are fixed strings so an error can never quote the token.
fn expiry_of(token: &str) -> Result<i64, &'static str> {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not three dot-separated parts");
    };
    let bytes = BASE64URL
        .decode(payload)
        .map_err(|_| "the payload is not base64url")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| "the payload is not JSON")?;
    let exp = claims.get("exp").ok_or("no exp claim")?;
    if let Some(secs) = exp.as_i64() {
        return Ok(secs);
    }
    match exp.as_f64() {
        Some(secs) if secs.is_finite() => Ok(secs.floor() as i64),
        _ => Err("the exp claim is not a number"),
    }
}

/// Makes unsigned JWTs for tests: `{"alg":"none"}` and the given claims.
#[cfg(test)]
pub(crate) fn unsigned(claims: &serde_json::Value) -> String {
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig",
        enc.encode(br#"{"alg":"none","typ":"JWT"}"#),
        enc.encode(claims.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_750_000_000;
    const MARGIN: Duration = Duration::from_secs(60);

    fn with_exp(exp: i64) -> Jwt {
        Jwt::new(unsigned(&json!({ "exp": exp, "sub": "x" })))
    }

    #[test]
    fn reads_exp() {
        assert_eq!(with_exp(NOW + 3600).expires_at(), Ok(NOW + 3600));
        let float = Jwt::new(unsigned(&json!({ "exp": 1_750_000_000.7 })));
        assert_eq!(float.expires_at(), Ok(NOW));
    }

    #[test]
    fn expired_and_within_margin_count_as_expiring() {
        assert_eq!(
            with_exp(NOW - 1).is_expiring(NOW, MARGIN),
            Ok(true),
            "expired"
        );
        assert_eq!(
            with_exp(NOW + 30).is_expiring(NOW, MARGIN),
            Ok(true),
            "within margin"
        );
        assert_eq!(
            with_exp(NOW + 60).is_expiring(NOW, MARGIN),
            Ok(true),
            "at the margin"
        );
        assert_eq!(with_exp(NOW + 61).is_expiring(NOW, MARGIN), Ok(false));
        assert_eq!(
            with_exp(NOW + 3600).is_expiring(NOW, MARGIN),
            Ok(false),
            "fine"
        );
    }

    #[test]
    fn padded_payloads_are_accepted() {
        let enc = base64::engine::general_purpose::URL_SAFE;
        let token = format!(
            "{}.{}.s",
            enc.encode("{}"),
            enc.encode(json!({ "exp": NOW }).to_string())
        );
        assert_eq!(Jwt::new(token).expires_at(), Ok(NOW));
    }

    #[test]
    fn garbage_is_unreadable() {
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let cases = [
            ("", "not three dot-separated parts"),
            ("abc", "not three dot-separated parts"),
            ("a.b.c.d", "not three dot-separated parts"),
            ("a.!!!.c", "the payload is not base64url"),
            (
                &*format!("a.{}.c", enc.encode("not json")),
                "the payload is not JSON",
            ),
            (
                &*format!("a.{}.c", enc.encode(r#"{"sub":1}"#)),
                "no exp claim",
            ),
            (
                &*format!("a.{}.c", enc.encode(r#"{"exp":"soon"}"#)),
                "the exp claim is not a number",
            ),
        ];
        for (token, reason) in cases {
            assert_eq!(
                Jwt::new(token.to_string()).expires_at(),
                Err(reason),
                "{token}"
            );
        }
    }

    #[test]
    fn debug_shows_nothing() {
        let jwt = with_exp(NOW);
        assert_eq!(format!("{jwt:?}"), "Jwt(<redacted>)");
    }
}
