//! Typed settings, loaded in layers with the `config` crate.
//!
//! Precedence, lowest first: built-in defaults (the `Default` impls below) <
//! `config/default.toml` < the file given by `--config` < `WFP__SECTION__KEY`
//! environment variables < the conventional variables (`AMQP_URL`,
//! `CLOUDFLARE_API_TOKEN`, `CLOUDFLARE_ACCOUNT_ID`, `CLOUDFLARE_API_BASE_URL`).
//! S3 credentials, region and endpoint come from the AWS SDK's own chain
//! (`AWS_ENDPOINT_URL_S3`, `AWS_REGION`, ...), which [`S3Settings`] only
//! complements.
//!
//! Every struct denies unknown keys, so a typo is named at load time instead
//! of being silently ignored. Secrets are [`SecretString`]s: `Debug` of the
//! settings never shows them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Everything the worker needs to run.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub amqp: AmqpSettings,
    pub worker: WorkerSettings,
    pub cloudflare: CloudflareSettings,
    pub s3: S3Settings,
    pub retry: RetrySettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
}

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
/// full jitter (see `cloudflare::retry`).
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

/// Why settings could not be loaded or are unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// Cloudflare's account id format: 32 lowercase hex characters.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The conventional environment variables and the setting each one sets.
const CONVENTIONAL_ENV: &[(&str, &str)] = &[
    ("AMQP_URL", "amqp.url"),
    ("CLOUDFLARE_API_TOKEN", "cloudflare.api_token"),
    ("CLOUDFLARE_ACCOUNT_ID", "cloudflare.account_id"),
    ("CLOUDFLARE_API_BASE_URL", "cloudflare.api_base_url"),
];

impl Settings {
    /// Loads the layers from the process environment.
    ///
    /// `config_dir` holds `default.toml` (missing is fine); `extra_file` is
    /// the `--config` file (missing is an error: the operator named it).
    pub fn load(config_dir: &Path, extra_file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(config_dir, extra_file, &std::env::vars().collect())
    }

    /// [`Settings::load`] with the environment given as a map, so tests need
    /// not touch the process environment.
    pub fn load_from(
        config_dir: &Path,
        extra_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder().add_source(
            config::File::from(config_dir.join("default.toml"))
                .format(config::FileFormat::Toml)
                .required(false),
        );
        if let Some(file) = extra_file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        let mut wfp_env: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("WFP__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // The one list setting, comma-separated in the environment. Split
        // here rather than with the crate's `try_parsing`, which would also
        // read an account id or token of digits as a number.
        let accounts = wfp_env.remove("WFP__CLOUDFLARE__ACCOUNTS");
        builder = builder.add_source(
            config::Environment::with_prefix("WFP")
                .prefix_separator("__")
                .separator("__")
                .source(Some(wfp_env)),
        );
        if let Some(list) = accounts {
            let accounts: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect();
            builder = builder.set_override("cloudflare.accounts", accounts)?;
        }
        for (var, key) in CONVENTIONAL_ENV {
            if let Some(value) = env.get(*var).filter(|v| !v.is_empty()) {
                builder = builder.set_override(*key, value.as_str())?;
            }
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.check()?;
        Ok(settings)
    }

    /// Checks what a deserializer cannot: ranges and cross-field rules.
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.worker.concurrency == 0 {
            return invalid("worker.concurrency must be at least 1");
        }
        if self.worker.fetch_concurrency == 0 {
            return invalid("worker.fetch_concurrency must be at least 1");
        }
        if self.cloudflare.min_upload_rate == 0 {
            return invalid("cloudflare.min_upload_rate must be at least 1 (bytes per second)");
        }
        if self.cloudflare.upload_concurrency == 0 {
            return invalid("cloudflare.upload_concurrency must be at least 1");
        }
        if self.retry.max_attempts == 0 {
            return invalid("retry.max_attempts must be at least 1 (it counts the first try)");
        }
        if self.retry.initial_delay > self.retry.max_delay {
            return invalid("retry.initial_delay must not exceed retry.max_delay");
        }
        if chrono::NaiveDate::parse_from_str(&self.worker.default_compatibility_date, "%Y-%m-%d")
            .is_err()
        {
            return invalid("worker.default_compatibility_date must be a YYYY-MM-DD date");
        }
        // A zero here would not disable anything: it would fail every call
        // (timeouts) or spin (reconnects), so it is refused by name.
        let durations = [
            ("amqp.confirm_timeout", self.amqp.confirm_timeout),
            ("amqp.reconnect_max_delay", self.amqp.reconnect_max_delay),
            (
                "cloudflare.connect_timeout",
                self.cloudflare.connect_timeout,
            ),
            (
                "cloudflare.request_timeout",
                self.cloudflare.request_timeout,
            ),
            ("s3.connect_timeout", self.s3.connect_timeout),
            ("s3.request_timeout", self.s3.request_timeout),
            ("retry.max_delay", self.retry.max_delay),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return invalid(&format!("{name} must be more than zero"));
        }
        let accounts = std::iter::once(&self.cloudflare.account_id)
            .filter(|a| !a.is_empty())
            .chain(&self.cloudflare.accounts);
        for account in accounts {
            if !is_account_id(account) {
                return invalid(&format!(
                    "cloudflare account {account:?} must be 32 lowercase hexadecimal characters"
                ));
            }
        }
        Ok(())
    }

    /// What the worker cannot run without; named all at once so an operator
    /// fixes everything in one go.
    pub fn check_worker_ready(&self) -> Result<(), ConfigError> {
        let mut missing = Vec::new();
        if self
            .cloudflare
            .api_token
            .as_ref()
            .is_none_or(|t| t.expose_secret().trim().is_empty())
        {
            missing.push("CLOUDFLARE_API_TOKEN (or cloudflare.api_token)");
        }
        if self.cloudflare.account_id.trim().is_empty() {
            missing.push("CLOUDFLARE_ACCOUNT_ID (or cloudflare.account_id)");
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(format!(
                "the worker cannot start: missing {}",
                missing.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests;
