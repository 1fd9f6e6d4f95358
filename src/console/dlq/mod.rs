//! The dead-letter queue for people: list, show, requeue and purge parked
//! jobs. `wfp-deployer dlq` and the console both go through
//! [`DeadLetters`], so they read and act on parked jobs the same way.
//!
//! # Requeue: nothing lost, a duplicate at worst
//!
//! A requeue publishes the parked message's original body bytes and
//! properties (without the bookkeeping headers: the worker's `x-wfp-*`
//! ones, which would count its old attempts, and the broker's `x-death` and
//! delivery count) to the jobs exchange as a mandatory message on a
//! confirm-mode channel, and acks the parked copy only once the broker
//! confirmed that a queue took the new one. So:
//!
//! - if the publish fails, is refused, or finds no queue bound, the parked
//!   copy is not acked: the channel closes and it stays in the queue;
//! - if the process dies after the confirm but before the ack, the broker
//!   returns the unacked parked copy to the queue while the job is also in
//!   the jobs queue: one job, twice. That is harmless: deploys are
//!   idempotent (content-addressed assets; the same job deploys the same
//!   thing), and events have stable ids (`<job_id>:succeeded`), so
//!   consumers drop the duplicate. Requeueing the leftover copy again, or
//!   purging it, is safe.
//!
//! There is no window in which the job is in neither queue.
//!
//! # Reading
//!
//! See [`sweep`]: one pass reads each message once, holding the ones it
//! leaves unacked until the end, then returns them; a message returned
//! often is refreshed so no delivery limit can drop it.

mod entry;
mod headers;
mod sweep;

pub use entry::{ParkedJob, Reason};
pub use sweep::{Action, REFRESH_AT, Selection, Sweep};

use lapin::Connection;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

use crate::amqp::{AmqpError, PublishError, connect};
use crate::config::AmqpSettings;

/// Messages one pass reads at most, unless told otherwise.
pub const DEFAULT_LIMIT: usize = 10_000;

/// Why the dead-letter queue could not be read or changed. Whatever the
/// error, no parked message is lost (see the module doc).
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error(transparent)]
    Amqp(#[from] AmqpError),
    #[error("queue {queue}: {error}")]
    Broker { queue: String, error: lapin::Error },
    #[error("requeue: {0}")]
    Publish(#[from] PublishError),
}

/// The dead-letter queue named in the settings, on a connection of its own.
pub struct DeadLetters {
    connection: Connection,
    settings: AmqpSettings,
}

impl DeadLetters {
    /// Connects and checks that the queue exists (a passive declaration:
    /// reading it must not create it with the wrong arguments).
    pub async fn open(settings: &AmqpSettings) -> Result<Self, DlqError> {
        let connection = connect(settings).await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|error| AmqpError::Channel {
                purpose: "dead-letter queue",
                error,
            })?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let queue = settings.dead_letter_queue.as_str();
        channel
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .map_err(|error| AmqpError::Queue {
                name: queue.to_string(),
                error,
            })?;
        let _ = channel.close(200, "done".into()).await;
        Ok(Self {
            connection,
            settings: settings.clone(),
        })
    }

    /// Reads up to `limit` parked jobs, leaving them all in place.
    pub async fn list(&self, limit: usize) -> Result<Sweep, DlqError> {
        self.sweep(&Selection::default(), Action::Keep, limit).await
    }

    /// One pass: `action` on the jobs `selection` picks, among the first
    /// `limit` in the queue.
    pub async fn sweep(
        &self,
        selection: &Selection,
        action: Action,
        limit: usize,
    ) -> Result<Sweep, DlqError> {
        sweep::sweep(&self.connection, &self.settings, selection, action, limit).await
    }

    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}
