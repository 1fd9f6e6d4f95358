//! The simulator's `_redirects` parser: `source destination [status]` a
//! line, 2,000 static rules and then 100 dynamic ones (every rule from the
//! first with a splat or placeholder on counts as dynamic), 1,000
//! characters a rule, every bad line reported with Cloudflare's wording.

use std::collections::HashMap;

use super::{Problem, is_space, length, pattern_problem, trim};

const MAX_STATIC: usize = 2_000;
const MAX_DYNAMIC: usize = 100;
const MAX_LINE: usize = 1_000;
const STATUSES: &[u16] = &[200, 301, 302, 303, 307, 308];

/// A `_redirects` file Cloudflare accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectsFile {
    pub text: String,
    pub static_rules: usize,
    pub dynamic_rules: usize,
}

pub fn parse(text: &str, html_handling: Option<&str>) -> Result<RedirectsFile, Vec<Problem>> {
    let mut problems = Vec::new();
    let (mut statics, mut dynamics) = (0, 0);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = trim(raw);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if length(raw) > MAX_LINE {
            problems.push(Problem::new(
                number,
                format!("Rule exceeds the maximum allowed length of {MAX_LINE}."),
            ));
            continue;
        }
        let mut tokens: Vec<&str> = line.split(is_space).filter(|t| !t.is_empty()).collect();
        if let Some(at) = (2..tokens.len()).find(|&i| tokens[i].starts_with('#')) {
            tokens.truncate(at);
        }
        if !(2..=3).contains(&tokens.len()) {
            problems.push(Problem::new(
                number,
                format!(
                    "Expected exactly 2 or 3 whitespace-separated tokens. Got {}.",
                    tokens.len()
                ),
            ));
            continue;
        }
        let from = match source(tokens[0]) {
            Ok(from) => from,
            Err(message) => {
                problems.push(Problem::new(number, message));
                continue;
            }
        };
        if dynamics == 0 && !from.contains('*') && !has_placeholder(&from) {
            statics += 1;
            if statics > MAX_STATIC {
                problems.push(Problem::new(
                    number,
                    format!("Maximum number of static rules supported is {MAX_STATIC}."),
                ));
                continue;
            }
        } else {
            dynamics += 1;
            if dynamics > MAX_DYNAMIC {
                problems.push(Problem::new(
                    number,
                    format!("Maximum number of dynamic rules supported is {MAX_DYNAMIC}."),
                ));
                break;
            }
        }
        let to = tokens[1];
        let absolute = to.starts_with("https://") && to.len() > "https://".len();
        if !absolute && !to.starts_with('/') {
            problems.push(Problem::new(
                number,
                "URLs should either be relative (e.g. begin with a forward-slash), or use HTTPS (e.g. begin with \"https://\").",
            ));
            continue;
        }
        let status = tokens.get(2).copied().unwrap_or("302");
        let code = status
            .parse::<u16>()
            .ok()
            .filter(|c| status.chars().all(|d| d.is_ascii_digit()) && STATUSES.contains(c));
        let Some(code) = code else {
            problems.push(Problem::new(
                number,
                format!(
                    "Valid status codes are 200, 301, 302 (default), 303, 307, or 308. Got {status}."
                ),
            ));
            continue;
        };
        let index_page = to.ends_with("/index") || to.ends_with("/index.html");
        let loops = !absolute
            && index_page
            && (from.ends_with("/*") || (from.ends_with('/') && html_handling != Some("none")));
        if loops {
            problems.push(Problem::new(
                number,
                "Infinite loop detected in this rule. This would cause a redirect to strip `.html` or `/index` and end up triggering this rule again.",
            ));
            continue;
        }
        if let Some(first) = seen.get(&from) {
            problems.push(Problem::new(
                number,
                format!("Duplicate rule for path {from} (line {first} has the first)."),
            ));
            continue;
        }
        seen.insert(from, number);
        if code == 200 && absolute {
            problems.push(Problem::new(
                number,
                format!("Proxy (200) redirects can only point to relative paths. Got {to}"),
            ));
        }
    }
    if problems.is_empty() {
        Ok(RedirectsFile {
            text: text.to_owned(),
            static_rules: statics,
            dynamic_rules: dynamics,
        })
    } else {
        Err(problems)
    }
}

/// The path a source matches: relative only (Cloudflare puts a `/` in
/// front of one without), without its query or fragment, and a valid
/// pattern.
fn source(token: &str) -> Result<String, String> {
    if token.starts_with("https://") {
        return Err(format!(
            "Only relative URLs are allowed. Skipping absolute URL {token}."
        ));
    }
    let path = token.split(['?', '#']).next().unwrap_or("");
    let from = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    match pattern_problem(&from) {
        Some(message) => Err(message),
        None => Ok(from),
    }
}

fn has_placeholder(path: &str) -> bool {
    path.split(':')
        .skip(1)
        .any(|after| after.starts_with(|c: char| c.is_ascii_alphabetic()))
}
