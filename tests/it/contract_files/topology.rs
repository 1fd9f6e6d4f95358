//! `contract/asyncapi.yaml` against what the worker really declares and
//! writes: the exchanges, queues (with their arguments) and bindings of
//! [`Topology::declarations`], the very list the worker runs, compared both
//! ways with the document's AMQP bindings; and the headers the worker puts
//! on a job it parks or sends to a delay queue, taken from the functions
//! that write them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ExchangeKind};
use serde_json::Value;
use wfp_deployer::amqp::topology::{Declaration, Topology};
use wfp_deployer::config::Settings;
use wfp_deployer::contract::{ErrorCode, FailureInfo, Step};
use wfp_deployer::worker::{ParkReason, park_properties, retry_properties};

use super::{ASYNCAPI, deref, object};
use crate::helpers::files::yaml;

/// The broker objects, in a form both sides can be compared in.
#[derive(Debug, Default)]
struct Broker {
    /// Exchange name: its type.
    exchanges: BTreeMap<String, String>,
    /// Queue name: its arguments, as JSON.
    queues: BTreeMap<String, Value>,
    /// Queue, exchange, routing key.
    bindings: BTreeSet<(String, String, String)>,
}

/// An AMQP value as the document writes it (the kinds the worker uses).
fn amqp_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::LongString(s) => Value::from(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        other => panic!("a value of a kind the document cannot say: {other:?}"),
    }
}

