//! Settings loading: defaults, layer order, names of bad keys, secrets.
use std::time::Duration;

use super::*;

fn load(files: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let extra = dir.path().join("extra.toml");
    let extra = extra.exists().then_some(extra);
    Settings::load_from(dir.path(), extra.as_deref(), &env)
}

#[test]
fn defaults_match_the_contract() {
    let s = load(&[], &[]).unwrap();
    assert_eq!(s.amqp.jobs_exchange, "wfp.deploy");
    assert_eq!(s.amqp.jobs_queue, "wfp.deploy.jobs");
    assert_eq!(s.amqp.dead_letter_queue, "wfp.deploy.jobs.dlq");
    assert_eq!(s.amqp.events_exchange, "wfp.deploy.events");
    assert_eq!(s.worker.concurrency, 4);
    assert_eq!(s.cloudflare.upload_concurrency, 3);
    assert_eq!(s.cloudflare.jwt_expiry_margin, Duration::from_secs(60));
    assert_eq!(s.retry.max_attempts, 6);
    assert_eq!(s.retry.initial_delay, Duration::from_millis(500));
    assert_eq!(s.retry.max_delay, Duration::from_secs(30));
    assert_eq!(
        s.amqp.url.expose_secret(),
        "amqp://guest:guest@127.0.0.1:5672/%2f"
    );
}

#[test]
fn layers_apply_in_order() {
    let s = load(
        &[
            (
                "default.toml",
                "[worker]\nconcurrency = 2\n[cloudflare]\nupload_concurrency = 5\n",
            ),
            ("extra.toml", "[worker]\nconcurrency = 3\n"),
        ],
        &[
            ("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef"),
            ("AMQP_URL", "amqp://x/%2f"),
            ("WFP__CLOUDFLARE__UPLOAD_CONCURRENCY", "7"),
        ],
    )
    .unwrap();
    assert_eq!(s.worker.concurrency, 3, "--config beats default.toml");
    assert_eq!(s.cloudflare.upload_concurrency, 7, "WFP__ beats files");
    assert_eq!(s.cloudflare.account_id, "0123456789abcdef0123456789abcdef");
    assert_eq!(s.amqp.url.expose_secret(), "amqp://x/%2f");
}

#[test]
fn durations_are_human_readable() {
    let s = load(
        &[("default.toml", "[cloudflare]\njwt_expiry_margin = \"2m\"\n")],
        &[],
    )
    .unwrap();
    assert_eq!(s.cloudflare.jwt_expiry_margin, Duration::from_secs(120));
}

#[test]
fn unknown_keys_are_named() {
    let err = load(&[("default.toml", "[worker]\nconcurency = 2\n")], &[]).unwrap_err();
    assert!(err.to_string().contains("concurency"), "{err}");
}

#[test]
fn zero_concurrency_is_refused() {
    let err = load(&[("default.toml", "[worker]\nconcurrency = 0\n")], &[]).unwrap_err();
    assert!(err.to_string().contains("worker.concurrency"), "{err}");
}

#[test]
fn worker_names_every_missing_requirement() {
    let s = load(&[], &[]).unwrap();
    let err = s.check_worker_ready().unwrap_err().to_string();
    assert!(err.contains("CLOUDFLARE_API_TOKEN"), "{err}");
    assert!(err.contains("CLOUDFLARE_ACCOUNT_ID"), "{err}");
}

#[test]
fn debug_never_shows_secrets() {
    let s = load(
        &[],
        &[
            ("CLOUDFLARE_API_TOKEN", "tok-very-secret"),
            ("AMQP_URL", "amqp://u:pw-secret@h/%2f"),
        ],
    )
    .unwrap();
    let shown = format!("{s:?}");
    assert!(!shown.contains("tok-very-secret"), "{shown}");
    assert!(!shown.contains("pw-secret"), "{shown}");
}

