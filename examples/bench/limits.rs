//! The limits each figure is held against, measured in the same run on the
//! same data, each doing only its own part of a deploy, each the best of a
//! few tries (a limit is what the machine can do; a busy moment is not it):
//!
//! - S3: parallel GETs of the same objects (the worker's `fetch_concurrency`,
//!   the same SDK client settings), bodies read and dropped;
//! - upload: bucket POSTs of the same payloads (base64 multipart, encoded
//!   before the clock starts) to a fresh simulator (an empty store) per
//!   try, with the upload JWT of a session opened on the manifest the
//!   deploy produced (so the hashes are the deploy's, whatever its hash
//!   scheme), the worker's `upload_concurrency` at a time.
//!
//! - gzip: inflating the archive's bytes in memory with the worker's own
//!   crate and backend (`flate2` on `zlib-rs`, the same `bufread` decoder),
//!   one core, counted in the site's bytes it carries.
//!
//! SHA-256 is in [`crate::data::sha256_limit_mbps`].

use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use crate::data::{DataSet, mib};
use crate::stack::{ACCOUNT, Stack};

/// What a run of raw GETs achieved.
#[derive(Debug, Clone, Copy)]
pub struct GetLimit {
    pub mbps: f64,
    pub objects_per_s: f64,
}

/// GETs every object of `keys`, `concurrency` at a time, the best of
/// `tries` runs; the rate is counted in `counted_bytes` (the site's bytes,
/// which for an archive differ from the bytes moved).
pub async fn s3_get(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    keys: &[String],
    concurrency: usize,
    counted_bytes: u64,
    tries: usize,
) -> anyhow::Result<GetLimit> {
    let mut best = s3_get_once(s3, bucket, keys, concurrency, counted_bytes).await?;
    for _ in 1..tries {
        let next = s3_get_once(s3, bucket, keys, concurrency, counted_bytes).await?;
        if next.mbps > best.mbps {
            best = next;
        }
    }
    Ok(best)
}

async fn s3_get_once(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    keys: &[String],
    concurrency: usize,
    counted_bytes: u64,
) -> anyhow::Result<GetLimit> {
    let started = Instant::now();
    stream::iter(keys)
        .map(|key| get_and_drop(s3, bucket, key))
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok(GetLimit {
        mbps: mib(counted_bytes) / elapsed,
        objects_per_s: keys.len() as f64 / elapsed,
    })
}

async fn get_and_drop(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> anyhow::Result<()> {
    let subject = || format!("s3://{bucket}/{key}");
    let mut body = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: {}",
                subject(),
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        })?
        .body;
    while let Some(chunk) = body.next().await {
        std::hint::black_box(chunk.with_context(subject)?);
    }
    Ok(())
}

/// Inflates the gzip stream `archive` in memory on this thread, the best
/// of `tries`; MiB/s of `site_bytes` (the files it carries, as every figure
/// counts them), the inflated bytes read and dropped in 64 KiB blocks as
/// the worker's tar reader takes them.
pub fn gzip(archive: &[u8], site_bytes: u64, tries: usize) -> anyhow::Result<f64> {
    let mut best = Duration::MAX;
    let mut block = vec![0u8; 64 << 10];
    for _ in 0..tries.max(1) {
        let started = Instant::now();
        let mut decoder = flate2::bufread::GzDecoder::new(archive);
        loop {
            let n = decoder.read(&mut block).context("inflating the archive")?;
            if n == 0 {
                break;
            }
            std::hint::black_box(&block[..n]);
        }
        best = best.min(started.elapsed());
    }
    Ok(mib(site_bytes) / best.as_secs_f64())
}

