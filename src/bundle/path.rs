//! The rules a file's path must follow, whatever the bundle's source.
//!
//! A bundle's paths become URLs on the customer's site and names in
//! Cloudflare's manifest, so anything ambiguous is refused rather than
//! normalised: two spellings of one path (`a//b`, `a/./b`), paths that climb
//! out (`..`), backslashes some clients read as separators, and control
//! characters that break logs and headers. Archive sources will apply the
//! same rules to their entry names.

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
    fn length_limit_is_in_bytes() {
        let at_limit = "a".repeat(MAX_PATH_BYTES);
        assert_eq!(check_relative(&at_limit), Ok(()));
        let over = "a".repeat(MAX_PATH_BYTES + 1);
        assert_eq!(check_relative(&over), Err(PathError::TooLong(1025)));
        // 513 two-byte characters: 513 chars but 1026 bytes.
        let wide = "é".repeat(513);
        assert_eq!(check_relative(&wide), Err(PathError::TooLong(1026)));
    }
}
