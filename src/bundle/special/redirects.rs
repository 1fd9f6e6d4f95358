//! `_redirects`: redirects and rewrites ahead of static assets, checked
//! with Cloudflare's rules before the file is sent as
//! `assets.config._redirects`.
//!
//! The format (Cloudflare's "Redirects" page for Workers static assets, and
//! workers-shared `parseRedirects.ts`): one rule a line,
//! `source destination [status]`, white-space separated; the status is 301,
//! 302 (the default), 303, 307, 308, or 200 for a rewrite ("proxying"),
//! which must stay on the site; a `#` token after the destination starts an
//! inline comment; lines beginning with `#` are comments. Sources are paths
//! with at most one splat and unique placeholders; destinations are paths
//! or `https://` URLs. A file holds at most 2,000 static and 100 dynamic
//! rules, and every rule after the first dynamic one counts as dynamic, as
//! Cloudflare counts them. Two rules for one source, and the rewrites that
//! would loop through Cloudflare's HTML handling (`/* /index.html`, and
//! `/ /index` unless `html_handling` is `none`), are refused as Cloudflare's
//! API refuses them (code 100324, "Infinite loop detected").
//!
//! Stricter than Cloudflare's parser, on purpose:
//! - a rule is at most 1,000 characters, the documented limit (the parser's
//!   constant is 2,000), counted over the whole line;
//! - a source must begin with `/`: the parser quietly prefixes one, turning
//!   a domain-level rule (which Cloudflare does not support) into a path
//!   that never matches;
//! - the status is written in digits (the parser's `Number()` also takes
//!   `0x12D` or `301.0`).

use std::collections::HashMap;

use super::pattern::{self, Scope};
use super::text::{control_character, decode, is_js_space, js_length, js_trim, lines};
use super::{REDIRECTS, SpecialFileError};

/// Most rules without a splat or placeholder, before the first that has one.
pub const MAX_STATIC_RULES: usize = 2_000;
/// Most rules from the first with a splat or placeholder on.
pub const MAX_DYNAMIC_RULES: usize = 100;
/// Longest rule, in characters (UTF-16 code units, as Cloudflare counts).
pub const MAX_RULE_CHARS: usize = 1_000;
/// The statuses Cloudflare accepts; 200 is a rewrite.
pub const STATUSES: [u16; 6] = [200, 301, 302, 303, 307, 308];
/// The status of a rule that names none.
pub const DEFAULT_STATUS: u16 = 302;

/// A checked `_redirects` file: the text to send and the rules it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirects {
    text: String,
    rules: Vec<RedirectRule>,
}

/// One rule, as written (the source without a query or fragment, which
/// Cloudflare does not match on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRule {
    pub line: usize,
    pub from: String,
    pub to: String,
    pub status: u16,
    /// Counted against the dynamic limit.
    pub dynamic: bool,
}