fn table_json(table: &FieldTable) -> Value {
    table
        .inner()
        .iter()
        .map(|(key, value)| (key.to_string(), amqp_json(value)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn kind_name(kind: &ExchangeKind) -> String {
    match kind {
        ExchangeKind::Direct => "direct".into(),
        ExchangeKind::Fanout => "fanout".into(),
        ExchangeKind::Topic => "topic".into(),
        ExchangeKind::Headers => "headers".into(),
        ExchangeKind::Custom(name) => name.clone(),
    }
}

/// What a worker with the default settings declares.
fn declared_by_the_worker() -> Broker {
    let mut broker = Broker::default();
    for declaration in Topology::new(&Settings::default()).declarations() {
        match declaration {
            Declaration::Exchange { name, kind } => {
                broker.exchanges.insert(name, kind_name(&kind));
            }
            Declaration::Queue { name, arguments } => {
                broker.queues.insert(name, table_json(&arguments));
            }
            Declaration::Binding {
                queue,
                exchange,
                routing_key,
            } => {
                broker.bindings.insert((queue, exchange, routing_key));
            }
        }
    }
    broker
}

fn text(value: &Value, what: &str) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{ASYNCAPI}: {what} must be a string"))
        .to_string()
}

/// What the document's channel bindings describe.
fn described_by_the_document(doc: &Value) -> Broker {
    let mut broker = Broker::default();
    for (id, channel) in object(&doc["channels"], "channels") {
        let Some(binding) = channel.get("bindings").and_then(|b| b.get("amqp")) else {
            continue;
        };
        let binding = deref(doc, binding);
        match binding["is"].as_str() {
            Some("routingKey") => {
                let exchange = &binding["exchange"];
                let name = text(&exchange["name"], &format!("{id}: exchange.name"));
                let kind = text(&exchange["type"], &format!("{id}: exchange.type"));
                assert_eq!(exchange["durable"], true, "{id}: {name} is durable");
                if let Some(before) = broker.exchanges.insert(name.clone(), kind.clone()) {
                    assert_eq!(before, kind, "{id}: {name} described with two types");
                }
            }
            Some("queue") => {
                let queue = &binding["queue"];
                let name = text(&queue["name"], &format!("{id}: queue.name"));
                assert_eq!(channel["address"], name.as_str(), "{id}: address");
                assert_eq!(queue["durable"], true, "{id}: {name} is durable");
                let arguments = binding
                    .get("x-arguments")
                    .unwrap_or_else(|| panic!("{id}: no x-arguments"))
                    .clone();
                let before = broker.queues.insert(name.clone(), arguments);
                assert!(before.is_none(), "{id}: {name} described twice");
                let bound = binding["x-bindings"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{id}: no x-bindings list"));
                for to in bound {
                    let exchange = text(&to["exchange"], &format!("{id}: x-bindings exchange"));
                    let key = text(&to["routingKey"], &format!("{id}: x-bindings routingKey"));
                    broker.bindings.insert((name.clone(), exchange, key));
                }
            }
            other => panic!("{ASYNCAPI}: {id}: binding `is` {other:?}"),
        }
    }
    broker
}

#[test]
fn asyncapi_describes_exactly_the_exchanges_queues_and_bindings_the_worker_declares() {
    let declared = declared_by_the_worker();
    let described = described_by_the_document(&yaml(ASYNCAPI));
    assert_eq!(described.exchanges, declared.exchanges, "exchanges: type");
    assert_eq!(described.queues, declared.queues, "queues: arguments");
    assert_eq!(
        described.bindings, declared.bindings,
        "bindings (queue, exchange, routing key)"
    );
    // The comparison covers the delay queues and the events log.
    let settings = Settings::default();
    assert!(
        declared
            .queues
            .contains_key(&settings.amqp.events_log_queue)
    );
    for delay in &settings.worker.retry_delays {
        let name = wfp_deployer::amqp::retry_queue_name(&settings.amqp.jobs_queue, *delay);
        assert!(declared.queues.contains_key(&name), "{name}");
    }
}

/// Header name: the JSON Schema type its value has.
fn header_types(properties: &BasicProperties) -> BTreeMap<String, &'static str> {
    let headers = properties.headers().clone().unwrap_or_default();
    headers
        .inner()
        .iter()
        .map(|(name, value)| {
            let kind = match amqp_json(value) {
                Value::String(_) => "string",
                _ => "integer",
            };
            (name.to_string(), kind)
        })
        .collect()
}

/// The headers every message of `channel` documents: name, schema.
fn documented_headers(doc: &Value, channel: &str) -> Vec<BTreeMap<String, Value>> {
    let messages = object(&doc["channels"][channel]["messages"], "messages");
    messages
        .iter()
        .map(|(id, message)| {
            let message = deref(doc, message);
            let headers = deref(doc, &message["headers"]);
            let properties = object(&headers["properties"], &format!("{channel}.{id}"));
            properties
                .iter()
                .map(|(name, schema)| (name.clone(), schema.clone()))
                .collect()
        })
        .collect()
}

fn assert_documented(
    written: &BTreeMap<String, &str>,
    documented: &BTreeMap<String, Value>,
    at: &str,
) {
    for (name, kind) in written {
        let schema = documented
            .get(name)
            .unwrap_or_else(|| panic!("{at}: header {name} is not documented"));
        assert_eq!(schema["type"], *kind, "{at}: header {name}'s type");
    }
}

#[test]
fn asyncapi_documents_every_header_the_worker_writes_on_a_parked_or_delayed_job() {
    let doc = yaml(ASYNCAPI);
    let settings = Settings::default();
    let now = Utc::now();
    let failure = FailureInfo::new(ErrorCode::CloudflareUnavailable, Step::Upload, true, "503");
    let reason = ParkReason {
        failure: &failure,
        attempts: 5,
        first_failure: now,
        last_failure: now,
    };
    let parked = header_types(&park_properties(&BasicProperties::default(), &reason));
    let delayed = header_types(&retry_properties(&BasicProperties::default(), 2, now));
    assert!(parked.len() >= 6 && !delayed.is_empty());

    let channel_of = |queue: &str| {
        object(&doc["channels"], "channels")
            .iter()
            .find(|(_, c)| c["address"] == queue)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no channel for queue {queue}"))
    };
    let dlq = channel_of(&settings.amqp.dead_letter_queue);
    for documented in documented_headers(&doc, &dlq) {
        assert_documented(&parked, &documented, &dlq);
        // A parked job keeps the headers of its last retry.
        assert_documented(&delayed, &documented, &dlq);
        for name in documented.keys().filter(|n| n.starts_with("x-wfp-")) {
            assert!(
                parked.contains_key(name) || delayed.contains_key(name),
                "{dlq}: {name} is documented but the worker never writes it"
            );
        }
    }
    for delay in &settings.worker.retry_delays {
        let queue = wfp_deployer::amqp::retry_queue_name(&settings.amqp.jobs_queue, *delay);
        let channel = channel_of(&queue);
        for documented in documented_headers(&doc, &channel) {
            assert_documented(&delayed, &documented, &channel);
            let names: BTreeSet<&String> = documented.keys().collect();
            assert_eq!(names, delayed.keys().collect(), "{channel}: headers");
        }
    }
}
