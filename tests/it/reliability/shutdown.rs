//! Shutdown of the real binary: SIGTERM lets a running deploy finish within
//! `worker.shutdown_grace`, requeues it when it does not, and exits 0; a
//! second signal exits at once with 143 (SIGTERM) or 130 (SIGINT). No job
//! is lost either way.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lapin::BasicProperties;
use serde_json::json;
use tokio::sync::mpsc;
use wfp_deployer::config::Settings;
use wfp_deployer::sim::SimServer;

use super::ChildGuard;
use crate::helpers::amqp::{
    EventTap, TEST_ACCOUNT, TEST_AMQP_URL, TopologyGuard, connect, publish_job, start_worker,
    unique_settings, wait_for_counts,
};
use crate::helpers::s3::{
    S3Server, TEST_ACCESS_KEY, TEST_SECRET_KEY, TestBucket, fast_retry, test_bucket,
};
use crate::helpers::sim::{TEST_TOKEN, add_fault, spawn_sim_for};

/// The worker binary, running, with its log lines (standard error) as they
/// come.
struct WorkerProcess {
    child: ChildGuard,
    log: mpsc::UnboundedReceiver<String>,
}

impl WorkerProcess {
    /// `wfp-deployer worker` on `settings`' broker names and grace, the
    /// simulator and `bucket`'s server, configured through the environment
    /// as an operator would.
    fn start(settings: &Settings, sim: &SimServer, bucket: &TestBucket) -> Self {
        let amqp = &settings.amqp;
        let mut child = Command::new(env!("CARGO_BIN_EXE_wfp-deployer"))
            .arg("worker")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "WFP_CONFIG_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
            )
            .env("AMQP_URL", TEST_AMQP_URL)
            .env("CLOUDFLARE_API_TOKEN", TEST_TOKEN)
            .env("CLOUDFLARE_ACCOUNT_ID", TEST_ACCOUNT)
            .env("CLOUDFLARE_API_BASE_URL", sim.api_base_url())
            .env("AWS_ENDPOINT_URL_S3", bucket.server().endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
            .env("WFP__S3__FORCE_PATH_STYLE", "true")
            .env("WFP__AMQP__JOBS_EXCHANGE", &amqp.jobs_exchange)
            .env("WFP__AMQP__JOBS_QUEUE", &amqp.jobs_queue)
            .env(
                "WFP__AMQP__DEAD_LETTER_EXCHANGE",
                &amqp.dead_letter_exchange,
            )
            .env("WFP__AMQP__DEAD_LETTER_QUEUE", &amqp.dead_letter_queue)
            .env("WFP__AMQP__EVENTS_EXCHANGE", &amqp.events_exchange)
            .env("WFP__AMQP__EVENTS_LOG_QUEUE", &amqp.events_log_queue)
            .env("WFP__AMQP__CONFIRM_TIMEOUT", "5s")
            .env("WFP__WORKER__INSTANCE", &settings.worker.instance)
            .env(
                "WFP__WORKER__SHUTDOWN_GRACE",
                humantime::format_duration(settings.worker.shutdown_grace).to_string(),
            )
            // A free port: tests run in parallel, the default one is shared.
            .env("WFP__OPS__LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the worker binary");
        let stderr = child.stderr.take().expect("piped standard error");
        let (lines, log) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child: ChildGuard(child),
            log,
        }
    }

    /// Sends `signal` (`TERM`, `INT`) to the process.
    fn signal(&self, signal: &str) {
        let pid = self.child.0.id().to_string();
        let status = Command::new("kill")
            .args([format!("-{signal}").as_str(), pid.as_str()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Waits (up to 15 s) for a log line containing `text`.
    async fn logged(&mut self, text: &str) -> String {
        let wait = async {
            while let Some(line) = self.log.recv().await {
                if line.contains(text) {
                    return line;
                }
            }
            panic!("the worker's log ended without {text:?}");
        };
        tokio::time::timeout(Duration::from_secs(15), wait)
            .await
            .unwrap_or_else(|_| panic!("no log line with {text:?} within 15 s"))
    }

    /// The exit code, once the process ended (within `within`).
    async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let status = self.child.wait_within(within).await;
        status.expect("the worker exits").code()
    }
}

/// A simulator, a bucket with a one-file site, unique broker names with
/// this grace, the topology declared and an event tap.
async fn stack(grace: Duration) -> (SimServer, TestBucket, Settings, EventTap, TopologyGuard) {
    // The worker processes run with the shipped defaults: salted hashes.
    let sim = spawn_sim_for(&Settings::default().manifest).await;
    let bucket = test_bucket(S3Server::Moto).await;
    bucket.put("s/index.html", b"<p>s</p>".to_vec()).await;
    let (mut settings, topology) = unique_settings();
    settings.worker.shutdown_grace = grace;
    let connection = connect(&settings.amqp).await;
    let channel = connection.create_channel().await.expect("channel");
    wfp_deployer::amqp::declare_topology(&channel, &settings.amqp)
        .await
        .expect("declare the topology");
    let _ = connection.close(200, "done".into()).await;
    let events = EventTap::new(&settings.amqp).await;
    (sim, bucket, settings, events, topology)
}

fn job(bucket: &TestBucket, job_id: &str) -> Vec<u8> {
    json!({
        "version": 1, "job_id": job_id, "namespace": "customers",
        "script_name": "shutdown-site", "bundle": {"bucket": bucket.name(), "prefix": "s/"}
    })
    .to_string()
    .into_bytes()
}

/// Holds the next session call for 30 s: the deploy cannot finish soon.
async fn stall_sessions(sim: &SimServer) {
    add_fault(
        sim,
        json!({"endpoint": "session", "kind": "latency", "ms": 30_000, "count": 1}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_requeues_a_deploy_that_outlasts_the_grace_and_exits_0() {
    let (sim, bucket, mut settings, mut events, _topology) = stack(Duration::from_secs(1)).await;
    stall_sessions(&sim).await;
    publish_job(
        &settings.amqp,
        &job(&bucket, "held-1"),
        BasicProperties::default(),
    )
    .await;
    let mut worker = WorkerProcess::start(&settings, &sim, &bucket);
    let started = events.next().await;
    assert_eq!(started.json["id"], "held-1:started:1");

    worker.signal("TERM");
    worker.logged("shutdown grace over").await;
    assert_eq!(
        worker.exit_code(Duration::from_secs(15)).await,
        Some(0),
        "a graceful shutdown exits 0"
    );
    // Requeued, not lost: ready in the jobs queue, nothing unacked.
    wait_for_counts(&settings.amqp.jobs_queue, (1, 0)).await;

    // The next worker finishes it; its attempt 1 ended with no terminal
    // event (the next event is attempt 2's start).
    settings.cloudflare.api_base_url = sim.api_base_url();
    settings.cloudflare.api_token = Some(TEST_TOKEN.to_string().into());
    settings.s3 = bucket.settings();
    settings.retry = fast_retry();
    let pipeline = wfp_deployer::startup::build_pipeline(&settings)
        .await
        .expect("pipeline");
    let next = start_worker(&settings, Arc::new(pipeline)).await;
    assert_eq!(events.next().await.json["id"], "held-1:started:2");
    assert_eq!(events.next().await.json["id"], "held-1:succeeded");
    next.stop().await.expect("worker");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_that_ends_within_the_grace_is_acked_and_the_worker_exits_0() {
    let (sim, bucket, settings, mut events, _topology) = stack(Duration::from_secs(30)).await;
    add_fault(
        &sim,
        json!({"endpoint": "session", "kind": "latency", "ms": 1_500, "count": 1}),
    )
    .await;
    publish_job(
        &settings.amqp,
        &job(&bucket, "quick-1"),
        BasicProperties::default(),
    )
    .await;
    let mut worker = WorkerProcess::start(&settings, &sim, &bucket);
    assert_eq!(events.next().await.json["id"], "quick-1:started:1");
    worker.signal("TERM");
    worker.logged("shutdown requested").await;
    assert_eq!(events.next().await.json["id"], "quick-1:succeeded");
    assert_eq!(worker.exit_code(Duration::from_secs(15)).await, Some(0));
    wait_for_counts(&settings.amqp.jobs_queue, (0, 0)).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_with_the_code_of_that_signal() {
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let (sim, bucket, settings, mut events, _topology) = stack(Duration::from_secs(60)).await;
        stall_sessions(&sim).await;
        let id = format!("twice-{signal}");
        publish_job(
            &settings.amqp,
            &job(&bucket, &id),
            BasicProperties::default(),
        )
        .await;
        let mut worker = WorkerProcess::start(&settings, &sim, &bucket);
        assert_eq!(events.next().await.json["id"], format!("{id}:started:1"));
        worker.signal(signal);
        worker.logged("shutdown requested").await;
        worker.signal(signal);
        assert_eq!(
            worker.exit_code(Duration::from_secs(10)).await,
            Some(code),
            "second SIG{signal}"
        );
        // The broker got the unacked job back when the connection died.
        wait_for_counts(&settings.amqp.jobs_queue, (1, 0)).await;
        sim.shutdown().await;
    }
}
