//! The deploy job message (contract v1) and its validation.
//!
//! Decoding is strict: unknown fields and duplicate keys are rejected
//! (`strict_json`, which also bounds what parsing allocates), and every
//! rule a later step would trip over (names Cloudflare refuses, values it
//! does not know, lists past their caps) is checked here, so a bad job
//! fails fast with `invalid_job` and a short message that names the field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::MAX_ERROR_MESSAGE_BYTES;
use super::quote::bounded;
use strict_json::shown_path;

/// Longest part of an invalid job's message serde's own words may take
/// (the rest of [`MAX_ERROR_MESSAGE_BYTES`] is for the path before it).
const MAX_SERDE_MESSAGE_BYTES: usize = 1024;

mod bundle;
mod rules;
mod strict_json;

use super::names::{is_correlation_id, is_job_id};
pub use bundle::{BundleArchive, BundlePrefix, BundleRef};
use rules::{valid_labels, valid_namespace, valid_worker_name};

/// One deploy request, as a platform service publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployJob {
    pub version: u32,
    /// The idempotency key: 1-128 of `[A-Za-z0-9._:-]`.
    pub job_id: String,
    pub namespace: String,
    pub script_name: String,
    /// Defaults to the configured account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    pub bundle: BundleRef,
    /// Worker code; omitted means an assets-only worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility_date: Option<String>,
    #[serde(default)]
    pub compatibility_flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets_config: Option<AssetsConfig>,
    /// Passed through to the script's metadata.
    #[serde(default)]
    pub bindings: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets_binding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Worker code: every object under `prefix` is a module named by its path
/// relative to the prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerCode {
    pub main_module: String,
    /// Defaults to the bundle's bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    pub prefix: String,
}

/// `assets.config` of the script metadata; only the keys Cloudflare knows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html_handling: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_found_handling: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_worker_first: Option<RunWorkerFirst>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serve_directly: Option<bool>,
}

/// `run_worker_first`: a flag, or the route patterns that run the worker first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RunWorkerFirst {
    All(bool),
    Routes(Vec<String>),
}

/// Why a message is not a valid job, with whatever id could be read from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidJob {
    /// The `job_id` if the message had a readable one.
    pub job_id: Option<String>,
    /// The `correlation_id` if the message had a readable one.
    pub correlation_id: Option<String>,
    /// `namespace` and `script_name`, when readable: consumers route on them.
    pub namespace: Option<String>,
    pub script_name: Option<String>,
    /// `labels`, when every one is a string pair.
    pub labels: BTreeMap<String, String>,
    pub message: String,
}

/// Decodes and validates a job body.
/// The error is boxed: it carries the fields read for the failed event and
/// is much larger than the job's happy path needs to move around.
pub fn decode_job(body: &[u8]) -> Result<DeployJob, Box<InvalidJob>> {
    let value = strict_json::parse(body).map_err(|message| {
        Box::new(InvalidJob {
            message: bounded(&message, MAX_ERROR_MESSAGE_BYTES).into_owned(),
            ..InvalidJob::default()
        })
    })?;
    // Read what identifies the job before the strict decode, each by its own
    // rule, so even a job that breaks the schema gets a failed event under
    // its own id, correlation and routing headers.
    let read = |field: &str, valid: fn(&str) -> bool| {
        value
            .get(field)
            .and_then(|v| v.as_str())
            .filter(|s| valid(s))
            .map(str::to_string)
    };
    let labels: BTreeMap<String, String> = value
        .get("labels")
        .and_then(|l| BTreeMap::deserialize(l).ok())
        .filter(|l: &BTreeMap<String, String>| valid_labels(l).is_ok())
        .unwrap_or_default();
    let known = InvalidJob {
        job_id: read("job_id", is_job_id),
        correlation_id: read("correlation_id", is_correlation_id),
        namespace: read("namespace", valid_namespace),
        script_name: read("script_name", valid_worker_name),
        labels,
        message: String::new(),
    };
    // serde's messages quote what they refuse (a value of the wrong type,
    // an unknown field's name) and the path names map keys, whole: bounded
    // here, so a huge value cannot make a huge log line or event.
    let invalid = |message: String| {
        Box::new(InvalidJob {
            message: bounded(&message, MAX_ERROR_MESSAGE_BYTES).into_owned(),
            ..known.clone()
        })
    };
    let job: DeployJob = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        if message.starts_with(&path) {
            // A conversion of ours (the bundle's shape) names its field
            // itself, as the rules do; serde's own messages never start so.
            return invalid(message);
        }
        // serde quotes what it refuses whole (a value of the wrong type, an
        // unknown field's name): its part is cut shorter than the whole, so
        // the path before it always shows.
        let message = bounded(&message, MAX_SERDE_MESSAGE_BYTES);
        if path == "." {
            invalid(format!("job: {message}"))
        } else {
            invalid(format!("job: {}: {message}", shown_path(e.path())))
        }
    })?;
    job.validate().map_err(invalid)?;
    Ok(job)
}

impl DeployJob {
    /// The name of the assets binding given to worker code.
    pub fn assets_binding(&self) -> &str {
        self.assets_binding.as_deref().unwrap_or("ASSETS")
    }
}

impl WorkerCode {
    /// The code prefix as a folder (see [`BundlePrefix::folder_prefix`]).
    pub fn folder_prefix(&self) -> String {
        folder(&self.prefix)
    }
}

/// A prefix as a folder: empty, or ending with `/`.
fn folder(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    }
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod tests;
