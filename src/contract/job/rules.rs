//! The rules of contract v1 that serde's types cannot express: names
//! Cloudflare and S3 accept, values Cloudflare knows, limits, and the
//! cross-field rules (worker code outside the bundle, unique bindings).
//! Each error message names the field.

use std::collections::BTreeMap;

use super::{AssetsConfig, BundleRef, DeployJob, RunWorkerFirst};
use crate::contract::JOB_VERSION;
use crate::contract::names::{is_account_id, is_correlation_id, is_job_id, is_module_name};
use crate::contract::quote::quoted;

const HTML_HANDLING: &[&str] = &[
    "auto-trailing-slash",
    "force-trailing-slash",
    "drop-trailing-slash",
    "none",
];
const NOT_FOUND_HANDLING: &[&str] = &["none", "404-page", "single-page-application"];
// What one job may ask for. Each bounds what a job costs after it is
// parsed (validation, the script metadata built from it, the events that
// echo it); the body cap and the parser's container cap bound parsing.
const MAX_LABELS: usize = 32;
const MAX_BINDINGS: usize = 256;
/// Bytes of one binding as JSON.
const MAX_BINDING_BYTES: usize = 16 * 1024;
const MAX_FLAGS: usize = 64;
/// Characters of one compatibility flag.
const MAX_FLAG_CHARS: usize = 64;
const MAX_ROUTES: usize = 100;

/// Dispatch namespace names: letters, digits, `-` and `_`, at most 63, not
/// starting or ending with `-`.
pub(super) fn valid_namespace(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) fn valid_labels(labels: &BTreeMap<String, String>) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "labels: {} labels given, at most {MAX_LABELS} allowed",
            labels.len()
        ));
    }
    for (k, v) in labels {
        if k.is_empty() || k.len() > 63 || v.len() > 256 {
            return Err(format!(
                "labels: {} must be a 1-63 character key with a value of at most 256 characters",
                quoted(k)
            ));
        }
    }
    Ok(())
}

