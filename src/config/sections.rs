//! The sections of the settings, one struct each, with their defaults.
//!
//! The defaults here are the built-in layer: `config/default.toml` repeats
//! them for operators to read, and everything above it overrides them.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::contract::quote::quoted;

/// The broker and the names of the contract's topology.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpSettings {
    /// `amqp://user:pass@host:port/vhost`; a secret because it carries the password.
    #[serde(serialize_with = "super::redact::secret")]
    pub url: SecretString,
    /// The direct exchange producers publish jobs to.
    pub jobs_exchange: String,
    /// The routing key binding the jobs queue to the jobs exchange.
    pub jobs_routing_key: String,
    /// The quorum queue the worker consumes jobs from.
    pub jobs_queue: String,
    /// The fanout exchange jobs over the delivery limit are dead-lettered to.
    pub dead_letter_exchange: String,
    /// The quorum queue that keeps dead-lettered jobs for an operator.
    pub dead_letter_queue: String,
    /// The topic exchange the worker publishes its events to.
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
    /// Largest job body the worker parses; a larger one is an invalid job,
    /// parked unread (parsing JSON can take many times a body's size).
    #[serde(deserialize_with = "super::parse::max_job_bytes")]
    pub max_job_bytes: u64,
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
            max_job_bytes: 1024 * 1024,
            events_log_queue: "wfp.deploy.events.log".into(),
        }
    }
}

/// How the worker process behaves.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// How long a job that failed with a retryable code waits before its
    /// next attempt: the first retry waits the first delay, and so on; the
    /// last one is reused. Each delay is a quorum queue of its own
    /// (`<jobs_queue>.retry.<delay>`). In the environment: `10s,60s,5m`.
    #[serde(
        deserialize_with = "super::parse::retry_delays",
        serialize_with = "super::parse::durations"
    )]
    pub retry_delays: Vec<Duration>,
    /// Attempts a job gets in all, the first included, before a retryable
    /// failure parks it in the dead-letter queue.
    #[serde(deserialize_with = "super::parse::max_attempts")]
    pub max_attempts: u32,
    /// On SIGTERM/SIGINT, how long running deploys may take to finish
    /// before they are stopped and their jobs requeued. Under Kubernetes'
    /// default 30 s termination grace period, so the worker exits first.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Longest a deploy may run before it is stopped as a retryable
    /// `internal` failure. Under RabbitMQ's `consumer_timeout` (30 min by
    /// default), which closes the channel of a delivery unacked for longer.
    #[serde(
        deserialize_with = "super::parse::job_timeout",
        serialize_with = "humantime_serde::serialize"
    )]
    pub job_timeout: Duration,
    /// Most bytes all of this process's job spools may hold at once; a
    /// write past it fails the job as a retryable local failure, so a
    /// worker never fills its disk. Stale spools of killed processes are
    /// removed at start-up.
    pub spool_max_bytes: u64,
    /// How long a deploy waits for its script's lease while another worker
    /// deploys that script; then it fails as a retryable `internal` and
    /// comes back through the delay queues. Counts within `job_timeout`,
    /// so keep it below.
    #[serde(with = "humantime_serde")]
    pub lease_wait: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            instance: String::new(),
            spool_dir: PathBuf::new(),
            default_compatibility_date: "2025-01-24".into(),
            fetch_concurrency: 16,
            retry_delays: vec![
                Duration::from_secs(10),
                Duration::from_secs(60),
                Duration::from_secs(300),
            ],
            max_attempts: 5,
            shutdown_grace: Duration::from_secs(25),
            job_timeout: Duration::from_secs(15 * 60),
            spool_max_bytes: 8 * 1024 * 1024 * 1024,
            lease_wait: Duration::from_secs(10 * 60),
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
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudflareSettings {
    /// The Cloudflare API's base URL (the simulator's, in tests and demos).
    pub api_base_url: String,
    #[serde(serialize_with = "super::redact::optional_secret")]
    /// The Cloudflare API token; required by the worker.
    pub api_token: Option<SecretString>,
    /// The default account, used by jobs without `account_id`.
    pub account_id: String,
    /// Further accounts jobs may name (the default account is always
    /// allowed); comma-separated in the environment.
    pub accounts: Vec<String>,
    /// Buckets uploaded at once within one job, at most: halved on a 5xx or
    /// a request without an answer, raised again by one per run of successes.
    pub upload_concurrency: usize,
    /// A JWT that expires within this margin counts as expired.
    #[serde(with = "humantime_serde")]
    pub jwt_expiry_margin: Duration,
    /// Ceiling for opening a connection to the API.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Whole-request ceiling; a stalled upload fails with a timeout and is retried.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Bucket uploads get `request_timeout` plus their size at this rate
    /// (bytes per second), so a large bucket on a slow link is not cut off
    /// while a stalled one still fails.
    pub min_upload_rate: u64,
    /// Local pacing of this process's Cloudflare requests (every session,
    /// bucket upload and PUT takes a permit); 0 turns it off. Cloudflare
    /// allows 1,200 requests per 5 minutes per token, for the whole fleet:
    /// with N workers sharing a token, about 1,200 / 5 / N each.
    pub max_requests_per_minute: u32,
    /// Requests a process may send at once after being idle (the token
    /// bucket's size), on top of the per-minute pace.
    pub request_burst: u32,
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
            max_requests_per_minute: 200,
            request_burst: 20,
        }
    }
}

