//! The per-token API budget (`--rate-limit N/WINDOW`, off by default), so a
//! client's rate limiting can be tested against the answers Cloudflare gives.
//!
//! Cloudflare allows 1,200 requests per five minutes per API token; over
//! that, every call of the token is refused for five minutes with HTTP 429,
//! `Retry-After` and error code 971 ("Please wait and consider throttling
//! your request speed"). Every answer carries the IETF draft's headers:
//! `Ratelimit: "default";r=<left>;t=<seconds until the window resets>` and
//! `Ratelimit-Policy: "default";q=<quota>;w=<window seconds>`.
//!
//! Here, per token:
//! - windows are fixed: one starts with the first request after the last
//!   one ended, and `t` counts down to its end (rounded up);
//! - the request that finds the quota used up starts a block of
//!   `--rate-limit-penalty` (5 min by default, shortened in tests): it and
//!   every request until the block ends get 429 (code 971) with
//!   `Retry-After` (the block's remaining seconds, rounded up) and
//!   `r=0`; refused requests neither count nor extend the block, and a new
//!   window starts after it;
//! - a request carrying an API token counts against that token; an upload,
//!   which carries a session's JWT instead, counts against the token that
//!   last opened a session (or any call) for the account in its path.
//!   Requests with no known credential are not counted.
//!
//! The budget is checked before fault rules (a refused request consumes
//! none) and runs on the real monotonic clock, not the sim clock, so moving
//! the sim clock to expire JWTs leaves budgets alone. `/__sim/stats` shows
//! `rate_limit.over_budget`, the answers refused for the budget; the request
//! log shows them with fault `over_budget`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::auth;
use super::config::parse_duration;
use super::envelope::{ApiError, CODE_RATE_LIMIT};
use super::state::Shared;

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

/// Every token's window, and what was refused.
pub struct Budgets {
    config: RateLimitConfig,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// By API token (its position among `--api-token`).
    windows: HashMap<usize, Window>,
    /// Account → the token that last called for it (uploads count there).
    account_tokens: HashMap<String, usize>,
    over_budget: u64,
}

struct Window {
    start: Instant,
    used: u64,
    blocked_until: Option<Instant>,
}

/// What the budget said about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// No budget, or a request not counted.
    Unlimited,
    Allowed {
        limit: RateLimit,
        remaining: u64,
        reset: u64,
    },
    Refused {
        limit: RateLimit,
        retry_after: u64,
    },
}

