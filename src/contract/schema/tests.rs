//! The schemas: the checked-in files are current, they are valid 2020-12
//! schemas, and they agree with the worker's own decoding on every rule a
//! schema can state.

use serde_json::{Value, json};

use super::*;
use crate::contract::decode_job;

fn validator(which: ContractSchema) -> jsonschema::Validator {
    jsonschema::draft202012::new(which.schema().as_value())
        .unwrap_or_else(|e| panic!("{} does not compile: {e}", which.file_name()))
}

#[test]
fn checked_in_schema_files_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contract");
    for which in ContractSchema::ALL {
        let path = dir.join(which.file_name());
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == which.render(),
            "{} is stale or missing: run `make contract` and commit the result",
            path.display()
        );
    }
}

#[test]
fn schemas_are_valid_draft_2020_12() {
    for which in ContractSchema::ALL {
        let schema = which.schema();
        assert_eq!(
            schema.get("$schema"),
            Some(&json!("https://json-schema.org/draft/2020-12/schema"))
        );
        if let Err(e) = jsonschema::meta::validate(schema.as_value()) {
            panic!("{}: {e}", which.file_name());
        }
    }
}

fn example_job() -> Value {
    json!({
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
      "bindings": [{"type": "plain_text", "name": "GREETING", "text": "hi"}],
      "assets_binding": "ASSETS",
      "correlation_id": "req-7f3a",
      "labels": {"tenant": "acme"}
    })
}

/// Sets `path` (dot-separated) in the example job; `None` removes it.
fn with(path: &str, value: Option<Value>) -> Value {
    let mut job = example_job();
    let (parent, last) = match path.rsplit_once('.') {
        Some((parent, last)) => (parent.split('.').fold(&mut job, |v, k| &mut v[k]), last),
        None => (&mut job, path),
    };
    let object = parent.as_object_mut().expect("an object");
    match value {
        Some(value) => object.insert(last.to_string(), value),
        None => object.remove(last),
    };
    job
}

/// Every rule a JSON Schema can state: the schema and `decode_job` must
/// give the same answer, so a producer that validates with the schema is
/// refused by the worker only for the rules listed in
/// [`rules_only_the_worker_checks`].
#[test]
fn schema_and_decoder_agree() {
    let cases: Vec<(&str, Value)> = vec![
        ("the example", example_job()),
        (
            "minimal",
            json!({"version": 1, "job_id": "j", "namespace": "n", "script_name": "s",
            "bundle": {"bucket": "abc", "prefix": ""}}),
        ),
        ("version 2", with("version", Some(json!(2)))),
        ("unknown field", with("colour", Some(json!("red")))),
        ("no job_id", with("job_id", None)),
        ("job_id with a space", with("job_id", Some(json!("a b")))),
        (
            "job_id of 129",
            with("job_id", Some(json!("a".repeat(129)))),
        ),
        (
            "job_id of 128",
            with("job_id", Some(json!("a".repeat(128)))),
        ),
        (
            "namespace ending in -",
            with("namespace", Some(json!("ns-"))),
        ),
        (
            "namespace of 63",
            with("namespace", Some(json!("N".repeat(63)))),
        ),
        (
            "namespace of 64",
            with("namespace", Some(json!("N".repeat(64)))),
        ),
        ("uppercase script", with("script_name", Some(json!("Acme")))),
        ("script of one char", with("script_name", Some(json!("a")))),
        (
            "script starting with -",
            with("script_name", Some(json!("-a"))),
        ),
        ("short account", with("account_id", Some(json!("0123")))),
        (
            "uppercase account",
            with(
                "account_id",
                Some(json!("0123456789ABCDEF0123456789ABCDEF")),
            ),
        ),
        ("null account", with("account_id", Some(Value::Null))),
        ("bundle without prefix", with("bundle.prefix", None)),
        (
            "bundle with key",
            with("bundle.key", Some(json!("site.tar"))),
        ),
        (
            "bundle unknown field",
            with("bundle.region", Some(json!("eu"))),
        ),
        ("bucket too short", with("bundle.bucket", Some(json!("ab")))),
        (
            "bucket uppercase",
            with("bundle.bucket", Some(json!("Sites"))),
        ),
        (
            "prefix with leading /",
            with("bundle.prefix", Some(json!("/a"))),
        ),
        (
            "prefix with ..",
            with("bundle.prefix", Some(json!("a/../b"))),
        ),
        ("prefix with .", with("bundle.prefix", Some(json!("a/./b")))),
        (
            "prefix with a dot file",
            with("bundle.prefix", Some(json!("a/.well-known/"))),
        ),
        (
            "prefix with a tab",
            with("bundle.prefix", Some(json!("a\tb"))),
        ),
        (
            "prefix of 1025",
            with("bundle.prefix", Some(json!("a".repeat(1025)))),
        ),
        (
            "main_module absolute",
            with("worker.main_module", Some(json!("/index.js"))),
        ),
        (
            "main_module with ..",
            with("worker.main_module", Some(json!("../index.js"))),
        ),
        (
            "main_module empty segment",
            with("worker.main_module", Some(json!("src//index.js"))),
        ),
        (
            "main_module nested",
            with("worker.main_module", Some(json!("src/index.js"))),
        ),
        (
            "worker bucket bad",
            with("worker.bucket", Some(json!("-x-"))),
        ),
        (
            "worker unknown field",
            with("worker.entry", Some(json!("x"))),
        ),
        (
            "date not a date",
            with("compatibility_date", Some(json!("2025-1-24"))),
        ),
        (
            "flag uppercase",
            with("compatibility_flags", Some(json!(["Nodejs_compat"]))),
        ),
        (
            "flag fine",
            with("compatibility_flags", Some(json!(["nodejs_compat"]))),
        ),
        (
            "html_handling unknown",
            with("assets_config.html_handling", Some(json!("auto"))),
        ),
        (
            "not_found_handling spa",
            with(
                "assets_config.not_found_handling",
                Some(json!("single-page-application")),
            ),
        ),
        (
            "assets_config unknown",
            with("assets_config.headers", Some(json!("x"))),
        ),
        (
            "run_worker_first true",
            with("assets_config.run_worker_first", Some(json!(true))),
        ),
        (
            "run_worker_first routes",
            with(
                "assets_config.run_worker_first",
                Some(json!(["/api/*", "!/api/docs"])),
            ),
        ),
        (
            "run_worker_first bad route",
            with("assets_config.run_worker_first", Some(json!(["api"]))),
        ),
        (
            "binding without name",
            with("bindings", Some(json!([{"type": "plain_text"}]))),
        ),
        (
            "binding bad name",
            with("bindings", Some(json!([{"type": "kv", "name": "1X"}]))),
        ),
        (
            "binding not an object",
            with("bindings", Some(json!(["KV"]))),
        ),
        (
            "assets_binding bad",
            with("assets_binding", Some(json!("my-assets"))),
        ),
        (
            "correlation_id empty",
            with("correlation_id", Some(json!(""))),
        ),
        (
            "correlation_id newline",
            with("correlation_id", Some(json!("a\nb"))),
        ),
        (
            "labels of 33",
            with(
                "labels",
                Some(Value::Object(
                    (0..33).map(|i| (format!("k{i}"), json!("v"))).collect(),
                )),
            ),
        ),
        ("label key empty", with("labels", Some(json!({"": "v"})))),
        (
            "label value long",
            with("labels", Some(json!({"k": "v".repeat(257)}))),
        ),
        (
            "label value not a string",
            with("labels", Some(json!({"k": 1}))),
        ),
    ];
    let schema = validator(ContractSchema::Job);
    for (name, job) in cases {
        let by_schema = schema.is_valid(&job);
        let by_decoder = decode_job(&serde_json::to_vec(&job).unwrap());
        assert_eq!(
            by_schema,
            by_decoder.is_ok(),
            "{name}: the schema says {by_schema}, the decoder {by_decoder:?}"
        );
    }
}

