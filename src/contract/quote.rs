//! Values quoted in error messages, and messages themselves, kept short.
//!
//! An error message names the offending value so a producer can find it,
//! but a hostile or broken producer decides how long that value is: a
//! 10 MB `namespace` once made a 37 MB `deploy.failed` event (escaping
//! grows it) and a 31 MB log line, and a 40 MB one made an event the broker
//! refused, so the job was dead-lettered without any event. Every place
//! that quotes a value from outside (job validation, settings, bundle paths)
//! goes through [`quoted`], which shows at most [`MAX_QUOTED_CHARS`]
//! characters and notes the full length; [`bounded`] caps a whole message
//! (the event builder and the job decoder use it), so no message can grow
//! past a known size whatever it quotes.

use std::borrow::Cow;
use std::fmt;

/// Most characters of a value an error message shows.
pub const MAX_QUOTED_CHARS: usize = 200;

/// A value as an error message shows it: Rust's `{:?}` quoting (escapes
/// included, so control characters cannot forge log lines), cut after
/// [`MAX_QUOTED_CHARS`] characters with a note of the full length.
pub fn quoted(value: &str) -> Quoted<'_> {
    Quoted(value)
}

/// See [`quoted`].
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(MAX_QUOTED_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(
                f,
                "{:?}… ({} characters in all)",
                &self.0[..cut],
                self.0.chars().count()
            ),
        }
    }
}

/// A map key as a path in an error message shows it (`labels.tenant`): as
/// it is when it is a plain name (at most [`MAX_QUOTED_CHARS`] of
/// `[A-Za-z0-9_-]`), else [`quoted`], so a key of a megabyte or with a line
/// break in it stays one short, unambiguous segment.
pub fn path_key(key: &str) -> Cow<'_, str> {
    let plain = key.len() <= MAX_QUOTED_CHARS
        && !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(quoted(key).to_string())
    }
}

/// `message` if it is at most `max_bytes` long; else its first `max_bytes`
/// (cut back to a character boundary) and a note of its full length.
pub fn bounded(message: &str, max_bytes: usize) -> Cow<'_, str> {
    if message.len() <= max_bytes {
        return Cow::Borrowed(message);
    }
    let mut end = max_bytes;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}… ({} bytes in all)",
        &message[..end],
        message.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_as_debug_does() {
        assert_eq!(quoted("Bad Name").to_string(), "\"Bad Name\"");
        assert_eq!(quoted("a\nb").to_string(), "\"a\\nb\"");
        let exactly = "x".repeat(MAX_QUOTED_CHARS);
        assert_eq!(quoted(&exactly).to_string(), format!("{exactly:?}"));
    }

    #[test]
    fn long_values_are_cut_with_their_length() {
        let long = "é".repeat(10_000);
        let shown = quoted(&long).to_string();
        let start = "é".repeat(MAX_QUOTED_CHARS);
        assert_eq!(shown, format!("{start:?}… (10000 characters in all)"));
    }

    #[test]
    fn escaping_cannot_grow_a_quoted_value_past_a_bound() {
        // Each control character escapes to up to 10 characters (\u{...}):
        // still bounded, by 10 times the characters shown.
        let nasty = "\u{1}".repeat(1_000_000);
        assert!(quoted(&nasty).to_string().len() < 12 * MAX_QUOTED_CHARS);
    }

    #[test]
    fn path_keys_are_plain_names_or_quoted() {
        assert_eq!(path_key("html_handling"), "html_handling");
        assert_eq!(path_key("a.b"), "\"a.b\"");
        assert_eq!(path_key("line\nbreak"), "\"line\\nbreak\"");
        assert_eq!(path_key(""), "\"\"");
        let long = "k".repeat(MAX_QUOTED_CHARS + 1);
        assert!(path_key(&long).ends_with("… (201 characters in all)"));
    }

    #[test]
    fn bounded_keeps_short_messages_and_cuts_long_ones_on_a_char_boundary() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("ééééé", 3), "é… (10 bytes in all)");
        let long = format!("namespace: {}", "ü".repeat(5000));
        let cut = bounded(&long, 4096);
        assert!(cut.len() < 4096 + 32, "{}", cut.len());
        assert!(cut.starts_with("namespace: üü"));
        assert!(cut.ends_with(&format!("… ({} bytes in all)", long.len())));
    }
}
