//! The sections of the settings, one struct each, with their defaults.
//!
//! The defaults here are the built-in layer: `config/default.toml` repeats
//! them for operators to read, and everything above it overrides them.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// The broker and the names of the contract's topology.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpSettings {
    /// `amqp://user:pass@host:port/vhost`; a secret because it carries the password.
    pub url: SecretString,
    pub jobs_exchange: String,
    pub jobs_routing_key: String,
    pub jobs_queue: String,
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    pub events_exchange: String,
    /// `x-delivery-limit` of the jobs queue. Queue arguments cannot change
    /// after the queue exists, so this is set once, from the start.
    pub delivery_limit: u32,
    /// How long to wait for the broker to confirm a published event.
    #[serde(with = "humantime_serde")]
    pub confirm_timeout: Duration,
    /// Ceiling of the back-off between reconnection attempts.
    #[serde(with = "humantime_serde")]
    pub reconnect_max_delay: Duration,
    /// The stream queue that keeps every event for replay (`x-queue-type:
    /// stream`, bound to the events exchange with `#`); `watch --from` and
    /// the console read the past from it.
    pub events_log_queue: String,
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
            jobs_exchange: "wfp.deploy".into(),
            jobs_routing_key: "deploy".into(),
            jobs_queue: "wfp.deploy.jobs".into(),
            dead_letter_exchange: "wfp.deploy.dlx".into(),
            dead_letter_queue: "wfp.deploy.jobs.dlq".into(),
            events_exchange: "wfp.deploy.events".into(),
            delivery_limit: 10,
            confirm_timeout: Duration::from_secs(30),
            reconnect_max_delay: Duration::from_secs(30),
            events_log_queue: "wfp.deploy.events.log".into(),
        }
    }
}

/// How the worker process behaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Deploys run at once; also the AMQP prefetch.
    pub concurrency: u16,
    /// Names this process in the events' `source` (`/wfp-deployer/<instance>`).
    /// Empty means `<hostname>-<pid>`.
    pub instance: String,
    /// Where per-job spools live. Empty means the system's temporary directory.
    pub spool_dir: PathBuf,
    /// `compatibility_date` for jobs that do not give one.
    pub default_compatibility_date: String,
    /// Objects fetched from S3 at once within one job.
    pub fetch_concurrency: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            instance: String::new(),
            spool_dir: PathBuf::new(),
            default_compatibility_date: "2025-01-24".into(),
            fetch_concurrency: 16,
        }
    }
}

impl WorkerSettings {
    /// The instance name, defaulted to `<hostname>-<pid>`.
    pub fn instance_name(&self) -> String {
        if !self.instance.is_empty() {
            return self.instance.clone();
        }
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        format!("{host}-{}", std::process::id())
    }

    /// The spool directory, defaulted to the system's temporary directory.
    pub fn spool_root(&self) -> PathBuf {
        if self.spool_dir.as_os_str().is_empty() {
            std::env::temp_dir()
        } else {
            self.spool_dir.clone()
        }
    }
}

/// The Cloudflare API and how the worker talks to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudflareSettings {
    pub api_base_url: String,
    pub api_token: Option<SecretString>,
    /// The default account, used by jobs without `account_id`.
    pub account_id: String,
    /// Further accounts jobs may name (the default account is always allowed).
    pub accounts: Vec<String>,
    /// Buckets uploaded at once within one job.
    pub upload_concurrency: usize,
    /// A JWT that expires within this margin counts as expired.
    #[serde(with = "humantime_serde")]
    pub jwt_expiry_margin: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Whole-request ceiling; a stalled upload fails with a timeout and is retried.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Bucket uploads get `request_timeout` plus their size at this rate
    /// (bytes per second), so a large bucket on a slow link is not cut off
    /// while a stalled one still fails.
    pub min_upload_rate: u64,
}

impl Default for CloudflareSettings {
    fn default() -> Self {
        Self {
            api_base_url: "https://api.cloudflare.com/client/v4".into(),
            api_token: None,
            account_id: String::new(),
            accounts: Vec::new(),
            upload_concurrency: 3,
            jwt_expiry_margin: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            min_upload_rate: 256 * 1024,
        }
    }
}

