//! The access rules: empty prefixes, allowed buckets, prefix patterns.

use serde_json::{Value, json};

use super::*;
use crate::contract::decode_job;

fn job(bundle: Value, worker: Option<Value>, labels: Value) -> DeployJob {
    let mut body = json!({
        "version": 1, "job_id": "j-1", "namespace": "customers", "script_name": "s",
        "bundle": bundle, "labels": labels
    });
    if let Some(worker) = worker {
        body["worker"] = worker;
    }
    decode_job(body.to_string().as_bytes()).unwrap()
}

fn site(bucket: &str, prefix: &str) -> DeployJob {
    job(
        json!({"bucket": bucket, "prefix": prefix}),
        None,
        json!({"tenant": "acme"}),
    )
}

fn s3(buckets: &[&str], prefixes: &[&str]) -> S3Settings {
    S3Settings {
        allowed_buckets: buckets.iter().map(|b| b.to_string()).collect(),
        allowed_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        ..S3Settings::default()
    }
}

fn refused(job: &DeployJob, s3: &S3Settings) -> String {
    check_bundle_access(job, s3).expect_err("should be refused")
}

#[test]
fn the_defaults_allow_any_bucket_and_prefix_but_not_the_whole_bucket() {
    // Regression: `bundle.prefix: ""` deployed a whole bucket, other
    // tenants' files included.
    let open = S3Settings::default();
    assert_eq!(
        check_bundle_access(&site("sites", "acme/42/"), &open),
        Ok(())
    );
    assert_eq!(check_bundle_access(&site("other", "x"), &open), Ok(()));
    let whole = refused(&site("sites", ""), &open);
    assert!(
        whole.starts_with("bundle.prefix: an empty prefix"),
        "{whole}"
    );
    assert!(whole.contains("s3.allow_empty_prefix"), "{whole}");
    let code = job(
        json!({"bucket": "sites", "prefix": "acme/42/"}),
        Some(json!({"main_module": "index.js", "bucket": "code", "prefix": ""})),
        json!({}),
    );
    assert!(refused(&code, &open).starts_with("worker.prefix: an empty prefix"));
    let allowed = S3Settings {
        allow_empty_prefix: true,
        ..S3Settings::default()
    };
    assert_eq!(check_bundle_access(&site("sites", ""), &allowed), Ok(()));
}

#[test]
fn only_listed_buckets_may_be_read_by_bundle_and_worker_code() {
    let rules = s3(&["sites", "code"], &[]);
    assert_eq!(check_bundle_access(&site("sites", "a/"), &rules), Ok(()));
    let other = refused(&site("payroll", "a/"), &rules);
    assert_eq!(
        other,
        "bundle.bucket: \"payroll\" is not a bucket this worker may read (s3.allowed_buckets)"
    );
    let code_in = |bucket: &str| {
        job(
            json!({"bucket": "sites", "prefix": "a/"}),
            Some(json!({"main_module": "i.js", "bucket": bucket, "prefix": "w/"})),
            json!({}),
        )
    };
    assert_eq!(check_bundle_access(&code_in("code"), &rules), Ok(()));
    assert!(refused(&code_in("payroll"), &rules).starts_with("worker.bucket: \"payroll\""));
}

#[test]
fn prefixes_must_lie_in_a_folder_expanded_from_the_job_labels() {
    let rules = s3(&[], &["sites/{tenant}/", "shared/"]);
    let ok = |prefix: &str| check_bundle_access(&site("bkt", prefix), &rules);
    assert_eq!(ok("sites/acme/builds/42/"), Ok(()));
    assert_eq!(ok("sites/acme"), Ok(()), "a prefix is a folder");
    assert_eq!(ok("shared/fonts/"), Ok(()));
    for outside in ["sites/acme-corp/", "sites/", "sites/other/acme/", "acme/"] {
        let err = ok(outside).expect_err(outside);
        assert!(err.starts_with("bundle.prefix: "), "{err}");
        assert!(
            err.contains("(s3.allowed_prefixes; for this job: \"sites/acme/\", \"shared/\")"),
            "{err}"
        );
    }
    let worker = job(
        json!({"bucket": "bkt", "prefix": "sites/acme/site/"}),
        Some(json!({"main_module": "i.js", "prefix": "sites/evil/code/"})),
        json!({"tenant": "acme"}),
    );
    assert!(refused(&worker, &rules).starts_with("worker.prefix: \"sites/evil/code/\""));
}

#[test]
fn a_pattern_allows_nothing_for_a_job_without_a_plain_label_value() {
    let rules = s3(&[], &["sites/{tenant}/"]);
    let unlabelled = job(
        json!({"bucket": "bkt", "prefix": "sites/acme/"}),
        None,
        json!({}),
    );
    let err = refused(&unlabelled, &rules);
    assert!(err.contains("none for this job"), "{err}");
    for value in ["", ".", "..", "acme/../other", "a/b"] {
        let labelled = job(
            json!({"bucket": "bkt", "prefix": "sites/a/b/"}),
            None,
            json!({ "tenant": value }),
        );
        assert!(check_bundle_access(&labelled, &rules).is_err(), "{value:?}");
    }
}

#[test]
fn patterns_are_checked_when_settings_load() {
    let good = s3(&[], &["{tenant}/", "sites/{region}/{tenant}/", "shared/"]);
    assert_eq!(check_patterns(&good), Ok(()));
    for (pattern, why) in [
        ("sites/{tenant}", "must be a folder"),
        ("/sites/", "must be a folder"),
        ("sites/{tenant/", "without its '}'"),
        ("sites/tenant}/", "without its '{'"),
        ("sites/{}/", "must name a label"),
    ] {
        let err = check_patterns(&s3(&[], &[pattern])).unwrap_err();
        assert!(err.starts_with("s3.allowed_prefixes: "), "{err}");
        assert!(err.contains(why), "{pattern}: {err}");
    }
}
