//! The simulator's flags: defaults, parsing, what `Debug` hides.

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
    assert_eq!(
        config.hashing,
        SimHashing::Salted {
            tenant: SimTenantKey::Script,
            secret: None
        },
        "the worker's default scheme"
    );
}

#[test]
fn hash_flags_become_the_scheme() {
    let parse = |args: &[&str]| {
        let mut all = vec!["sim"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map(|c| c.sim.into_config())
    };
    let Ok(Ok(keyed)) = parse(&["--tenant-key", "label:tenant", "--hash-secret", "k"]) else {
        panic!("label and secret must parse");
    };
    assert_eq!(
        keyed.hashing,
        SimHashing::Salted {
            tenant: SimTenantKey::Label("tenant".into()),
            secret: Some(b"k".to_vec())
        }
    );
    let Ok(Ok(content)) = parse(&["--hash-scheme", "content"]) else {
        panic!("content must parse");
    };
    assert_eq!(content.hashing, SimHashing::Content);
    assert!(matches!(
        parse(&["--hash-scheme", "content", "--hash-secret", "k"]),
        Ok(Err(SimError::InvalidFlag {
            flag: "hash-secret",
            ..
        }))
    ));
    assert!(matches!(
        parse(&["--tenant-key", "tenant"]),
        Ok(Err(SimError::InvalidFlag {
            flag: "tenant-key",
            ..
        }))
    ));
    assert!(parse(&["--hash-scheme", "md5"]).is_err());
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
    let cli = Cli::try_parse_from([
        "sim",
        "--api-token",
        "tok-123",
        "--jwt-secret",
        "sec-456",
        "--hash-secret",
        "hs-789",
    ]);
    let shown = cli.map(|c| format!("{:?}", c.sim)).unwrap_or_default();
    assert!(shown.contains("SimArgs"), "{shown}");
    assert!(
        !shown.contains("tok-123") && !shown.contains("sec-456") && !shown.contains("hs-789"),
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