impl Budgets {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Counts one request of `token` (an API token's position), or of the
    /// token behind `account` when the request carries none, at `now`.
    pub fn admit(&self, token: Option<usize>, account: Option<&str>, now: Instant) -> Admission {
        let Some(limit) = self.config.limit else {
            return Admission::Unlimited;
        };
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let (Some(token), Some(account)) = (token, account) {
            inner.account_tokens.insert(account.to_owned(), token);
        }
        let Some(key) =
            token.or_else(|| account.and_then(|a| inner.account_tokens.get(a).copied()))
        else {
            return Admission::Unlimited;
        };
        let window = inner
            .windows
            .entry(key)
            .or_insert_with(|| Window::fresh(now));
        match window.blocked_until {
            Some(until) if now < until => {
                inner.over_budget += 1;
                return Admission::Refused {
                    limit,
                    retry_after: ceil_secs(until - now),
                };
            }
            Some(_) => *window = Window::fresh(now),
            None if now >= window.start + limit.window => *window = Window::fresh(now),
            None => {}
        }
        if window.used >= limit.quota {
            window.blocked_until = Some(now + self.config.penalty);
            inner.over_budget += 1;
            return Admission::Refused {
                limit,
                retry_after: ceil_secs(self.config.penalty),
            };
        }
        window.used += 1;
        Admission::Allowed {
            limit,
            remaining: limit.quota - window.used,
            reset: ceil_secs(window.start + limit.window - now),
        }
    }

    /// `rate_limit` in `/__sim/stats`.
    pub fn stats(&self) -> Value {
        let limit = self.config.limit;
        json!({
            "quota": limit.map(|l| l.quota),
            "window_seconds": limit.map(|l| ceil_secs(l.window)),
            "penalty_seconds": ceil_secs(self.config.penalty),
            "over_budget": self.lock().over_budget,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Window {
    fn fresh(now: Instant) -> Self {
        Window {
            start: now,
            used: 0,
            blocked_until: None,
        }
    }
}

/// Counts `request` against its token's budget.
pub fn admit(shared: &Shared, request: &Request) -> Admission {
    let token = auth::api_token_position(shared, request.headers());
    let account = request
        .uri()
        .path()
        .strip_prefix("/client/v4/accounts/")
        .and_then(|rest| rest.split('/').next());
    shared.budget.admit(token, account, Instant::now())
}

impl Admission {
    /// The request log's fault for a refused request.
    pub fn fault(&self) -> Option<&'static str> {
        matches!(self, Admission::Refused { .. }).then_some("over_budget")
    }

    /// The 429 a refused request gets instead of its answer (to be stamped
    /// like every answer).
    pub fn refusal(&self) -> Option<Response> {
        let Admission::Refused { limit, retry_after } = *self else {
            return None;
        };
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            CODE_RATE_LIMIT,
            format!(
                "More than {} requests per {} seconds reached. \
                 Please wait and consider throttling your request speed",
                limit.quota,
                ceil_secs(limit.window)
            ),
        );
        error.retry_after = Some(retry_after);
        Some(error.into_response())
    }

    /// Adds the `Ratelimit` and `Ratelimit-Policy` headers.
    pub fn stamp(&self, response: &mut Response) {
        let (limit, remaining, reset) = match *self {
            Admission::Unlimited => return,
            Admission::Allowed {
                limit,
                remaining,
                reset,
            } => (limit, remaining, reset),
            Admission::Refused { limit, retry_after } => (limit, 0, retry_after),
        };
        let headers = response.headers_mut();
        let now = format!("\"default\";r={remaining};t={reset}");
        let policy = format!(
            "\"default\";q={};w={}",
            limit.quota,
            ceil_secs(limit.window)
        );
        for (name, value) in [("ratelimit", now), ("ratelimit-policy", policy)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
}

/// Whole seconds, rounded up (a wait is never shortened).
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(limit: &str, penalty: u64) -> Budgets {
        Budgets::new(RateLimitConfig {
            limit: Some(parse_rate_limit(limit).unwrap()),
            penalty: Duration::from_secs(penalty),
        })
    }

    fn at(start: Instant, secs: f64) -> Instant {
        start + Duration::from_secs_f64(secs)
    }

    fn remaining(a: Admission) -> Option<u64> {
        match a {
            Admission::Allowed { remaining, .. } => Some(remaining),
            _ => None,
        }
    }

    #[test]
    fn limits_parse_as_n_per_window() {
        let l = parse_rate_limit("1200/300s").unwrap();
        assert_eq!((l.quota, l.window), (1200, Duration::from_secs(300)));
        assert_eq!(parse_rate_limit("1200/5m").unwrap().window.as_secs(), 300);
        for bad in [
            "1200", "0/10s", "x/10s", "10/0s", "10/500ms", "10/soon", "-1/5s",
        ] {
            assert!(parse_rate_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_default_to_off_and_name_bad_values() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            rate_limit: RateLimitConfig,
        }
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied()))
                .map(|c| c.rate_limit)
                .map_err(|e| e.to_string())
        };
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.limit, None);
        assert_eq!(defaults.penalty, Duration::from_secs(300));
        let set = parse(&["--rate-limit", "60/10s", "--rate-limit-penalty", "2s"]).unwrap();
        assert_eq!(set.limit.map(|l| l.quota), Some(60));
        assert_eq!(set.penalty, Duration::from_secs(2));
        for (args, flag) in [
            (&["--rate-limit", "60"][..], "--rate-limit"),
            (&["--rate-limit-penalty", "0s"], "--rate-limit-penalty"),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn off_by_default_counts_nothing() {
        let b = Budgets::new(RateLimitConfig::off());
        let now = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(b.admit(Some(0), None, now), Admission::Unlimited);
        }
    }

    #[test]
    fn a_window_counts_down_then_blocks_for_the_penalty() {
        let b = budgets("3/10s", 60);
        let t0 = Instant::now();
        let answers: Vec<_> = (0..3).map(|_| b.admit(Some(0), None, t0)).collect();
        assert_eq!(
            answers.iter().map(|a| remaining(*a)).collect::<Vec<_>>(),
            [Some(2), Some(1), Some(0)]
        );
        assert_eq!(
            answers[0],
            Admission::Allowed {
                limit: parse_rate_limit("3/10s").unwrap(),
                remaining: 2,
                reset: 10
            }
        );
        let refused = b.admit(Some(0), None, at(t0, 4.0));
        assert!(
            matches!(
                refused,
                Admission::Refused {
                    retry_after: 60,
                    ..
                }
            ),
            "{refused:?}"
        );
        // The block holds past the window's end, counting down, not extended.
        let later = b.admit(Some(0), None, at(t0, 30.5));
        assert!(
            matches!(
                later,
                Admission::Refused {
                    retry_after: 34,
                    ..
                }
            ),
            "{later:?}"
        );
        // It ends after the penalty, with a fresh window.
        assert_eq!(remaining(b.admit(Some(0), None, at(t0, 64.0))), Some(2));
        assert_eq!(b.stats()["over_budget"], 2);
    }

    #[test]
    fn a_new_window_starts_after_the_last_one_ended() {
        let b = budgets("2/10s", 60);
        let t0 = Instant::now();
        b.admit(Some(0), None, t0);
        let second = b.admit(Some(0), None, at(t0, 9.5));
        assert!(
            matches!(
                second,
                Admission::Allowed {
                    remaining: 0,
                    reset: 1,
                    ..
                }
            ),
            "{second:?}"
        );
        let next = b.admit(Some(0), None, at(t0, 10.0));
        assert!(
            matches!(
                next,
                Admission::Allowed {
                    remaining: 1,
                    reset: 10,
                    ..
                }
            ),
            "{next:?}"
        );
    }

    #[test]
    fn tokens_have_budgets_of_their_own_and_uploads_count_for_their_accounts_token() {
        let b = budgets("2/10s", 60);
        let now = Instant::now();
        assert_eq!(remaining(b.admit(Some(0), Some("acct-a"), now)), Some(1));
        assert_eq!(remaining(b.admit(Some(1), Some("acct-b"), now)), Some(1));
        // An upload (no API token) for acct-a uses token 0's last request.
        assert_eq!(remaining(b.admit(None, Some("acct-a"), now)), Some(0));
        assert!(matches!(
            b.admit(None, Some("acct-a"), now),
            Admission::Refused { .. }
        ));
        assert_eq!(remaining(b.admit(Some(1), None, now)), Some(0));
        assert_eq!(b.admit(None, Some("unknown"), now), Admission::Unlimited);
        assert_eq!(b.admit(None, None, now), Admission::Unlimited);
    }

    #[test]
    fn answers_carry_the_draft_headers() {
        let limit = parse_rate_limit("1200/300s").unwrap();
        let mut ok = StatusCode::OK.into_response();
        Admission::Allowed {
            limit,
            remaining: 50,
            reset: 30,
        }
        .stamp(&mut ok);
        assert_eq!(ok.headers()["ratelimit"], "\"default\";r=50;t=30");
        assert_eq!(ok.headers()["ratelimit-policy"], "\"default\";q=1200;w=300");

        let refused = Admission::Refused {
            limit,
            retry_after: 17,
        };
        let mut response = refused.refusal().unwrap();
        refused.stamp(&mut response);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "17");
        assert_eq!(response.headers()["ratelimit"], "\"default\";r=0;t=17");
        assert_eq!(refused.fault(), Some("over_budget"));
        assert!(Admission::Unlimited.refusal().is_none());
    }
}