impl CloudflareSettings {
    /// Whether a job may deploy into `account_id`.
    pub fn allows_account(&self, account_id: &str) -> bool {
        account_id == self.account_id || self.accounts.iter().any(|a| a == account_id)
    }
}

/// One retry policy for every remote call: capped exponential back-off with
/// full jitter (see `crate::retry`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Tries in all, the first included.
    pub max_attempts: usize,
    /// The first back-off ceiling; each retry doubles it, up to `max_delay`.
    #[serde(with = "humantime_serde")]
    pub initial_delay: Duration,
    /// The largest back-off between two tries.
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
/// Workers static assets (Workers Paid; Workers Free allows 20,000 files),
/// so a bundle that passes here is not refused there; they are checked on
/// the files to upload (after `.assetsignore`) before any upload starts.
/// The `max_entries` and `max_archive_*` caps bound what reading a bundle
/// may cost, ignored files included.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Files uploaded in one deploy.
    pub max_files: u64,
    /// Bytes of one asset file.
    pub max_file_bytes: u64,
    /// Bytes of the whole bundle (bounds the spool on disk).
    pub max_total_bytes: u64,
    /// Bytes of one asset's path below the bundle root (at most 1,024, the
    /// longest S3 key, which every source's path rules also hold to).
    pub max_path_bytes: usize,
    /// Bytes of all worker modules together (held in memory).
    pub max_worker_bytes: u64,
    /// Objects listed, or archive files read, ignored ones included: a
    /// bound on what one bundle's listing holds in memory.
    pub max_entries: u64,
    /// Bytes one archive may decompress to, headers and ignored files
    /// included (bounds the spool an archive fills).
    pub max_archive_bytes: u64,
    /// Decompressed bytes per compressed byte an archive may reach (past
    /// its first MiB): stops decompression bombs early.
    pub max_archive_ratio: u64,
    /// Files a bundle may list before it is a large bundle: one job at a
    /// time per worker may hold more (the others wait), which bounds the
    /// memory of `worker.concurrency` jobs together.
    pub large_bundle_files: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_files: 100_000,
            max_file_bytes: 25 * 1024 * 1024,
            max_total_bytes: 2 * 1024 * 1024 * 1024,
            max_path_bytes: 1024,
            max_worker_bytes: 10 * 1024 * 1024,
            max_entries: 200_000,
            max_archive_bytes: 4 * 1024 * 1024 * 1024,
            max_archive_ratio: 200,
            large_bundle_files: 20_000,
        }
    }
}

/// `log.filter`'s default (see [`LogSettings::filter`]).
pub const DEFAULT_LOG_FILTER: &str = "info,lapin::channel=off";

/// Logging.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `tracing` filter directives; `RUST_LOG` wins when set. The default
    /// silences `lapin::channel`, which logs every channel the broker closes
    /// as an ERROR, the expected refusal of a busy script lease included;
    /// every such close also fails the call that caused it, which the
    /// worker reports itself.
    pub filter: String,
    /// `json` for one JSON object a line, `pretty` for people.
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            filter: DEFAULT_LOG_FILTER.into(),
            format: LogFormat::Pretty,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The events the worker publishes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsSettings {
    /// How long the events log (`amqp.events_log_queue`) keeps an event
    /// (its `x-max-age`, in whole seconds at least). A queue argument: set
    /// it once, or change it with a policy.
    #[serde(
        deserialize_with = "super::parse::log_max_age",
        serialize_with = "humantime_serde::serialize"
    )]
    pub log_max_age: Duration,
    /// Whether running deploys publish `deploy.progress` events (at each
    /// step change and at most one a second per job; best effort, never
    /// confirmed before the deploy goes on). `false` turns them off.
    pub progress: bool,
}

impl Default for EventsSettings {
    fn default() -> Self {
        Self {
            log_max_age: Duration::from_secs(7 * 24 * 3600),
            progress: true,
        }
    }
}

/// The operator endpoints: `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
        listen.parse().map(Some).map_err(|_| {
            format!(
                "ops.listen {} is not an address like 127.0.0.1:9464",
                quoted(listen)
            )
        })
    }
}
