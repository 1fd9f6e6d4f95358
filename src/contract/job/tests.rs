//! Contract v1 job decoding: the example from the issue, and each rule.

use super::*;
use crate::bundle::archive::ArchiveFormat;

pub(super) fn example() -> serde_json::Value {
    serde_json::json!({
      "version": 1,
      "job_id": "acme-site-42",
      "namespace": "customers",
      "script_name": "acme-site",
      "account_id": "0123456789abcdef0123456789abcdef",
      "bundle": {"bucket": "sites", "prefix": "acme/builds/42/"},
      "worker": {"main_module": "index.js", "bucket": "sites", "prefix": "acme/builds/42-worker/"},
      "compatibility_date": "2025-01-24",
      "compatibility_flags": [],
      "assets_config": {"html_handling": "auto-trailing-slash", "not_found_handling": "404-page"},
      "bindings": [],
      "assets_binding": "ASSETS",
      "correlation_id": "req-7f3a",
      "labels": {"tenant": "acme"}
    })
}

pub(super) fn decode(v: &serde_json::Value) -> Result<DeployJob, Box<InvalidJob>> {
    decode_job(&serde_json::to_vec(v).unwrap())
}

/// The folder of a prefix bundle.
fn site_folder(job: &DeployJob) -> String {
    match &job.bundle {
        BundleRef::Prefix(p) => p.folder_prefix(),
        other => panic!("not a prefix bundle: {other:?}"),
    }
}

pub(super) fn rejects(mutate: impl FnOnce(&mut serde_json::Value), field: &str) {
    let mut v = example();
    mutate(&mut v);
    let err = decode(&v).expect_err("should be rejected");
    assert!(
        err.message.contains(field),
        "{field} not named in: {}",
        err.message
    );
    assert_eq!(
        err.job_id.as_deref(),
        v["job_id"].as_str().filter(|s| is_job_id(s))
    );
}

#[test]
fn the_issue_example_decodes() {
    let job = decode(&example()).unwrap();
    assert_eq!(job.job_id, "acme-site-42");
    assert_eq!(site_folder(&job), "acme/builds/42/");
    assert_eq!(job.worker.as_ref().unwrap().main_module, "index.js");
    assert_eq!(job.assets_binding(), "ASSETS");
    assert_eq!(job.labels["tenant"], "acme");
}

#[test]
fn minimal_job_decodes_with_defaults() {
    let job = decode(&serde_json::json!({
        "version": 1, "job_id": "j1", "namespace": "ns", "script_name": "s",
        "bundle": {"bucket": "sites", "prefix": "a/b"}
    }))
    .unwrap();
    assert_eq!(site_folder(&job), "a/b/", "a prefix is a folder");
    assert!(job.worker.is_none());
    assert!(job.bindings.is_empty());
}

#[test]
fn not_json_is_invalid_without_an_id() {
    let err = decode_job(b"{not json").unwrap_err();
    assert!(err.message.contains("not valid JSON"), "{}", err.message);
    assert_eq!(err.job_id, None);
}

#[test]
fn schema_break_keeps_the_readable_id() {
    rejects(|v| v["surprise"] = 1.into(), "surprise");
    rejects(|v| v["bundle"]["extra"] = 1.into(), "extra");
    rejects(
        |v| {
            v.as_object_mut()
                .unwrap()
                .remove("namespace")
                .map(drop)
                .unwrap()
        },
        "namespace",
    );
    let mut v = example();
    v["version"] = 2.into();
    let err = decode(&v).unwrap_err();
    assert_eq!(err.job_id.as_deref(), Some("acme-site-42"));
    assert_eq!(err.correlation_id.as_deref(), Some("req-7f3a"));
}

