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
//! settings never shows them, and serializing them (how the configuration
//! reference and the deploy-file tests list every key with its default)
//! writes [`REDACTED`] instead.

mod access;
mod assets;
mod console;
mod parse;
mod redact;
mod s3;
mod sections;
mod urls;

use std::collections::HashMap;
use std::path::Path;

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::contract::names::is_account_id;
use crate::contract::quote::quoted;

pub use access::{check_bundle_access, check_bundle_ref_access, check_worker_access};
pub use assets::{CacheSettings, HashScheme, ManifestSettings, TenantKey};
pub use console::ConsoleSettings;
pub use redact::REDACTED;
pub use s3::S3Settings;
pub use sections::{
    AmqpSettings, CloudflareSettings, EventsSettings, LimitSettings, LogFormat, LogSettings,
    OpsSettings, RetrySettings, WorkerSettings,
};
pub use urls::{RedactedSettings, redact_url};

/// Everything the worker needs to run.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub amqp: AmqpSettings,
    pub worker: WorkerSettings,
    pub cloudflare: CloudflareSettings,
    pub s3: S3Settings,
    pub retry: RetrySettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
    pub events: EventsSettings,
    pub ops: OpsSettings,
    pub manifest: ManifestSettings,
    pub cache: CacheSettings,
    pub console: ConsoleSettings,
}

/// Why settings could not be loaded or are unusable. Each message names the
/// key (and the file, when one holds it); the caller adds what it was doing
/// (`loading settings`), so neither variant prefixes anything.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer does not parse, or a key is unknown or of the wrong type.
    /// Transparent: the `config` crate's message is the whole story.
    #[error(transparent)]
    Load(#[from] config::ConfigError),
    /// A value out of range, or something the worker cannot run without.
    #[error("{0}")]
    Invalid(String),
}

/// The list settings, and the `WFP__` variable giving each one as a
/// comma-separated list.
const LIST_ENV: &[(&str, &str)] = &[
    ("WFP__CLOUDFLARE__ACCOUNTS", "cloudflare.accounts"),
    ("WFP__S3__ALLOWED_BUCKETS", "s3.allowed_buckets"),
    ("WFP__S3__ALLOWED_PREFIXES", "s3.allowed_prefixes"),
];

/// The conventional environment variables and the setting each one sets.
pub const CONVENTIONAL_ENV: &[(&str, &str)] = &[
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
        // The list settings, comma-separated in the environment. Split here
        // rather than with the crate's `try_parsing`, which would also read
        // an account id or token of digits as a number.
        let lists: Vec<(&str, String)> = LIST_ENV
            .iter()
            .filter_map(|(var, key)| wfp_env.remove(*var).map(|list| (*key, list)))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("WFP")
                .prefix_separator("__")
                .separator("__")
                .source(Some(wfp_env)),
        );
        for (key, list) in lists {
            let items: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect();
            builder = builder.set_override(key, items)?;
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
            ("s3.first_byte_timeout", self.s3.first_byte_timeout),
            ("s3.idle_timeout", self.s3.idle_timeout),
            ("retry.max_delay", self.retry.max_delay),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return invalid(&format!("{name} must be more than zero"));
        }
        if let Err(e) = self.ops.listen_addr() {
            return invalid(&e);
        }
        if let Some(secret) = &self.manifest.hash_secret {
            if secret.expose_secret().is_empty() {
                return invalid("manifest.hash_secret must not be empty (leave it unset instead)");
            }
            if self.manifest.hash_scheme == HashScheme::Content {
                return invalid(
                    "manifest.hash_secret has no effect with manifest.hash_scheme = \"content\"",
                );
            }
        }
        if !(1..=crate::bundle::path::MAX_PATH_BYTES).contains(&self.limits.max_path_bytes) {
            return invalid(&format!(
                "limits.max_path_bytes must be between 1 and {} (the longest S3 key)",
                crate::bundle::path::MAX_PATH_BYTES
            ));
        }
        if self.cache.timeout.is_zero() {
            return invalid("cache.timeout must be more than zero");
        }
        if self.cache.bucket.as_deref() == Some("") {
            return invalid(
                "cache.bucket must not be empty (leave it unset for a memory-only cache)",
            );
        }
        if let Err(e) = access::check_patterns(&self.s3) {
            return invalid(&e);
        }
        if let Err(e) = self.console.listen_addr() {
            return invalid(&e);
        }
        if self.console.window == 0 {
            return invalid("console.window must be at least 1 (events kept in memory)");
        }
        if self.console.queue_poll.is_zero() {
            return invalid("console.queue_poll must be more than zero");
        }
        let accounts = std::iter::once(&self.cloudflare.account_id)
            .filter(|a| !a.is_empty())
            .chain(&self.cloudflare.accounts);
        for account in accounts {
            if !is_account_id(account) {
                return invalid(&format!(
                    "cloudflare account {} must be 32 lowercase hexadecimal characters",
                    quoted(account)
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
