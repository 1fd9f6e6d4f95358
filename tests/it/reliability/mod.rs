//! Reliability: job-level retries through the delay queues, poison messages
//! kept in the dead-letter queue, bounded shutdown, job timeouts, the
//! events log, the topology coming back when it is deleted at run time,
//! build order per script across workers, and outages of the broker, S3,
//! Cloudflare and DNS.
//!
//! The real worker, broker, S3 server and simulator, as in `deploy`; delays
//! and timeouts shortened through settings, never waited out. This file
//! holds what those tests share.

mod events_log;
mod order;
mod outages;
mod poison;
mod retries;
mod settings;
mod shutdown;
mod timeout;
mod topology;

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicGetOptions, QueueDeleteOptions};
use wfp_deployer::config::Settings;
use wfp_deployer::sim::{SimConfig, SimServer};

use crate::helpers::amqp::{TappedEvent, connect};
use crate::helpers::app::TestApp;
use crate::helpers::s3::S3Server;

/// A stack on moto with these settings on top of the test defaults.
async fn app(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    TestApp::spawn_with(S3Server::Moto, SimConfig::for_tests(), tweak).await
}

/// Stops `app` and removes its broker names, its delay queues included.
async fn stop(app: TestApp) {
    let settings = app.settings.clone();
    app.stop().await;
    delete_retry_queues(&settings).await;
}

/// Deletes the delay queues of `settings`' retry delays, best-effort.
async fn delete_retry_queues(settings: &Settings) {
    let connection = connect(&settings.amqp).await;
    for delay in &settings.worker.retry_delays {
        let name = wfp_deployer::amqp::retry_queue_name(&settings.amqp.jobs_queue, *delay);
        if let Ok(channel) = connection.create_channel().await {
            let deleted = channel.queue_delete(name.as_str().into(), QueueDeleteOptions::default());
            if deleted.await.is_ok() {
                let _ = channel.close(200, "done".into()).await;
            }
        }
    }
    let _ = connection.close(200, "done".into()).await;
}

/// The events of one job, in order, up to and including its terminal one.
async fn events_until_terminal(app: &mut TestApp) -> Vec<TappedEvent> {
    let mut seen = Vec::new();
    loop {
        let event = app
            .events
            .next_within(Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("no terminal event within 60 s after {seen:#?}"));
        let terminal = matches!(
            event.routing_key.as_str(),
            "deploy.succeeded" | "deploy.failed"
        );
        seen.push(event);
        if terminal {
            return seen;
        }
    }
}

/// The routing keys and attempts of `events`, e.g. `deploy.retrying 1`.
fn timeline(events: &[TappedEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{} {}", e.routing_key, e.data()["attempt"]))
        .collect()
}

/// A message taken (and acked) from `queue`, as the broker holds it.
#[derive(Debug)]
struct Taken {
    body: Vec<u8>,
    properties: BasicProperties,
}

/// The next message in `queue`, if any (`basic_get`).
async fn take(app: &TestApp, queue: &str) -> Option<Taken> {
    let connection = connect(&app.settings.amqp).await;
    let channel = connection.create_channel().await.expect("channel");
    let got = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap_or_else(|e| panic!("basic_get {queue}: {e}"));
    let _ = connection.close(200, "done".into()).await;
    got.map(|message| Taken {
        body: message.delivery.data,
        properties: message.delivery.properties,
    })
}

/// The next message in `queue`, waiting for it up to 10 s: a job is parked
/// just after its `deploy.failed` is confirmed, so it may not be there yet
/// when the event arrives.
async fn take_soon(app: &TestApp, queue: &str) -> Taken {
    for _ in 0..100 {
        if let Some(taken) = take(app, queue).await {
            return taken;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing in {queue} within 10 s");
}

/// Removes every fault rule of the simulator: the outage is over.
async fn clear_faults(sim: &SimServer) {
    let url = format!("{}/faults", sim.admin_url());
    let response = reqwest::Client::new()
        .delete(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DELETE {url}: {e}"));
    assert!(response.status().is_success(), "DELETE {url}");
}

/// A child process, killed when dropped (a failed test leaves none behind).
struct ChildGuard(std::process::Child);

impl ChildGuard {
    /// Its exit status, or `None` when it still runs after `within` (the
    /// guard kills it when dropped).
    async fn wait_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().expect("child status") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
