//! `wfp-deployer`: deploys Cloudflare Workers-for-Platforms user workers with
//! static assets, driven by jobs on RabbitMQ and site bundles in S3.
//!
//! # Layout
//! One module per concern; each knows as little of the others as it can.
//!
//! - [`contract`]: the wire types other teams code against (job, CloudEvents,
//!   error codes and steps). Knows nothing of AMQP or HTTP.
//! - [`config`]: typed settings loaded in layers (defaults, files, environment),
//!   and what a job may read from S3 under them.
//! - [`telemetry`]: tracing set-up in one place.
//! - [`amqp`]: broker connection, topology, consumer, confirmed publisher,
//!   and the per-script lease the broker keeps for build order.
//! - [`bundle`]: where a site's files come from (`Bundles` opens the
//!   `BundleSource` a job names: an S3 prefix or archive; the `deploy`
//!   command's local directory or archive file) and the rules every file
//!   passes (paths, hostile archives, special files, Cloudflare's limits).
//! - [`manifest`]: content digests (streaming SHA-256), asset hashes derived
//!   from them per tenant, the manifest and its canonical digest.
//! - [`cache`]: the content-digest cache (memory LRU + index objects in S3),
//!   so an object seen before is not read again.
//! - [`spool`]: per-job scratch space, addressed by content digest, holding
//!   only the files Cloudflare asks for, so disk use is bounded by what is
//!   missing and memory by configuration.
//! - [`cloudflare`]: the three Workers-for-Platforms calls, the envelope, JWT
//!   expiry, multipart bodies, the retry policy and the API budget (pacing,
//!   `Ratelimit` headers, 429 pauses).
//! - [`retry`]: the one back-off policy (full jitter) and the one retry loop
//!   every remote call uses.
//! - [`error_chain`]: a client error and its causes on one line, each once.
//! - [`pipeline`]: one deploy, from job to outcome, top to bottom, in its
//!   script's turn (a fleet-wide lease and the last-deployed marker, so an
//!   older build never ends live after a newer one); maps every lower error
//!   to a contract error code in one place.
//! - [`events`]: CloudEvents built from jobs and outcomes, published with
//!   the contract's AMQP properties (and the `reply_to` copy).
//! - [`worker`]: the consume loop: concurrency, events, ack-after-confirm,
//!   job-level retries and parking, bounded shutdown.
//! - [`sim`]: the strict, stateful Cloudflare API simulator used by tests and
//!   the demo. It shares no types with [`cloudflare`] on purpose, so a bug in
//!   one cannot hide a bug in the other.
//! - [`startup`]: builds the worker from settings (clients, pipeline).
//! - [`console`]: the operator's tools over the broker: the web console,
//!   and the event feed and dead-letter queue handling that `watch`, `dlq`
//!   and `enqueue` share with it.
//! - [`cli`]: the command line; `anyhow` only here and in `main.rs`.

pub mod amqp;
pub mod bundle;
pub mod cache;
pub mod cli;
pub mod cloudflare;
pub mod config;
pub mod console;
pub mod contract;
pub mod error_chain;
pub mod events;
pub mod internal_events;
pub mod manifest;
pub mod ops;
pub mod pipeline;
pub mod retry;
pub mod sim;
pub mod spool;
pub mod startup;
pub mod telemetry;
pub mod worker;