#[test]
fn each_rule_names_its_field() {
    rejects(|v| v["version"] = 2.into(), "version");
    rejects(|v| v["job_id"] = "has space".into(), "job_id");
    rejects(|v| v["job_id"] = "x".repeat(129).into(), "job_id");
    rejects(|v| v["namespace"] = "has space".into(), "namespace");
    rejects(|v| v["script_name"] = "-lead".into(), "script_name");
    rejects(|v| v["account_id"] = "abc".into(), "account_id");
    rejects(|v| v["bundle"]["bucket"] = "A".into(), "bundle.bucket");
    rejects(
        |v| v["bundle"]["prefix"] = "a/../b/".into(),
        "bundle.prefix",
    );
    rejects(|v| v["bundle"]["prefix"] = "/abs/".into(), "bundle.prefix");
    rejects(
        |v| v["bundle"] = serde_json::json!({"bucket": "sites"}),
        "bundle.prefix",
    );
    rejects(
        |v| v["bundle"] = serde_json::json!({"bucket": "sites", "key": "a.bin"}),
        "bundle.key",
    );
    rejects(
        |v| v["bundle"] = serde_json::json!({"bucket": "sites", "key": "a", "format": "rar"}),
        "bundle.format",
    );
    rejects(
        |v| v["bundle"] = serde_json::json!({"bucket": "sites", "key": "a.zip", "root": "../x"}),
        "bundle.root",
    );
    rejects(
        |v| v["worker"]["main_module"] = "../x.js".into(),
        "worker.main_module",
    );
    rejects(
        |v| v["compatibility_date"] = "2025-13-01".into(),
        "compatibility_date",
    );
    rejects(
        |v| v["compatibility_flags"] = serde_json::json!(["Bad Flag"]),
        "compatibility_flags",
    );
    rejects(
        |v| v["assets_config"]["html_handling"] = "sometimes".into(),
        "html_handling",
    );
    rejects(
        |v| v["assets_config"]["not_found_handling"] = "x".into(),
        "not_found_handling",
    );
    rejects(|v| v["assets_config"]["cache"] = true.into(), "cache");
    rejects(
        |v| v["bindings"] = serde_json::json!([{"name": "X"}]),
        "bindings[0]",
    );
    rejects(
        |v| v["bindings"] = serde_json::json!([{"name": "ASSETS", "type": "kv_namespace"}]),
        "clashes",
    );
    rejects(|v| v["assets_binding"] = "1bad".into(), "assets_binding");
    rejects(
        |v| {
            v["bindings"] =
                serde_json::json!([{"name": "A", "type": "x"}, {"name": "A", "type": "y"}])
        },
        "bound twice",
    );
    rejects(
        |v| v["account_id"] = "0123456789ABCDEF0123456789ABCDEF".into(),
        "account_id",
    );
    rejects(
        |v| v["compatibility_date"] = "2999-01-01".into(),
        "in the future",
    );
    rejects(
        |v| v["worker"]["prefix"] = "acme/builds/42/worker/".into(),
        "overlaps",
    );
    rejects(|v| v["bundle"]["prefix"] = "".into(), "overlaps");
    rejects(
        |v| {
            v["labels"] = (0..33)
                .map(|i| (format!("k{i}"), serde_json::Value::from("v")))
                .collect::<serde_json::Map<_, _>>()
                .into()
        },
        "labels",
    );
    rejects(|v| v["labels"] = serde_json::json!({"k": 1}), "labels");
}

#[test]
fn run_worker_first_takes_a_flag_or_routes() {
    let mut v = example();
    v["assets_config"]["run_worker_first"] = true.into();
    assert!(decode(&v).is_ok());
    v["assets_config"]["run_worker_first"] = serde_json::json!(["/api/*", "!/api/static/*"]);
    assert!(decode(&v).is_ok());
    v["assets_config"]["run_worker_first"] = serde_json::json!(["api"]);
    assert!(decode(&v).is_err());
}

#[test]
fn worker_code_elsewhere_in_the_bucket_is_fine() {
    let mut v = example();
    v["worker"]["prefix"] = "acme/code/42/".into();
    assert!(decode(&v).is_ok());
    v["worker"]["bucket"] = "other-bucket".into();
    v["worker"]["prefix"] = "acme/builds/42/".into();
    assert!(decode(&v).is_ok(), "same prefix, other bucket");
}

#[test]
fn namespaces_may_hold_capitals() {
    let mut v = example();
    v["namespace"] = "Customers_EU".into();
    assert!(decode(&v).is_ok());
}

#[test]
fn a_broken_job_keeps_what_routes_and_correlates_it() {
    let mut v = example();
    v["correlation_id"] = "req 7f3a/with spaces".into();
    v["surprise"] = true.into();
    let err = decode(&v).unwrap_err();
    assert_eq!(err.correlation_id.as_deref(), Some("req 7f3a/with spaces"));
    assert_eq!(err.namespace.as_deref(), Some("customers"));
    assert_eq!(err.script_name.as_deref(), Some("acme-site"));
    assert_eq!(err.labels["tenant"], "acme");
}

