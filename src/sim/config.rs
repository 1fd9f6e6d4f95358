//! Settings of the simulator: the `cloudflare-sim` command line ([`SimArgs`])
//! and the typed [`SimConfig`] it becomes, which tests build directly.
//!
//! Raw strings (sizes, durations, fault rules) are turned into typed values in
//! one place, [`SimArgs::into_config`], so a bad flag is named at start-up.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use rand::RngCore;

use super::faults::FaultSpec;
use super::hashing::{SimHashing, SimTenantKey};

/// Why the simulator's settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("--{flag}: {message}")]
    InvalidFlag { flag: &'static str, message: String },
    #[error("--fault {rule:?}: {message}")]
    InvalidFault { rule: String, message: String },
}

const FAULT_HELP: &str = "Inject a fault: ENDPOINT:KIND[:OPTION...]. \
ENDPOINT is session, upload, script or all. \
KIND is an HTTP status 400-599 (429 answers with Retry-After), reset (drop the connection \
without an answer), latency=DURATION (sleep before handling) or advance-clock=DURATION \
(advance the sim clock after a normal answer). \
OPTIONs: count=N (next N matching requests), rate=P (probability 0..1 per request), \
seed=N (for rate), retry-after=SECONDS (status kinds). Neither count nor rate: every request. \
Examples: upload:503:count=2, session:429:retry-after=1:rate=0.2, script:reset:count=1, \
all:latency=200ms, upload:advance-clock=1h:count=1";

/// Command line of `wfp-deployer cloudflare-sim`: a strict, stateful
/// stand-in for the Workers-for-Platforms static-assets API.
#[derive(Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// API token accepted as `Authorization: Bearer` (repeatable).
    #[arg(
        long = "api-token",
        env = "SIM_API_TOKENS",
        value_delimiter = ',',
        hide_env_values = true,
        default_value = "sim-api-token"
    )]
    pub api_tokens: Vec<String>,
    /// Account id served (repeatable); none = any 32-hex account id.
    #[arg(long = "account")]
    pub accounts: Vec<String>,
    /// Dispatch namespace that exists (repeatable); none = any valid name.
    #[arg(long = "namespace")]
    pub namespaces: Vec<String>,
    /// Lifetime of upload and completion JWTs, in sim-clock time.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub jwt_ttl: Duration,
    /// HS256 secret for JWTs; random when absent.
    #[arg(long, env = "SIM_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Most hashes in one upload bucket.
    #[arg(long, default_value_t = 10)]
    pub bucket_max_files: usize,
    /// Most bytes in one upload bucket (a larger file goes alone), e.g. 40MiB.
    #[arg(long, default_value = "40MiB", value_parser = parse_bytes)]
    pub bucket_max_bytes: u64,
    /// Most entries in one manifest.
    #[arg(long, default_value_t = 20_000)]
    pub max_files: usize,
    /// Largest asset accepted, e.g. 25MiB.
    #[arg(long, default_value = "25MiB", value_parser = parse_bytes)]
    pub max_file_bytes: u64,
    #[arg(long = "fault", value_name = "RULE", help = FAULT_HELP)]
    pub faults: Vec<String>,
    /// How uploaded files are checked against their manifest hash: `salted`
    /// (the worker's default: tenant salt and extension mixed in) or
    /// `content` (the SHA-256 of the bytes alone, contract v1).
    #[arg(long, default_value = "salted", value_parser = ["salted", "content"])]
    pub hash_scheme: String,
    /// Whose salt `salted` hashes carry: `script`, `account`, `none` or
    /// `label:<name>` (a label's value never reaches Cloudflare, so label
    /// salts are not recomputed: only sizes are checked).
    #[arg(long, default_value = "script")]
    pub tenant_key: String,
    /// The worker's `manifest.hash_secret`, to recompute keyed hashes.
    #[arg(long, env = "SIM_HASH_SECRET", hide_env_values = true)]
    pub hash_secret: Option<String>,
}

/// Everything the simulator needs to run, already checked.
#[derive(Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    /// Accepted API tokens; never logged.
    pub api_tokens: Vec<String>,
    /// Accepted account ids; empty accepts any well-formed id.
    pub accounts: Vec<String>,
    /// Existing dispatch namespaces; empty means every valid name exists.
    pub namespaces: Vec<String>,
    pub jwt_ttl: Duration,
    /// HS256 key; never logged.
    pub jwt_secret: Vec<u8>,
    pub bucket_max_files: usize,
    pub bucket_max_bytes: u64,
    pub max_files: usize,
    pub max_file_bytes: u64,
    /// Fault rules active from start-up.
    pub faults: Vec<FaultSpec>,
    /// How each uploaded file is checked against its manifest hash.
    pub hashing: SimHashing,
}

