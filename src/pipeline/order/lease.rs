//! The per-script lease: what lets one deploy of a script run at a time
//! across the whole fleet, and what a deploy checks before its PUT.
//!
//! A trait, so the pipeline knows no broker: the worker's lease lives in
//! RabbitMQ (`crate::amqp::lease`: an exclusive queue per script, which the
//! broker gives to one connection at a time and deletes when that
//! connection dies), and a process without a broker (the one-shot `deploy`
//! command) uses [`ProcessLease`], which the process's own script locks
//! make enough. [`acquire`] is the one wait for a lease another holder has:
//! polling with jittered back-off, bounded by `worker.lease_wait`.

use std::time::Duration;

use backon::BackoffBuilder;

use crate::retry::RetryPolicy;

/// The first wait between two tries of a lease someone else holds; the
/// waits grow (jittered) up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(50);
/// The longest wait between two tries: a lease freed is taken within about
/// this long.
const MAX_POLL: Duration = Duration::from_secs(1);

/// Why a lease could not be taken or kept. Both are worth another attempt
/// later: the broker may be back, the other holder done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// The lease's keeper (the broker) could not be asked.
    #[error("{script}: script lease: {detail}")]
    Unavailable { script: String, detail: String },
    /// The lease ended while held (its connection died, or the broker no
    /// longer says it is ours).
    #[error("{script}: script lease lost: {detail}")]
    Lost { script: String, detail: String },
    /// Someone else held it for all of `worker.lease_wait`.
    #[error(
        "{script}: script lease held by another worker for over {} (worker.lease_wait)",
        humantime::format_duration(*.waited)
    )]
    Busy { script: String, waited: Duration },
}

/// Hands out the lease of one script at a time.
#[async_trait::async_trait]
pub trait ScriptLease: Send + Sync + 'static {
    /// One try at the lease of `script` (`account/namespace/script`):
    /// `None` while another holder has it. Whoever gets it holds it until
    /// [`LeaseHold::release`], or until the holder's process (or connection)
    /// dies.
    async fn try_acquire(&self, script: &str) -> Result<Option<Box<dyn LeaseHold>>, LeaseError>;
}

/// A lease while held.
#[async_trait::async_trait]
pub trait LeaseHold: Send + Sync {
    /// `Ok` while the lease is still ours: the fence before the script PUT,
    /// so a holder that stalled past the end of its lease does not deploy.
    async fn check(&self) -> Result<(), LeaseError>;

    /// Gives the lease up. Dropping a hold unreleased (a deploy stopped by
    /// its timeout or by shutdown) releases it too, in the background.
    async fn release(self: Box<Self>);
}

/// The lease of a process without a broker: always granted, since the
/// pipeline's own per-script locks already keep this process's deploys of a
/// script apart, and nothing else can be excluded without a shared keeper.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessLease;

struct ProcessHold;

#[async_trait::async_trait]
impl ScriptLease for ProcessLease {
    async fn try_acquire(&self, _script: &str) -> Result<Option<Box<dyn LeaseHold>>, LeaseError> {
        Ok(Some(Box::new(ProcessHold)))
    }
}

#[async_trait::async_trait]
impl LeaseHold for ProcessHold {
    async fn check(&self) -> Result<(), LeaseError> {
        Ok(())
    }

    async fn release(self: Box<Self>) {}
}

/// Takes the lease of `script`, trying again with jittered, growing waits
/// while another holder has it, for at most `wait`; then
/// [`LeaseError::Busy`]. A keeper that cannot be asked fails at once: the
/// job's own broker traffic is then in trouble too, and its retry comes
/// back later.
pub(crate) async fn acquire(
    lease: &dyn ScriptLease,
    script: &str,
    wait: Duration,
) -> Result<Box<dyn LeaseHold>, LeaseError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut polls = RetryPolicy::unlimited(FIRST_POLL, MAX_POLL).build();
    loop {
        if let Some(hold) = lease.try_acquire(script).await? {
            return Ok(hold);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(LeaseError::Busy {
                script: script.to_string(),
                waited: wait,
            });
        }
        let pause = polls
            .next()
            .unwrap_or(MAX_POLL)
            .max(Duration::from_millis(1));
        tokio::time::sleep(pause.min(deadline - now)).await;
    }
}
