//! The contract files under `contract/`: the AsyncAPI document resolves
//! (every channel, operation, message and `$ref`), names what the worker
//! really declares and publishes, and its examples and the README's
//! validate against the JSON Schemas. (The schemas' freshness is a unit
//! test beside their generator, `src/contract/schema.rs`.)

use serde_json::Value;
use wfp_deployer::config::Settings;
use wfp_deployer::contract::EventKind;

use crate::helpers::files::{json, readme_json_after, yaml};

mod topology;

const ASYNCAPI: &str = "contract/asyncapi.yaml";

/// Every event kind the worker publishes. The `match` has no wildcard, so a
/// new kind does not compile here until the AsyncAPI document (and this
/// list) describe it.
fn event_kinds() -> Vec<EventKind> {
    let kinds = [
        EventKind::Started,
        EventKind::Retrying,
        EventKind::Succeeded,
        EventKind::Failed,
        EventKind::Progress,
    ];
    for kind in kinds {
        match kind {
            EventKind::Started
            | EventKind::Retrying
            | EventKind::Succeeded
            | EventKind::Failed
            | EventKind::Progress => {}
        }
    }
    kinds.to_vec()
}

/// Resolves a reference of the AsyncAPI document: `#/pointer` inside it,
/// `./file#/pointer` in a file beside it (JSON or YAML).
fn resolve(doc: &Value, reference: &str) -> Result<Value, String> {
    let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
    let target = if file.is_empty() {
        doc.clone()
    } else {
        let relative = format!("contract/{}", file.trim_start_matches("./"));
        if !crate::helpers::files::repo_path(&relative).is_file() {
            return Err(format!("{reference}: no file {relative}"));
        }
        if relative.ends_with(".json") {
            json(&relative)
        } else {
            yaml(&relative)
        }
    };
    target
        .pointer(pointer)
        .cloned()
        .ok_or_else(|| format!("{reference}: nothing at {pointer:?}"))
}

/// Follows `$ref`s until a value that is not a reference.
fn deref(doc: &Value, value: &Value) -> Value {
    let mut value = value.clone();
    while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
        value = resolve(doc, reference).unwrap_or_else(|e| panic!("{ASYNCAPI}: {e}"));
    }
    value
}

