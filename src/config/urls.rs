//! URLs shown without the credentials they may carry.
//!
//! Operators put `user:password@` in URLs (`cloudflare.api_base_url` behind
//! a proxy, `s3.endpoint_url` of a self-hosted server, `AMQP_URL`), and
//! `check-config`, the start-up line and error messages show those URLs.
//! [`redact_url`] replaces the user info of one URL; [`Settings::redacted`]
//! shows the whole settings with the user info of every URL in them
//! replaced, whatever the field, so a setting added later is covered too.
//! (Secrets proper, the API token and the AMQP URL, are `SecretString`s and
//! never shown at all.)

use std::borrow::Cow;
use std::fmt;

use super::Settings;

/// What replaces a URL's user info.
const HIDDEN: &str = "***";

/// `url` with its user info (`user:password@`), if any, replaced by
/// `***@`: `https://***@proxy.example/client/v4`. Anything that is not a
/// URL with user info is returned as it is.
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    match user_info_end(&url[start..]) {
        Some(at) => Cow::Owned(format!("{}{HIDDEN}{}", &url[..start], &url[start + at..])),
        None => Cow::Borrowed(url),
    }
}

/// In `authority_and_rest` (what follows `scheme://`), the offset of the
/// `@` ending the user info, if the authority has one. The authority ends
/// at a `/`, `?` or `#`, and, in a text quoting the URL, at a quote, a
/// backslash (an escape) or white space.
fn user_info_end(authority_and_rest: &str) -> Option<usize> {
    let end = authority_and_rest
        .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\\') || c.is_whitespace())
        .unwrap_or(authority_and_rest.len());
    authority_and_rest[..end].rfind('@')
}

/// Every URL in `text` (each `scheme://`), user info replaced.
fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = i + 3;
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if let Some(at) = user_info_end(rest) {
            out.push_str(HIDDEN);
            rest = &rest[at..];
        }
    }
    out.push_str(rest);
    out
}

/// The settings as `check-config` prints them: see [`Settings::redacted`].
pub struct RedactedSettings<'a>(&'a Settings);

impl Settings {
    /// The settings, pretty-printed like `{:#?}`, with the user info of
    /// every URL in them replaced by `***` (secrets show as `[REDACTED]`).
    pub fn redacted(&self) -> RedactedSettings<'_> {
        RedactedSettings(self)
    }
}

impl fmt::Display for RedactedSettings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_urls(&format!("{:#?}", self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_replaced_and_the_rest_kept() {
        let cases = [
            (
                "https://user:pass@proxy.example/client/v4",
                "https://***@proxy.example/client/v4",
            ),
            ("http://key@127.0.0.1:9000", "http://***@127.0.0.1:9000"),
            (
                "amqp://guest:p%40ss@h:5672/%2f?x=a@b",
                "amqp://***@h:5672/%2f?x=a@b",
            ),
            (
                "https://api.cloudflare.com/client/v4",
                "https://api.cloudflare.com/client/v4",
            ),
            (
                "https://h/path@not-user-info",
                "https://h/path@not-user-info",
            ),
            ("not a url", "not a url"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn every_url_in_a_text_is_redacted() {
        let text = r#"a: "https://u:p@h/x", b: Some("s3://k:s@bucket"), c: "mail@example.com""#;
        assert_eq!(
            redact_urls(text),
            r#"a: "https://***@h/x", b: Some("s3://***@bucket"), c: "mail@example.com""#
        );
    }

    #[test]
    fn redacted_settings_hide_user_info_in_any_url() {
        let mut settings = Settings::default();
        settings.cloudflare.api_base_url = "https://cf-user:cf-pass@proxy/client/v4".into();
        settings.s3.endpoint_url = Some("http://s3-key:s3-secret@127.0.0.1:9000".into());
        let shown = settings.redacted().to_string();
        for secret in ["cf-user", "cf-pass", "s3-key", "s3-secret", "guest"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("\"https://***@proxy/client/v4\""), "{shown}");
        assert!(shown.contains("\"http://***@127.0.0.1:9000\""), "{shown}");
        assert!(shown.starts_with("Settings {\n"), "{shown}");
    }
}
