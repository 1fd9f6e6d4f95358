//! URL patterns, as `_headers` rules and `_redirects` sources use them.
//!
//! Cloudflare documents one grammar for both: a path (or, for `_headers`,
//! an `https://` URL without a port), at most one splat `*`, and
//! placeholders `:name` (`:[A-Za-z]\w*`), each name used once. The asset
//! worker compiles a pattern into a regular expression with one named group
//! per splat and placeholder, so a second splat or a repeated name makes
//! that expression invalid and the rule silently never matches; refusing it
//! here is the documented rule, not an extra one.

use std::collections::HashSet;

/// Where a pattern is used: `_headers` also takes absolute `https://` URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Headers,
    RedirectSource,
}

/// Checks one pattern; the message says what is wrong with it.
pub fn check(pattern: &str, scope: Scope) -> Result<(), String> {
    if let Some(rest) = pattern.strip_prefix("https://") {
        if scope == Scope::RedirectSource {
            return Err(format!(
                "source {pattern:?} is a URL: Cloudflare redirects by path only (no domain-level redirects)"
            ));
        }
        check_host(pattern, rest)?;
    } else if !pattern.starts_with('/') {
        return Err(match scope {
            Scope::Headers => {
                format!("{pattern:?} is not a URL pattern: it must begin with '/' or 'https://'")
            }
            Scope::RedirectSource => {
                format!("source {pattern:?} must be a path beginning with '/'")
            }
        });
    }
    if pattern.matches('*').count() > 1 {
        return Err(format!(
            "{pattern:?} has more than one splat (*): Cloudflare allows one"
        ));
    }
    let mut seen = HashSet::new();
    for name in placeholders(pattern) {
        if name == "splat" && pattern.contains('*') {
            return Err(format!(
                "{pattern:?} names a placeholder :splat, the name its splat (*) already takes"
            ));
        }
        if !seen.insert(name) {
            return Err(format!(
                "{pattern:?} uses placeholder :{name} twice: each name may appear once"
            ));
        }
    }
    Ok(())
}

/// Whether a pattern matches more than one path (a splat or a placeholder):
/// what makes a redirect "dynamic" in Cloudflare's limits.
pub fn is_dynamic(pattern: &str) -> bool {
    pattern.contains('*') || placeholders(pattern).next().is_some()
}

/// `https://` + host (extra slashes allowed, as Cloudflare's parser does);
/// the host must not be empty nor carry a port.
fn check_host(pattern: &str, rest: &str) -> Result<(), String> {
    let rest = rest.trim_start_matches('/');
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{pattern:?} has no host"));
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!(
            "{pattern:?} names a port: Cloudflare matches any port, so none may be given"
        ));
    }
    Ok(())
}

/// The placeholder names in a pattern: `:` then a letter, then letters,
/// digits and `_` (JavaScript's `:[A-Za-z]\w*`, ASCII only).
fn placeholders(pattern: &str) -> impl Iterator<Item = &str> {
    pattern.match_indices(':').filter_map(|(i, _)| {
        let tail = pattern.get(i + 1..)?;
        if !tail.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        tail.get(..end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_as_cloudflare_finds_them() {
        let names: Vec<_> = placeholders("https://:sub.example.com/a/:year/:b_2-x/:9").collect();
        assert_eq!(names, vec!["sub", "year", "b_2"]);
    }

    #[test]
    fn good_patterns_pass() {
        for (p, scope) in [
            ("/", Scope::Headers),
            ("/static/*", Scope::Headers),
            ("/movies/:title", Scope::Headers),
            ("https://:project.pages.dev/*", Scope::Headers),
            ("https://example.com", Scope::Headers),
            ("/blog/:year/:month/*", Scope::RedirectSource),
        ] {
            assert_eq!(check(p, scope), Ok(()), "{p}");
        }
    }

    #[test]
    fn bad_patterns_say_why() {
        let cases = [
            ("/a/*/b/*", Scope::Headers, "more than one splat"),
            ("/:id/:id", Scope::Headers, "placeholder :id twice"),
            ("/*/:splat", Scope::Headers, ":splat"),
            ("https://example.com:8443/*", Scope::Headers, "port"),
            ("https:///", Scope::Headers, "no host"),
            ("http://example.com/*", Scope::Headers, "must begin with"),
            (
                "https://example.com/a",
                Scope::RedirectSource,
                "by path only",
            ),
            ("a/b", Scope::RedirectSource, "beginning with '/'"),
        ];
        for (p, scope, want) in cases {
            let err = check(p, scope).err().unwrap_or_default();
            assert!(err.contains(want), "{p}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn dynamic_means_a_splat_or_a_placeholder() {
        assert!(is_dynamic("/a/*"));
        assert!(is_dynamic("/a/:b"));
        assert!(!is_dynamic("/a/b:1"));
        assert!(!is_dynamic("/a/b"));
    }
}
