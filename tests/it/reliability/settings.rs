//! The reliability settings as an operator gives them: defaults, the
//! environment's comma-separated delays, and values that would break the
//! retries refused by name.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use wfp_deployer::config::{ConfigError, Settings};

fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("default.toml"), toml).expect("write default.toml");
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load_from(dir.path(), None, &env)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn the_shipped_defaults_retry_after_10s_1m_5m_five_attempts_in_all() {
    let shipped = Settings::load_from(Path::new("config"), None, &HashMap::new()).unwrap();
    assert_eq!(shipped.worker.retry_delays, [secs(10), secs(60), secs(300)]);
    assert_eq!(shipped.worker.max_attempts, 5);
    assert_eq!(shipped.amqp.max_job_bytes, 1024 * 1024);
    assert_eq!(shipped.worker.shutdown_grace, secs(25));
    assert_eq!(shipped.worker.job_timeout, secs(15 * 60));
    assert_eq!(shipped.events.log_max_age, secs(7 * 24 * 3600));
    assert_eq!(shipped.amqp.events_log_queue, "wfp.deploy.events.log");
    let built_in = load("", &[]).unwrap();
    assert_eq!(built_in.worker.retry_delays, shipped.worker.retry_delays);
    assert_eq!(built_in.worker.max_attempts, 5);
}

#[test]
fn retry_delays_come_from_a_list_or_a_comma_separated_variable() {
    let s = load("[worker]\nretry_delays = [\"1s\", \"2m\"]\n", &[]).unwrap();
    assert_eq!(s.worker.retry_delays, [secs(1), secs(120)]);
    let s = load("", &[("WFP__WORKER__RETRY_DELAYS", "5s, 30s,1h")]).unwrap();
    assert_eq!(s.worker.retry_delays, [secs(5), secs(30), secs(3600)]);
    let s = load("", &[("WFP__WORKER__MAX_ATTEMPTS", "2")]).unwrap();
    assert_eq!(s.worker.max_attempts, 2);
}

#[test]
fn settings_that_would_break_retries_are_refused_by_name() {
    for (toml, named) in [
        ("[worker]\nretry_delays = []\n", "worker.retry_delays"),
        ("[worker]\nretry_delays = [\"0s\"]\n", "worker.retry_delays"),
        (
            "[worker]\nretry_delays = [\"soon\"]\n",
            "worker.retry_delays",
        ),
        ("[worker]\nmax_attempts = 0\n", "worker.max_attempts"),
        ("[amqp]\nmax_job_bytes = 0\n", "amqp.max_job_bytes"),
        ("[worker]\njob_timeout = \"0s\"\n", "worker.job_timeout"),
        ("[events]\nlog_max_age = \"0s\"\n", "events.log_max_age"),
    ] {
        let err = load(toml, &[]).unwrap_err().to_string();
        assert!(err.contains(named), "{toml}: {err}");
    }
}