#[test]
fn numeric_looking_values_stay_text() {
    let s = load(
        &[],
        &[
            (
                "WFP__CLOUDFLARE__ACCOUNT_ID",
                "01234567890123456789012345678901",
            ),
            ("WFP__WORKER__INSTANCE", "007"),
            ("WFP__WORKER__CONCURRENCY", "8"),
            ("WFP__CLOUDFLARE__JWT_EXPIRY_MARGIN", "90s"),
        ],
    )
    .unwrap();
    assert_eq!(s.cloudflare.account_id, "01234567890123456789012345678901");
    assert_eq!(s.worker.instance, "007");
    assert_eq!(s.worker.concurrency, 8);
    assert_eq!(s.cloudflare.jwt_expiry_margin, Duration::from_secs(90));
}

#[test]
fn accounts_are_read_as_a_list_and_checked() {
    let a = "0123456789abcdef0123456789abcdef";
    let b = "fedcba9876543210fedcba9876543210";
    let s = load(&[], &[("WFP__CLOUDFLARE__ACCOUNTS", &format!("{a},{b}"))]).unwrap();
    assert_eq!(s.cloudflare.accounts, vec![a.to_string(), b.to_string()]);
    let err = load(&[], &[("CLOUDFLARE_ACCOUNT_ID", "ABC")]).unwrap_err();
    assert!(err.to_string().contains("\"ABC\""), "{err}");
}

#[test]
fn zero_timeouts_are_refused_by_name() {
    let err = load(
        &[("default.toml", "[amqp]\nconfirm_timeout = \"0s\"\n")],
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("amqp.confirm_timeout"), "{err}");
}

#[test]
fn asset_hashes_default_to_salted_per_script_and_read_every_tenant_key() {
    let s = load(&[], &[]).unwrap();
    assert_eq!(s.manifest.hash_scheme, HashScheme::Salted);
    assert_eq!(s.manifest.tenant_key, TenantKey::Script);
    assert!(s.manifest.hash_secret.is_none());
    for (text, key) in [
        ("label:tenant", TenantKey::Label("tenant".into())),
        ("account", TenantKey::Account),
        ("none", TenantKey::None),
    ] {
        let s = load(&[], &[("WFP__MANIFEST__TENANT_KEY", text)]).unwrap();
        assert_eq!(s.manifest.tenant_key, key, "{text}");
    }
    for bad in ["customer", "label:", "label"] {
        let err = load(&[], &[("WFP__MANIFEST__TENANT_KEY", bad)]).unwrap_err();
        assert!(err.to_string().contains("tenant key"), "{bad}: {err}");
    }
    let s = load(
        &[("default.toml", "[manifest]\nhash_scheme = \"content\"\n")],
        &[],
    )
    .unwrap();
    assert_eq!(s.manifest.hash_scheme, HashScheme::Content);
}

#[test]
fn a_hash_secret_is_secret_and_meaningless_without_salting() {
    let s = load(&[], &[("WFP__MANIFEST__HASH_SECRET", "hs-secret-1")]).unwrap();
    assert_eq!(
        s.manifest.hash_secret.as_ref().map(|h| h.expose_secret()),
        Some("hs-secret-1")
    );
    assert!(!format!("{s:?}").contains("hs-secret-1"));
    let err = load(
        &[("default.toml", "[manifest]\nhash_scheme = \"content\"\n")],
        &[("WFP__MANIFEST__HASH_SECRET", "hs-secret-1")],
    )
    .unwrap_err();
    assert!(err.to_string().contains("manifest.hash_secret"), "{err}");
    let err = load(&[], &[("WFP__MANIFEST__HASH_SECRET", "")]).unwrap_err();
    assert!(err.to_string().contains("manifest.hash_secret"), "{err}");
}

