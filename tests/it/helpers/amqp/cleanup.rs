//! Every test's broker names are deleted when the test ends, passed or
//! failed: a [`TopologyGuard`] does it from `Drop`.

use std::time::Duration;

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use wfp_deployer::config::AmqpSettings;

/// Deletes a test's queues and exchanges when dropped, so a test that fails
/// half-way leaves nothing on the broker either. Bind it to a name
/// (`_topology`), never to `_`, which drops it at once; declare it before
/// the worker, so the worker (whose drop stops it) goes first and cannot
/// declare the names again.
pub struct TopologyGuard {
    settings: AmqpSettings,
}

impl TopologyGuard {
    /// Guards the names in `settings` (made by `unique_amqp_settings`).
    pub(super) fn new(settings: &AmqpSettings) -> Self {
        let settings = settings.clone();
        Self { settings }
    }
}

impl Drop for TopologyGuard {
    fn drop(&mut self) {
        // `drop` cannot await and may run on a runtime's thread, where no
        // runtime can be started: the deletes run on a thread of their own
        // with its own runtime. Joined, because nextest ends the process
        // with the test, and a detached cleanup would die with it.
        let settings = self.settings.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the topology cleanup");
            runtime.block_on(async {
                let deleted = delete_topology(&settings);
                if tokio::time::timeout(CLEANUP_TIMEOUT, deleted)
                    .await
                    .is_err()
                {
                    eprintln!("{}: cleanup timed out", settings.jobs_queue);
                }
            });
        });
        // Best effort: a panic there (printed already) must not become a
        // panic here, which would abort a test that is unwinding.
        let _ = cleanup.join();
    }
}

/// How long a [`TopologyGuard`] tries before leaving the names behind.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Deletes the test's queues and exchanges, best-effort (for
/// [`TopologyGuard`]).
async fn delete_topology(settings: &AmqpSettings) {
    use secrecy::ExposeSecret;
    let props = ConnectionProperties::default().with_connection_name("wfp-deployer-tests".into());
    let Ok(connection) = Connection::connect(settings.url.expose_secret(), props).await else {
        return;
    };
    // A failed delete closes its channel, so each gets a fresh one.
    let queues = [
        &settings.jobs_queue,
        &settings.dead_letter_queue,
        &settings.events_log_queue,
    ];
    for queue in queues {
        if let Ok(channel) = connection.create_channel().await {
            let deleted =
                channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default());
            if deleted.await.is_ok() {
                let _ = channel.close(200, "done".into()).await;
            }
        }
    }
    let exchanges = [
        &settings.jobs_exchange,
        &settings.dead_letter_exchange,
        &settings.events_exchange,
    ];
    for exchange in exchanges {
        if let Ok(channel) = connection.create_channel().await {
            let options = ExchangeDeleteOptions::default();
            if channel
                .exchange_delete(exchange.as_str().into(), options)
                .await
                .is_ok()
            {
                let _ = channel.close(200, "done".into()).await;
            }
        }
    }
    let _ = connection.close(200, "done".into()).await;
}
