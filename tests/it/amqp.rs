//! The worker against the real RabbitMQ: topology, events and their AMQP
//! properties, invalid jobs, `reply_to`, bounded concurrency, ack only after
//! the terminal event is confirmed, reconnection and graceful shutdown.
//!
//! Deploys are scripted ([`Scripted`]), so each test decides when a deploy
//! ends and what it returns; every test runs on topology names of its own.
//! This file holds what the tests share; the tests live in
//! [`topology`] (declarations, refused set-ups, the publisher), [`events`]
//! (what is published for each kind of job), [`delivery`] (concurrency,
//! ack-after-confirm, shutdown, reconnection), [`lease`] (the script
//! lease the broker keeps) and [`hostile`] (what a hostile tenant
//! publishes).

mod delivery;
mod events;
mod hostile;
mod lease;
mod topology;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{
    BasicGetOptions, BasicNackOptions, BasicPublishOptions, ExchangeDeclareOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, ExchangeKind};
use tokio::sync::{Semaphore, mpsc};
use wfp_deployer::amqp::{self, ConfirmedPublisher, PublishError, connection::reply_code};
use wfp_deployer::config::AmqpSettings;
use wfp_deployer::contract::{
    DeployJob, DeploymentInfo, ErrorCode, FailureInfo, ManifestSummary, Step, Success,
    UploadSummary,
};
use wfp_deployer::pipeline::{Deploy, DeployObserver, Outcome};
use wfp_deployer::worker::Worker;

use crate::helpers::amqp::*;

/// A deployer whose behaviour the test scripts: job ids starting with
/// `fail-` fail permanently, `panic-` panic, others succeed. When gated, each
/// deploy waits for a permit from [`Scripted::release`].
struct Scripted {
    gate: Option<Semaphore>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    calls: Mutex<Vec<(String, u32)>>,
    entered: mpsc::UnboundedSender<(String, u32)>,
}

impl Scripted {
    fn new(gated: bool) -> (Arc<Self>, mpsc::UnboundedReceiver<(String, u32)>) {
        let (entered, rx) = mpsc::unbounded_channel();
        let scripted = Self {
            gate: gated.then(|| Semaphore::new(0)),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            calls: Mutex::new(Vec::new()),
            entered,
        };
        (Arc::new(scripted), rx)
    }

    fn release(&self, deploys: usize) {
        if let Some(gate) = &self.gate {
            gate.add_permits(deploys);
        }
    }

    fn calls(&self) -> Vec<(String, u32)> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Deploy for Scripted {
    async fn deploy(
        &self,
        job: &DeployJob,
        _account_id: &str,
        attempt: u32,
        _observer: &DeployObserver,
    ) -> Outcome {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        self.calls
            .lock()
            .unwrap()
            .push((job.job_id.clone(), attempt));
        let _ = self.entered.send((job.job_id.clone(), attempt));
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        if job.job_id.starts_with("panic-") {
            panic!("scripted panic");
        }
        let result = if job.job_id.starts_with("fail-") {
            Err(FailureInfo {
                code: ErrorCode::CloudflareRejected,
                message: "session for customers/x: HTTP 400".into(),
                step: Step::Session,
                retryable: false,
            })
        } else {
            Ok(Success {
                manifest: ManifestSummary {
                    files: 3,
                    bytes: 42,
                    sha256: "ab".repeat(32),
                    cache_hits: None,
                    bytes_read: None,
                },
                upload: UploadSummary {
                    sessions: 1,
                    buckets: 1,
                    files: 2,
                    bytes: 40,
                    bytes_read: None,
                },
                deployment: DeploymentInfo {
                    id: Some("dep-1".into()),
                    etag: None,
                    modified_on: None,
                },
            })
        };
        Outcome {
            duration: Duration::from_millis(12),
            result,
        }
    }
}

async fn entered(rx: &mut mpsc::UnboundedReceiver<(String, u32)>) -> (String, u32) {
    tokio::time::timeout(EVENT_TIMEOUT, rx.recv())
        .await
        .expect("a deploy starts in time")
        .expect("deployer alive")
}

/// Removes a [`block_events`] queue and waits for the broker's delete-ok:
/// dropping its connection would remove it only eventually, racing the next
/// publish.
async fn unblock_events((connection, queue): (lapin::Connection, String)) {
    let ch = connection.create_channel().await.unwrap();
    ch.queue_delete(
        queue.as_str().into(),
        lapin::options::QueueDeleteOptions::default(),
    )
    .await
    .unwrap();
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

async fn channel(settings: &AmqpSettings) -> (lapin::Connection, Channel) {
    let connection = connect(settings).await;
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// The reply code a fresh channel gets for this queue declaration.
async fn queue_declare_code(settings: &AmqpSettings, name: &str, args: FieldTable) -> Option<u16> {
    let (_c, ch) = channel(settings).await;
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(name.into(), options, args)
        .await
        .err()
        .as_ref()
        .and_then(reply_code)
}

/// The reply code a fresh channel gets for this exchange declaration.
async fn exchange_declare_code(
    settings: &AmqpSettings,
    name: &str,
    kind: ExchangeKind,
) -> Option<u16> {
    let (_c, ch) = channel(settings).await;
    let options = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(name.into(), kind, options, FieldTable::default())
        .await
        .err()
        .as_ref()
        .and_then(reply_code)
}

/// Binds a queue to the events exchange that refuses every message with
/// `routing_key`, so the broker nacks those events.
async fn block_events(s: &AmqpSettings, routing_key: &str) -> (lapin::Connection, String) {
    let (connection, ch) = channel(s).await;
    let name = format!("blocker-{}", uuid::Uuid::new_v4());
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(0));
    args.insert("x-overflow".into(), text("reject-publish"));
    let options = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    ch.queue_declare(name.as_str().into(), options, args)
        .await
        .unwrap();
    let bind = lapin::options::QueueBindOptions::default();
    let (queue, exchange) = (name.as_str().into(), s.events_exchange.as_str().into());
    ch.queue_bind(
        queue,
        exchange,
        routing_key.into(),
        bind,
        FieldTable::default(),
    )
    .await
    .unwrap();
    (connection, name)
}
