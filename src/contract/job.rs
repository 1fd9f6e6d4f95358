//! The deploy job message (contract v1) and its validation.
//!
//! Decoding is strict: unknown fields are rejected, and every rule a later
//! step would trip over (names Cloudflare refuses, values it does not know)
//! is checked here, so a bad job fails fast with `invalid_job` and a message
//! that names the field.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod bundle;
mod rules;

pub use bundle::{BundleArchive, BundlePrefix, BundleRef};
use rules::{valid_correlation_id, valid_job_id, valid_labels, valid_namespace, valid_worker_name};

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
    /// When the producer made the job (RFC 3339): orders the builds of one
    /// script across the fleet, so an older one never ends live after a
    /// newer one. An addition to v1; absent, the AMQP `timestamp` property
    /// stands in, and without either the job is not ordered.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339")]
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
