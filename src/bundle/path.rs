//! The rules a file's path must follow, whatever the bundle's source.
//!
//! A bundle's paths become URLs on the customer's site and names in
//! Cloudflare's manifest, so anything ambiguous is refused rather than
//! normalised: two spellings of one path (`a//b`, `a/./b`), paths that climb
//! out (`..`), backslashes some clients read as separators, and control
//! characters that break logs and headers. Every source (S3 prefix,
//! archive, local directory) applies the same rules to its entry names.
//!
//! A path that is served ([`check_asset`]) must also survive the trip
//! through a URL. Cloudflare percent-decodes a request's path before it
//! looks an asset up, and a browser never sends a `?` or `#` as part of a
//! path (they start the query and the fragment). So:
//! - `?` and `#` are refused: no request could ever reach such a file;
//! - a percent-encoded byte (`%` and two hex digits) is refused: the request
//!   path `/e%2Ff.html` decodes to `/e/f.html`, so the file `e%2Ff.html`
//!   would be shadowed by (or collide with) `e/f.html`, and `a%20b.html`
//!   could only be reached as `/a%2520b.html`. A `%` not followed by two hex
//!   digits (`50%.html`) decodes to itself and is kept;
//! - invisible formatting characters are refused: bidirectional overrides
//!   and isolates, zero-width spaces and joiners, the byte-order mark, soft
//!   hyphens and tag characters make a path read differently from what it
//!   is (`invoice\u{202E}lmth.exe` shows as `invoiceexe.html`) and are sent
//!   percent-encoded, unseen.
//!
//! Nothing is normalised: a path is served exactly as the bundle spells it,
//! so two spellings are never silently merged; paths that differ only by
//! Unicode normalisation are refused where the bundle is assembled, naming
//! both.

/// Longest relative path accepted, in bytes (S3's own key limit).
pub const MAX_PATH_BYTES: usize = 1024;

/// Why a relative path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("empty segment")]
    EmptySegment,
    #[error("'.' or '..' segment")]
    DotSegment,
    #[error("control character")]
    ControlCharacter,
    #[error("backslash")]
    Backslash,
    #[error("{0} bytes, more than {MAX_PATH_BYTES}")]
    TooLong(usize),
    #[error("{0:?} cannot be part of a URL path (it starts the {1})")]
    QueryOrFragment(char, &'static str),
    #[error("{0:?} is a percent-encoded byte, which Cloudflare decodes before looking a path up")]
    PercentEncoded(String),
    #[error("invisible formatting character {}", .0.escape_unicode())]
    Invisible(char),
}