/// Cloudflare's rule for script names: lowercase letters, digits, `-` and
/// `_`, at most 63, not starting or ending with `-`.
pub(super) fn valid_worker_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// S3's bucket naming rules, the part that matters for addressing.
fn valid_bucket(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

fn valid_prefix(s: &str) -> bool {
    s.len() <= 1024
        && !s.starts_with('/')
        && !s.chars().any(char::is_control)
        && s.split('/').all(|seg| seg != "." && seg != "..")
}

fn valid_binding_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && (s.as_bytes()[0].is_ascii_alphabetic() || s.as_bytes()[0] == b'_')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl DeployJob {
    /// Checks every rule of contract v1 that serde's types cannot express.
    /// The message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.version != JOB_VERSION {
            return Err(format!(
                "version: {} is not supported (expected {JOB_VERSION})",
                self.version
            ));
        }
        if !is_job_id(&self.job_id) {
            return Err("job_id: must be 1-128 characters of [A-Za-z0-9._:-]".into());
        }
        if !valid_namespace(&self.namespace) {
            return Err(format!(
                "namespace: {} must be 1-63 characters of [A-Za-z0-9_-], not starting or ending with '-'",
                quoted(&self.namespace)
            ));
        }
        if !valid_worker_name(&self.script_name) {
            return Err(format!(
                "script_name: {} must be 1-63 characters of [a-z0-9_-], not starting or ending with '-'",
                quoted(&self.script_name)
            ));
        }
        if let Some(account) = &self.account_id
            && !is_account_id(account)
        {
            return Err("account_id: must be 32 lowercase hexadecimal characters".into());
        }
        self.validate_bundle()?;
        self.validate_worker()?;
        if let Some(date) = &self.compatibility_date
            && (chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() || date.len() != 10)
        {
            return Err(format!(
                "compatibility_date: {} is not a YYYY-MM-DD date",
                quoted(date)
            ));
        }
        // Cloudflare refuses dates in the future; a day of slack covers
        // producers in time zones ahead of UTC.
        if let Some(date) = &self.compatibility_date
            && let Ok(day) = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            && day > chrono::Utc::now().date_naive() + chrono::Days::new(1)
        {
            return Err(format!("compatibility_date: {date} is in the future"));
        }
        if self.compatibility_flags.len() > MAX_FLAGS {
            return Err(format!(
                "compatibility_flags: {} flags given, at most {MAX_FLAGS} allowed",
                self.compatibility_flags.len()
            ));
        }
        for flag in &self.compatibility_flags {
            if flag.len() > MAX_FLAG_CHARS {
                return Err(format!(
                    "compatibility_flags: {} is longer than {MAX_FLAG_CHARS} characters",
                    quoted(flag)
                ));
            }
            if flag.is_empty()
                || !flag
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(format!(
                    "compatibility_flags: {} is not a flag name ([a-z0-9_]+)",
                    quoted(flag)
                ));
            }
        }
        if let Some(config) = &self.assets_config {
            config.validate()?;
        }
        self.validate_bindings()?;
        if let Some(id) = &self.correlation_id
            && !is_correlation_id(id)
        {
            return Err("correlation_id: must be 1-256 characters, no control characters".into());
        }
        valid_labels(&self.labels)
    }

    fn validate_bundle(&self) -> Result<(), String> {
        let bucket = self.bundle.bucket();
        if !valid_bucket(bucket) {
            return Err(format!(
                "bundle.bucket: {} is not a valid bucket name",
                quoted(bucket)
            ));
        }
        match &self.bundle {
            BundleRef::Prefix(p) if valid_prefix(&p.prefix) => Ok(()),
            BundleRef::Prefix(p) => Err(format!(
                "bundle.prefix: {} must not start with '/', hold '.' or '..' segments or control characters",
                quoted(&p.prefix)
            )),
            BundleRef::Archive(a) => a.check(),
        }
    }

    fn validate_worker(&self) -> Result<(), String> {
        let Some(worker) = &self.worker else {
            return Ok(());
        };
        if let Some(bucket) = &worker.bucket
            && !valid_bucket(bucket)
        {
            return Err(format!(
                "worker.bucket: {} is not a valid bucket name",
                quoted(bucket)
            ));
        }
        if !valid_prefix(&worker.prefix) {
            return Err(format!(
                "worker.prefix: {} must not start with '/', hold '.' or '..' segments or control characters",
                quoted(&worker.prefix)
            ));
        }
        if !is_module_name(&worker.main_module) {
            return Err(format!(
                "worker.main_module: {} must be a relative module path \
                 (no empty, '.' or '..' segment, quote, backslash or control character)",
                quoted(&worker.main_module)
            ));
        }
        // Worker code inside the bundle would be served to anyone as a
        // static file, secrets and all: the two must not overlap. (An
        // archive holds only its own files: objects beside it are not in it.)
        let BundleRef::Prefix(bundle) = &self.bundle else {
            return Ok(());
        };
        let code_bucket = worker.bucket.as_deref().unwrap_or(&bundle.bucket);
        let (site, code) = (bundle.folder_prefix(), worker.folder_prefix());
        if code_bucket == bundle.bucket && (code.starts_with(&site) || site.starts_with(&code)) {
            return Err(format!(
                "worker.prefix: {} overlaps bundle.prefix {} in bucket {code_bucket}: \
                 worker code would be published as static assets",
                quoted(&code),
                quoted(&site)
            ));
        }
        Ok(())
    }

    fn validate_bindings(&self) -> Result<(), String> {
        if self.bindings.len() > MAX_BINDINGS {
            return Err(format!(
                "bindings: {} bindings given, at most {MAX_BINDINGS} allowed",
                self.bindings.len()
            ));
        }
        for (i, binding) in self.bindings.iter().enumerate() {
            let bytes = json_len(binding);
            if bytes > MAX_BINDING_BYTES {
                return Err(format!(
                    "bindings[{i}]: {bytes} bytes as JSON, at most {MAX_BINDING_BYTES} allowed"
                ));
            }
        }
        let assets_binding = self.assets_binding();
        if !valid_binding_name(assets_binding) {
            return Err(format!(
                "assets_binding: {} is not a valid binding name",
                quoted(assets_binding)
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, binding) in self.bindings.iter().enumerate() {
            let name = binding.get("name").and_then(|n| n.as_str());
            let kind = binding.get("type").and_then(|t| t.as_str());
            match (name, kind) {
                (Some(name), Some(_)) if valid_binding_name(name) => {
                    if self.worker.is_some() && name == assets_binding {
                        return Err(format!(
                            "bindings[{i}]: {} clashes with the assets binding",
                            quoted(name)
                        ));
                    }
                    if !seen.insert(name) {
                        return Err(format!("bindings[{i}]: {} is bound twice", quoted(name)));
                    }
                }
                _ => {
                    return Err(format!(
                        "bindings[{i}]: must be an object with a string \"type\" and a valid \"name\""
                    ));
                }
            }
        }
        Ok(())
    }
}

impl AssetsConfig {
    /// The rules `decode_job` holds `assets_config` to; the command line
    /// checks each `--assets-config` setting with them too.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(v) = &self.html_handling
            && !HTML_HANDLING.contains(&v.as_str())
        {
            return Err(format!(
                "assets_config.html_handling: {} is not one of {}",
                quoted(v),
                HTML_HANDLING.join(", ")
            ));
        }
        if let Some(v) = &self.not_found_handling
            && !NOT_FOUND_HANDLING.contains(&v.as_str())
        {
            return Err(format!(
                "assets_config.not_found_handling: {} is not one of {}",
                quoted(v),
                NOT_FOUND_HANDLING.join(", ")
            ));
        }
        if let Some(RunWorkerFirst::Routes(routes)) = &self.run_worker_first
            && routes.len() > MAX_ROUTES
        {
            return Err(format!(
                "assets_config.run_worker_first: {} routes given, at most {MAX_ROUTES} allowed",
                routes.len()
            ));
        }
        if let Some(RunWorkerFirst::Routes(routes)) = &self.run_worker_first
            && routes
                .iter()
                .any(|r| !r.starts_with('/') && !r.starts_with("!/"))
        {
            return Err(
                "assets_config.run_worker_first: routes must start with '/' or '!/'".into(),
            );
        }
        Ok(())
    }
}

/// The length of `value` as compact JSON, counted without building it.
fn json_len(value: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` into a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}
