//! `_headers`: custom response headers for static assets, checked with
//! Cloudflare's rules before the file is sent as `assets.config._headers`.
//!
//! The format (Cloudflare's "Headers" page for Workers static assets, and
//! workers-shared `parseHeaders.ts`): a line beginning with `/` (or an
//! `https://` URL) starts a rule; the lines after it are `Name: value` to
//! attach a header or `! Name` to detach one; blank lines and lines
//! beginning with `#` are skipped; lines are trimmed, so indentation is
//! free. At most 100 rules, at most 2,000 characters a line.
//!
//! Stricter than Cloudflare's parser, on purpose:
//! - the line limit counts the whole line, indentation included (the
//!   documentation's wording: "the entire line, including spacing"), where
//!   the parser counts the trimmed line;
//! - workers-shared counts a rule only once the next one starts, so it
//!   lets a 101st rule through; here the 101st rule is refused;
//! - a header name must be an HTTP token and a value must hold no control
//!   character: Cloudflare's parser refuses only names with spaces, and the
//!   asset worker's `Headers.set` would throw on the rest at request time.

use super::pattern::{self, Scope};
use super::text::{control_character, decode, is_js_space, js_length, js_trim, lines};
use super::{HEADERS, SpecialFileError};

/// Most rules a `_headers` file may hold.
pub const MAX_RULES: usize = 100;
/// Longest line, in characters (UTF-16 code units, as Cloudflare counts).
pub const MAX_LINE_CHARS: usize = 2_000;

/// A checked `_headers` file: the text to send and the rules it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    text: String,
    rules: Vec<HeaderRule>,
}

/// One rule: a URL pattern and the headers it attaches and detaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    /// The line of the URL pattern.
    pub line: usize,
    pub pattern: String,
    /// `(name, value)` in file order, names lowercased as Cloudflare keys them.
    pub set: Vec<(String, String)>,
    /// Names to detach, lowercased.
    pub unset: Vec<String>,
}

impl Headers {
    /// Parses and checks a `_headers` file; the first fault found is the
    /// error, naming its line.
    pub fn parse(bytes: &[u8]) -> Result<Headers, SpecialFileError> {
        let text = decode(HEADERS, bytes)?;
        let mut rules: Vec<HeaderRule> = Vec::new();
        let mut current: Option<HeaderRule> = None;
        for (n, raw) in lines(text) {
            let line = js_trim(raw);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fault = |message: String| SpecialFileError::at(HEADERS, n, message);
            let length = js_length(raw);
            if length > MAX_LINE_CHARS {
                return Err(fault(format!(
                    "line of {length} characters, more than the limit of {MAX_LINE_CHARS}"
                )));
            }
            if let Some(c) = control_character(line) {
                return Err(fault(format!("control character {c:?}")));
            }
            if looks_like_url(line) {
                rules.extend(finish(current.take())?);
                if rules.len() >= MAX_RULES {
                    return Err(fault(format!(
                        "rule {} is over the limit of {MAX_RULES} rules",
                        rules.len() + 1
                    )));
                }
                pattern::check(line, Scope::Headers).map_err(fault)?;
                current = Some(HeaderRule {
                    line: n,
                    pattern: line.to_owned(),
                    set: Vec::new(),
                    unset: Vec::new(),
                });
                continue;
            }
            let Some(rule) = current.as_mut() else {
                return Err(fault(format!(
                    "{line:?} comes before any URL pattern: a rule begins with a line starting with '/' or 'https://'"
                )));
            };
            if let Some((name, value)) = line.split_once(':') {
                let name = header_name(js_trim(name)).map_err(fault)?;
                let value = js_trim(value);
                if value.is_empty() {
                    return Err(fault(format!("header {name} has no value")));
                }
                rule.set.push((name, value.to_owned()));
            } else if let Some(name) = line.strip_prefix("! ") {
                let name = header_name(js_trim(name)).map_err(fault)?;
                rule.unset.push(name);
            } else {
                return Err(fault(format!(
                    "{line:?} is neither `Name: value` nor `! Name`"
                )));
            }
        }
        rules.extend(finish(current)?);
        Ok(Headers {
            text: text.to_owned(),
            rules,
        })
    }

    /// The file, byte for byte: what `assets.config._headers` carries.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn rules(&self) -> &[HeaderRule] {
        &self.rules
    }
}

/// Cloudflare's test for a rule's first line: it begins with `/`, or a
/// `scheme://` comes before any white space (so `X-Url:https://a.b` is
/// read as a URL, and refused as one that is not `https://`).
fn looks_like_url(line: &str) -> bool {
    line.starts_with('/')
        || line
            .split(is_js_space)
            .next()
            .and_then(|head| head.find("://"))
            .is_some_and(|i| i > 0)
}

/// A rule needs at least one header to attach or detach.
fn finish(rule: Option<HeaderRule>) -> Result<Option<HeaderRule>, SpecialFileError> {
    match rule {
        Some(rule) if rule.set.is_empty() && rule.unset.is_empty() => Err(SpecialFileError::at(
            HEADERS,
            rule.line,
            format!("rule {:?} attaches or detaches no header", rule.pattern),
        )),
        rule => Ok(rule),
    }
}

/// A header name: an RFC 9110 token, lowercased.
fn header_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("a header line has no name before ':'".to_owned());
    }
    if name.contains(is_js_space) {
        return Err(format!("header name {name:?} contains white space"));
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(token) {
        return Err(format!(
            "header name {name:?} is not a valid HTTP header name"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
