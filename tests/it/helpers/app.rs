//! `TestApp`: the real worker, wired by `startup` exactly as the binary wires
//! it, against the real broker (unique names per test), a real S3 server (a
//! bucket per test) and an in-process Cloudflare simulator (one per test).
//!
//! End-to-end tests publish jobs and read the events the worker publishes,
//! then look at what the simulator holds.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use lapin::BasicProperties;
use serde_json::{Value, json};
use wfp_deployer::config::Settings;
use wfp_deployer::sim::{SimConfig, SimServer};

use super::amqp::{
    EventTap, TEST_ACCOUNT, TappedEvent, TestWorker, TopologyGuard, publish_job, start_worker,
    unique_settings,
};
use super::proxy::TcpProxy;
use super::s3::{S3Server, TestBucket, fast_retry, test_bucket};
use super::sim::{TEST_TOKEN, sim_hashing, spawn_sim_with};

/// One worker with its own broker names, bucket and simulator.
pub struct TestApp {
    pub sim: SimServer,
    pub bucket: TestBucket,
    pub settings: Settings,
    /// Every event the worker publishes (`deploy.#`).
    pub events: EventTap,
    worker: TestWorker,
    /// Last, so it is dropped after the worker: deletes the broker names.
    _topology: TopologyGuard,
}

impl TestApp {
    /// The default stack on `server`.
    pub async fn spawn(server: S3Server) -> TestApp {
        Self::spawn_with(server, SimConfig::for_tests(), |_| {}).await
    }

    /// A stack with a tailored simulator and worker settings. The simulator
    /// checks asset hashes with the scheme the tweaked settings give the
    /// worker, as an operator would start it next to that worker.
    pub async fn spawn_with(
        server: S3Server,
        sim_config: SimConfig,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestApp {
        Self::spawn_routed(server, sim_config, tweak, false).await.0
    }

    /// A stack whose worker reaches the simulator through a [`TcpProxy`]
    /// the test can hold, to keep a deploy at its first Cloudflare call.
    pub async fn spawn_behind_proxy(
        server: S3Server,
        tweak: impl FnOnce(&mut Settings),
    ) -> (TestApp, TcpProxy) {
        let (app, proxy) = Self::spawn_routed(server, SimConfig::for_tests(), tweak, true).await;
        (app, proxy.expect("a proxy was asked for"))
    }

    async fn spawn_routed(
        server: S3Server,
        mut sim_config: SimConfig,
        tweak: impl FnOnce(&mut Settings),
        proxied: bool,
    ) -> (TestApp, Option<TcpProxy>) {
        let bucket = test_bucket(server).await;
        let (mut settings, topology) = unique_settings();
        settings.cloudflare.api_token = Some(TEST_TOKEN.to_string().into());
        settings.cloudflare.account_id = TEST_ACCOUNT.into();
        settings.s3 = bucket.settings();
        settings.retry = fast_retry();
        tweak(&mut settings);
        sim_config.set_hashing(sim_hashing(&settings.manifest));
        let sim = spawn_sim_with(sim_config).await;
        settings.cloudflare.api_base_url = sim.api_base_url();
        let mut proxy = None;
        if proxied {
            let sim_addr = sim.api_base_url();
            let host = sim_addr
                .strip_prefix("http://")
                .and_then(|rest| rest.split('/').next())
                .expect("the simulator's address");
            let through = TcpProxy::start(host).await;
            settings.cloudflare.api_base_url = sim_addr.replace(host, &through.addr().to_string());
            proxy = Some(through);
        }
        let events = EventTap::new(&settings.amqp).await;
        let pipeline = wfp_deployer::startup::build_worker_pipeline(&settings)
            .await
            .unwrap_or_else(|e| panic!("building the pipeline: {e}"));
        let worker = start_worker(&settings, Arc::new(pipeline)).await;
        let app = TestApp {
            sim,
            bucket,
            settings,
            events,
            worker,
            _topology: topology,
        };
        (app, proxy)
    }

    /// A valid job for `script` whose bundle is `prefix` in this app's bucket.
    pub fn job(&self, job_id: &str, script: &str, prefix: &str) -> Value {
        json!({
            "version": 1,
            "job_id": job_id,
            "namespace": "customers",
            "script_name": script,
            "bundle": {"bucket": self.bucket.name(), "prefix": prefix},
            "correlation_id": format!("corr-{job_id}"),
            "labels": {"tenant": "acme"}
        })
    }

    /// Publishes a job as a platform service would.
    pub async fn publish(&self, job: &Value) {
        self.publish_raw(job.to_string().as_bytes(), BasicProperties::default())
            .await;
    }

    /// Publishes any body with any properties (for malformed jobs).
    pub async fn publish_raw(&self, body: &[u8], props: BasicProperties) {
        let props = props
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        publish_job(&self.settings.amqp, body, props).await;
    }

    /// The next terminal event (`deploy.succeeded` or `deploy.failed`),
    /// passing over `deploy.started` events.
    pub async fn terminal_event(&mut self) -> TappedEvent {
        loop {
            let event = self.events.next_within(Duration::from_secs(60)).await;
            let event = event.unwrap_or_else(|| panic!("no terminal event within 60 s"));
            if event.routing_key != "deploy.started" {
                return event;
            }
        }
    }

    /// Publishes `job` and returns its terminal event.
    pub async fn deploy(&mut self, job: &Value) -> TappedEvent {
        self.publish(job).await;
        let event = self.terminal_event().await;
        assert_eq!(
            event.data()["job_id"],
            job["job_id"],
            "terminal event of another job: {}",
            event.json
        );
        event
    }

    /// Like [`TestApp::deploy`], failing the test unless it succeeded.
    pub async fn deploy_ok(&mut self, job: &Value) -> TappedEvent {
        let event = self.deploy(job).await;
        assert_eq!(
            event.json["type"], "wfp.deploy.succeeded",
            "deploy failed: {}",
            event.json
        );
        event
    }

    /// Tells whether the worker consumes (for the ops server's `/readyz`).
    pub fn ready(&self) -> wfp_deployer::worker::Ready {
        self.worker.ready.clone()
    }

    /// Stops the worker (graceful) and the simulator; the broker names go
    /// with the app (its [`TopologyGuard`]), even when a test fails first.
    pub async fn stop(self) {
        let result = self.worker.stop().await;
        assert!(result.is_ok(), "worker ended with {result:?}");
        self.sim.shutdown().await;
    }
}
