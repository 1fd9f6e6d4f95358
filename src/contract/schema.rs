//! The contract as JSON Schema (2020-12), generated from the wire types.
//!
//! `contract/job.schema.json` and `contract/event.schema.json` are these
//! schemas, checked in for teams that never read Rust; a test fails when the
//! files are stale (`make contract` rewrites them) and `wfp-deployer schema
//! job|event` prints them. Generating them from the types, not writing them
//! by hand, is what keeps them true: serde's attributes (`deny_unknown_fields`,
//! `default`, `flatten`, renames) become the schema's, and the rules serde
//! cannot state are `schemars` attributes beside the fields they govern.
//!
//! The job's schema describes what the worker accepts (deserialization);
//! the event's describes what it publishes (serialization), so a field the
//! worker always writes is required there even when it may be null.

use schemars::Schema;
use schemars::generate::SchemaSettings;

use super::{CloudEvent, DeployJob};

/// Which schema of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractSchema {
    /// The deploy job, as producers publish it.
    Job,
    /// The CloudEvents the worker publishes.
    Event,
}

impl ContractSchema {
    /// Every schema, for the `make contract` target and the staleness test.
    pub const ALL: [ContractSchema; 2] = [ContractSchema::Job, ContractSchema::Event];

    /// The checked-in file's name under `contract/`.
    pub fn file_name(self) -> &'static str {
        match self {
            ContractSchema::Job => "job.schema.json",
            ContractSchema::Event => "event.schema.json",
        }
    }

    /// The schema as a JSON value.
    pub fn schema(self) -> Schema {
        let settings = SchemaSettings::draft2020_12();
        match self {
            ContractSchema::Job => settings
                .into_generator()
                .into_root_schema_for::<DeployJob>(),
            ContractSchema::Event => {
                let mut schema = settings
                    .for_serialize()
                    .into_generator()
                    .into_root_schema_for::<CloudEvent>();
                schema.insert("allOf".into(), terminal_event_rules());
                schema
            }
        }
    }

    /// The schema as the checked-in file holds it: pretty JSON, one final
    /// newline, so `wfp-deployer schema job > contract/job.schema.json`
    /// writes the file byte for byte.
    pub fn render(self) -> String {
        let mut text = serde_json::to_string_pretty(self.schema().as_value())
            .expect("a JSON value always serializes");
        text.push('\n');
        text
    }
}

/// What each terminal event's `data` must hold, which one struct for every
/// kind cannot say: `deploy.succeeded` reports what was deployed,
/// `deploy.failed` the error (and `deploy.progress`, not terminal, its step
/// and sequence number). Other kinds are left open, so a consumer's
/// validator keeps accepting a kind added later.
fn terminal_event_rules() -> serde_json::Value {
    let when = |event_type: &str, required: &[&str]| {
        serde_json::json!({
            "if": {"properties": {"type": {"const": event_type}}, "required": ["type"]},
            "then": {"properties": {"data": {"required": required}}}
        })
    };
    serde_json::json!([
        when(
            "wfp.deploy.succeeded",
            &["duration_ms", "manifest", "upload", "deployment"]
        ),
        when("wfp.deploy.failed", &["duration_ms", "error"]),
        when("wfp.deploy.progress", &["step", "sequence"]),
    ])
}

#[cfg(test)]
mod tests;
