//! The simulator's `_headers` parser: rules of a URL pattern line followed
//! by `Name: value` and `! Name` lines, at most 100 rules, at most 2,000
//! characters a line, every bad line reported with Cloudflare's wording.

use super::{Problem, is_space, length, pattern_problem, trim};

const MAX_RULES: usize = 100;
const MAX_LINE: usize = 2_000;

/// A `_headers` file Cloudflare accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadersFile {
    pub text: String,
    pub rules: usize,
}

/// The rule being read: its line and how many headers it has so far.
struct Open {
    line: usize,
    headers: usize,
}

pub fn parse(text: &str) -> Result<HeadersFile, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut rules = 0;
    let mut open: Option<Open> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = trim(raw);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if length(raw) > MAX_LINE {
            problems.push(Problem::new(
                number,
                format!("Line exceeds the maximum allowed length of {MAX_LINE}."),
            ));
            continue;
        }
        if is_path(line) {
            close(open.take(), &mut rules, &mut problems);
            if rules >= MAX_RULES {
                problems.push(Problem::new(
                    number,
                    format!("Maximum number of rules supported is {MAX_RULES}."),
                ));
                break;
            }
            if let Some(message) = url_problem(line) {
                problems.push(Problem::new(number, message));
                continue;
            }
            open = Some(Open {
                line: number,
                headers: 0,
            });
            continue;
        }
        match (open.as_mut(), header_problem(line)) {
            (None, _) => problems.push(Problem::new(number, "Expected a path before headers")),
            (Some(_), Some(message)) => problems.push(Problem::new(number, message)),
            (Some(rule), None) => rule.headers += 1,
        }
    }
    close(open, &mut rules, &mut problems);
    if problems.is_empty() {
        Ok(HeadersFile {
            text: text.to_owned(),
            rules,
        })
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}

/// A rule line: starts with `/`, or has `scheme://` before any space.
fn is_path(line: &str) -> bool {
    if line.starts_with('/') {
        return true;
    }
    let first = line.split(is_space).next().unwrap_or("");
    matches!(first.find("://"), Some(at) if at > 0)
}

/// Counts a finished rule, or reports it when it set nothing.
fn close(rule: Option<Open>, rules: &mut usize, problems: &mut Vec<Problem>) {
    if let Some(rule) = rule {
        if rule.headers == 0 {
            problems.push(Problem::new(rule.line, "No headers specified"));
        } else {
            *rules += 1;
        }
    }
}

fn url_problem(line: &str) -> Option<String> {
    if let Some(after) = line.strip_prefix("https://") {
        let host = after
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("");
        if host.is_empty() {
            return Some(format!("No host in absolute URL {line}."));
        }
        let port = host.rsplit(':').next().unwrap_or("");
        if host.contains(':') && !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) {
            return Some(format!(
                "Specifying ports is not supported. Skipping absolute URL {line}."
            ));
        }
    } else if !line.starts_with('/') {
        return Some(
            "URLs should either be relative (e.g. begin with a forward-slash), or use HTTPS (e.g. begin with \"https://\")."
                .to_owned(),
        );
    }
    pattern_problem(line)
}

/// `None` for a good `Name: value` or `! Name` line.
fn header_problem(line: &str) -> Option<String> {
    let Some(colon) = line.find(':') else {
        return if line.starts_with("! ") && !trim(&line[2..]).is_empty() {
            None
        } else {
            Some("Expected a colon-separated header pair (e.g. name: value)".to_owned())
        };
    };
    let name = trim(&line[..colon]);
    let value = trim(&line[colon + 1..]);
    if name.contains(' ') {
        Some("Header name cannot include spaces".to_owned())
    } else if name.is_empty() {
        Some("No header name specified".to_owned())
    } else if value.is_empty() {
        Some("No header value specified".to_owned())
    } else {
        None
    }
}
