//! Build order per script across the fleet: an older build never ends live
//! after a newer one, however many workers deploy.
//!
//! Jobs carry `created_at` (set by the producer; the AMQP `timestamp`
//! property stands in when the body has none, see `crate::worker`). The
//! design has two parts, used by every deploy:
//!
//! 1. **A lease per script** ([`ScriptLease`]), held for the length of one
//!    deploy, so two workers never deploy one script at once. The worker's
//!    lease is an exclusive queue in RabbitMQ (`crate::amqp::lease`): the
//!    broker lets one connection at a time declare it and deletes it when
//!    that connection dies, so a crashed worker's lease ends by itself. A
//!    deploy that cannot get it waits (jittered polling), up to
//!    `worker.lease_wait`, then fails as a retryable `internal` failure and
//!    comes back through the delay queues.
//! 2. **A last-deployed marker per script** ([`Markers`]): the `created_at`
//!    and job id of the live build, read and written only under the lease,
//!    so plain reads and writes suffice. A job whose `created_at` is
//!    strictly before the marker's is not deployed: it fails as
//!    `superseded` (not retryable, acked). Equal or newer deploys, and the
//!    marker is written after its PUT succeeded, before the lease is given
//!    up. A job with neither `created_at` nor `timestamp` is not ordered: it
//!    takes the lease (so it never races another deploy) but neither checks
//!    nor moves the marker.
//!
//! **Fencing.** Just before the script PUT, and again before the marker is
//! written, the deploy checks that its lease is still held (for the broker's
//! lease: a passive declare of the lease queue on the connection that holds
//! it). A holder that stalled until its lease ended (its connection closed
//! by the broker, say after missed heartbeats) fails retryable there and
//! does not PUT. The residual window, stated honestly: the check and the
//! PUT are two steps, so a lease lost *while the PUT is in flight* (a PUT
//! that takes long to reach Cloudflare after the check) cannot be caught;
//! if another worker then deploys a newer build before that late PUT lands,
//! the older one ends live until the next deploy of the script. The window
//! is one request long, and needs a stall at exactly that point.
//!
//! A `created_at` more than [`MAX_CLOCK_AHEAD`] after this worker's clock is
//! refused as `invalid_job`: as a marker it would supersede every later
//! build of the script for as long.

mod lease;
mod marker;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::cache::StoreError;
use crate::contract::DeployJob;
use crate::internal_events::{JobSuperseded, ScriptLeaseLost, ScriptLeaseTaken, emit};

use lease::acquire;
pub use lease::{LeaseError, LeaseHold, ProcessLease, ScriptLease};
pub use marker::{Marker, Markers};

/// How far ahead of this worker's clock a `created_at` may be (clock skew
/// between producer and worker).
pub const MAX_CLOCK_AHEAD: Duration = Duration::from_secs(5 * 60);

/// Why a deploy may not go on, as far as ordering goes.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error(transparent)]
    Lease(LeaseError),
    /// A newer build of the script is live.
    #[error(
        "{script}: created_at {} is before that of the live deployment, {} (job {}); a newer build is live",
        rfc3339(.created_at),
        rfc3339(&.live.created_at),
        .live.job_id
    )]
    Superseded {
        script: String,
        created_at: DateTime<Utc>,
        live: Marker,
    },
    /// `created_at` too far ahead of this worker's clock.
    #[error(
        "created_at: {} is more than {} ahead of this worker's clock",
        rfc3339(.0),
        humantime::format_duration(MAX_CLOCK_AHEAD)
    )]
    FromTheFuture(DateTime<Utc>),
    /// The marker could not be read (before the deploy).
    #[error(transparent)]
    MarkerRead(StoreError),
    /// The marker could not be written (after the PUT).
    #[error(transparent)]
    MarkerWrite(StoreError),
}

fn rfc3339(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The lease and the markers, shared by every deploy of the process.
pub struct ScriptOrder {
    lease: Arc<dyn ScriptLease>,
    markers: Markers,
    /// Longest wait for a lease someone else holds (`worker.lease_wait`).
    wait: Duration,
}

impl ScriptOrder {
    pub fn new(lease: Arc<dyn ScriptLease>, markers: Markers, wait: Duration) -> Self {
        Self {
            lease,
            markers,
            wait,
        }
    }

    /// Takes `script`'s turn for `job` (`script` is
    /// `account/namespace/script`): the lease, then the marker's verdict.
    /// Whatever fails here has released the lease again.
    pub async fn begin(&self, script: &str, job: &DeployJob) -> Result<Turn<'_>, OrderError> {
        if let Some(at) = job.created_at
            && at > Utc::now() + MAX_CLOCK_AHEAD
        {
            return Err(OrderError::FromTheFuture(at));
        }
        let started = tokio::time::Instant::now();
        let hold = acquire(self.lease.as_ref(), script, self.wait)
            .await
            .map_err(OrderError::Lease)?;
        emit(ScriptLeaseTaken {
            waited: started.elapsed(),
        });
        let turn = Turn {
            order: self,
            script: script.to_string(),
            job_id: job.job_id.clone(),
            created_at: job.created_at,
            hold,
        };
        let Some(created_at) = job.created_at else {
            return Ok(turn);
        };
        match self.markers.read(script).await {
            Ok(Some(live)) if created_at < live.created_at => {
                emit(JobSuperseded {
                    created_at,
                    live: &live,
                });
                turn.end().await;
                Err(OrderError::Superseded {
                    script: script.to_string(),
                    created_at,
                    live,
                })
            }
            Ok(_) => Ok(turn),
            Err(e) => {
                turn.end().await;
                Err(OrderError::MarkerRead(e))
            }
        }
    }
}

/// One deploy's turn at a script: the lease, held until [`Turn::end`] (or
/// dropped, which releases it in the background).
pub struct Turn<'a> {
    order: &'a ScriptOrder,
    script: String,
    job_id: String,
    created_at: Option<DateTime<Utc>>,
    hold: Box<dyn LeaseHold>,
}

impl Turn<'_> {
    /// The fence before the script PUT: the lease must still be ours.
    pub async fn fence(&self) -> Result<(), OrderError> {
        self.hold.check().await.map_err(|e| {
            emit(ScriptLeaseLost { error: &e });
            OrderError::Lease(e)
        })
    }

    /// After the PUT: records this build as the live one (an ordered job
    /// only), if the lease is still ours. A lease lost by now fails the job
    /// retryable, and its retry finds whatever the next holder recorded.
    pub async fn deployed(&self) -> Result<(), OrderError> {
        let Some(created_at) = self.created_at else {
            return Ok(());
        };
        self.fence().await?;
        let marker = Marker {
            created_at,
            job_id: self.job_id.clone(),
            deployed_at: Utc::now(),
        };
        self.order
            .markers
            .write(&self.script, &marker)
            .await
            .map_err(OrderError::MarkerWrite)
    }

    /// Gives the lease up.
    pub async fn end(self) {
        self.hold.release().await;
    }
}

#[cfg(test)]
mod tests;
