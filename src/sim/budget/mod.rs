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
use super::envelope::{ApiError, CODE_RATE_LIMIT};
use super::state::Shared;

mod flags;

pub use flags::{RateLimit, RateLimitConfig, parse_rate_limit};

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
mod tests;