impl Redirects {
    /// Parses and checks a `_redirects` file; `html_handling` is the job's
    /// `assets_config.html_handling` (Cloudflare's default when `None`),
    /// which decides whether `/ /index.html` loops. The first fault found
    /// is the error, naming its line.
    pub fn parse(bytes: &[u8], html_handling: Option<&str>) -> Result<Redirects, SpecialFileError> {
        let text = decode(REDIRECTS, bytes)?;
        let mut rules: Vec<RedirectRule> = Vec::new();
        let mut first_line_of: HashMap<String, usize> = HashMap::new();
        let (mut statics, mut dynamics) = (0, 0);
        for (n, raw) in lines(text) {
            let line = js_trim(raw);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fault = |message: String| SpecialFileError::at(REDIRECTS, n, message);
            let length = js_length(raw);
            if length > MAX_RULE_CHARS {
                return Err(fault(format!(
                    "rule of {length} characters, more than the limit of {MAX_RULE_CHARS}"
                )));
            }
            if let Some(c) = control_character(line) {
                return Err(fault(format!("control character {c:?}")));
            }
            let (source, to, status) = fields(line).map_err(fault)?;
            // Cloudflare matches the path alone: a query or fragment is dropped.
            let from = source.split(['?', '#']).next().unwrap_or_default();
            pattern::check(from, Scope::RedirectSource).map_err(fault)?;
            let dynamic = dynamics > 0 || pattern::is_dynamic(from);
            if dynamic {
                dynamics += 1;
                if dynamics > MAX_DYNAMIC_RULES {
                    return Err(fault(format!(
                        "dynamic rule {dynamics} is over the limit of {MAX_DYNAMIC_RULES} (every rule after the first with a splat or placeholder counts as dynamic)"
                    )));
                }
            } else {
                statics += 1;
                if statics > MAX_STATIC_RULES {
                    return Err(fault(format!(
                        "static rule {statics} is over the limit of {MAX_STATIC_RULES}"
                    )));
                }
            }
            let absolute = check_destination(to).map_err(fault)?;
            if status == 200 && absolute {
                return Err(fault(format!(
                    "a 200 rewrite must point to a path on this site, not {to:?}"
                )));
            }
            if !absolute && loops(from, to, html_handling) {
                return Err(fault(format!(
                    "infinite loop: {from} -> {to} would have Cloudflare strip `/index` or `.html` and match this rule again"
                )));
            }
            if let Some(first) = first_line_of.insert(from.to_owned(), n) {
                return Err(fault(format!(
                    "a second rule for {from}: line {first} already has one, and only the first applies"
                )));
            }
            rules.push(RedirectRule {
                line: n,
                from: from.to_owned(),
                to: to.to_owned(),
                status,
                dynamic,
            });
        }
        Ok(Redirects {
            text: text.to_owned(),
            rules,
        })
    }

    /// The file, byte for byte: what `assets.config._redirects` carries.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn rules(&self) -> &[RedirectRule] {
        &self.rules
    }
}

/// Splits a rule into source, destination and status, dropping an inline
/// comment (a token beginning with `#` after the destination).
fn fields(line: &str) -> Result<(&str, &str, u16), String> {
    let mut tokens: Vec<&str> = line.split(is_js_space).filter(|t| !t.is_empty()).collect();
    if let Some(comment) = tokens.iter().skip(2).position(|t| t.starts_with('#')) {
        tokens.truncate(comment + 2);
    }
    let (source, to, status) = match tokens.as_slice() {
        [source, to] => (*source, *to, None),
        [source, to, status] => (*source, *to, Some(*status)),
        _ => {
            return Err(format!(
                "expected `source destination [status]`, found {} fields",
                tokens.len()
            ));
        }
    };
    let status = match status {
        None => DEFAULT_STATUS,
        Some(s) => s
            .parse::<u16>()
            .ok()
            .filter(|code| s.bytes().all(|b| b.is_ascii_digit()) && STATUSES.contains(code))
            .ok_or_else(|| {
                format!("status {s:?} is not one of 200, 301, 302 (the default), 303, 307, 308")
            })?,
    };
    Ok((source, to, status))
}

/// A destination is a path or an `https://` URL with a host; returns
/// whether it is absolute.
fn check_destination(to: &str) -> Result<bool, String> {
    if let Some(rest) = to.strip_prefix("https://") {
        let host = rest
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        if host.is_empty() {
            return Err(format!("destination {to:?} has no host"));
        }
        return Ok(true);
    }
    if to.starts_with('/') {
        Ok(false)
    } else {
        Err(format!(
            "destination {to:?} must be a path beginning with '/' or an https:// URL"
        ))
    }
}

/// The rules Cloudflare refuses as infinite loops: a splat to the index
/// page, and the root to the index page while HTML handling is on (it
/// redirects `/index.html` back to `/`).
fn loops(from: &str, to: &str, html_handling: Option<&str>) -> bool {
    let to_index = to.ends_with("/index") || to.ends_with("/index.html");
    let splat_to_index = from.ends_with("/*") && to_index;
    let root_to_index = from.ends_with('/') && to_index && html_handling != Some("none");
    splat_to_index || root_to_index
}

#[cfg(test)]
#[path = "redirects_tests.rs"]
mod tests;
