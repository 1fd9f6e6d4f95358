//! What the broker itself says about a test's queues and connections:
//! message and consumer counts, read by AMQP or `rabbitmqctl`, and forced
//! closes. Tests prove a job was not taken, or was settled, with these.

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use wfp_deployer::config::AmqpSettings;

use super::connect;

/// Consumers of `queue` the broker counts (0 if the queue does not exist),
/// by a passive declare.
pub async fn consumer_count(settings: &AmqpSettings, queue: &str) -> u32 {
    let connection = connect(settings).await;
    let channel = connection.create_channel().await.expect("channel");
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let declared = channel.queue_declare(queue.into(), passive, FieldTable::default());
    let count = declared.await.map(|q| q.consumer_count()).unwrap_or(0);
    let _ = connection.close(200, "done".into()).await;
    count
}

/// Polls [`consumer_count`] until it equals `want`, for up to 15 s.
pub async fn wait_for_consumers(settings: &AmqpSettings, queue: &str, want: u32) {
    let mut last = u32::MAX;
    for _ in 0..60 {
        last = consumer_count(settings, queue).await;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{queue}: {last} consumers, expected {want}");
}

/// Messages ready in `queue` (not counting delivered, unacked ones), by a
/// passive declare. Panics if the queue does not exist.
pub async fn queue_depth(settings: &AmqpSettings, queue: &str) -> u32 {
    let connection = connect(settings).await;
    let channel = connection.create_channel().await.expect("channel");
    let depth = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("queue {queue}: {e}"))
        .message_count();
    let _ = connection.close(200, "done".into()).await;
    depth
}

/// `(ready, unacked)` of `queue` in vhost `/`, from `rabbitmqctl` (AMQP
/// cannot see unacked messages). Needs the broker's CLI on this machine.
pub async fn queue_counts(queue: &str) -> (u64, u64) {
    let queue = queue.to_string();
    tokio::task::spawn_blocking(move || {
        let text = rabbitmqctl(&[
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        ]);
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() == 3 && f[0] == queue)
            .map(|f| (f[1].parse().unwrap_or(0), f[2].parse().unwrap_or(0)))
            .unwrap_or_else(|| panic!("rabbitmqctl does not list {queue}: {text}"))
    })
    .await
    .expect("rabbitmqctl task")
}

/// Runs `rabbitmqctl` with `args`; its standard output.
fn rabbitmqctl(args: &[&str]) -> String {
    let out = std::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("run rabbitmqctl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Closes, from the broker's side, every connection of the worker whose
/// instance is `instance` (a forced close, as on a network failure); returns
/// how many it closed. Uses `rabbitmqctl`.
pub async fn force_close_worker_connections(instance: &str) -> usize {
    let instance = instance.to_string();
    tokio::task::spawn_blocking(move || {
        let text = rabbitmqctl(&[
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ]);
        let pids: Vec<String> = text
            .lines()
            .filter(|line| line.contains(&format!("\"{instance}\"")))
            .filter_map(|line| line.split_whitespace().next().map(str::to_string))
            .collect();
        assert!(!pids.is_empty(), "no connection of {instance}: {text}");
        for pid in &pids {
            rabbitmqctl(&["close_connection", pid, "test: forced close"]);
        }
        pids.len()
    })
    .await
    .expect("rabbitmqctl task")
}

/// Polls [`queue_counts`] until it equals `want`, for up to 10 s (the
/// broker's counters lag a little behind acks).
pub async fn wait_for_counts(queue: &str, want: (u64, u64)) {
    let mut last = (u64::MAX, u64::MAX);
    for _ in 0..40 {
        last = queue_counts(queue).await;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{queue}: (ready, unacked) is {last:?}, expected {want:?}");
}

/// Closes, from the broker's side, every connection whose client
/// properties hold each of `values` (e.g. a worker's instance and the
/// lease connection's name); returns how many it closed. Uses `rabbitmqctl`.
pub async fn force_close_connections_with(values: &[&str]) -> usize {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    tokio::task::spawn_blocking(move || {
        let text = rabbitmqctl(&[
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ]);
        let pids: Vec<String> = text
            .lines()
            .filter(|line| quoted.iter().all(|q| line.contains(q.as_str())))
            .filter_map(|line| line.split_whitespace().next().map(str::to_string))
            .collect();
        assert!(!pids.is_empty(), "no connection with {quoted:?}: {text}");
        for pid in &pids {
            rabbitmqctl(&["close_connection", pid, "test: forced close"]);
        }
        pids.len()
    })
    .await
    .expect("rabbitmqctl task")
}
