//! What `deploy` tells a person at the end: one line for a success or a
//! dry run, and for a failure the code, the message and what to do next.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::event_line::bytes;
use crate::contract::{DeployJob, ErrorCode, FailureInfo, Success};
use crate::pipeline::Planned;

/// `deployed customers/acme: 12 files, 1.2 MiB; uploaded 3 files (40.0 KiB)
/// in 1 bucket; 9 cache hits; 1.4s`.
pub fn succeeded(job: &DeployJob, success: &Success, took: Duration) -> String {
    let (manifest, upload) = (&success.manifest, &success.upload);
    let mut line = format!(
        "deployed {}/{}: {} files, {}; uploaded {} files ({}) in {} bucket{}",
        job.namespace,
        job.script_name,
        manifest.files,
        bytes(manifest.bytes),
        upload.files,
        bytes(upload.bytes),
        upload.buckets,
        if upload.buckets == 1 { "" } else { "s" },
    );
    if let Some(hits) = manifest.cache_hits {
        line.push_str(&format!("; {hits} cache hits"));
    }
    line.push_str(&format!("; {}", seconds(took)));
    if let Some(id) = &success.deployment.id {
        line.push_str(&format!(" (deployment {id})"));
    }
    line
}

/// The dry run's line: what was checked, and what only a deploy can tell.
pub fn planned(job: &DeployJob, planned: &Planned, took: Duration) -> String {
    let manifest = &planned.manifest;
    let mut line = format!(
        "dry run of {}/{}: {} files, {} valid (manifest sha256 {})",
        job.namespace,
        job.script_name,
        manifest.files,
        bytes(manifest.bytes),
        &manifest.sha256[..manifest.sha256.len().min(12)],
    );
    if planned.modules > 0 {
        line.push_str(&format!(", {} worker module(s)", planned.modules));
    }
    if let Some(hits) = manifest.cache_hits {
        line.push_str(&format!("; {hits} cache hits"));
    }
    line.push_str(&format!(
        "; {}. Nothing was sent to Cloudflare: which files it lacks, and so what \
         a deploy would upload, only Cloudflare can say",
        seconds(took)
    ));
    line
}

/// The dry run for `--json`: the job's identity and the manifest summary.
pub fn planned_json(job: &DeployJob, account_id: &str, planned: &Planned, took: Duration) -> Value {
    json!({
        "dry_run": true,
        "job_id": job.job_id,
        "account_id": account_id,
        "namespace": job.namespace,
        "script_name": job.script_name,
        "manifest": planned.manifest,
        "worker_modules": planned.modules,
        "duration_ms": took.as_millis() as u64,
        "uploaded": null,
    })
}

/// The error line of a failed deploy: step, code and message, then what
/// to do next.
pub fn failed(what: &str, failure: &FailureInfo) -> String {
    format!(
        "{what} failed at {}: {}: {} ({})",
        failure.step,
        failure.code,
        failure.message,
        next_step(failure)
    )
}

/// What a person can do about a failure of this code.
fn next_step(failure: &FailureInfo) -> &'static str {
    match failure.code {
        ErrorCode::InvalidJob => "fix the flag or job field it names; --help lists them",
        ErrorCode::BundleNotFound => "check the directory, archive or s3:// location",
        ErrorCode::BundleInvalid | ErrorCode::BundleTooLarge => {
            "fix or remove the file it names (--dry-run checks without deploying)"
        }
        ErrorCode::StorageError if failure.retryable => "S3 failed: try again",
        ErrorCode::StorageError => "check the S3 settings and credentials (check-config)",
        ErrorCode::CloudflareAuth => {
            "check CLOUDFLARE_API_TOKEN and that it may edit this account's Workers"
        }
        ErrorCode::CloudflareRejected => "Cloudflare refused it: fix what it names",
        ErrorCode::CloudflareUnavailable => "Cloudflare failed: try again",
        ErrorCode::Superseded => "a newer build of this script is live already",
        ErrorCode::Internal => "a bug: please report it with the log",
    }
}

/// `812 ms`, `1.4s`.
fn seconds(took: Duration) -> String {
    if took < Duration::from_secs(1) {
        format!("{} ms", took.as_millis())
    } else {
        format!("{:.1}s", took.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{DeploymentInfo, ManifestSummary, Step, UploadSummary};

    fn job() -> DeployJob {
        crate::contract::decode_job(
            br#"{"version":1,"job_id":"j-1","namespace":"customers","script_name":"acme",
                "bundle":{"bucket":"sites","prefix":"a/"}}"#,
        )
        .unwrap()
    }

    fn manifest() -> ManifestSummary {
        ManifestSummary {
            files: 12,
            bytes: 1536,
            sha256: "ab".repeat(32),
            cache_hits: Some(9),
            bytes_read: Some(10),
        }
    }

    #[test]
    fn a_success_is_one_line_with_what_was_uploaded() {
        let success = Success {
            manifest: manifest(),
            upload: UploadSummary {
                sessions: 1,
                buckets: 1,
                files: 3,
                bytes: 600,
                bytes_read: Some(600),
            },
            deployment: DeploymentInfo {
                id: Some("dep-1".into()),
                ..DeploymentInfo::default()
            },
        };
        assert_eq!(
            succeeded(&job(), &success, Duration::from_millis(1400)),
            "deployed customers/acme: 12 files, 1.5 KiB; uploaded 3 files (600 B) in 1 bucket; \
             9 cache hits; 1.4s (deployment dep-1)"
        );
    }

    #[test]
    fn a_dry_run_says_cloudflare_was_not_asked() {
        let line = planned(
            &job(),
            &Planned {
                manifest: manifest(),
                modules: 0,
            },
            Duration::from_millis(5),
        );
        assert!(
            line.starts_with("dry run of customers/acme: 12 files, 1.5 KiB valid"),
            "{line}"
        );
        assert!(line.contains("Nothing was sent to Cloudflare"), "{line}");
    }

    #[test]
    fn a_failure_names_step_code_message_and_what_next() {
        let failure = FailureInfo::new(
            ErrorCode::BundleNotFound,
            Step::List,
            true,
            "./site/: no files",
        );
        assert_eq!(
            failed("deploy", &failure),
            "deploy failed at list: bundle_not_found: ./site/: no files \
             (check the directory, archive or s3:// location)"
        );
    }
}
