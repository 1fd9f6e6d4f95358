//! The deploy job message (contract v1) and its validation.
//!
//! Decoding is strict: unknown fields are rejected, and every rule a later
//! step would trip over (names Cloudflare refuses, values it does not know)
//! is checked here, so a bad job fails fast with `invalid_job` and a message
//! that names the field.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod bundle;
mod rules;

pub use bundle::{BundleArchive, BundlePrefix, BundleRef};
use rules::{valid_correlation_id, valid_job_id, valid_labels, valid_namespace, valid_worker_name};

/// One deploy request, as a platform service publishes it.
///
/// The `schemars` attributes carry the rules of `rules.rs` that a JSON
/// Schema can state (patterns, lengths, enumerations) into
/// `contract/job.schema.json`; the cross-field rules (worker code outside
/// the bundle, unique binding names, a date not in the future) stay in
/// [`DeployJob::validate`] alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "wfp-deployer deploy job (contract v1)",
    description = "One deploy request, published to the jobs exchange as application/json."
)]
pub struct DeployJob {
    /// The contract version: 1.
    #[schemars(extend("const" = 1))]
    pub version: u32,
    /// The idempotency key: 1-128 of `[A-Za-z0-9._:-]`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    pub job_id: String,
    /// The dispatch namespace: 1-63 of `[A-Za-z0-9_-]`, not starting or ending with `-`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$"))]
    pub namespace: String,
    /// The user worker's name (Cloudflare's rule): 1-63 of `[a-z0-9_-]`, not
    /// starting or ending with `-`.
    #[schemars(regex(pattern = r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$"))]
    pub script_name: String,
    /// Defaults to the configured account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{32}$"))]
    pub account_id: Option<String>,
    pub bundle: BundleRef,
    /// Worker code; omitted means an assets-only worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerCode>,
    /// `YYYY-MM-DD`, not in the future; defaults to `worker.default_compatibility_date`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub compatibility_date: Option<String>,
    /// Compatibility flag names (`[a-z0-9_]+`).
    #[serde(default)]
    #[schemars(inner(regex(pattern = r"^[a-z0-9_]+$")))]
    pub compatibility_flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets_config: Option<AssetsConfig>,
    /// Passed through to the script's metadata; each an object with a
    /// string `type` and a `name` unique among the bindings.
    #[serde(default)]
    #[schemars(extend("items" = {
        "type": "object",
        "required": ["type", "name"],
        "properties": {
            "type": {"type": "string"},
            "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"}
        }
    }))]
    pub bindings: Vec<serde_json::Value>,
    /// The name of the assets binding given to worker code; default `ASSETS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"))]
    pub assets_binding: Option<String>,
    /// Echoed in every event: 1-256 bytes (UTF-8), no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[^\x00-\x1f\x7f-\x9f]{1,256}$"))]
    pub correlation_id: Option<String>,
    /// Echoed in every event: up to 32 string pairs, keys of 1-63 bytes,
    /// values of up to 256 bytes (UTF-8).
    #[serde(default)]
    #[schemars(extend(
        "maxProperties" = 32,
        "propertyNames" = {"minLength": 1, "maxLength": 63},
        "additionalProperties" = {"type": "string", "maxLength": 256}
    ))]
    pub labels: BTreeMap<String, String>,
}

/// Worker code: every object under `prefix` is a module named by its path
/// relative to the prefix. The code must not lie inside the bundle (or the
/// bundle inside it), or it would be served as static files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerCode {
    /// One of the modules: a relative path without empty, `.` or `..` segments.
    #[schemars(regex(pattern = r"^(?!\.\.?(?:/|$))[^/]+(?:/(?!\.\.?(?:/|$))[^/]+)*$"))]
    pub main_module: String,
    /// Defaults to the bundle's bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    pub bucket: Option<String>,
    /// A folder (`a/b` means `a/b/`): no leading `/`, no `.` or `..` segments.
    #[schemars(
        length(max = 1024),
        regex(pattern = r"^(?!/)(?!(?:.*/)?\.\.?(?:/|$))[^\x00-\x1f\x7f-\x9f]*$")
    )]
    pub prefix: String,
}

/// `assets.config` of the script metadata; only the keys Cloudflare knows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["auto-trailing-slash", "force-trailing-slash", "drop-trailing-slash", "none", null]))]
    pub html_handling: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["none", "404-page", "single-page-application", null]))]
    pub not_found_handling: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_worker_first: Option<RunWorkerFirst>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serve_directly: Option<bool>,
}

/// `run_worker_first`: a flag, or the route patterns that run the worker first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RunWorkerFirst {
    All(bool),
    /// Route patterns, each starting with `/` or `!/`.
    Routes(#[schemars(inner(regex(pattern = r"^!?/")))] Vec<String>),
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
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Box::new(InvalidJob {
            message: format!("job is not valid JSON: {e}"),
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
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .filter(|l: &BTreeMap<String, String>| valid_labels(l).is_ok())
        .unwrap_or_default();
    let known = InvalidJob {
        job_id: read("job_id", valid_job_id),
        correlation_id: read("correlation_id", valid_correlation_id),
        namespace: read("namespace", valid_namespace),
        script_name: read("script_name", valid_worker_name),
        labels,
        message: String::new(),
    };
    let invalid = |message: String| {
        Box::new(InvalidJob {
            message,
            ..known.clone()
        })
    };
    let job: DeployJob = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        if path == "." {
            invalid(format!("job: {message}"))
        } else if message.starts_with(&path) {
            // A conversion of ours (the bundle's shape) names its field
            // itself, as the rules do; serde's own messages never start so.
            invalid(message)
        } else {
            invalid(format!("job: {path}: {message}"))
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
mod tests;
