//! Settings of the simulator: one [`SimConfig`], parsed from the
//! `cloudflare-sim` command line by clap or built by tests
//! ([`SimConfig::for_tests`]).
//!
//! Raw strings (sizes, durations, fault rules, tokens) become typed values
//! in each flag's value parser, so a bad flag is named at start-up and
//! nothing later re-checks it. The API tokens and the JWT secret are
//! [`SecretString`]s: the derived `Debug` redacts them, and a refused secret
//! is never echoed back.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use super::budget::RateLimitConfig;
use super::faults::FaultSpec;
use super::hashing::{SimHashing, SimTenantKey};
use super::jwt::Keys;

const FAULT_HELP: &str = "Inject a fault: ENDPOINT:KIND[:OPTION...]. \
ENDPOINT is session, upload, script or all. \
KIND is an HTTP status 400-599 (429 answers with Retry-After), reset (drop the connection \
without an answer), latency=DURATION (sleep before handling) or advance-clock=DURATION \
(advance the sim clock after a normal answer). \
OPTIONs: count=N (next N matching requests), rate=P (probability 0..1 per request), \
seed=N (for rate), retry-after=SECONDS (status kinds). Neither count nor rate: every request. \
Examples: upload:503:count=2, session:429:retry-after=1:rate=0.2, script:reset:count=1, \
all:latency=200ms, upload:advance-clock=1h:count=1";

/// Everything the simulator needs to run; as flags, the command line of
/// `wfp-deployer cloudflare-sim`, a strict, stateful stand-in for the
/// Workers-for-Platforms static-assets API.
#[derive(Debug, Clone, clap::Args)]
pub struct SimConfig {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// API token accepted as `Authorization: Bearer` (repeatable).
    #[arg(
        long = "api-token",
        env = "SIM_API_TOKENS",
        value_delimiter = ',',
        hide_env_values = true,
        default_value = "sim-api-token",
        value_parser = SecretParser(api_token)
    )]
    pub api_tokens: Vec<SecretString>,
    /// Account id served (repeatable); none = any 32-hex account id.
    #[arg(long = "account", value_parser = account)]
    pub accounts: Vec<String>,
    /// Dispatch namespace that exists (repeatable); none = any valid name.
    #[arg(long = "namespace", value_parser = namespace)]
    pub namespaces: Vec<String>,
    /// Lifetime of upload and completion JWTs, in sim-clock time.
    #[arg(long, default_value = "1h", value_parser = positive_duration)]
    pub jwt_ttl: Duration,
    /// HS256 secret for JWTs; random when absent.
    #[arg(
        long,
        env = "SIM_JWT_SECRET",
        hide_env_values = true,
        value_parser = SecretParser(jwt_secret)
    )]
    pub jwt_secret: Option<SecretString>,
    /// Most hashes in one upload bucket.
    #[arg(long, default_value = "10", value_parser = positive_count)]
    pub bucket_max_files: usize,
    /// Most bytes in one upload bucket (a larger file goes alone), e.g. 40MiB.
    #[arg(long, default_value = "40MiB", value_parser = positive_bytes)]
    pub bucket_max_bytes: u64,
    /// Most entries in one manifest.
    #[arg(long, default_value = "20000", value_parser = positive_count)]
    pub max_files: usize,
    /// Largest asset accepted, e.g. 25MiB.
    #[arg(long, default_value = "25MiB", value_parser = parse_bytes)]
    pub max_file_bytes: u64,
    /// Fault rules active from start-up.
    #[arg(long = "fault", value_name = "RULE", help = FAULT_HELP, value_parser = fault)]
    pub faults: Vec<FaultSpec>,
    /// How uploaded files are checked against their manifest hash: `salted`
    /// (the worker's default: tenant salt and extension mixed in) or
    /// `content` (the SHA-256 of the bytes alone, contract v1).
    #[arg(long, value_enum, default_value = "salted")]
    pub hash_scheme: HashSchemeFlag,
    /// Whose salt `salted` hashes carry: `script`, `account`, `none` or
    /// `label:<name>` (a label's value never reaches Cloudflare, so label
    /// salts are not recomputed: only sizes are checked).
    #[arg(long, default_value = "script", value_parser = SimTenantKey::parse)]
    pub tenant_key: SimTenantKey,
    /// The worker's `manifest.hash_secret`, to recompute keyed hashes
    /// (ignored with `--hash-scheme content`, which takes no secret).
    #[arg(
        long,
        env = "SIM_HASH_SECRET",
        hide_env_values = true,
        value_parser = SecretParser(jwt_secret)
    )]
    pub hash_secret: Option<SecretString>,
    #[command(flatten)]
    pub rate_limit: RateLimitConfig,
}

