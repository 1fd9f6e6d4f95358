//! Named internal events: one type for each thing worth logging and counting.
//!
//! Following vector's `internal_events`, a log site does not write a
//! `tracing` line and bump a counter by hand: it builds one of these types and
//! calls [`emit`]. The type decides the log level, the message and the
//! metrics it moves, so a log line and its counter can never drift apart, a
//! new dashboard panel needs no new plumbing, and a reviewer sees in one file
//! everything the worker reports.
//!
//! Metrics go through the `metrics` facade. Without an installed recorder
//! (tests, the one-shot CLI) they cost a branch and vanish; the worker's ops
//! endpoint installs the Prometheus recorder. Names follow Prometheus
//! conventions: `wfp_deployer_` prefix, `_total` for counters, base units
//! (`_seconds`, `_bytes`).
//!
//! Where a new event goes: add a type here with its `emit`, then call it from
//! the place the thing happens. Nothing else changes.

use std::time::Duration;

mod broker;
mod bundle;
mod cloudflare;
mod job;
mod order;

pub use self::broker::*;
pub use self::bundle::*;
pub use self::cloudflare::*;
pub use self::job::*;
pub use self::order::*;

/// Something worth logging and counting.
pub trait InternalEvent {
    /// Writes the log line and moves the metrics.
    fn emit(self);
}

/// Emits `event`: one log line, its metrics.
pub fn emit(event: impl InternalEvent) {
    event.emit();
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::ErrorCode;

    #[test]
    fn status_labels_stay_few() {
        assert_eq!(cloudflare::status_label(429), "429");
        assert_eq!(cloudflare::status_label(418), "4xx");
        assert_eq!(cloudflare::status_label(599), "5xx");
        assert_eq!(cloudflare::status_label(204), "2xx");
    }

    #[test]
    fn outcome_labels() {
        assert_eq!(JobOutcome::Succeeded.label(), "succeeded");
        assert_eq!(JobOutcome::Failed(ErrorCode::Internal).label(), "failed");
        assert_eq!(JobOutcome::Requeued.label(), "requeued");
    }
}