#[test]
fn the_bundle_is_a_prefix_or_an_archive_on_the_same_wire() {
    let job = decode(&example()).unwrap();
    assert_eq!(
        job.bundle,
        BundleRef::Prefix(BundlePrefix {
            bucket: "sites".into(),
            prefix: "acme/builds/42/".into()
        })
    );
    assert_eq!(
        serde_json::to_string(&job.bundle).unwrap(),
        r#"{"bucket":"sites","prefix":"acme/builds/42/"}"#,
        "contract v1 JSON, byte for byte"
    );
    let archive: BundleRef = serde_json::from_str(r#"{"bucket":"sites","key":"a.tar"}"#).unwrap();
    assert_eq!(archive.bucket(), "sites");
    assert_eq!(
        serde_json::to_string(&archive).unwrap(),
        r#"{"bucket":"sites","key":"a.tar"}"#
    );
    let full: BundleRef = serde_json::from_str(
        r#"{"bucket":"sites","key":"builds/42","format":"tar.zst","root":"dist/"}"#,
    )
    .unwrap();
    let BundleRef::Archive(ref archive) = full else {
        panic!("not an archive: {full:?}");
    };
    assert_eq!(archive.archive_format(), Some(ArchiveFormat::TarZst));
    assert_eq!(archive.root_dir(), Some("dist"));
    assert_eq!(
        serde_json::to_string(&full).unwrap(),
        r#"{"bucket":"sites","key":"builds/42","format":"tar.zst","root":"dist/"}"#
    );
    let by_extension: BundleRef =
        serde_json::from_str(r#"{"bucket":"sites","key":"site.TGZ"}"#).unwrap();
    let BundleRef::Archive(archive) = by_extension else {
        panic!("not an archive");
    };
    assert_eq!(archive.archive_format(), Some(ArchiveFormat::TarGz));
    assert_eq!(archive.root_dir(), None);
    let null_key: BundleRef =
        serde_json::from_str(r#"{"bucket":"sites","prefix":"p/","key":null}"#).unwrap();
    assert!(matches!(null_key, BundleRef::Prefix(_)), "{null_key:?}");
}

#[test]
fn bundle_messages_are_those_of_contract_v1() {
    let message = |bundle: serde_json::Value| {
        let mut v = example();
        v["bundle"] = bundle;
        decode(&v).unwrap_err().message
    };
    let cases = [
        (
            serde_json::json!({"bucket": "sites"}),
            "bundle.prefix: missing",
        ),
        (
            serde_json::json!({"bucket": "sites", "prefix": null}),
            "bundle.prefix: missing",
        ),
        (
            serde_json::json!({"bucket": "sites", "key": "builds/42"}),
            "bundle.key: \"builds/42\" has no archive extension (.tar, .tar.gz, .tgz, .tar.zst, .tzst, .zip); give bundle.format",
        ),
        (
            serde_json::json!({"bucket": "sites", "key": "a.tar", "format": "tgz"}),
            "bundle.format: \"tgz\" is not one of tar, tar.gz, tar.zst, zip",
        ),
        (
            serde_json::json!({"bucket": "sites", "key": "site/", "format": "zip"}),
            "bundle.key: \"site/\" must name one object: 1-1024 characters, not ending with '/', no control characters",
        ),
        (
            serde_json::json!({"bucket": "sites", "key": "a.zip", "root": "dist//x"}),
            "bundle.root: \"dist//x\": empty segment",
        ),
        (
            serde_json::json!({"bucket": "sites", "prefix": "p/", "root": "dist"}),
            "bundle: format and root go with key, not prefix",
        ),
        (
            serde_json::json!({"bucket": "sites", "prefix": "p/", "key": "a.tar"}),
            "bundle: give either prefix or key, not both",
        ),
        (
            serde_json::json!({"bucket": "A", "prefix": "p/"}),
            "bundle.bucket: \"A\" is not a valid bucket name",
        ),
        (
            serde_json::json!({"bucket": "A", "key": "a.tar"}),
            "bundle.bucket: \"A\" is not a valid bucket name",
        ),
        (
            serde_json::json!({"bucket": "sites", "prefix": "p/", "extra": 1}),
            "job: bundle.extra: unknown field `extra`, expected one of `bucket`, `prefix`, `key`, `format`, `root`",
        ),
        (
            serde_json::json!({"prefix": "p/"}),
            "job: bundle: missing field `bucket`",
        ),
        (
            serde_json::json!({"bucket": 1, "prefix": "p/"}),
            "job: bundle.bucket: invalid type: integer `1`, expected a string",
        ),
        (
            serde_json::json!("str"),
            "job: bundle: invalid type: string \"str\", expected struct BundleRef",
        ),
    ];
    for (bundle, want) in cases {
        assert_eq!(message(bundle.clone()), want, "{bundle}");
    }
}
