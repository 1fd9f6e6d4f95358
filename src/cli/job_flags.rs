//! The flags that build a contract v1 job, shared by `enqueue` and `deploy`
//! so both spell, check and default them the same way.
//!
//! [`JobFlags`] is flattened into each command's arguments; each command
//! adds what says where the files are (`enqueue`: `--bucket --prefix`,
//! `deploy`: its target argument) and where the worker code is, then calls
//! [`JobFlags::build`] with the bundle and code objects. The job is only a
//! JSON value here: the contract's decoder checks it after, so there is one
//! set of rules. `--assets-config` is checked as it is parsed, key and
//! value, so a typo is a usage error naming the key and what it takes.

use anyhow::Context;
use serde_json::{Map, Value, json};

use super::values;
use crate::contract::AssetsConfig;

/// Who the job deploys to and what travels with it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct JobFlags {
    /// The dispatch namespace to deploy into (e.g. --namespace customers).
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The script (user worker) name (e.g. --script acme-site).
    #[arg(long, value_name = "NAME")]
    pub script: Option<String>,
    /// The job id, the idempotency key (e.g. --job-id acme-site-42);
    /// default: <script>-<UTC time>-<random>.
    #[arg(long, value_name = "ID")]
    pub job_id: Option<String>,
    /// A label echoed in every event (KEY=VALUE, repeatable; e.g.
    /// --label tenant=acme).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = values::pair)]
    pub labels: Vec<(String, String)>,
    /// The Cloudflare account (32 hex digits); default: the configured
    /// one (CLOUDFLARE_ACCOUNT_ID).
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// The script's compatibility date (e.g. --compatibility-date
    /// 2025-01-24); default: worker.default_compatibility_date.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub compatibility_date: Option<String>,
    /// An assets.config setting (KEY=VALUE, repeatable): html_handling,
    /// not_found_handling, run_worker_first, serve_directly; JSON values are
    /// read as JSON (e.g. --assets-config not_found_handling=404-page
    /// --assets-config run_worker_first='["/api/*"]').
    #[arg(long = "assets-config", value_name = "KEY=VALUE", value_parser = assets_setting)]
    pub assets_config: Vec<(String, Value)>,
    /// Echoed in every event of the job (e.g. --correlation-id build-42).
    #[arg(long, value_name = "ID")]
    pub correlation_id: Option<String>,
}

impl JobFlags {
    /// Whether any flag was given (a job file and these flags conflict
    /// for `enqueue`; `deploy` lets them override the file).
    pub fn any(&self) -> bool {
        self.namespace.is_some()
            || self.script.is_some()
            || self.job_id.is_some()
            || !self.labels.is_empty()
            || self.account.is_some()
            || self.compatibility_date.is_some()
            || !self.assets_config.is_empty()
            || self.correlation_id.is_some()
    }

    /// A contract v1 job of `bundle` (and worker code, when given) from
    /// the flags. `missing` says what to give when --namespace or --script
    /// is absent.
    pub fn build(
        &self,
        bundle: Value,
        worker: Option<Value>,
        missing: &str,
    ) -> anyhow::Result<Value> {
        let (Some(namespace), Some(script)) = (&self.namespace, &self.script) else {
            anyhow::bail!("{missing}");
        };
        let job_id = self.job_id.clone().unwrap_or_else(|| generated_id(script));
        let mut job = json!({
            "version": 1, "job_id": job_id, "namespace": namespace,
            "script_name": script, "bundle": bundle,
        });
        if let Some(worker) = worker {
            job["worker"] = worker;
        }
        self.apply(&mut job)?;
        Ok(job)
    }

    /// Sets every given flag on `job` (a job object): a field is replaced,
    /// labels and assets settings are added to the job's own.
    pub fn apply(&self, job: &mut Value) -> anyhow::Result<()> {
        let fields = job.as_object_mut().context("a job is a JSON object")?;
        let mut set = |key: &str, value: &Option<String>| {
            if let Some(value) = value {
                fields.insert(key.into(), json!(value));
            }
        };
        set("namespace", &self.namespace);
        set("script_name", &self.script);
        set("job_id", &self.job_id);
        set("account_id", &self.account);
        set("compatibility_date", &self.compatibility_date);
        set("correlation_id", &self.correlation_id);
        merge(
            fields,
            "labels",
            self.labels.iter().map(|(k, v)| (k, json!(v))),
        );
        merge(
            fields,
            "assets_config",
            self.assets_config.iter().map(|(k, v)| (k, v.clone())),
        );
        Ok(())
    }
}

