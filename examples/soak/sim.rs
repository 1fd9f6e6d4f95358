//! The simulator's test API as the soak uses it: the background noise of
//! failures kept in force throughout (5% 5xx, 5% 429, 1% dropped
//! connections), the outage (every call 503), and the bytes a script's
//! live deployment serves.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::stack::ACCOUNT;

/// The noise: each rule on every API endpoint, with a seed so a run's
/// faults repeat. The first rule that fires answers, so the rates are
/// those of the first rule and a little under for the later ones.
fn noise(seed: u64) -> Vec<Value> {
    vec![
        json!({"endpoint": "all", "kind": "status", "status": 500, "rate": 0.025, "seed": seed}),
        json!({"endpoint": "all", "kind": "status", "status": 502, "rate": 0.025, "seed": seed + 1}),
        json!({"endpoint": "all", "kind": "429", "retry_after": 1, "rate": 0.05, "seed": seed + 2}),
        json!({"endpoint": "all", "kind": "reset", "rate": 0.01, "seed": seed + 3}),
    ]
}

async fn add(sim: &str, rule: &Value) -> anyhow::Result<()> {
    let answer = reqwest::Client::new()
        .post(format!("{sim}/__sim/faults"))
        .json(rule)
        .send()
        .await
        .with_context(|| format!("adding fault {rule}"))?;
    if !answer.status().is_success() {
        bail!("adding fault {rule}: HTTP {}", answer.status());
    }
    Ok(())
}

/// Replaces every rule with the noise.
pub async fn noise_only(sim: &str, seed: u64) -> anyhow::Result<()> {
    clear(sim).await?;
    for rule in noise(seed) {
        add(sim, &rule).await?;
    }
    Ok(())
}

/// The outage: every call answers 503 (ahead of the noise).
pub async fn outage(sim: &str) -> anyhow::Result<()> {
    clear(sim).await?;
    add(
        sim,
        &json!({"endpoint": "all", "kind": "status", "status": 503}),
    )
    .await
}

async fn clear(sim: &str) -> anyhow::Result<()> {
    reqwest::Client::new()
        .delete(format!("{sim}/__sim/faults"))
        .send()
        .await
        .context("clearing the fault rules")?
        .error_for_status()?;
    Ok(())
}

/// How many answers each kind of rule in force has changed so far, keyed
/// by kind and status (`503`, `429`, `reset`).
pub async fn fired(sim: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    let rules: Value = match reqwest::get(format!("{sim}/__sim/faults")).await {
        Ok(a) => a.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    for rule in rules.as_array().into_iter().flatten() {
        let key = match rule.get("status").and_then(Value::as_u64) {
            Some(status) => status.to_string(),
            None => rule["kind"].as_str().unwrap_or("?").to_string(),
        };
        *counts.entry(key).or_default() += rule["fired"].as_u64().unwrap_or(0);
    }
    counts
}

/// Adds the counts of `more` (rules cleared since) to `total`.
pub fn add_fired(total: &mut BTreeMap<String, u64>, more: &BTreeMap<String, u64>) {
    for (key, n) in more {
        *total.entry(key.clone()).or_default() += n;
    }
}

/// The bytes the live deployment of `namespace/script` serves for `path`;
/// `None` when nothing is live there.
pub async fn live_asset(
    sim: &str,
    namespace: &str,
    script: &str,
    path: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    let mut url = reqwest::Url::parse(sim)?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("simulator url"))?
        .extend([
            "__sim", "scripts", ACCOUNT, namespace, script, "assets", path,
        ]);
    let answer = reqwest::get(url.clone())
        .await
        .with_context(|| format!("GET {url}"))?;
    if answer.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !answer.status().is_success() {
        bail!("GET {url}: HTTP {}", answer.status());
    }
    Ok(Some(answer.bytes().await?.to_vec()))
}
