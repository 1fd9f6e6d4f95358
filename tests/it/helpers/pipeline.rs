//! `TestDeployer`: the real pipeline, wired by `startup` as the binary wires
//! it, driven one job at a time without a broker (the `process_one` style),
//! so a test reads each deploy's outcome directly.
//!
//! Several deployers built on one bucket and one simulator stand for the
//! workers of a fleet: each has its own process memory (its own digest
//! cache LRU) and shares the cache's index objects in S3, under `cache/`
//! in the test's bucket.

#![allow(dead_code)]

use serde_json::{Value, json};
use wfp_deployer::config::Settings;
use wfp_deployer::contract::{FailureInfo, Success, decode_job};
use wfp_deployer::pipeline::{Deploy, DeployObserver, Pipeline, account_for};
use wfp_deployer::sim::SimServer;

use super::amqp::{TEST_ACCOUNT, unique_settings};
use super::s3::{TestBucket, fast_retry};
use super::sim::TEST_TOKEN;

/// Where the digest cache keeps its index objects in the test's bucket.
pub const CACHE_PREFIX: &str = "cache/";

/// One worker's pipeline.
pub struct TestDeployer {
    pub pipeline: Pipeline,
    pub settings: Settings,
}

/// Settings reaching `bucket` and `sim`, the digest cache shared in the
/// bucket; `tweak` adjusts them.
pub fn settings_for(
    bucket: &TestBucket,
    sim: &SimServer,
    tweak: impl FnOnce(&mut Settings),
) -> Settings {
    // A pipeline uses no broker: nothing is declared for the guard to clean.
    let (mut settings, _no_topology) = unique_settings();
    settings.cloudflare.api_base_url = sim.api_base_url();
    settings.cloudflare.api_token = Some(TEST_TOKEN.to_string().into());
    settings.cloudflare.account_id = TEST_ACCOUNT.into();
    settings.s3 = bucket.settings();
    settings.retry = fast_retry();
    settings.cache.bucket = Some(bucket.name().to_string());
    settings.cache.prefix = CACHE_PREFIX.into();
    tweak(&mut settings);
    settings
}

impl TestDeployer {
    /// A fresh worker process: nothing in memory.
    pub async fn new(settings: Settings) -> TestDeployer {
        let pipeline = wfp_deployer::startup::build_pipeline(&settings)
            .await
            .unwrap_or_else(|e| panic!("building the pipeline: {e}"));
        TestDeployer { pipeline, settings }
    }

    /// Deploys `job` as delivery `attempt`.
    pub async fn deploy_attempt(&self, job: &Value, attempt: u32) -> Result<Success, FailureInfo> {
        let job = decode_job(job.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("not a valid job: {e:?}"));
        let account = account_for(&job, &self.settings.cloudflare.account_id);
        self.pipeline
            .deploy(&job, &account, attempt, &DeployObserver::new())
            .await
            .result
    }

    /// Deploys `job`, failing the test unless it succeeded.
    pub async fn deploy_ok(&self, job: &Value) -> Success {
        self.deploy_attempt(job, 1)
            .await
            .unwrap_or_else(|failure| panic!("deploy failed: {failure:?}"))
    }
}

/// A job deploying `prefix` of `bucket` as `script` in namespace `customers`.
pub fn job(bucket: &TestBucket, job_id: &str, script: &str, prefix: &str) -> Value {
    json!({
        "version": 1,
        "job_id": job_id,
        "namespace": "customers",
        "script_name": script,
        "bundle": {"bucket": bucket.name(), "prefix": prefix},
    })
}
