//! Tracing set-up, in one place.
//!
//! Pretty lines for people, one JSON object a line for log pipelines. The
//! filter comes from `RUST_LOG` when set, else from `log.filter`. Secrets
//! never reach this layer: the API token, the AMQP password and JWTs are kept
//! in redacting types (`secrecy`) and never passed to `tracing` fields.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::writer::TestWriter;

use crate::config::{LogFormat, LogSettings};

/// What tests log when `TEST_LOG` is set and `RUST_LOG` is not: the
/// worker's debug lines, the libraries' info.
const TEST_FILTER: &str = "info,wfp_deployer=debug";

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
    install(filter, settings.format, ansi, std::io::stderr)
}

/// For tests, unit and integration alike (zero2prod's way): logs only when
/// `TEST_LOG` is set, so a failing test can be rerun with its logs and a
/// passing run stays quiet. Lines go to the test writer, which the harness
/// captures per test; `RUST_LOG` overrides the filter. Every test may call
/// it: the first call installs, the others do nothing.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_none() {
        return;
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(TEST_FILTER));
    // Already installed (by an earlier test) is the normal case.
    let _ = install(filter, LogFormat::Pretty, false, TestWriter::new());
}

/// The one subscriber set-up, whoever calls and wherever lines go.
fn install<W>(filter: EnvFilter, format: LogFormat, ansi: bool, writer: W) -> Result<(), String>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_span_events(FmtSpan::NONE)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    installed.map_err(|e| format!("log set-up: {e}"))
}
