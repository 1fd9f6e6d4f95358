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
        })
    }
}

impl SimConfig {
    /// Port 0 on loopback, token `test-token`, any account and namespace,
    /// Cloudflare's default limits: what each test starts from.
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
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn byte_sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_bytes("40MiB"), Ok(40 * 1024 * 1024));
        assert_eq!(parse_bytes("25MB"), Ok(25_000_000));
        assert_eq!(parse_bytes("17"), Ok(17));
        assert!(parse_bytes("1.5MiB").is_err());
        assert!(parse_bytes("10 parsecs").is_err());
        assert!(parse_bytes("").is_err());
    }

    #[test]
    fn defaults_match_cloudflare_limits() {
        let config = Cli::try_parse_from(["sim"]).map(|c| c.sim.into_config());
        let config = match config {
            Ok(Ok(c)) => c,
            _ => panic!("defaults must parse"),
        };
        assert_eq!(config.listen.port(), 8787);
        assert_eq!(config.api_tokens, vec!["sim-api-token".to_owned()]);
        assert_eq!(config.jwt_ttl, Duration::from_secs(3600));
        assert_eq!(config.bucket_max_bytes, 40 * 1024 * 1024);
        assert_eq!(config.max_file_bytes, 25 * 1024 * 1024);
        assert_eq!(config.jwt_secret.len(), 32);
    }

    #[test]
    fn bad_fault_and_account_flags_are_named() {
        let args = Cli::try_parse_from(["sim", "--fault", "upload:teapot"]).map(|c| c.sim);
        let err = args.map(SimArgs::into_config);
        assert!(matches!(err, Ok(Err(SimError::InvalidFault { .. }))));
        let args = Cli::try_parse_from(["sim", "--account", "ACME"]).map(|c| c.sim);
        let err = args.map(SimArgs::into_config);
        assert!(matches!(
            err,
            Ok(Err(SimError::InvalidFlag {
                flag: "account",
                ..
            }))
        ));
    }

    #[test]
    fn help_documents_the_fault_syntax() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "ENDPOINT:KIND",
            "upload:503:count=2",
            "retry-after",
            "advance-clock",
        ] {
            assert!(help.contains(needle), "--help lacks {needle:?}");
        }
    }

    #[test]
    fn debug_of_the_flags_hides_token_and_secret() {
        let cli = Cli::try_parse_from(["sim", "--api-token", "tok-123", "--jwt-secret", "sec-456"]);
        let shown = cli.map(|c| format!("{:?}", c.sim)).unwrap_or_default();
        assert!(shown.contains("SimArgs"), "{shown}");
        assert!(
            !shown.contains("tok-123") && !shown.contains("sec-456"),
            "{shown}"
        );
    }

    #[test]
    fn debug_hides_token_and_secret() {
        let mut config = SimConfig::for_tests();
        config.jwt_secret = b"super-secret-key".to_vec();
        let shown = format!("{config:?}");
        assert!(!shown.contains("test-token"));
        assert!(!shown.contains("super-secret-key"));
    }
}
