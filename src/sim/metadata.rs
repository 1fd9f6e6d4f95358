//! The `metadata` part of a script upload: known keys only, a valid
//! `assets` object, a compatibility date that is not in the future and
//! well-formed bindings.
//!
//! Keys Cloudflare accepts but the simulator does not act on (tags, limits,
//! placement...) are kept as opaque values (`keep_assets: true` alone is
//! acted on: it keeps the live assets when no `assets.jwt` is given); unknown keys are refused so a
//! typo in the client does not silently deploy a different worker.

use std::collections::HashSet;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::strict_json;

/// Top-level metadata keys the simulator accepts.
const KNOWN_KEYS: &[&str] = &[
    "main_module",
    "assets",
    "compatibility_date",
    "compatibility_flags",
    "bindings",
    "keep_bindings",
    "keep_assets",
    "tags",
    "usage_model",
    "logpush",
    "observability",
    "placement",
    "tail_consumers",
    "limits",
];

const HTML_HANDLING: &[&str] = &[
    "auto-trailing-slash",
    "force-trailing-slash",
    "drop-trailing-slash",
    "none",
];
const NOT_FOUND_HANDLING: &[&str] = &["none", "404-page", "single-page-application"];

/// What the script handler needs from checked metadata.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// The metadata object as uploaded.
    pub raw: Map<String, Value>,
    pub main_module: Option<String>,
    /// `assets.jwt`, when assets are attached.
    pub assets_jwt: Option<String>,
    /// `keep_assets: true`: without `assets.jwt`, keep the live assets.
    pub keep_assets: bool,
    pub compatibility_date: String,
    pub compatibility_flags: Vec<String>,
}

/// Parses and checks the metadata JSON; `today` is the sim clock's date.
pub fn check(bytes: &[u8], today: NaiveDate) -> Result<Metadata, String> {
    let value = strict_json::parse(bytes).map_err(|e| format!("metadata: {e}"))?;
    let Value::Object(raw) = value else {
        return Err("metadata: must be a JSON object".to_owned());
    };
    if let Some(key) = raw.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
        return Err(format!("metadata: unknown key {key:?}"));
    }
    let main_module = match raw.get("main_module") {
        None => None,
        Some(Value::String(name)) if !name.is_empty() => Some(name.clone()),
        Some(_) => return Err("metadata.main_module: must be a non-empty string".to_owned()),
    };
    let assets_jwt = match raw.get("assets") {
        None => None,
        Some(assets) => Some(check_assets(assets)?),
    };
    let compatibility_date = check_date(raw.get("compatibility_date"), today)?;
    let compatibility_flags = match raw.get("compatibility_flags") {
        None => Vec::new(),
        Some(Value::Array(flags)) => flags
            .iter()
            .map(|f| match f {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                _ => Err(
                    "metadata.compatibility_flags: must be an array of non-empty strings"
                        .to_owned(),
                ),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err("metadata.compatibility_flags: must be an array of strings".to_owned());
        }
    };
    if let Some(bindings) = raw.get("bindings") {
        let keeps_assets = raw.get("keep_assets") == Some(&Value::Bool(true));
        check_bindings(bindings, assets_jwt.is_some() || keeps_assets)?;
    }
    let keep_assets = match raw.get("keep_assets") {
        None => false,
        Some(Value::Bool(keep)) => *keep,
        Some(_) => return Err("metadata.keep_assets: must be a boolean".to_owned()),
    };
    Ok(Metadata {
        raw,
        main_module,
        assets_jwt,
        keep_assets,
        compatibility_date,
        compatibility_flags,
    })
}

fn check_assets(assets: &Value) -> Result<String, String> {
    let Value::Object(assets) = assets else {
        return Err("metadata.assets: must be an object".to_owned());
    };
    if let Some(key) = assets
        .keys()
        .find(|k| !matches!(k.as_str(), "jwt" | "config"))
    {
        return Err(format!("metadata.assets: unknown key {key:?}"));
    }
    let jwt = match assets.get("jwt") {
        Some(Value::String(jwt)) if !jwt.is_empty() => jwt.clone(),
        _ => return Err("metadata.assets.jwt: required, a completion JWT string".to_owned()),
    };
    if let Some(config) = assets.get("config") {
        check_assets_config(config)?;
    }
    Ok(jwt)
}

fn check_assets_config(config: &Value) -> Result<(), String> {
    let Value::Object(config) = config else {
        return Err("metadata.assets.config: must be an object".to_owned());
    };
    for (key, value) in config {
        let ok = match key.as_str() {
            "html_handling" => value.as_str().is_some_and(|v| HTML_HANDLING.contains(&v)),
            "not_found_handling" => value
                .as_str()
                .is_some_and(|v| NOT_FOUND_HANDLING.contains(&v)),
            "serve_directly" => value.is_boolean(),
            // The files' contents; `special_files` checks them.
            "_headers" | "_redirects" => value.is_string(),
            "run_worker_first" => match value {
                Value::Bool(_) => true,
                Value::Array(routes) => routes.iter().all(|r| {
                    r.as_str()
                        .is_some_and(|r| r.starts_with('/') || r.starts_with("!/"))
                }),
                _ => false,
            },
            other => return Err(format!("metadata.assets.config: unknown key {other:?}")),
        };
        if !ok {
            return Err(format!(
                "metadata.assets.config.{key}: invalid value {value}"
            ));
        }
    }
    Ok(())
}

fn check_date(date: Option<&Value>, today: NaiveDate) -> Result<String, String> {
    let text = match date {
        Some(Value::String(text)) => text,
        Some(_) => {
            return Err("metadata.compatibility_date: must be a YYYY-MM-DD string".to_owned());
        }
        None => return Err("metadata.compatibility_date: required".to_owned()),
    };
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let parsed = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| shaped);
    let Some(parsed) = parsed else {
        return Err(format!(
            "metadata.compatibility_date: {text:?} is not a YYYY-MM-DD date"
        ));
    };
    if parsed > today {
        return Err(format!(
            "metadata.compatibility_date: {text} is in the future (today is {today})"
        ));
    }
    Ok(text.clone())
}

fn check_bindings(bindings: &Value, has_assets: bool) -> Result<(), String> {
    let Value::Array(bindings) = bindings else {
        return Err("metadata.bindings: must be an array".to_owned());
    };
    let mut names = HashSet::new();
    for (i, binding) in bindings.iter().enumerate() {
        let (Some(kind), Some(name)) = (
            binding.get("type").and_then(Value::as_str),
            binding.get("name").and_then(Value::as_str),
        ) else {
            return Err(format!(
                "metadata.bindings[{i}]: needs string \"type\" and \"name\""
            ));
        };
        if name.is_empty() {
            return Err(format!("metadata.bindings[{i}]: name is empty"));
        }
        if !names.insert(name) {
            return Err(format!(
                "metadata.bindings[{i}]: name {name:?} is bound twice"
            ));
        }
        if kind == "assets" && !has_assets {
            return Err(format!(
                "metadata.bindings[{i}]: assets binding {name:?} needs metadata.assets (or keep_assets)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