/// Lists every object under `prefix` (ListObjectsV2, page after page, as
/// a deploy must: each page names the next), the best of `tries`, in
/// seconds: what an unchanged redeploy, which reads nothing, cannot beat.
pub async fn s3_list_s(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    tries: usize,
) -> anyhow::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..tries.max(1) {
        let started = Instant::now();
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            std::hint::black_box(page.map_err(|e| {
                anyhow::anyhow!(
                    "listing s3://{bucket}/{prefix}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })?);
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// The deploy whose payloads the raw uploads send again.
struct Deployed<'a> {
    namespace: &'a str,
    script: &'a str,
    manifest: serde_json::Map<String, Value>,
    /// Which file of the set each hash is.
    by_hash: HashMap<String, usize>,
    set: &'a DataSet,
}

/// Uploads `set` as the deploy of `namespace/script` on the main simulator
/// hashed it, bucket by bucket, to a fresh simulator per try; the best of
/// `tries`, in MiB/s of file bytes.
pub async fn upload(
    stack: &Stack,
    namespace: &str,
    script: &str,
    set: &DataSet,
    tries: usize,
) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let deployed: Value = http
        .get(format!(
            "{}/__sim/scripts/{ACCOUNT}/{namespace}/{script}",
            stack.sim_url
        ))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let manifest = deployed
        .get("manifest")
        .and_then(Value::as_object)
        .context("the deployment has no manifest")?
        .clone();
    let index: HashMap<String, usize> = set
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("/{}", f.rel), i))
        .collect();
    let mut by_hash = HashMap::new();
    for (path, entry) in &manifest {
        let hash = entry.get("hash").and_then(Value::as_str);
        if let (Some(hash), Some(&i)) = (hash, index.get(path)) {
            by_hash.insert(hash.to_string(), i);
        }
    }
    let deployed = Deployed {
        namespace,
        script,
        manifest,
        by_hash,
        set,
    };
    let mut best = 0.0f64;
    for attempt in 0..tries.max(1) {
        let (_sim, url) = stack.raw_sim(attempt).await?;
        best = best.max(upload_once(stack, &http, &url, &deployed).await?);
    }
    Ok(best)
}

/// One session on the simulator at `sim`, then its buckets, timed.
async fn upload_once(
    stack: &Stack,
    http: &reqwest::Client,
    sim: &str,
    deployed: &Deployed<'_>,
) -> anyhow::Result<f64> {
    let Deployed {
        namespace, script, ..
    } = deployed;
    let session: Value = http
        .post(format!(
            "{sim}/client/v4/accounts/{ACCOUNT}/workers/dispatch/namespaces/{namespace}/scripts/{script}/assets-upload-session"
        ))
        .bearer_auth(stack.token())
        .json(&serde_json::json!({ "manifest": deployed.manifest }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let jwt = session
        .pointer("/result/jwt")
        .and_then(Value::as_str)
        .context("the raw session gave no JWT")?
        .to_string();
    let buckets: Vec<Vec<String>> = serde_json::from_value(
        session
            .pointer("/result/buckets")
            .cloned()
            .context("the raw session asked for nothing")?,
    )?;

    // Payloads are built before the clock starts: the limit is the POSTs.
    let mut bodies = Vec::with_capacity(buckets.len());
    let mut bytes = 0u64;
    for bucket in &buckets {
        let mut parts = Vec::with_capacity(bucket.len());
        for hash in bucket {
            let &i = deployed
                .by_hash
                .get(hash)
                .with_context(|| format!("the raw session asked for unknown hash {hash}"))?;
            bytes += deployed.set.files[i].size as u64;
            parts.push((hash.clone(), deployed.set.bytes(i)));
        }
        bodies.push(multipart(&parts));
    }
    let url = format!("{sim}/client/v4/accounts/{ACCOUNT}/workers/assets/upload?base64=true");
    let concurrency = stack.settings.cloudflare.upload_concurrency.max(1);
    let started = Instant::now();
    stream::iter(bodies)
        .map(|body| {
            http.post(&url)
                .bearer_auth(&jwt)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(body)
                .send()
        })
        .buffer_unordered(concurrency)
        .map(|answer| -> anyhow::Result<()> {
            let answer = answer?;
            if !answer.status().is_success() {
                bail!("raw upload: HTTP {}", answer.status());
            }
            Ok(())
        })
        .try_collect::<()>()
        .await?;
    Ok(mib(bytes) / started.elapsed().as_secs_f64())
}

const BOUNDARY: &str = "wfp-bench-boundary-7d1f0c";

/// A `multipart/form-data` body: one base64 part per file, named by hash.
fn multipart(parts: &[(String, Vec<u8>)]) -> Vec<u8> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut body = Vec::new();
    for (hash, bytes) in parts {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{hash}\"\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(engine.encode(bytes).as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}