impl SimArgs {
    /// Checks every flag and builds the config; errors name the flag.
    pub fn into_config(self) -> Result<SimConfig, SimError> {
        let api_tokens: Vec<String> = self
            .api_tokens
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if api_tokens.is_empty() {
            return Err(invalid("api-token", "at least one API token is needed"));
        }
        if api_tokens
            .iter()
            .any(|t| t.chars().any(char::is_whitespace))
        {
            return Err(invalid("api-token", "a token cannot contain whitespace"));
        }
        if let Some(bad) = self
            .accounts
            .iter()
            .find(|a| !super::validate::is_account_id(a))
        {
            return Err(invalid(
                "account",
                format!("{bad:?} is not 32 lowercase hex"),
            ));
        }
        if let Some(bad) = self
            .namespaces
            .iter()
            .find(|n| !super::validate::is_namespace_name(n))
        {
            return Err(invalid(
                "namespace",
                format!("{bad:?} is not a valid namespace name"),
            ));
        }
        if self.jwt_ttl.is_zero() {
            return Err(invalid("jwt-ttl", "must be positive"));
        }
        if self.bucket_max_files == 0 || self.bucket_max_bytes == 0 {
            return Err(invalid(
                "bucket-max-files",
                "bucket limits must be positive",
            ));
        }
        if self.max_files == 0 {
            return Err(invalid("max-files", "must be positive"));
        }
        let jwt_secret = match self.jwt_secret {
            Some(s) if s.is_empty() => return Err(invalid("jwt-secret", "cannot be empty")),
            Some(s) => s.into_bytes(),
            None => random_secret(),
        };
        let faults = self
            .faults
            .iter()
            .map(|rule| {
                rule.parse::<FaultSpec>()
                    .map_err(|message| SimError::InvalidFault {
                        rule: rule.clone(),
                        message,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let hashing = match self.hash_scheme.as_str() {
            "content" if self.hash_secret.is_some() => {
                return Err(invalid(
                    "hash-secret",
                    "content hashes take no secret (use --hash-scheme salted)",
                ));
            }
            "content" => SimHashing::Content,
            _ => SimHashing::Salted {
                tenant: SimTenantKey::parse(&self.tenant_key)
                    .map_err(|message| invalid("tenant-key", message))?,
                secret: match self.hash_secret {
                    Some(s) if s.is_empty() => {
                        return Err(invalid("hash-secret", "cannot be empty"));
                    }
                    other => other.map(String::into_bytes),
                },
            },
        };
        Ok(SimConfig {
            listen: self.listen,
            api_tokens,
            accounts: self.accounts,
            namespaces: self.namespaces,
            jwt_ttl: self.jwt_ttl,
            jwt_secret,
            bucket_max_files: self.bucket_max_files,
            bucket_max_bytes: self.bucket_max_bytes,
            max_files: self.max_files,
            max_file_bytes: self.max_file_bytes,
            faults,
            hashing,
        })
    }
}

impl SimConfig {
    /// Port 0 on loopback, token `test-token`, any account and namespace,
    /// Cloudflare's default limits, and contract v1's plain content hashes
    /// (what protocol tests compute by hand): what each test starts from.
    /// Tests of the worker set `hashing` to the worker's scheme.
    pub fn for_tests() -> SimConfig {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_tokens: vec!["test-token".to_owned()],
            accounts: Vec::new(),
            namespaces: Vec::new(),
            jwt_ttl: Duration::from_secs(3600),
            jwt_secret: random_secret(),
            bucket_max_files: 10,
            bucket_max_bytes: 40 * 1024 * 1024,
            max_files: 20_000,
            max_file_bytes: 25 * 1024 * 1024,
            faults: Vec::new(),
            hashing: SimHashing::Content,
        }
    }
}

/// Shows the flags without the tokens or the secret.
impl fmt::Debug for SimArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimArgs")
            .field("listen", &self.listen)
            .field(
                "api_tokens",
                &format_args!("[{} redacted]", self.api_tokens.len()),
            )
            .field("accounts", &self.accounts)
            .field("namespaces", &self.namespaces)
            .field("jwt_ttl", &self.jwt_ttl)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("bucket_max_files", &self.bucket_max_files)
            .field("bucket_max_bytes", &self.bucket_max_bytes)
            .field("max_files", &self.max_files)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("faults", &self.faults)
            .field("hash_scheme", &self.hash_scheme)
            .field("tenant_key", &self.tenant_key)
            .field(
                "hash_secret",
                &self.hash_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Shows the settings without the tokens or the secret.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("listen", &self.listen)
            .field(
                "api_tokens",
                &format_args!("[{} redacted]", self.api_tokens.len()),
            )
            .field("accounts", &self.accounts)
            .field("namespaces", &self.namespaces)
            .field("jwt_ttl", &self.jwt_ttl)
            .field("jwt_secret", &"<redacted>")
            .field("bucket_max_files", &self.bucket_max_files)
            .field("bucket_max_bytes", &self.bucket_max_bytes)
            .field("max_files", &self.max_files)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("faults", &self.faults)
            .field("hashing", &self.hashing)
            .finish()
    }
}

fn invalid(flag: &'static str, message: impl Into<String>) -> SimError {
    SimError::InvalidFlag {
        flag,
        message: message.into(),
    }
}

fn random_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    secret
}

/// Parses a human duration such as `1h`, `90s` or `200ms`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?}: {e}"))
}

/// Parses a byte count such as `1048576`, `40MiB`, `25MB` or `512KiB`.
pub(crate) fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: expected a whole number of bytes, e.g. 40MiB"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1 << 10,
        "MB" => 1000 * 1000,
        "MiB" => 1 << 20,
        "GB" => 1000 * 1000 * 1000,
        "GiB" => 1 << 30,
        other => return Err(format!("{text:?}: unknown unit {other:?}")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?}: too large"))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