/// Adds `entries` to the object `key` of `fields`, made if absent.
fn merge<'a>(
    fields: &mut Map<String, Value>,
    key: &str,
    entries: impl Iterator<Item = (&'a String, Value)>,
) {
    let mut entries = entries.peekable();
    if entries.peek().is_none() {
        return;
    }
    let object = fields
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    if let Value::Object(object) = object {
        object.extend(entries.map(|(k, v)| (k.clone(), v)));
    }
}

/// `<script>-<UTC time>-<6 hex>`: unique, and sorts by time per script.
pub fn generated_id(script: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{script}-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        &random[..6]
    )
}

/// One `--assets-config KEY=VALUE`, checked by the contract's own rules:
/// the key must be one Cloudflare knows and the value one it takes. The
/// value is JSON when it reads as JSON (`true`, `["/api/*"]`), else a
/// string.
pub fn assets_setting(text: &str) -> Result<(String, Value), String> {
    let (key, raw) = values::pair(text)?;
    let value = serde_json::from_str(&raw).unwrap_or_else(|_| json!(raw));
    let takes = match key.as_str() {
        "html_handling" => {
            "one of auto-trailing-slash, force-trailing-slash, drop-trailing-slash, none"
        }
        "not_found_handling" => "one of none, 404-page, single-page-application",
        "run_worker_first" => {
            "true, false or a JSON list of routes starting with / or !/ (e.g. '[\"/api/*\"]')"
        }
        "serve_directly" => "true or false",
        _ => {
            return Err(format!(
                "{key:?} is not an assets config key: use html_handling, not_found_handling, \
                 run_worker_first or serve_directly"
            ));
        }
    };
    let one = Value::Object(Map::from_iter([(key.clone(), value.clone())]));
    let config: AssetsConfig =
        serde_json::from_value(one).map_err(|_| format!("{key}={raw}: {key} takes {takes}"))?;
    config
        .validate()
        .map_err(|_| format!("{key}={raw}: {key} takes {takes}"))?;
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_settings_are_checked_naming_the_key_and_what_it_takes() {
        assert_eq!(
            assets_setting("html_handling=none").unwrap(),
            ("html_handling".into(), json!("none"))
        );
        assert_eq!(
            assets_setting("serve_directly=true").unwrap(),
            ("serve_directly".into(), json!(true))
        );
        assert_eq!(
            assets_setting(r#"run_worker_first=["/api/*"]"#).unwrap().1,
            json!(["/api/*"])
        );
        let err = assets_setting("html_handling=sometimes").unwrap_err();
        assert!(
            err.contains("html_handling takes one of auto-trailing-slash"),
            "{err}"
        );
        let err = assets_setting("serve_directly=yes").unwrap_err();
        assert!(err.contains("serve_directly takes true or false"), "{err}");
        let err = assets_setting(r#"run_worker_first=["api"]"#).unwrap_err();
        assert!(err.contains("routes starting with /"), "{err}");
        let err = assets_setting("not_found=404-page").unwrap_err();
        assert!(
            err.contains("\"not_found\" is not an assets config key"),
            "{err}"
        );
    }

    #[test]
    fn flags_override_a_job_and_add_to_its_labels_and_assets_config() {
        let flags = JobFlags {
            script: Some("other".into()),
            labels: vec![("tier".into(), "gold".into())],
            assets_config: vec![("serve_directly".into(), json!(true))],
            ..JobFlags::default()
        };
        let mut job = json!({
            "script_name": "acme", "labels": {"tenant": "acme"},
            "assets_config": {"html_handling": "none"}
        });
        flags.apply(&mut job).unwrap();
        assert_eq!(job["script_name"], "other");
        assert_eq!(job["labels"], json!({"tenant": "acme", "tier": "gold"}));
        assert_eq!(
            job["assets_config"],
            json!({"html_handling": "none", "serve_directly": true})
        );
    }
}