/// The rules a schema cannot state, each pinned so the list above stays
/// the complete list of differences: valid by the schema, refused by the
/// worker.
#[test]
fn rules_only_the_worker_checks() {
    let cases = [
        (
            "worker code inside the bundle",
            with("worker.prefix", Some(json!("acme/builds/42/worker/"))),
        ),
        (
            "a binding named twice",
            with(
                "bindings",
                Some(json!([
            {"type": "plain_text", "name": "A"}, {"type": "plain_text", "name": "A"}])),
            ),
        ),
        (
            "a date in the future",
            with("compatibility_date", Some(json!("2999-01-01"))),
        ),
        (
            "a date that does not exist",
            with("compatibility_date", Some(json!("2025-02-30"))),
        ),
    ];
    let schema = validator(ContractSchema::Job);
    for (name, job) in cases {
        assert!(schema.is_valid(&job), "{name}: the schema should accept it");
        assert!(
            decode_job(&serde_json::to_vec(&job).unwrap()).is_err(),
            "{name}: the worker should refuse it"
        );
    }
}

#[test]
fn published_events_match_the_event_schema() {
    use crate::contract::{
        CloudEvent, DeploymentInfo, EventData, EventKind, FailureInfo, JobFields, ManifestSummary,
        ProgressData, Step, UploadSummary,
    };
    let fields = JobFields {
        job_id: "acme-site-42".into(),
        correlation_id: None,
        labels: Default::default(),
        account_id: None,
        namespace: Some("customers".into()),
        script_name: Some("acme-site".into()),
    };
    let at = chrono::DateTime::UNIX_EPOCH;
    let started = CloudEvent::new(
        EventKind::Started,
        "w",
        EventData::new(fields.clone(), 1),
        at,
    );
    let succeeded = CloudEvent::new(
        EventKind::Succeeded,
        "w",
        EventData {
            duration_ms: Some(1),
            manifest: Some(ManifestSummary {
                files: 1,
                bytes: 2,
                sha256: "ab".into(),
                cache_hits: None,
                bytes_read: None,
            }),
            upload: Some(UploadSummary::default()),
            deployment: Some(DeploymentInfo::default()),
            ..EventData::new(fields.clone(), 1)
        },
        at,
    );
    let failed = CloudEvent::new(
        EventKind::Failed,
        "w",
        EventData {
            duration_ms: Some(1),
            error: Some(FailureInfo::invalid_job("job: nope")),
            ..EventData::new(fields.clone(), 2)
        },
        at,
    );
    let progress = CloudEvent::new(
        EventKind::Progress,
        "w",
        EventData {
            progress: ProgressData {
                step: Some(Step::Hash),
                sequence: Some(3),
                files_done: Some(1),
                files_total: Some(2),
                ..ProgressData::default()
            },
            ..EventData::new(fields, 1)
        },
        at,
    );
    let schema = validator(ContractSchema::Event);
    for event in [&started, &succeeded, &failed, &progress] {
        let json = serde_json::to_value(event).unwrap();
        if let Err(e) = schema.validate(&json) {
            panic!("{}: {e} at {}", event.id, e.instance_path());
        }
    }
    // A terminal event without its part is refused.
    let mut bare = serde_json::to_value(&failed).unwrap();
    bare["data"].as_object_mut().unwrap().remove("error");
    assert!(
        !schema.is_valid(&bare),
        "a failed event must carry its error"
    );
}
