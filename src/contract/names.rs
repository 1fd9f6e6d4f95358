//! The shapes of names that cross the worker's boundaries, each decided once:
//! job and correlation ids (job bodies, the AMQP properties standing in for
//! them), Cloudflare account ids (settings, jobs), asset hashes (the
//! manifest, the spool) and worker module names (jobs, the bundle, the
//! script upload).
//!
//! They live in `contract` because it depends on nothing: `config`,
//! `manifest`, `pipeline` and `cloudflare` all ask here. The simulator does
//! not (see `sim::validate`): it checks what Cloudflare would, on its own, so
//! a wrong rule here shows up as a refused request in the tests.

/// Longest module name, in bytes: S3's key limit, like every bundle path.
const MAX_MODULE_NAME_BYTES: usize = 1024;

/// Exactly `len` lowercase hexadecimal digits. Uppercase is refused:
/// Cloudflare compares account ids and asset hashes as strings.
pub fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A job id, the idempotency key: 1-128 of `[A-Za-z0-9._:-]`. Also the
/// rule for an AMQP `message_id` standing in for a job id.
pub fn is_job_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A correlation id: 1-256 characters, no control characters (a CR/LF or
/// an escape would reach events and log lines). Also the rule for the AMQP
/// `correlation_id` standing in for the job's.
pub fn is_correlation_id(s: &str) -> bool {
    (1..=256).contains(&s.len()) && !s.chars().any(char::is_control)
}

/// A Cloudflare account id: 32 lowercase hexadecimal digits.
pub fn is_account_id(s: &str) -> bool {
    is_lower_hex(s, 32)
}

/// A worker module name, such as `index.js` or `lib/util.mjs`.
///
/// A module name is two things at once, and must be valid as both:
///
/// - a path relative to the worker code's folder, because modules import
///   each other by relative path and each object under the folder becomes
///   the module named by its path: so, as for every bundle path, one
///   spelling per file (no empty, `.` or `..` segment, no leading `/`), no
///   backslash (some read it as a separator), no control character, at most
///   1024 bytes;
/// - the `name` (and `filename`) of a part in the script upload's
///   `multipart/form-data` body, written unencoded into `Content-Disposition:
///   form-data; name="..."`, because Cloudflare matches `main_module`
///   against it byte for byte: so no `"`, which would end the quoted value
///   (a backslash escapes inside it and CR/LF end the header, both refused
///   above already).
///
/// Everything else, spaces and non-ASCII letters included, is allowed.
pub fn is_module_name(name: &str) -> bool {
    (1..=MAX_MODULE_NAME_BYTES).contains(&name.len())
        && !name
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
        && name
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_32_lowercase_hex() {
        assert!(is_account_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_account_id("0123456789ABCDEF0123456789ABCDEF"));
        assert!(!is_account_id("0123456789abcdef0123456789abcde"));
        assert!(!is_account_id("0123456789abcdef0123456789abcdeg"));
        assert!(!is_account_id(""));
        assert!(is_lower_hex("00ff", 4));
        assert!(!is_lower_hex("00ff", 32));
    }

    #[test]
    fn module_names_are_relative_paths() {
        for good in ["index.js", "lib/index.js", "a b/ü.mjs", ".well-known/x.js"] {
            assert!(is_module_name(good), "{good:?}");
        }
        for bad in [
            "",
            "/index.js",
            "lib//x.js",
            "./x.js",
            "lib/../x.js",
            "lib/",
        ] {
            assert!(!is_module_name(bad), "{bad:?}");
        }
        assert!(is_module_name(&"a".repeat(1024)));
        assert!(!is_module_name(&"a".repeat(1025)));
    }

    #[test]
    fn module_names_that_would_break_a_part_header_are_refused() {
        for bad in [
            "a\"b.js",
            "a\r\nb.js",
            "a\\b.js",
            "tab\there.js",
            "nul\0.js",
        ] {
            assert!(!is_module_name(bad), "{bad:?}");
        }
    }
}
