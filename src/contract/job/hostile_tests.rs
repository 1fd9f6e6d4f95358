//! What a hostile producer sends: values sized to blow up error messages,
//! duplicate keys, and lists long enough to cost the worker memory, each
//! refused with a short `invalid_job` message that names the field and the
//! limit.

use serde_json::json;

use super::tests::{decode, example, rejects};
use super::*;

#[test]
fn a_huge_value_is_quoted_short_in_its_error() {
    // Regression: a 10 MB namespace made a 37 MB deploy.failed event.
    let huge = "N ".repeat(5 * 1024 * 1024);
    let quoted_max = crate::contract::MAX_ERROR_MESSAGE_BYTES + 64;
    let mut cases: Vec<(serde_json::Value, &str)> = Vec::new();
    let mut v = example();
    v["namespace"] = huge.clone().into();
    cases.push((v, "namespace: \"N N "));
    let mut v = example();
    v["version"] = huge.clone().into();
    cases.push((v, "job: version: invalid type: string"));
    let mut v = example();
    v[huge.as_str()] = 1.into();
    cases.push((v, "job: \"N N N"));
    let mut v = example();
    v["labels"] = serde_json::json!({huge.clone(): 1});
    cases.push((v, "job: labels.\"N N N"));
    for (v, start) in cases {
        let err = decode(&v).unwrap_err();
        assert!(err.message.starts_with(start), "{:.80}", err.message);
        assert!(err.message.contains(" in all)"), "{}", err.message);
        assert!(
            err.message.len() < quoted_max,
            "{} bytes",
            err.message.len()
        );
    }
    let mut v = example();
    v["namespace"] = huge.into();
    let err = decode(&v).unwrap_err();
    assert!(
        err.message
            .contains("… (10485760 characters in all) must be 1-63"),
        "{:.300}",
        err.message
    );
}

#[test]
fn duplicate_keys_are_refused_at_every_depth() {
    // Regression: the last of two equal keys won, silently.
    let body = serde_json::to_string(&example()).unwrap();
    let twice = |field: &str, again: &str| {
        let at = body.find(field).unwrap();
        format!("{}{again},{}", &body[..at], &body[at..])
    };
    let cases = [
        (
            twice("\"namespace\"", r#""namespace":"other""#),
            "job: duplicate key \"namespace\"",
        ),
        (
            twice("\"prefix\"", r#""prefix":"other/""#),
            "job: bundle: duplicate key \"prefix\"",
        ),
        (
            twice("\"main_module\"", r#""main_module":"x.js""#),
            "job: worker: duplicate key \"main_module\"",
        ),
        (
            twice("\"html_handling\"", r#""html_handling":"none""#),
            "job: assets_config: duplicate key \"html_handling\"",
        ),
        (
            twice("\"tenant\"", r#""tenant":"evil""#),
            "job: labels: duplicate key \"tenant\"",
        ),
    ];
    for (body, start) in cases {
        let err = decode_job(body.as_bytes()).unwrap_err();
        assert!(err.message.starts_with(start), "{}", err.message);
        assert_eq!(
            err.job_id, None,
            "nothing is read from a job that says two things"
        );
    }
}

/// Asserts the example job, changed by `mutate`, is refused with a
/// message starting with `start`.
fn refused_with(mutate: impl FnOnce(&mut serde_json::Value), start: &str) {
    let mut v = example();
    mutate(&mut v);
    let err = decode(&v).unwrap_err();
    assert!(err.message.starts_with(start), "{}", err.message);
}

#[test]
fn lists_are_capped_naming_the_limit() {
    // Regression: 100,000 bindings (5.5 MB) left 500-666 MB allocated.
    let binding = |i: usize| json!({"type": "plain_text", "name": format!("B{i}"), "text": "x"});
    let mut v = example();
    v["bindings"] = (0..256).map(binding).collect();
    assert!(decode(&v).is_ok(), "256 bindings are fine");
    refused_with(
        |v| v["bindings"] = (0..257).map(binding).collect(),
        "bindings: 257 bindings given, at most 256 allowed",
    );
    refused_with(
        |v| {
            v["bindings"] =
                json!([{"type": "plain_text", "name": "B", "text": "x".repeat(16 * 1024)}])
        },
        "bindings[0]: 16426 bytes as JSON, at most 16384 allowed",
    );
    refused_with(
        |v| v["compatibility_flags"] = vec!["nodejs_compat"; 65].into(),
        "compatibility_flags: 65 flags given, at most 64 allowed",
    );
    refused_with(
        |v| v["compatibility_flags"] = json!(["f".repeat(65)]),
        "compatibility_flags: \"fff",
    );
    rejects(
        |v| v["compatibility_flags"] = json!(["f".repeat(65)]),
        "longer than 64 characters",
    );
    refused_with(
        |v| v["assets_config"]["run_worker_first"] = vec!["/api/*"; 101].into(),
        "assets_config.run_worker_first: 101 routes given, at most 100 allowed",
    );
    refused_with(
        |v| v["labels"] = (0..33).map(|i| (format!("k{i}"), json!("v"))).collect(),
        "labels: 33 labels given, at most 32 allowed",
    );
}
