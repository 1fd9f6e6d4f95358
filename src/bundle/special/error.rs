//! Why a special file was refused, naming the file and, where there is one,
//! the line, as compilers do (`_headers:12: ...`), so the site's author can
//! go straight to it.

use std::fmt;

/// A special file that cannot be used as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", LineSuffix(*line))]
pub struct SpecialFileError {
    /// The file's name at the bundle root (`_headers`, ...).
    pub file: &'static str,
    /// The 1-based line at fault; `None` when no single line is.
    pub line: Option<usize>,
    pub message: String,
}

impl SpecialFileError {
    /// An error on one line.
    pub fn at(file: &'static str, line: usize, message: impl Into<String>) -> Self {
        SpecialFileError {
            file,
            line: Some(line),
            message: message.into(),
        }
    }

    /// An error about the whole file.
    pub fn whole(file: &'static str, message: impl Into<String>) -> Self {
        SpecialFileError {
            file,
            line: None,
            message: message.into(),
        }
    }
}

/// Renders `:12` for a line, nothing without one.
struct LineSuffix(Option<usize>);

impl fmt::Display for LineSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, ":{line}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_then_the_line() {
        let e = SpecialFileError::at("_headers", 12, "no header value");
        assert_eq!(e.to_string(), "_headers:12: no header value");
        let e = SpecialFileError::whole(".assetsignore", "too many patterns");
        assert_eq!(e.to_string(), ".assetsignore: too many patterns");
    }
}