/// Every `$ref` in the document, with where it is.
fn references(value: &Value, at: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    out.push((at.clone(), child.as_str().unwrap_or_default().to_string()));
                } else {
                    references(child, format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                references(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn object<'a>(value: &'a Value, what: &str) -> &'a serde_json::Map<String, Value> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("{ASYNCAPI}: {what} must be an object"))
}

/// The JSON Schema a message's payload names, compiled.
fn payload_validator(doc: &Value, message: &Value) -> jsonschema::Validator {
    let payload = deref(doc, &message["payload"]);
    assert_eq!(
        payload["schemaFormat"], "application/schema+json;version=2020-12",
        "payloads are the generated JSON Schemas"
    );
    let schema = deref(doc, &payload["schema"]);
    jsonschema::draft202012::new(&schema).expect("the payload schema compiles")
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

#[test]
fn asyncapi_document_resolves() {
    let doc = yaml(ASYNCAPI);
    assert_eq!(doc["asyncapi"], "3.0.0");
    let mut refs = Vec::new();
    references(&doc, String::new(), &mut refs);
    assert!(refs.len() > 20, "{ASYNCAPI}: expected many references");
    for (at, reference) in &refs {
        if let Err(e) = resolve(&doc, reference) {
            panic!("{ASYNCAPI}{at}: {e}");
        }
    }
    let channels = object(&doc["channels"], "channels");
    for (name, channel) in channels {
        let messages = object(&channel["messages"], &format!("channels.{name}.messages"));
        assert!(!messages.is_empty(), "channel {name} carries no message");
        for (id, message) in messages {
            let message = deref(&doc, message);
            assert!(message.get("payload").is_some(), "{name}.{id}: no payload");
        }
    }
    let operations = object(&doc["operations"], "operations");
    for (name, operation) in operations {
        let action = operation["action"].as_str().unwrap_or_default();
        assert!(
            ["send", "receive"].contains(&action),
            "{name}: action {action:?}"
        );
        for part in [Some(operation), operation.get("reply")]
            .into_iter()
            .flatten()
        {
            let channel = part["channel"]["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no channel reference"));
            assert!(channel.starts_with("#/channels/"), "{name}: {channel}");
            let messages = part["messages"].as_array().expect("operation messages");
            assert!(!messages.is_empty(), "{name}: no messages");
            for message in messages {
                // The spec's rule: an operation's messages are its channel's.
                let reference = message["$ref"].as_str().unwrap_or_default();
                assert!(
                    reference.starts_with(&format!("{channel}/messages/")),
                    "{name}: {reference} is not a message of {channel}"
                );
            }
        }
    }
    // Every message of the components is used by some channel.
    for id in object(&doc["components"]["messages"], "components.messages").keys() {
        let wanted = format!("#/components/messages/{id}");
        assert!(
            refs.iter()
                .any(|(at, r)| at.starts_with("/channels/") && *r == wanted),
            "message {id} is on no channel"
        );
    }
}

#[test]
fn asyncapi_names_what_the_worker_declares_and_publishes() {
    let doc = yaml(ASYNCAPI);
    let amqp = Settings::default().amqp;
    let channel = |name: &str| doc["channels"][name].clone();
    let binding = |name: &str| deref(&doc, &channel(name)["bindings"]["amqp"]);

    let jobs = binding("deployJobs");
    assert_eq!(
        channel("deployJobs")["address"],
        amqp.jobs_routing_key.as_str()
    );
    assert_eq!(jobs["exchange"]["name"], amqp.jobs_exchange.as_str());
    assert_eq!(jobs["exchange"]["type"], "direct");
    assert_eq!(
        binding("jobsQueue")["queue"]["name"],
        amqp.jobs_queue.as_str()
    );
    assert_eq!(channel("jobsQueue")["address"], amqp.jobs_queue.as_str());
    let queue_text = channel("jobsQueue")["description"].to_string();
    for argument in [
        format!("x-delivery-limit: {}", amqp.delivery_limit),
        format!("x-dead-letter-exchange: {}", amqp.dead_letter_exchange),
    ] {
        assert!(
            queue_text.contains(&argument),
            "jobsQueue: {argument} missing"
        );
    }
    assert_eq!(
        binding("deadLetterQueue")["queue"]["name"],
        amqp.dead_letter_queue.as_str()
    );

    for kind in event_kinds() {
        let (name, _) = object(&doc["channels"], "channels")
            .iter()
            .find(|(_, c)| c["address"] == kind.routing_key())
            .unwrap_or_else(|| panic!("no channel for routing key {}", kind.routing_key()));
        let events = binding(name);
        assert_eq!(events["exchange"]["name"], amqp.events_exchange.as_str());
        assert_eq!(events["exchange"]["type"], "topic");
        for message in object(&channel(name)["messages"], "messages").values() {
            let message = deref(&doc, message);
            assert_eq!(message["contentType"], wfp_deployer::events::CONTENT_TYPE);
            assert_eq!(
                message["bindings"]["amqp"]["messageType"],
                kind.event_type()
            );
            for example in message["examples"].as_array().expect("examples") {
                assert_eq!(example["payload"]["type"], kind.event_type());
            }
        }
    }
}

#[test]
fn examples_validate_against_the_schemas() {
    let doc = yaml(ASYNCAPI);
    let mut checked = 0;
    for (id, message) in object(&doc["components"]["messages"], "components.messages") {
        let validator = payload_validator(&doc, message);
        let headers = message
            .get("headers")
            .map(|h| jsonschema::validator_for(&deref(&doc, h)).expect("headers schema"));
        for example in message["examples"].as_array().expect("examples") {
            let what = format!("{id} example {}", example["name"]);
            assert_valid(&validator, &example["payload"], &what);
            if let Some(headers) = &headers {
                assert_valid(headers, &example["headers"], &what);
            }
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} examples");
}

#[test]
fn the_readme_examples_validate_against_the_schemas() {
    let job_schema = jsonschema::draft202012::new(&json("contract/job.schema.json")).unwrap();
    let event_schema = jsonschema::draft202012::new(&json("contract/event.schema.json")).unwrap();
    let job = readme_json_after("### Job message");
    assert_valid(&job_schema, &job, "README's example job");
    let event = readme_json_after("### Events");
    assert_valid(&event_schema, &event, "README's example event");

    // The document's example job is the README's, so the two cannot drift.
    let doc = yaml(ASYNCAPI);
    let examples = &doc["components"]["messages"]["deployJob"]["examples"];
    let readme_example = examples
        .as_array()
        .and_then(|e| e.iter().find(|e| e["name"] == "readme"))
        .expect("the readme example");
    assert_eq!(readme_example["payload"], job);
    // And the worker accepts it.
    wfp_deployer::contract::decode_job(&serde_json::to_vec(&job).unwrap())
        .unwrap_or_else(|e| panic!("README's example job: {e}"));
}

/// `wfp-deployer schema job|event` prints the checked-in files byte for
/// byte (what `make contract` writes them with).
#[test]
fn the_schema_command_prints_the_contract_files() {
    for which in ["job", "event"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wfp-deployer"))
            .args(["schema", which])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            crate::helpers::files::read(&format!("contract/{which}.schema.json")),
            "schema {which}"
        );
    }
}
