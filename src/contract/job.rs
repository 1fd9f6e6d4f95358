//! The deploy job message (contract v1) and its validation.
//!
//! Decoding is strict: unknown fields and duplicate keys are rejected
//! (`strict_json`, which also bounds what parsing allocates), and every
//! rule a later step would trip over (names Cloudflare refuses, values it
//! does not know, lists past their caps) is checked here, so a bad job
//! fails fast with `invalid_job` and a short message that names the field.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
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
    /// When the producer made the job (RFC 3339): orders the builds of one
    /// script across the fleet, so an older one never ends live after a
    /// newer one. An addition to v1; absent, the AMQP `timestamp` property
    /// stands in, and without either the job is not ordered.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub created_at: Option<DateTime<Utc>>,
}

/// `created_at` on the wire: RFC 3339 (an offset or `Z` is required; a
/// space may stand for the `T`, as the RFC allows), written back with its
/// full precision in UTC. The message never echoes
/// the value, which may be anything a producer sent.
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, ser: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => ser.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => ser.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        de: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        let text = String::deserialize(de)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| Some(at.with_timezone(&Utc)))
            .map_err(|_| {
                serde::de::Error::custom(
                    "not an RFC 3339 date-time such as 2026-11-25T10:00:00.123Z",
                )
            })
    }
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

#[cfg(test)]
mod created_at_tests {
    use super::*;

    fn with_created_at(value: serde_json::Value) -> Result<DeployJob, Box<InvalidJob>> {
        let body = serde_json::json!({
            "version": 1, "job_id": "j-1", "namespace": "customers", "script_name": "site",
            "bundle": {"bucket": "sites", "prefix": "p/"}, "created_at": value
        });
        decode_job(body.to_string().as_bytes())
    }

    #[test]
    fn created_at_is_optional_and_read_as_rfc3339_in_utc() {
        let body = br#"{"version":1,"job_id":"j","namespace":"n","script_name":"s","bundle":{"bucket":"sites","prefix":"p/"}}"#;
        assert_eq!(decode_job(body).unwrap().created_at, None);
        let job = with_created_at("2026-11-25T11:00:00.123456789+01:00".into()).unwrap();
        let at = job.created_at.unwrap();
        assert_eq!(
            at,
            "2026-11-25T10:00:00.123456789Z"
                .parse::<DateTime<Utc>>()
                .unwrap()
        );
        // Written back in UTC with its whole precision, so a marker keeps it.
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["created_at"], "2026-11-25T10:00:00.123456789Z");
        assert_eq!(decode_job(json.to_string().as_bytes()).unwrap(), job);
    }

    #[test]
    fn a_created_at_that_is_not_rfc3339_is_an_invalid_job_without_its_value() {
        for bad in [
            serde_json::json!("2026-11-25T10:00:00"),
            serde_json::json!("2026-11-25"),
            serde_json::json!("yesterday, secret-token"),
            serde_json::json!(1_764_064_800),
        ] {
            let err = with_created_at(bad.clone()).expect_err("refused");
            assert!(
                err.message.starts_with("job: created_at: "),
                "{bad}: {}",
                err.message
            );
            assert!(!err.message.contains("secret-token"), "{}", err.message);
            assert_eq!(err.job_id.as_deref(), Some("j-1"));
        }
    }
}
