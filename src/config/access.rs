//! Which S3 objects a job may read, as the platform configured it.
//!
//! A job names its bucket and prefix, and the worker's credentials can
//! often read much more than one tenant's files: an empty `bundle.prefix`
//! once deployed a whole bucket, other tenants' files included, and any
//! bucket the credentials could read could be named. [`check_bundle_access`]
//! holds a job to the `[s3]` settings before anything is read:
//!
//! - `allow_empty_prefix` (off): an empty prefix, the whole bucket, is
//!   refused unless the platform allows it;
//! - `allowed_buckets` (empty = any): the bundle's and the worker code's
//!   bucket must be listed;
//! - `allowed_prefixes` (empty = any): each prefix must lie in one of these
//!   folders, where `{label}` stands for the value of the job's label of
//!   that name. `sites/{tenant}/` lets a job labelled `tenant: acme` read
//!   under `sites/acme/` and nowhere else. A pattern naming a label the job
//!   lacks, or whose value is not one plain path segment (empty, `.`, `..`,
//!   or holding a `/`), allows nothing for that job.
//!
//! Patterns are folders (they end with `/`), so `sites/{tenant}/` never lets
//! `acme` read `acme-corp`'s files; their shape is checked when settings load.

use std::collections::BTreeMap;

use super::S3Settings;
use crate::contract::quote::quoted;
use crate::contract::{BundleRef, DeployJob};

/// Whether `job` may read what it names, under `s3`'s rules. The message
/// names the field, as the job's own rules do; the pipeline reports it as
/// `invalid_job` at `validate`.
pub fn check_bundle_access(job: &DeployJob, s3: &S3Settings) -> Result<(), String> {
    check_bundle_ref_access(job, s3)?;
    check_worker_access(job, s3)
}

/// The bundle's half of [`check_bundle_access`] (a one-shot deploy that
/// takes the site's files from local disk reads no bundle from S3).
pub fn check_bundle_ref_access(job: &DeployJob, s3: &S3Settings) -> Result<(), String> {
    check_bucket("bundle.bucket", job.bundle.bucket(), s3)?;
    match &job.bundle {
        BundleRef::Prefix(bundle) => {
            check_prefix("bundle.prefix", &bundle.folder_prefix(), s3, &job.labels)
        }
        BundleRef::Archive(archive) => check_under("bundle.key", &archive.key, s3, &job.labels),
    }
}

/// The worker code's half of [`check_bundle_access`].
pub fn check_worker_access(job: &DeployJob, s3: &S3Settings) -> Result<(), String> {
    if let Some(worker) = &job.worker {
        let bucket = worker.bucket.as_deref().unwrap_or(job.bundle.bucket());
        check_bucket("worker.bucket", bucket, s3)?;
        check_prefix("worker.prefix", &worker.folder_prefix(), s3, &job.labels)?;
    }
    Ok(())
}

/// Checks the shape of every `s3.allowed_prefixes` pattern, at load time.
pub(super) fn check_patterns(s3: &S3Settings) -> Result<(), String> {
    for pattern in &s3.allowed_prefixes {
        parse(pattern).map_err(|why| format!("s3.allowed_prefixes: {} {why}", quoted(pattern)))?;
    }
    Ok(())
}

fn check_bucket(field: &str, bucket: &str, s3: &S3Settings) -> Result<(), String> {
    if s3.allowed_buckets.is_empty() || s3.allowed_buckets.iter().any(|b| b == bucket) {
        return Ok(());
    }
    Err(format!(
        "{field}: {} is not a bucket this worker may read (s3.allowed_buckets)",
        quoted(bucket)
    ))
}

/// A prefix, as a folder: not empty unless allowed, and under a pattern.
fn check_prefix(
    field: &str,
    folder: &str,
    s3: &S3Settings,
    labels: &BTreeMap<String, String>,
) -> Result<(), String> {
    if folder.is_empty() && !s3.allow_empty_prefix {
        return Err(format!(
            "{field}: an empty prefix names the whole bucket, other tenants' files included; \
             refused unless s3.allow_empty_prefix is set"
        ));
    }
    check_under(field, folder, s3, labels)
}

/// `path` (a folder, or an archive's key) starts with one of the allowed
/// folders, expanded for this job's labels.
fn check_under(
    field: &str,
    path: &str,
    s3: &S3Settings,
    labels: &BTreeMap<String, String>,
) -> Result<(), String> {
    if s3.allowed_prefixes.is_empty() {
        return Ok(());
    }
    let folders: Vec<String> = s3
        .allowed_prefixes
        .iter()
        .filter_map(|pattern| expand(pattern, labels))
        .collect();
    if folders
        .iter()
        .any(|folder| path.starts_with(folder.as_str()))
    {
        return Ok(());
    }
    let allowed = if folders.is_empty() {
        "none for this job: the patterns name labels it lacks".to_string()
    } else {
        let shown: Vec<String> = folders.iter().map(|f| quoted(f).to_string()).collect();
        format!("for this job: {}", shown.join(", "))
    };
    Err(format!(
        "{field}: {} is outside the folders this worker may read \
         (s3.allowed_prefixes; {allowed})",
        quoted(path)
    ))
}

/// A pattern's pieces: text as written, or the name of a label.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Label(&'a str),
}

/// Splits a pattern into its pieces; the error says what is wrong with it.
fn parse(pattern: &str) -> Result<Vec<Piece<'_>>, &'static str> {
    if !pattern.ends_with('/') || pattern.starts_with('/') {
        return Err("must be a folder: end with '/', not start with it");
    }
    let mut pieces = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("has a '}' without its '{'");
        }
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            return Err("has a '{' without its '}'");
        };
        let name = &rest[open + 1..close];
        if name.is_empty() || name.contains(['{', '/']) {
            return Err("must name a label in each {...}");
        }
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        pieces.push(Piece::Label(name));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// The folder `pattern` allows for a job with `labels`; `None` when it
/// names a label the job lacks, or one whose value is not a plain segment.
fn expand(pattern: &str, labels: &BTreeMap<String, String>) -> Option<String> {
    let mut folder = String::new();
    for piece in parse(pattern).ok()? {
        match piece {
            Piece::Text(text) => folder.push_str(text),
            Piece::Label(name) => {
                let value = labels.get(name)?;
                if matches!(value.as_str(), "" | "." | "..") || value.contains('/') {
                    return None;
                }
                folder.push_str(value);
            }
        }
    }
    Some(folder)
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
