//! Bundles end to end: archives in S3 (`bundle.key`), prefixes with odd
//! keys, the root special files, local bundles through the `deploy`
//! command, each against the real broker, moto and s3s-fs, and the
//! simulator.
//!
//! The hostile corpus (`hostile.rs`, `keys.rs`) proves, case by case, the
//! exact error code, the entry named, that Cloudflare saw nothing (no
//! session, no upload, no script PUT: the simulator's `/__sim/stats`), and
//! that the worker goes on to deploy the next job.

mod bomb;
mod cache;
mod corrupt;
mod hostile;
mod keys;
mod local;
mod special;
mod tools;

use serde_json::{Value, json};

use crate::helpers::app::TestApp;
use crate::helpers::sim::stats;

/// Runs each scenario (an `async fn(S3Server)`) once per S3 server.
macro_rules! on_both_servers {
    ($($scenario:ident),* $(,)?) => {
        mod moto {
            $(#[tokio::test] async fn $scenario() {
                super::$scenario(crate::helpers::s3::S3Server::Moto).await
            })*
        }
        mod s3s {
            $(#[tokio::test] async fn $scenario() {
                super::$scenario(crate::helpers::s3::S3Server::S3s).await
            })*
        }
    };
}
pub(crate) use on_both_servers;

/// A job of `app` whose bundle is the archive `key` of its bucket.
fn archive_job(app: &TestApp, job_id: &str, script: &str, key: &str, extra: Value) -> Value {
    let mut job = app.job(job_id, script, "unused/");
    let mut bundle = json!({"bucket": app.bucket.name(), "key": key});
    if let (Some(bundle), Some(extra)) = (bundle.as_object_mut(), extra.as_object()) {
        bundle.extend(extra.clone());
    }
    job["bundle"] = bundle;
    job
}

/// Cloudflare saw nothing at all: no session, upload or script PUT.
async fn assert_nothing_sent(app: &TestApp, case: &str) {
    let stats = stats(&app.sim).await;
    assert_eq!(stats["sessions"], 0, "{case}: {stats}");
    assert_eq!(stats["files_uploaded"], 0, "{case}: {stats}");
    assert_eq!(stats["deploys"], 0, "{case}: {stats}");
    let calls = stats["requests"].as_object().map(|by_endpoint| {
        by_endpoint
            .values()
            .filter_map(Value::as_object)
            .map(|by_status| by_status.len())
            .sum::<usize>()
    });
    assert_eq!(calls, Some(0), "{case}: no API call at all: {stats}");
}

/// Deploys `job`, expecting `deploy.failed` with `code` and a message that
/// names `names`; nothing may reach Cloudflare.
async fn assert_refused(app: &mut TestApp, case: &str, job: &Value, code: &str, names: &str) {
    let event = app.deploy(job).await;
    assert_eq!(
        event.json["type"], "wfp.deploy.failed",
        "{case}: {}",
        event.json
    );
    let error = &event.data()["error"];
    assert_eq!(error["code"], code, "{case}: {error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(names),
        "{case}: {message:?} does not name {names:?}"
    );
    assert_nothing_sent(app, case).await;
}
