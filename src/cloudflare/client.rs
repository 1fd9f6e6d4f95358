//! The HTTP side: one `reqwest::Client`, credentials, URLs, and sending one
//! call with retries.
//!
//! The client is built once with the connect and whole-request timeouts from
//! the settings, so a stalled server fails a try (which is then retried)
//! instead of hanging a job. Every call goes through [`CloudflareClient::send`]:
//! it rebuilds the request for each try (multipart bodies cannot be cloned,
//! so callers keep the bytes and build the form again), reads the answer
//! through the envelope and retries what is transient. Each try first takes
//! a permit from the process's API budget (`budget`: pacing, the fleet's
//! `Ratelimit` headers, 429 pauses), and each answer reports back to it.
//!
//! Which credential goes where is decided here by [`Auth`]: the account's
//! API token for sessions and scripts, the session's upload JWT for uploads
//! only. Both are secrets, set with `bearer_auth` (a header reqwest marks
//! sensitive) and never logged.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::backoff::{Failed, parse_retry_after, with_retries};
use super::budget::ApiBudget;
use super::concurrency::{Signal, UploadLimit};
use super::envelope::{self, Call};
use super::error::{CloudflareError, TransportKind};
use super::jwt::Jwt;
use super::types::ScriptTarget;
use crate::config::{CloudflareSettings, RetrySettings};
use crate::error_chain;
use crate::internal_events::{CloudflareResponse, emit};
use crate::retry::RetryPolicy;

/// The Workers-for-Platforms API client. Cheap to clone: clones share one
/// connection pool.
#[derive(Clone)]
pub struct CloudflareClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
    policy: RetryPolicy,
    /// Every request's permit: local pacing, the fleet budget, 429 pauses.
    budget: ApiBudget,
    pub upload_concurrency: usize,
    pub jwt_expiry_margin: Duration,
    pub request_timeout: Duration,
    pub min_upload_rate: u64,
}

impl fmt::Debug for CloudflareClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareClient")
            .field("base", &self.inner.base.as_str())
            .field("token", &"<redacted>")
            .field("upload_concurrency", &self.inner.upload_concurrency)
            .finish_non_exhaustive()
    }
}

/// The credential a request carries.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// The account's API token: sessions and script uploads.
    ApiToken,
    /// A session's upload JWT: asset uploads, and nothing else.
    UploadJwt(&'a Jwt),
}

/// A successful answer: its status (uploads tell 200 from 201) and result.
pub(crate) struct Answer<T> {
    pub status: u16,
    pub result: T,
}

impl CloudflareClient {
    /// Builds the client. Fails with a clear error if no API token is
    /// configured or the base URL is unusable, so the worker refuses to
    /// start rather than fail every job.
    pub fn new(
        settings: &CloudflareSettings,
        retry: &RetrySettings,
    ) -> Result<Self, CloudflareError> {
        let token = settings
            .api_token
            .clone()
            .filter(|t| !t.expose_secret().trim().is_empty())
            .ok_or_else(|| {
                CloudflareError::NotConfigured(
                    "no API token configured (set CLOUDFLARE_API_TOKEN or cloudflare.api_token)"
                        .into(),
                )
            })?;
        let base = Url::parse(settings.api_base_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| {
                CloudflareError::NotConfigured(format!(
                    "api_base_url {:?} is not an http(s) URL",
                    crate::config::redact_url(&settings.api_base_url)
                ))
            })?;
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(concat!("wfp-deployer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                CloudflareError::NotConfigured(format!("building the HTTP client: {e}"))
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                token,
                policy: RetryPolicy::new(retry),
                budget: ApiBudget::new(
                    settings.max_requests_per_minute,
                    settings.request_burst,
                    retry.max_retry_after,
                ),
                upload_concurrency: settings.upload_concurrency.max(1),
                jwt_expiry_margin: settings.jwt_expiry_margin,
                request_timeout: settings.request_timeout,
                min_upload_rate: settings.min_upload_rate.max(1),
            }),
        })
    }

    /// `{api_base_url}/{segments...}`, each segment percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// The time allowed to send `body_bytes`: the request timeout plus the
    /// body at the slowest rate we accept.
    pub(crate) fn upload_timeout(&self, body_bytes: u64) -> Duration {
        self.inner.request_timeout + Duration::from_secs(body_bytes / self.inner.min_upload_rate)
    }

    /// The script's URL (`.../dispatch/namespaces/{ns}/scripts/{script}`),
    /// with `extra` segments after it; steps 1 and 3 both address it.
    pub(crate) fn script_url(&self, target: &ScriptTarget, extra: &[&str]) -> Url {
        let mut segments = vec![
            "accounts",
            &target.account_id,
            "workers",
            "dispatch",
            "namespaces",
            &target.namespace,
            "scripts",
            &target.script_name,
        ];
        segments.extend_from_slice(extra);
        self.url(&segments)
    }

    /// Sends one call, rebuilding it with `body` for every try, and reads the
    /// result. Transient failures are retried per the policy.
    pub(crate) async fn send<T, B>(
        &self,
        call: Call<'_>,
        method: Method,
        url: &Url,
        auth: Auth<'_>,
        body: B,
    ) -> Result<Answer<T>, CloudflareError>
    where
        T: DeserializeOwned,
        B: Fn(RequestBuilder) -> RequestBuilder,
    {
        self.send_limited(call, method, url, auth, None, body).await
    }

    /// [`Self::send`], each try holding a place of `limit` (when given) and
    /// telling it how the try went: a bucket upload's adaptive concurrency.
    pub(crate) async fn send_limited<T, B>(
        &self,
        call: Call<'_>,
        method: Method,
        url: &Url,
        auth: Auth<'_>,
        limit: Option<&UploadLimit>,
        body: B,
    ) -> Result<Answer<T>, CloudflareError>
    where
        T: DeserializeOwned,
        B: Fn(RequestBuilder) -> RequestBuilder,
    {
        with_retries(&self.inner.policy, call, |attempt| {
            let request = self.inner.http.request(method.clone(), url.clone());
            let request = match auth {
                Auth::ApiToken => request.bearer_auth(self.inner.token.expose_secret()),
                Auth::UploadJwt(jwt) => request.bearer_auth(jwt.expose()),
            };
            let request = body(request);
            async move {
                let Some(limit) = limit else {
                    return self.try_once(call, attempt, request).await;
                };
                let permit = limit.acquire().await;
                let tried = self.try_once(call, attempt, request).await;
                permit.finish(signal(&tried));
                tried
            }
        })
        .await
    }

    async fn try_once<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        attempt: u32,
        request: RequestBuilder,
    ) -> Result<Answer<T>, Failed> {
        tracing::debug!(step = %call.step, subject = call.subject, attempt, "cloudflare call");
        self.inner.budget.acquire().await;
        let response = request.send().await.map_err(|e| transport(call, &e))?;
        let status = response.status().as_u16();
        let retry_after = if status == 429 || status == 503 {
            response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, chrono::Utc::now()))
        } else {
            None
        };
        self.inner
            .budget
            .observe(status, response.headers(), retry_after);
        let body = super::body::read_capped(response, super::body::MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| e.failed(call, transport))?;
        emit(CloudflareResponse {
            endpoint: call.step.as_str(),
            subject: call.subject,
            attempt,
            status,
        });
        envelope::read(call, status, &body)
            .map(|result| Answer { status, result })
            .map_err(|error| Failed { error, retry_after })
    }
}