#[test]
fn the_digest_cache_is_on_and_memory_only_by_default() {
    let s = load(&[], &[]).unwrap();
    assert!(s.cache.enabled);
    assert_eq!(s.cache.bucket, None);
    let s = load(
        &[],
        &[
            ("WFP__CACHE__BUCKET", "fleet-cache"),
            ("WFP__CACHE__ENABLED", "false"),
        ],
    )
    .unwrap();
    assert_eq!(s.cache.bucket.as_deref(), Some("fleet-cache"));
    assert!(!s.cache.enabled);
    let err = load(&[("default.toml", "[cache]\ntimeout = \"0s\"\n")], &[]).unwrap_err();
    assert!(err.to_string().contains("cache.timeout"), "{err}");
}

#[test]
fn the_shipped_file_repeats_the_cache_and_manifest_defaults() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let s = Settings::load_from(&dir, None, &HashMap::new()).unwrap();
    assert_eq!(s.cache, CacheSettings::default());
    assert_eq!(s.limits, LimitSettings::default());
    let defaults = ManifestSettings::default();
    assert_eq!(s.manifest.hash_scheme, defaults.hash_scheme);
    assert_eq!(s.manifest.tenant_key, defaults.tenant_key);
    assert!(s.manifest.hash_secret.is_none());
}

#[test]
fn s3_access_lists_come_from_files_or_the_environment_and_patterns_are_checked() {
    let s = load(
        &[(
            "default.toml",
            "[s3]\nallowed_buckets = [\"sites\"]\nallow_empty_prefix = true\n",
        )],
        &[("WFP__S3__ALLOWED_PREFIXES", "sites/{tenant}/, shared/")],
    )
    .unwrap();
    assert_eq!(s.s3.allowed_buckets, vec!["sites".to_string()]);
    assert_eq!(s.s3.allowed_prefixes, vec!["sites/{tenant}/", "shared/"]);
    assert!(s.s3.allow_empty_prefix);
    let defaults = load(&[], &[]).unwrap();
    assert!(defaults.s3.allowed_buckets.is_empty() && !defaults.s3.allow_empty_prefix);
    let err = load(&[], &[("WFP__S3__ALLOWED_PREFIXES", "sites/{tenant}")]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("s3.allowed_prefixes: \"sites/{tenant}\""),
        "{err}"
    );
}

#[test]
fn limits_default_to_cloudflares_and_the_path_limit_is_bounded() {
    let s = load(&[], &[]).unwrap();
    assert_eq!(s.limits.max_files, 100_000);
    assert_eq!(s.limits.max_file_bytes, 25 << 20);
    assert_eq!(s.limits.max_total_bytes, 2 << 30);
    assert_eq!(s.limits.max_path_bytes, 1024);
    let free = load(&[("default.toml", "[limits]\nmax_files = 20000\n")], &[]).unwrap();
    assert_eq!(free.limits.max_files, 20_000);
    for bad in ["0", "1025"] {
        let file = format!("[limits]\nmax_path_bytes = {bad}\n");
        let err = load(&[("default.toml", &file)], &[]).unwrap_err();
        assert!(err.to_string().contains("limits.max_path_bytes"), "{err}");
    }
}

#[test]
fn console_settings_have_safe_defaults_and_are_checked() {
    let s = load(&[], &[]).unwrap();
    assert_eq!(s.console.listen, "127.0.0.1:9465");
    assert!(s.console.token.is_none());
    assert_eq!(s.console.window, 10_000);
    assert_eq!(s.console.replay, Duration::from_secs(3600));
    assert_eq!(s.amqp.events_log_queue, "wfp.deploy.events.log");
    let s = load(&[], &[("WFP__CONSOLE__TOKEN", "12345")]).unwrap();
    assert_eq!(s.console.token.unwrap().expose_secret(), "12345");
    let err = load(&[], &[("WFP__CONSOLE__LISTEN", "everywhere")]).unwrap_err();
    assert!(err.to_string().contains("console.listen"), "{err}");
    let err = load(&[], &[("WFP__CONSOLE__WINDOW", "0")]).unwrap_err();
    assert!(err.to_string().contains("console.window"), "{err}");
}
