//! End to end: jobs on the real broker, bundles in real S3, the simulator as
//! Cloudflare, the worker wired by `startup` as in production.

mod access;
mod budget;
mod cache;
mod faults;
mod hashes;
mod jobs;
mod jwt;
mod large;
mod progress;
mod secrets;
mod site;

use serde_json::Value;

use crate::helpers::amqp::TappedEvent;

/// The upload counters of a succeeded event.
fn upload(event: &TappedEvent) -> &Value {
    &event.data()["upload"]
}

/// The error object of a failed event, after checking it is one.
fn error(event: &TappedEvent) -> &Value {
    assert_eq!(event.json["type"], "wfp.deploy.failed", "{}", event.json);
    &event.data()["error"]
}
