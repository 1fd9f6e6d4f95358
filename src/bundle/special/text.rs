//! Reading a special file's text the way Cloudflare's parsers do.
//!
//! They are JavaScript: the text is split on `\n` only, each line is
//! trimmed with `String.prototype.trim` (Unicode white space and the byte
//! order mark, so a CRLF file or a leading BOM reads the same), and lengths
//! are `String.length`, UTF-16 code units. Each of those is copied here so a
//! line is judged as Cloudflare would judge it.

use super::SpecialFileError;

/// The file as UTF-8: it travels as a JSON string in the script metadata,
/// so anything else could not be sent byte-exact.
pub fn decode<'a>(file: &'static str, bytes: &'a [u8]) -> Result<&'a str, SpecialFileError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
        SpecialFileError::at(file, line, "not valid UTF-8")
    })
}

/// The lines, numbered from 1, without their `\n` and a trailing `\r`.
pub fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix('\r').unwrap_or(line)))
}

/// JavaScript's white space (`\s`, `trim`): Unicode `White_Space` and the
/// BOM, but not U+0085, which JavaScript treats as an ordinary character.
pub fn is_js_space(c: char) -> bool {
    c == '\u{feff}' || (c.is_whitespace() && c != '\u{85}')
}

/// `String.prototype.trim`.
pub fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

/// `String.length`: UTF-16 code units, so an emoji counts twice.
pub fn js_length(s: &str) -> usize {
    s.encode_utf16().count()
}

/// A control character other than tab (which indents `_headers` lines):
/// one in a URL or a header value could not be served.
pub fn control_character(s: &str) -> Option<char> {
    s.chars().find(|&c| c.is_control() && c != '\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_newlines_and_drop_carriage_returns() {
        let got: Vec<_> = lines("a\r\nb\n\nc").collect();
        assert_eq!(got, vec![(1, "a"), (2, "b"), (3, ""), (4, "c")]);
    }

    #[test]
    fn trim_is_javascripts() {
        assert_eq!(js_trim("\u{feff}  /a \t\u{a0}"), "/a");
        assert_eq!(js_trim("\u{85}x"), "\u{85}x");
    }

    #[test]
    fn lengths_are_utf16_units() {
        assert_eq!(js_length("abc"), 3);
        assert_eq!(js_length("é"), 1);
        assert_eq!(js_length("😀"), 2);
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let err = decode("_headers", b"/a\n  X: 1\n/b\xff\n");
        assert_eq!(
            err.map_err(|e| e.to_string()),
            Err("_headers:3: not valid UTF-8".to_owned())
        );
        assert_eq!(decode("_headers", b"/a"), Ok("/a"));
    }
}