/// What a try says about the endpoint's load: a server error or no answer
/// at all is overload; a 4xx (a 429 included: the budget paces those) is
/// no news.
fn signal<T>(tried: &Result<Answer<T>, Failed>) -> Signal {
    match tried {
        Ok(_) => Signal::Success,
        Err(Failed { error, .. }) => match (error, error.status()) {
            (_, Some(status)) if status >= 500 => Signal::Overloaded,
            (CloudflareError::Transport { .. }, _) => Signal::Overloaded,
            _ => Signal::Neutral,
        },
    }
}

/// A request that got no (complete) answer. The message is the error chain
/// without the URL: the subject already names the target, and the chain
/// never holds a header.
fn transport(call: Call<'_>, err: &reqwest::Error) -> Failed {
    let kind = if err.is_timeout() {
        TransportKind::Timeout
    } else if err.is_connect() {
        TransportKind::Connect
    } else {
        TransportKind::Other
    };
    let message = error_chain::flatten_with(err, |e| match e.downcast_ref::<reqwest::Error>() {
        Some(re) => strip_url(re),
        None => e.to_string(),
    });
    let error = CloudflareError::Transport {
        step: call.step,
        subject: call.subject.to_string(),
        kind,
        message,
        attempts: 1,
    };
    // A request we could not even build is a bug, not a flaky network: do
    // not retry it.
    if err.is_builder() {
        return CloudflareError::Encode {
            step: call.step,
            subject: call.subject.to_string(),
            reason: error.to_string(),
        }
        .into();
    }
    error.into()
}

/// reqwest's Display appends ` for url (...)`; the subject says it better.
fn strip_url(err: &reqwest::Error) -> String {
    let text = err.to_string();
    match text.find(" for url (") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(token: Option<&str>, base: &str) -> CloudflareSettings {
        CloudflareSettings {
            api_base_url: base.into(),
            api_token: token.map(SecretString::from),
            ..CloudflareSettings::default()
        }
    }

    #[test]
    fn refuses_to_build_without_a_token() {
        for token in [None, Some(""), Some("  ")] {
            let err =
                CloudflareClient::new(&settings(token, "http://x"), &RetrySettings::default())
                    .unwrap_err();
            assert!(err.to_string().contains("no API token"), "{err}");
        }
    }

    #[test]
    fn refuses_a_bad_base_url() {
        let err =
            CloudflareClient::new(&settings(Some("t"), "not a url"), &RetrySettings::default())
                .unwrap_err();
        assert!(err.to_string().contains("api_base_url"), "{err}");
    }

    #[test]
    fn urls_keep_the_base_path_and_encode_segments() {
        let client = CloudflareClient::new(
            &settings(Some("t"), "https://api.example.com/client/v4/"),
            &RetrySettings::default(),
        )
        .unwrap();
        let url = client.url(&["accounts", "a1", "workers", "dispatch", "namespaces", "n s"]);
        assert_eq!(
            url.as_str(),
            "https://api.example.com/client/v4/accounts/a1/workers/dispatch/namespaces/n%20s"
        );
    }

    #[test]
    fn uploads_get_time_for_their_size() {
        let mut s = settings(Some("t"), "https://api.example.com/client/v4");
        s.request_timeout = Duration::from_secs(10);
        s.min_upload_rate = 1024 * 1024;
        let client = CloudflareClient::new(&s, &RetrySettings::default()).unwrap();
        assert_eq!(client.upload_timeout(0), Duration::from_secs(10));
        assert_eq!(
            client.upload_timeout(5 * 1024 * 1024),
            Duration::from_secs(15)
        );
    }

    #[test]
    fn debug_hides_the_token() {
        let client = CloudflareClient::new(
            &settings(Some("tok-very-secret"), "http://127.0.0.1:1"),
            &RetrySettings::default(),
        )
        .unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("tok-very-secret"), "{shown}");
    }
}