/// `--hash-scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HashSchemeFlag {
    Salted,
    Content,
}

impl SimConfig {
    /// Port 0 on loopback, token `test-token`, any account and namespace,
    /// Cloudflare's default limits: what each test starts from.
    pub fn for_tests() -> SimConfig {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_tokens: vec![SecretString::from("test-token")],
            accounts: Vec::new(),
            namespaces: Vec::new(),
            jwt_ttl: Duration::from_secs(3600),
            jwt_secret: None,
            bucket_max_files: 10,
            bucket_max_bytes: 40 * 1024 * 1024,
            max_files: 20_000,
            max_file_bytes: 25 * 1024 * 1024,
            faults: Vec::new(),
            // Contract v1's plain hashes, which protocol tests compute by
            // hand; tests of the worker set the worker's scheme.
            hash_scheme: HashSchemeFlag::Content,
            tenant_key: SimTenantKey::Script,
            hash_secret: None,
            rate_limit: RateLimitConfig::off(),
        }
    }

    /// How each uploaded file is checked against its manifest hash.
    pub fn hashing(&self) -> SimHashing {
        match self.hash_scheme {
            HashSchemeFlag::Content => SimHashing::Content,
            HashSchemeFlag::Salted => SimHashing::Salted {
                tenant: self.tenant_key.clone(),
                secret: self
                    .hash_secret
                    .as_ref()
                    .map(|s| s.expose_secret().as_bytes().to_vec()),
            },
        }
    }

    /// Sets the flags that make [`SimConfig::hashing`] give `hashing`.
    pub fn set_hashing(&mut self, hashing: SimHashing) {
        match hashing {
            SimHashing::Content => self.hash_scheme = HashSchemeFlag::Content,
            SimHashing::Salted { tenant, secret } => {
                self.hash_scheme = HashSchemeFlag::Salted;
                self.tenant_key = tenant;
                self.hash_secret =
                    secret.map(|s| SecretString::from(String::from_utf8_lossy(&s).into_owned()));
            }
        }
    }

    /// Whether `token` is one of the accepted API tokens.
    pub(crate) fn accepts_api_token(&self, token: &str) -> bool {
        self.api_tokens.iter().any(|t| t.expose_secret() == token)
    }

    /// The JWT signing keys, made once when the server starts.
    pub(crate) fn jwt_keys(&self) -> Keys {
        Keys::new(self.jwt_key().expose_secret())
    }

    /// The HS256 key: the configured secret, or 32 random bytes.
    fn jwt_key(&self) -> SecretSlice<u8> {
        match &self.jwt_secret {
            Some(secret) => secret.expose_secret().as_bytes().to_vec().into(),
            None => {
                let mut key = vec![0u8; 32];
                rand::rng().fill_bytes(&mut key);
                key.into()
            }
        }
    }
}

/// Parses a secret flag with a check that returns the value to keep.
/// Unlike clap's own value errors, a refusal names the flag but never
/// echoes the value.
#[derive(Clone)]
struct SecretParser(fn(&str) -> Result<&str, &'static str>);

impl TypedValueParser for SecretParser {
    type Value = SecretString;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<SecretString, clap::Error> {
        let refuse = |why: &str| {
            let flag = arg.map(|a| format!(" for '{a}'")).unwrap_or_default();
            let message = format!("invalid value{flag}: {why}\n");
            clap::Error::raw(ErrorKind::ValueValidation, message).with_cmd(cmd)
        };
        let text = value.to_str().ok_or_else(|| refuse("not UTF-8"))?;
        (self.0)(text).map(SecretString::from).map_err(refuse)
    }
}

/// An API token, trimmed: not empty, no whitespace inside.
fn api_token(text: &str) -> Result<&str, &'static str> {
    let token = text.trim();
    if token.is_empty() {
        Err("a token cannot be empty")
    } else if token.contains(char::is_whitespace) {
        Err("a token cannot contain whitespace")
    } else {
        Ok(token)
    }
}

fn jwt_secret(text: &str) -> Result<&str, &'static str> {
    if text.is_empty() {
        Err("cannot be empty")
    } else {
        Ok(text)
    }
}

fn account(text: &str) -> Result<String, String> {
    if super::validate::is_account_id(text) {
        Ok(text.to_owned())
    } else {
        Err("not 32 lowercase hex".to_owned())
    }
}

