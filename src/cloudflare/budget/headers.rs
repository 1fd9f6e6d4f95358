//! Reading the `Ratelimit` and `Ratelimit-Policy` answer headers.
//!
//! Both are Structured Field lists (RFC 8941) as the IETF draft
//! `draft-ietf-httpapi-ratelimit-headers` defines them: each member is a
//! policy name (a string or token) followed by `;key=value` parameters.
//!
//! - `Ratelimit: "default";r=50;t=30`: `r` the quota remaining, `t` the
//!   seconds until the window resets.
//! - `Ratelimit-Policy: "default";q=1200;w=300`: `q` the quota, `w` the
//!   window in seconds.
//!
//! A `Ratelimit` member is matched to its policy by name (or to the only
//! policy there is). Parsing is lenient on purpose: a member or parameter we
//! cannot read is skipped, never an error, since these headers only advise
//! and a call must not fail because of them.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// What one answer said about the token's budget, fleet-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    /// Requests left in the current window.
    pub remaining: u64,
    /// The window's whole quota, when a policy names it.
    pub quota: Option<u64>,
    /// Time until the window resets.
    pub reset: Duration,
}

/// One parsed list member: its name and integer parameters.
struct Member {
    name: String,
    params: Vec<(String, u64)>,
}

impl Member {
    fn param(&self, key: &str) -> Option<u64> {
        self.params.iter().find(|(k, _)| k == key).map(|&(_, v)| v)
    }
}

/// The most constraining limit the headers report (the fewest requests
/// left), or `None` when there is no readable `Ratelimit` member with both
/// a remaining count and a reset time (its own `t`, else its policy's `w`).
pub(crate) fn read(headers: &HeaderMap) -> Option<Reading> {
    let limits = members(headers, "ratelimit");
    let policies = members(headers, "ratelimit-policy");
    let policy_of = |name: &str| {
        policies
            .iter()
            .find(|p| p.name == name)
            .or(match policies.as_slice() {
                [only] => Some(only),
                _ => None,
            })
    };
    limits
        .iter()
        .filter_map(|limit| {
            let remaining = limit.param("r")?;
            let policy = policy_of(&limit.name);
            let reset = limit.param("t").or(policy.and_then(|p| p.param("w")))?;
            Some(Reading {
                remaining,
                quota: policy.and_then(|p| p.param("q")),
                reset: Duration::from_secs(reset),
            })
        })
        .min_by_key(|r| (r.remaining, std::cmp::Reverse(r.reset)))
}

/// Every member of every `name` header line.
fn members(headers: &HeaderMap, name: &str) -> Vec<Member> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| split_outside_quotes(v, ','))
        .filter_map(member)
        .collect()
}

fn member(text: &str) -> Option<Member> {
    let mut parts = split_outside_quotes(text, ';').into_iter();
    let name = parts.next()?.trim();
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    let params = parts
        .filter_map(|p| {
            let (key, value) = p.split_once('=')?;
            Some((key.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect();
    Some(Member {
        name: name.to_owned(),
        params,
    })
}

/// Splits on `sep` where it is not inside a quoted string (names may be
/// strings, and a string may hold a comma or a semicolon).
fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn reading(remaining: u64, quota: Option<u64>, reset: u64) -> Option<Reading> {
        Some(Reading {
            remaining,
            quota,
            reset: Duration::from_secs(reset),
        })
    }

    #[test]
    fn reads_cloudflares_documented_example() {
        let h = headers(&[
            ("Ratelimit", "\"default\";r=50;t=30"),
            ("Ratelimit-Policy", "\"default\";q=1200;w=300"),
        ]);
        assert_eq!(read(&h), reading(50, Some(1200), 30));
    }

    #[test]
    fn names_may_be_tokens_and_spacing_is_loose() {
        let h = headers(&[
            ("ratelimit", "default; r=7; t=12"),
            ("ratelimit-policy", "default;w=300; q=1200"),
        ]);
        assert_eq!(read(&h), reading(7, Some(1200), 12));
    }

    #[test]
    fn a_limit_takes_its_named_policy_or_the_only_one() {
        let named = headers(&[
            ("Ratelimit", "\"burst\";r=5;t=3"),
            (
                "Ratelimit-Policy",
                "\"day\";q=9000;w=86400, \"burst\";q=100;w=60",
            ),
        ]);
        assert_eq!(read(&named), reading(5, Some(100), 3));
        let only = headers(&[
            ("Ratelimit", "\"default\";r=5;t=3"),
            ("Ratelimit-Policy", "\"burst\";q=100;w=60"),
        ]);
        assert_eq!(read(&only), reading(5, Some(100), 3));
    }

    #[test]
    fn the_fewest_remaining_wins_across_members_and_lines() {
        let h = headers(&[
            ("Ratelimit", "\"a\";r=90;t=10"),
            ("Ratelimit", "\"b\";r=4;t=200, \"c\";r=60;t=5"),
        ]);
        assert_eq!(read(&h), reading(4, None, 200));
    }

    #[test]
    fn without_t_the_policy_window_is_the_reset() {
        let h = headers(&[
            ("Ratelimit", "\"default\";r=3"),
            ("Ratelimit-Policy", "\"default\";q=10;w=60"),
        ]);
        assert_eq!(read(&h), reading(3, Some(10), 60));
    }

    #[test]
    fn unreadable_or_incomplete_headers_say_nothing() {
        for pairs in [
            &[][..],
            &[("Ratelimit", "\"default\";r=3")],
            &[("Ratelimit", "\"default\";t=3")],
            &[("Ratelimit", "\"default\";r=-1;t=3")],
            &[("Ratelimit", ";r=1;t=3")],
            &[("Ratelimit", "garbage")],
            &[("Ratelimit-Policy", "\"default\";q=10;w=60")],
        ] {
            assert_eq!(read(&headers(pairs)), None, "{pairs:?}");
        }
    }

    #[test]
    fn quoted_names_may_hold_separators() {
        let h = headers(&[
            ("Ratelimit", "\"a,b;c\";r=2;t=9"),
            ("Ratelimit-Policy", "\"x\";q=1;w=1, \"a,b;c\";q=20;w=9"),
        ]);
        assert_eq!(read(&h), reading(2, Some(20), 9));
    }
}
