//! Build order per script: the fleet-wide lease and the last-deployed
//! markers (`crate::pipeline`'s ordering).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use metrics::{counter, histogram};
use tracing::{debug, info, warn};

use super::{InternalEvent, millis};
use crate::pipeline::Marker;

/// A deploy got its script's lease, after waiting this long for another
/// holder (zero when it was free).
pub struct ScriptLeaseTaken {
    pub waited: Duration,
}

impl InternalEvent for ScriptLeaseTaken {
    fn emit(self) {
        if !self.waited.is_zero() {
            debug!(waited_ms = millis(self.waited), "script lease taken");
        }
        histogram!("wfp_deployer_script_lease_wait_seconds").record(self.waited.as_secs_f64());
    }
}

/// A held lease ended before the deploy did (fencing): the deploy stops
/// without its PUT, or without recording it.
pub struct ScriptLeaseLost<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for ScriptLeaseLost<'_> {
    fn emit(self) {
        warn!(error = %self.error, "script lease lost: the deploy stops here and is retried");
        counter!("wfp_deployer_script_leases_lost_total").increment(1);
    }
}

/// A job older than the script's live build: not deployed.
pub struct JobSuperseded<'a> {
    pub created_at: DateTime<Utc>,
    pub live: &'a Marker,
}

impl InternalEvent for JobSuperseded<'_> {
    fn emit(self) {
        info!(
            created_at = %self.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            live_created_at = %self.live.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            live_job_id = %self.live.job_id,
            "superseded: a newer build of the script is live"
        );
        counter!("wfp_deployer_jobs_superseded_total").increment(1);
    }
}

/// Start-up of a worker: how far build order holds with these settings.
pub struct OrderingScope {
    /// The markers are in `cache.bucket`, where the whole fleet reads them.
    pub markers_shared: bool,
}

impl InternalEvent for OrderingScope {
    fn emit(self) {
        if self.markers_shared {
            info!(
                "build order per script holds across the fleet (broker lease, markers in cache.bucket)"
            );
        } else {
            warn!(
                "cache.bucket is not set: last-deployed markers live in this process's memory, \
                 so build order per script holds within this process only"
            );
        }
    }
}