/// Checks a path relative to the bundle's root (no leading `/`), as found
/// in storage.
pub fn check_relative(rel: &str) -> Result<(), PathError> {
    if rel.is_empty() {
        return Err(PathError::Empty);
    }
    if rel.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong(rel.len()));
    }
    if rel.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    if rel.contains('\\') {
        return Err(PathError::Backslash);
    }
    for segment in rel.split('/') {
        match segment {
            "" => return Err(PathError::EmptySegment),
            "." | ".." => return Err(PathError::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a relative path that will be served (an asset's, after
/// [`check_relative`]): it must mean the same file once in a URL.
pub fn check_asset(rel: &str) -> Result<(), PathError> {
    if let Some(c) = rel.chars().find(|c| matches!(c, '?' | '#')) {
        let part = if c == '?' { "query" } else { "fragment" };
        return Err(PathError::QueryOrFragment(c, part));
    }
    if let Some(c) = rel.chars().find(|&c| is_invisible(c)) {
        return Err(PathError::Invisible(c));
    }
    let bytes = rel.as_bytes();
    if let Some(at) = bytes
        .windows(3)
        .position(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
    {
        return Err(PathError::PercentEncoded(rel[at..at + 3].to_string()));
    }
    Ok(())
}

/// Unicode's default-ignorable formatting characters that reorder or hide
/// text (category Cf, and the variation-free invisibles beside it).
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// A path or key as messages show it: control and invisible formatting
/// characters escaped (`a\u{1}b`, `\u{202e}`), so a hostile name can
/// neither forge a log line nor hide what it is.
pub fn shown(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_control() || is_invisible(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The manifest path of a checked relative path: rooted at `/`.
pub fn asset_path(rel: &str) -> String {
    format!("/{rel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for ok in [
            "index.html",
            "assets/app.3f2a.js",
            "a/b/c/d.txt",
            "..hidden/x",
            "dir/...",
            ".well-known/security.txt",
            "ünïcode/файл.html",
            "with space/and+plus.html",
        ] {
            assert_eq!(check_relative(ok), Ok(()), "{ok}");
        }
        assert_eq!(asset_path("a/b.html"), "/a/b.html");
    }

    #[test]
    fn refuses_ambiguous_or_hostile_paths() {
        let cases = [
            ("", PathError::Empty),
            ("a//b.html", PathError::EmptySegment),
            ("/a.html", PathError::EmptySegment),
            ("dir/", PathError::EmptySegment),
            ("./a.html", PathError::DotSegment),
            ("a/./b", PathError::DotSegment),
            ("../x", PathError::DotSegment),
            ("a/..", PathError::DotSegment),
            ("a\\b.html", PathError::Backslash),
            ("a\tb", PathError::ControlCharacter),
            ("a\nb", PathError::ControlCharacter),
            ("nul\0", PathError::ControlCharacter),
            ("del\u{7f}", PathError::ControlCharacter),
            ("c1\u{85}", PathError::ControlCharacter),
        ];
        for (bad, want) in cases {
            assert_eq!(check_relative(bad), Err(want), "{bad:?}");
        }
    }

    #[test]
    fn served_paths_must_survive_a_url() {
        for ok in [
            "index.html",
            "50%.html",
            "a%zz.html",
            "trailing%",
            "with space/and+plus.html",
            "ünïcode/файл.html",
            "emoji-\u{1F600}.png",
        ] {
            assert_eq!(check_asset(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("a?b.html", PathError::QueryOrFragment('?', "query")),
            ("a#b.html", PathError::QueryOrFragment('#', "fragment")),
            ("e%2Ff.html", PathError::PercentEncoded("%2F".into())),
            ("a%20b.html", PathError::PercentEncoded("%20".into())),
            ("100%25.html", PathError::PercentEncoded("%25".into())),
            ("invoice\u{202E}lmth.exe", PathError::Invisible('\u{202E}')),
            ("zero\u{200B}width.html", PathError::Invisible('\u{200B}')),
            ("isolate\u{2066}.html", PathError::Invisible('\u{2066}')),
            ("\u{FEFF}bom.html", PathError::Invisible('\u{FEFF}')),
            ("soft\u{AD}hyphen.html", PathError::Invisible('\u{AD}')),
            ("tag\u{E0041}.html", PathError::Invisible('\u{E0041}')),
        ];
        for (bad, want) in cases {
            assert_eq!(check_asset(bad), Err(want), "{bad:?}");
        }
        assert_eq!(
            check_asset("a\u{202E}b").unwrap_err().to_string(),
            "invisible formatting character \\u{202e}"
        );
        assert_eq!(
            check_asset("e%2Ff.html").unwrap_err().to_string(),
            "\"%2F\" is a percent-encoded byte, which Cloudflare decodes before looking a path up"
        );
    }

    #[test]
    fn messages_show_hostile_characters_escaped() {
        assert_eq!(shown("a\u{1}b\n.html"), "a\\u{1}b\\n.html");
        assert_eq!(shown("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(shown("ünï a\\b"), "ünï a\\b");
    }

    #[test]
    fn length_limit_is_in_bytes() {
        let at_limit = "a".repeat(MAX_PATH_BYTES);
        assert_eq!(check_relative(&at_limit), Ok(()));
        let over = "a".repeat(MAX_PATH_BYTES + 1);
        assert_eq!(check_relative(&over), Err(PathError::TooLong(1025)));
        // 513 two-byte characters: 513 chars but 1026 bytes.
        let wide = "é".repeat(513);
        assert_eq!(check_relative(&wide), Err(PathError::TooLong(1026)));
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        fn has_encoded_byte(s: &str) -> bool {
            s.as_bytes()
                .windows(3)
                .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
        }

        proptest! {
            /// A path the rules accept is what a request for it decodes
            /// to: no other file can shadow it, no part of it is lost to a
            /// query or a fragment, nothing in it is invisible.
            #[test]
            fn an_accepted_path_is_reached_by_itself(
                rel in "[a-zA-Z0-9 ._%?#+~-]{1,8}(/[a-zA-Z0-9 ._%?#+~\u{200b}\u{202e}\u{e9}-]{1,8}){0,3}"
            ) {
                if check_relative(&rel).is_ok() && check_asset(&rel).is_ok() {
                    let decoded = percent_encoding::percent_decode_str(&rel)
                        .decode_utf8()
                        .map(|d| d.into_owned())
                        .ok();
                    prop_assert_eq!(decoded, Some(rel.clone()));
                    prop_assert!(!rel.contains(['?', '#']));
                    prop_assert!(!rel.chars().any(is_invisible));
                }
            }

            /// Exactly the URL hazards are refused, whatever the text.
            #[test]
            fn the_refusals_are_exactly_the_url_hazards(rel in any::<String>()) {
                let hazard = rel.contains(['?', '#'])
                    || rel.chars().any(is_invisible)
                    || has_encoded_byte(&rel);
                prop_assert_eq!(check_asset(&rel).is_err(), hazard);
                let shown = shown(&rel);
                prop_assert!(!shown.chars().any(|c| c.is_control() || is_invisible(c)));
            }
        }
    }
}