impl CloudflareSettings {
    /// Whether a job may deploy into `account_id`.
    pub fn allows_account(&self, account_id: &str) -> bool {
        account_id == self.account_id || self.accounts.iter().any(|a| a == account_id)
    }
}

/// S3 settings that complement the AWS SDK's own configuration chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    /// Overrides `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` when set.
    pub endpoint_url: Option<String>,
    /// Overrides `AWS_REGION` when set.
    pub region: Option<String>,
    /// Path-style addressing (`http://host/bucket/key`), needed by most
    /// S3-compatible servers on loopback.
    pub force_path_style: bool,
    /// Static credentials; when unset the AWS SDK's chain finds them
    /// (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profiles, IMDS, ...).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Ceiling of one S3 call, body included.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            region: None,
            force_path_style: false,
            access_key_id: None,
            secret_access_key: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// One retry policy for every remote call: capped exponential back-off with
/// full jitter (see `crate::retry`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Tries in all, the first included.
    pub max_attempts: usize,
    #[serde(with = "humantime_serde")]
    pub initial_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured. Cloudflare's rate limits work in
    /// windows of minutes, so this is longer than `max_delay`; a server
    /// asking for more fails the call as unavailable (never retried sooner).
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// What one bundle may hold. The defaults are Cloudflare's own limits for
/// Workers static assets, so a bundle that passes here is not refused there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Files in one bundle.
    pub max_files: u64,
    /// Bytes of one asset file.
    pub max_file_bytes: u64,
    /// Bytes of the whole bundle (bounds the spool on disk).
    pub max_total_bytes: u64,
    /// Bytes of all worker modules together (held in memory).
    pub max_worker_bytes: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_files: 20_000,
            max_file_bytes: 25 * 1024 * 1024,
            max_total_bytes: 2 * 1024 * 1024 * 1024,
            max_worker_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `tracing` filter directives; `RUST_LOG` wins when set.
    pub filter: String,
    /// `json` for one JSON object a line, `pretty` for people.
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Pretty,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The operator endpoints: `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpsSettings {
    /// Address the ops server listens on; empty turns it off. Loopback by
    /// default so a laptop run exposes nothing; `0.0.0.0:9464` in containers.
    pub listen: String,
}

impl Default for OpsSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

impl OpsSettings {
    /// The address to listen on, `None` when turned off.
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, String> {
        let listen = self.listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        listen
            .parse()
            .map(Some)
            .map_err(|_| format!("ops.listen {listen:?} is not an address like 127.0.0.1:9464"))
    }
}

/// The web console (`wfp-deployer console`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// Address the console listens on. Loopback by default: without a
    /// `token` the console refuses any other address.
    pub listen: String,
    /// Required unless `listen` is loopback: sent as `Authorization: Bearer
    /// <token>`, or as the password of HTTP basic auth (any user name).
    pub token: Option<SecretString>,
    /// The RabbitMQ management API, where queue depths come from.
    pub management_url: String,
    /// Management API credentials; unset, the AMQP URL's are used.
    pub management_user: Option<String>,
    pub management_password: Option<SecretString>,
    /// Events kept in memory for the page (in flight, outcomes, timelines).
    pub window: usize,
    /// How far back the console reads the events log on start-up.
    #[serde(with = "humantime_serde")]
    pub replay: Duration,
    /// How often queue depths are read from the management API.
    #[serde(with = "humantime_serde")]
    pub queue_poll: Duration,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9465".into(),
            token: None,
            management_url: "http://127.0.0.1:15672".into(),
            management_user: None,
            management_password: None,
            window: 10_000,
            replay: Duration::from_secs(3600),
            queue_poll: Duration::from_secs(5),
        }
    }
}

impl ConsoleSettings {
    /// The address to listen on.
    pub fn listen_addr(&self) -> Result<std::net::SocketAddr, String> {
        let listen = self.listen.trim();
        listen
            .parse()
            .map_err(|_| format!("console.listen {listen:?} is not an address like 127.0.0.1:9465"))
    }
}
