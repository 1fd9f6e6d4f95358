//! `wfp-deployer schema job|event`: prints the contract's JSON Schemas, the
//! same text as `contract/*.schema.json`, for teams that validate messages
//! in their own language.

use std::io::Write;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::contract::ContractSchema;

#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// Which message's schema to print.
    #[arg(value_enum)]
    pub which: Which,
}

/// The messages of the contract that have a schema.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Which {
    /// The deploy job producers publish.
    Job,
    /// The CloudEvents the worker publishes.
    Event,
}

/// Writes the schema to standard output (an error, not a panic, when the
/// reader went away).
pub fn run(args: &SchemaArgs) -> anyhow::Result<()> {
    let schema = match args.which {
        Which::Job => ContractSchema::Job,
        Which::Event => ContractSchema::Event,
    };
    std::io::stdout()
        .write_all(schema.render().as_bytes())
        .context("writing the schema to standard output")
}
