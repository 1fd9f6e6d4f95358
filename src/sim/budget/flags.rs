//! The budget's flags: `--rate-limit N/WINDOW` and `--rate-limit-penalty`,
//! parsed into typed values by clap so a bad one is named at start-up.

use std::time::Duration;

use crate::sim::config::parse_duration;

/// The budget's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RateLimitConfig {
    /// Per-token API budget as N/WINDOW, e.g. 1200/300s (Cloudflare's) or
    /// 60/10s; off when absent. Answers then carry Ratelimit and
    /// Ratelimit-Policy headers, and a token over its budget gets 429
    /// (code 971) with Retry-After.
    #[arg(long = "rate-limit", value_name = "N/WINDOW", value_parser = parse_rate_limit)]
    pub limit: Option<RateLimit>,
    /// How long a token that went over its budget is refused.
    #[arg(long = "rate-limit-penalty", default_value = "5m", value_parser = positive_secs)]
    pub penalty: Duration,
}

impl RateLimitConfig {
    /// No budget (the default), Cloudflare's five-minute penalty.
    pub fn off() -> Self {
        Self {
            limit: None,
            penalty: Duration::from_secs(300),
        }
    }
}

/// A quota of requests per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub quota: u64,
    pub window: Duration,
}

/// Parses `N/WINDOW`, e.g. `1200/300s` or `1200/5m`.
pub fn parse_rate_limit(text: &str) -> Result<RateLimit, String> {
    let (quota, window) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected N/WINDOW, e.g. 1200/300s"))?;
    let quota = match quota.trim().parse::<u64>() {
        Ok(0) => return Err(format!("{text:?}: the quota must be positive")),
        Ok(n) => n,
        Err(e) => return Err(format!("{text:?}: quota: {e}")),
    };
    Ok(RateLimit {
        quota,
        window: positive_secs(window)?,
    })
}

/// A duration of at least a second: the headers count in whole seconds.
fn positive_secs(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d < Duration::from_secs(1) => Err(format!("{text:?}: must be 1s or more")),
        d => Ok(d),
    }
}