fn namespace(text: &str) -> Result<String, String> {
    if super::validate::is_namespace_name(text) {
        Ok(text.to_owned())
    } else {
        Err("not a valid namespace name".to_owned())
    }
}

fn fault(rule: &str) -> Result<FaultSpec, String> {
    rule.parse()
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be positive".to_owned()),
        d => Ok(d),
    }
}

fn positive_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be positive".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{text:?}: {e}")),
    }
}

fn positive_bytes(text: &str) -> Result<u64, String> {
    match parse_bytes(text)? {
        0 => Err("must be positive".to_owned()),
        n => Ok(n),
    }
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
        sim: SimConfig,
    }

    fn parse(args: &[&str]) -> Result<SimConfig, String> {
        Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied()))
            .map(|c| c.sim)
            .map_err(|e| e.to_string())
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
        let config = parse(&[]).expect("defaults must parse");
        assert_eq!(config.listen.port(), 8787);
        assert!(config.accepts_api_token("sim-api-token"));
        assert_eq!(config.api_tokens.len(), 1);
        assert_eq!(config.jwt_ttl, Duration::from_secs(3600));
        assert_eq!(config.bucket_max_files, 10);
        assert_eq!(config.bucket_max_bytes, 40 * 1024 * 1024);
        assert_eq!(config.max_files, 20_000);
        assert_eq!(config.max_file_bytes, 25 * 1024 * 1024);
        assert!(config.jwt_secret.is_none());
        assert_eq!(config.jwt_key().expose_secret().len(), 32);
    }

    #[test]
    fn tokens_are_trimmed_and_secrets_kept_as_given() {
        let config = parse(&["--api-token", " a ,b", "--jwt-secret", " s "]).expect("parses");
        assert!(config.accepts_api_token("a") && config.accepts_api_token("b"));
        assert!(!config.accepts_api_token(" a "));
        assert_eq!(config.jwt_key().expose_secret(), b" s ");
    }

    #[test]
    fn bad_flags_are_named() {
        for (args, flag) in [
            (&["--fault", "upload:teapot"][..], "--fault"),
            (&["--account", "ACME"], "--account"),
            (&["--namespace", "a b"], "--namespace"),
            (&["--jwt-ttl", "0s"], "--jwt-ttl"),
            (&["--bucket-max-files", "0"], "--bucket-max-files"),
            (&["--bucket-max-bytes", "0"], "--bucket-max-bytes"),
            (&["--max-files", "0"], "--max-files"),
            (&["--api-token", ""], "--api-token"),
            (&["--jwt-secret", ""], "--jwt-secret"),
        ] {
            let err = parse(args).expect_err(&format!("{args:?} parsed"));
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn a_refused_token_is_not_echoed() {
        let err = parse(&["--api-token", "tok secret-789"]).expect_err("parsed");
        assert!(err.contains("--api-token"), "{err}");
        assert!(err.contains("whitespace"), "{err}");
        assert!(!err.contains("secret-789"), "{err}");
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
        let config = parse(&["--api-token", "tok-123", "--jwt-secret", "sec-456"]).expect("parses");
        let shown = format!("{config:?}");
        assert!(shown.contains("SimConfig"), "{shown}");
        assert!(
            !shown.contains("tok-123") && !shown.contains("sec-456"),
            "{shown}"
        );
    }

    #[test]
    fn debug_hides_token_and_secret() {
        let mut config = SimConfig::for_tests();
        config.jwt_secret = Some(SecretString::from("super-secret-key"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("test-token"));
        assert!(!shown.contains("super-secret-key"));
    }

    #[test]
    fn hash_flags_become_the_scheme() {
        let default = parse(&[]).expect("defaults parse");
        assert_eq!(
            default.hashing(),
            SimHashing::Salted {
                tenant: SimTenantKey::Script,
                secret: None
            },
            "the worker's default scheme"
        );
        let keyed = parse(&["--tenant-key", "label:tenant", "--hash-secret", "k"]).unwrap();
        assert_eq!(
            keyed.hashing(),
            SimHashing::Salted {
                tenant: SimTenantKey::Label("tenant".into()),
                secret: Some(b"k".to_vec())
            }
        );
        let content = parse(&["--hash-scheme", "content"]).unwrap();
        assert_eq!(content.hashing(), SimHashing::Content);
        assert!(parse(&["--tenant-key", "tenant"]).is_err());
        assert!(parse(&["--hash-scheme", "md5"]).is_err());
        let mut config = SimConfig::for_tests();
        config.set_hashing(keyed.hashing());
        assert_eq!(config.hashing(), keyed.hashing(), "set_hashing round-trips");
    }
}
