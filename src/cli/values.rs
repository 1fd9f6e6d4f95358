//! Parsers for the values flags take (`KEY=VALUE`, "how long ago"), shared
//! by the commands so each reads them the same way and says the same thing
//! when one is wrong.

use chrono::{DateTime, Utc};

/// `KEY=VALUE`; the value may hold `=` and may be empty, the key may not.
pub fn pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("{text:?} is not KEY=VALUE (e.g. tenant=acme)")),
    }
}

/// A point in time: a duration ago (`1h`, `30m`, `2days`) or an RFC 3339
/// time (`2026-11-25T10:00:00Z`).
pub fn since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(ago) = humantime::parse_duration(text) {
        let ago =
            chrono::Duration::from_std(ago).map_err(|_| format!("{text:?} is too long ago"))?;
        return Ok(Utc::now() - ago);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{text:?} is neither a duration (1h, 30m) nor an RFC 3339 time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_first_equals_sign() {
        assert_eq!(pair("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(pair("a=").unwrap(), ("a".into(), String::new()));
        assert!(pair("=b").unwrap_err().contains("KEY=VALUE"));
        assert!(pair("ab").is_err());
    }

    #[test]
    fn since_takes_a_duration_or_a_time() {
        let hour_ago = since("1h").unwrap();
        let delta = Utc::now() - hour_ago;
        assert!((3599..=3601).contains(&delta.num_seconds()), "{delta}");
        assert_eq!(
            since("2026-11-25T10:00:00Z").unwrap().to_rfc3339(),
            "2026-11-25T10:00:00+00:00"
        );
        assert!(since("yesterday").unwrap_err().contains("neither"));
    }
}
