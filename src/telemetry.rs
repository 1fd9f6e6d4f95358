//! Tracing set-up, in one place.
//!
//! Pretty lines for people, one JSON object a line for log pipelines. The
//! filter comes from `RUST_LOG` when set, else from `log.filter`. Secrets
//! never reach this layer: the API token, the AMQP password and JWTs are kept
//! in redacting types (`secrecy`) and never passed to `tracing` fields.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. Call once, first thing in `main`.
///
/// Returns an error (rather than panicking) when the filter does not parse or
/// a subscriber is already installed, so `main` can report it.
pub fn init(settings: &LogSettings) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.trim().is_empty() => EnvFilter::try_new(from_env),
        _ => EnvFilter::try_new(&settings.filter),
    }
    .map_err(|e| format!("log filter: {e}"))?;
    // Colours only for a person at a terminal, never in files or collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_span_events(FmtSpan::NONE)
        .with_writer(std::io::stderr);
    let installed = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    installed.map_err(|e| format!("log set-up: {e}"))
}

/// For tests: logs to the test writer only when `TEST_LOG` is set, so a
/// failing test can be rerun with its logs and a passing run stays quiet.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("debug")),
            )
            .with_test_writer()
            .try_init();
    }
}
