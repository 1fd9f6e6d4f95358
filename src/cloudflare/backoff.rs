//! Retrying one Cloudflare call: which failures, and what the server asked.
//!
//! The loop and the delays are the crate's ([`crate::retry::Retry`]: full
//! jitter, capped). What this adds is Cloudflare's side of it: only
//! transient failures are retried (the classification lives in
//! [`CloudflareError::is_transient`]), and a `Retry-After` on 429/503 is
//! honoured — we never come back sooner than asked, and if we are asked to
//! wait longer than `retry.max_retry_after` we stop at once and say so
//! ([`CloudflareError::RetryAfterTooLong`]), instead of hammering a server
//! that told us to go away.
//!
//! The loop takes the attempt as a closure so tests can script answers and
//! check the waits under a paused clock.

use std::future::Future;
use std::time::Duration;

use super::envelope::Call;
use super::error::CloudflareError;
use crate::internal_events::{CloudflareRetry, emit};
use crate::retry::{Retried, Retry, RetryPolicy};

/// One failed try: the error and the wait the server asked for, if any.
#[derive(Debug)]
pub(crate) struct Failed {
    pub error: CloudflareError,
    pub retry_after: Option<Duration>,
}

impl From<CloudflareError> for Failed {
    fn from(error: CloudflareError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

/// Runs `attempt` (given the 1-based try number) until it succeeds, fails
/// for good, or the policy runs out of tries.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    call: Call<'_>,
    mut attempt: F,
) -> Result<T, CloudflareError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failed>>,
{
    let max_delay = policy.max_retry_after();
    let Retried { result, attempts } = Retry::new(policy, |f: &Failed| f.error.is_transient())
        .server_wait(|f| f.retry_after)
        .notify(|f, attempt, wait| {
            emit(CloudflareRetry {
                endpoint: call.step.as_str(),
                subject: call.subject,
                attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                status: f.error.status(),
                wait,
                error: &f.error,
            });
        })
        .run(|n| attempt(u32::try_from(n).unwrap_or(u32::MAX)))
        .await;
    result.map_err(|f| match (f.retry_after, f.error.status()) {
        (Some(asked), Some(status)) if asked > max_delay && f.error.is_transient() => {
            CloudflareError::RetryAfterTooLong {
                step: call.step,
                subject: call.subject.to_string(),
                status,
                retry_after: asked,
                max_delay,
            }
        }
        _ => f
            .error
            .with_attempts(u32::try_from(attempts).unwrap_or(u32::MAX)),
    })
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP-date (IMF-fixdate,
/// or the obsolete RFC 850 and asctime forms). A date in the past means
/// "now". `now` is passed in so tests are deterministic.
pub(crate) fn parse_retry_after(
    value: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value)
        .map(|d| d.with_timezone(&chrono::Utc))
        .ok()
        .or_else(|| {
            ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
                .iter()
                .find_map(|f| chrono::NaiveDateTime::parse_from_str(value, f).ok())
                .map(|naive| naive.and_utc())
        })?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::TimeZone;
    use tokio::time::Instant;

    use super::*;
    use crate::cloudflare::error::{CfStep, TransportKind};
    use crate::config::RetrySettings;

    const CALL: Call<'static> = Call {
        step: CfStep::Upload,
        subject: "ns/site",
    };

    fn policy(attempts: usize) -> RetryPolicy {
        RetryPolicy::new(&RetrySettings {
            max_attempts: attempts,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(30),
        })
    }

    fn status(code: u16, retry_after: Option<u64>) -> Failed {
        Failed {
            error: CloudflareError::Api {
                step: CfStep::Upload,
                subject: "ns/site".into(),
                status: code,
                errors: vec![],
                attempts: 1,
            },
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn timeout() -> Failed {
        CloudflareError::Transport {
            step: CfStep::Upload,
            subject: "ns/site".into(),
            kind: TransportKind::Timeout,
            message: "operation timed out".into(),
            attempts: 1,
        }
        .into()
    }

    /// Plays `script` (then `Ok`) and records when each try started.
    async fn run(
        attempts: usize,
        script: Vec<Failed>,
    ) -> (Result<u32, CloudflareError>, Vec<Duration>) {
        let start = Instant::now();
        let script = Mutex::new(script.into_iter());
        let times = Mutex::new(Vec::new());
        let result = with_retries(&policy(attempts), CALL, |n| {
            times.lock().unwrap().push(start.elapsed());
            let next = script.lock().unwrap().next();
            async move { next.map_or(Ok(n), Err) }
        })
        .await;
        (result, times.into_inner().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn transient_statuses_are_retried_until_success() {
        let (result, times) = run(6, vec![status(503, None), status(502, None), timeout()]).await;
        assert_eq!(result.unwrap(), 4, "succeeds on the 4th try");
        assert_eq!(times.len(), 4);
        for (n, pair) in times.windows(2).enumerate() {
            let ceiling = Duration::from_millis(500) * 2u32.pow(n as u32);
            assert!(pair[1] - pair[0] <= ceiling, "wait {n} above its ceiling");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn final_statuses_are_not_retried() {
        for code in [400, 401, 403, 404, 409, 413] {
            let (result, times) = run(6, vec![status(code, None)]).await;
            let err = result.unwrap_err();
            assert_eq!(err.status(), Some(code));
            assert_eq!(times.len(), 1, "{code} must not be retried");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn request_timeout_and_too_many_requests_are_retried() {
        for code in [408, 429, 500, 504] {
            let (result, times) = run(3, vec![status(code, None)]).await;
            assert!(result.is_ok(), "{code}");
            assert_eq!(times.len(), 2, "{code}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts_and_says_how_many() {
        let (result, times) = run(3, (0..5).map(|_| timeout()).collect()).await;
        let err = result.unwrap_err();
        assert_eq!(times.len(), 3);
        assert!(
            matches!(err, CloudflareError::Transport { attempts: 3, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "upload for ns/site: timed out (after 3 attempts): operation timed out"
        );
        assert!(err.is_transient());
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_never_undercut() {
        let (result, times) = run(6, vec![status(429, Some(7)), status(503, Some(3))]).await;
        assert!(result.is_ok());
        assert!(times[1] - times[0] >= Duration::from_secs(7), "{times:?}");
        assert!(times[2] - times[1] >= Duration::from_secs(3), "{times:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_beyond_max_delay_stops_at_once() {
        let (result, times) = run(6, vec![status(429, Some(120))]).await;
        let err = result.unwrap_err();
        assert_eq!(times.len(), 1);
        assert!(
            matches!(err, CloudflareError::RetryAfterTooLong { status: 429, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("120s"), "{err}");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = chrono::Utc
            .with_ymd_and_hms(2015, 10, 21, 7, 28, 0)
            .unwrap();
        let secs = |s| parse_retry_after(s, now).map(|d| d.as_secs());
        assert_eq!(secs("120"), Some(120));
        assert_eq!(secs(" 0 "), Some(0));
        assert_eq!(secs("Wed, 21 Oct 2015 07:28:30 GMT"), Some(30));
        assert_eq!(secs("Wednesday, 21-Oct-15 07:29:00 GMT"), Some(60));
        assert_eq!(secs("Wed Oct 21 07:28:05 2015"), Some(5));
        assert_eq!(
            secs("Wed, 21 Oct 2015 07:00:00 GMT"),
            Some(0),
            "past means now"
        );
        assert_eq!(secs("soon"), None);
        assert_eq!(secs("-5"), None);
        assert_eq!(secs(""), None);
    }
}
