//! The worker's events: built from a job (or an invalid message) and how its
//! deploy ended (`build`), and published with the AMQP properties contract
//! v1 promises (`publish`).
//!
//! Kept apart from the worker loop so the exact shape of what other teams
//! consume (CloudEvent body, `message_id`, `type`, `correlation_id`, headers)
//! is defined, and unit-tested, in one place without a broker. It speaks the
//! contract's types only; the pipeline's are the worker's to convert.
//!
//! Where the next event type goes: a new [`EventKind`] in `contract/event.rs`
//! (its `type`, routing key, id and whether it is terminal: every `match`
//! there must name it), a method building it on [`JobEvents`], and the
//! README's events table. Publishing needs no change.

mod build;
mod publish;

pub use build::{EventBuilder, JobEvents};
pub use publish::{
    APP_ID, CONTENT_TYPE, EventError, EventPublisher, Publish, properties, reply_target,
};

use crate::contract::{CloudEvent, EventKind};

/// An event and the kind that decides its routing key.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub body: CloudEvent,
}

#[cfg(test)]
mod tests;
