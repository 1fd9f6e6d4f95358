//! The broker side of the worker: connection, topology, consumer and
//! confirmed publisher, on top of lapin.
//!
//! This module knows AMQP and the contract's topology, nothing of Cloudflare,
//! S3 or what a deploy is. It exists so the worker loop reads as "consume,
//! deploy, publish, settle" and every broker detail (queue arguments, confirm
//! handling, delivery counts, error wording) lives in one place.
//!
//! - [`connection`]: [`connect`], the one [`AmqpError`] of this layer and
//!   which of its failures are worth retrying.
//! - [`topology`]: [`declare_topology`], the contract v1 exchanges and
//!   queues, and [`Topology`], everything the worker declares (those, the
//!   delay queues of job-level retries, the events log).
//! - [`consumer`]: the consuming channel (prefetch) and what a delivery's
//!   properties say (its attempt, its headers).
//! - [`confirm`]: [`publish_confirmed`], one publish and its confirm on a
//!   given channel (the operator commands use it directly).
//! - [`publisher`]: [`ConfirmedPublisher`], where a publish counts only once the
//!   broker confirmed it.
//! - [`lease`]: [`BrokerLease`], the per-script lease of build order (an
//!   exclusive queue per script), behind the pipeline's `ScriptLease`.

pub mod confirm;
pub mod connection;
pub mod consumer;
pub mod lease;
pub mod publisher;
pub mod topology;

pub use confirm::{Message, PublishError, Target, publish_confirmed};
pub use connection::{AmqpError, CONNECTION_NAME, connect, connect_as, connect_named, endpoint};
pub use consumer::{
    ATTEMPT_HEADER, DeliveryMeta, FIRST_FAILURE_HEADER, attempt, delivery_count, header_str,
    open_consumer, timestamp,
};
pub use lease::{BrokerLease, LEASE_CONNECTION_NAME, LEASE_QUEUE_PREFIX, lease_queue_name};
pub use publisher::ConfirmedPublisher;
pub use topology::{
    Topology, dead_letter_queue_arguments, declare_topology, events_log_arguments,
    jobs_queue_arguments, retry_queue_arguments, retry_queue_name,
};
