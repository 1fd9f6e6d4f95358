//! `assets.config._headers` and `assets.config._redirects`: the text of a
//! site's `_headers` and `_redirects` files, sent as strings in the script
//! metadata, which Cloudflare parses when the script is uploaded.
//!
//! Cloudflare refuses a file with any bad line: HTTP 400, code 100324, and a
//! message listing each bad line, as wrangler prints it:
//!
//! ```text
//! Invalid _headers configuration:
//! Line 1: Expected a path before headers [code: 100324]
//! ```
//!
//! (workers-sdk issues 14547 and 15624, 2026; reports from 2025 show the
//! same messages under 10021, the generic validation code). The rules are
//! those of Cloudflare's "Headers" and "Redirects" pages and of
//! workers-shared's parsers; where those disagree the simulator takes the
//! stricter reading (a line counts whole, indentation included; a redirect
//! is at most 1,000 characters, the documented limit; the 101st header rule
//! is refused), so a client that passes the simulator passes Cloudflare.
//!
//! This is written apart from the worker's own checks
//! (`crate::bundle::special`) and shares nothing with them, so a bug in one
//! cannot hide the same bug in the other.

mod headers;
mod redirects;

#[cfg(test)]
mod tests;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::envelope::ApiError;

pub use self::headers::HeadersFile;
pub use self::redirects::RedirectsFile;

/// `_headers` or `_redirects` content Cloudflare cannot use.
pub const CODE_INVALID_SPECIAL_FILE: u32 = 100324;

/// How many bad lines one answer lists before summing up the rest.
const MAX_LISTED: usize = 20;

/// The checked special files of one script upload.
#[derive(Debug, Clone, Default)]
pub struct SpecialFiles {
    pub headers: Option<HeadersFile>,
    pub redirects: Option<RedirectsFile>,
}

/// One bad line of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

impl Problem {
    fn new(line: usize, message: impl Into<String>) -> Problem {
        Problem {
            line,
            message: message.into(),
        }
    }
}

/// Checks the special files in `metadata.assets.config`, if any. Their
/// type (a string) was checked with the rest of the metadata; anything
/// else is left to that check.
pub fn check(metadata: &Map<String, Value>) -> Result<SpecialFiles, ApiError> {
    let config = metadata.get("assets").and_then(|a| a.get("config"));
    let text_of = |key: &str| config.and_then(|c| c.get(key)).and_then(Value::as_str);
    let html_handling = text_of("html_handling");
    let headers = text_of("_headers")
        .map(|text| headers::parse(text).map_err(|p| refuse("_headers", &p)))
        .transpose()?;
    let redirects = text_of("_redirects")
        .map(|text| redirects::parse(text, html_handling).map_err(|p| refuse("_redirects", &p)))
        .transpose()?;
    Ok(SpecialFiles { headers, redirects })
}

impl SpecialFiles {
    /// What `/__sim/scripts/...` shows: each file's text and rule counts,
    /// `null` when the upload had none.
    pub fn to_json(&self) -> Value {
        json!({
            "_headers": self.headers.as_ref().map(|h| json!({
                "text": h.text,
                "rules": h.rules,
            })),
            "_redirects": self.redirects.as_ref().map(|r| json!({
                "text": r.text,
                "static_rules": r.static_rules,
                "dynamic_rules": r.dynamic_rules,
            })),
        })
    }
}

/// Cloudflare's answer for a file with bad lines.
fn refuse(file: &str, problems: &[Problem]) -> ApiError {
    let mut message = format!("Invalid {file} configuration:");
    for problem in problems.iter().take(MAX_LISTED) {
        message.push_str(&format!("\nLine {}: {}", problem.line, problem.message));
    }
    if problems.len() > MAX_LISTED {
        message.push_str(&format!("\n... and {} more", problems.len() - MAX_LISTED));
    }
    ApiError::new(StatusCode::BAD_REQUEST, CODE_INVALID_SPECIAL_FILE, message)
}

/// JavaScript's `\s`: white space, line terminators and the BOM.
fn is_space(c: char) -> bool {
    c == '\u{feff}' || (c.is_whitespace() && c != '\u{85}')
}

/// JavaScript's `trim()`.
fn trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// A line's length as JavaScript measures it (UTF-16 code units), without
/// the `\r` of a CRLF file.
fn length(line: &str) -> usize {
    line.strip_suffix('\r')
        .unwrap_or(line)
        .encode_utf16()
        .count()
}

/// The documented URL-pattern rules both files share: one splat at most,
/// and each `:placeholder` name once (the splat's name is `splat`).
fn pattern_problem(pattern: &str) -> Option<String> {
    let splats = pattern.chars().filter(|&c| c == '*').count();
    if splats > 1 {
        return Some(format!(
            "Only one splat (*) is allowed in a URL, found {splats}."
        ));
    }
    let mut names: Vec<&str> = if splats == 1 { vec!["splat"] } else { vec![] };
    let mut rest = pattern;
    while let Some(at) = rest.find(':') {
        rest = &rest[at + 1..];
        let name_len = rest
            .char_indices()
            .take_while(|&(i, c)| {
                if i == 0 {
                    c.is_ascii_alphabetic()
                } else {
                    c.is_ascii_alphanumeric() || c == '_'
                }
            })
            .count();
        let name = &rest[..name_len];
        if name.is_empty() {
            continue;
        }
        if names.contains(&name) {
            return Some(format!("Placeholder :{name} is used more than once."));
        }
        names.push(name);
    }
    None
}
