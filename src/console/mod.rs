//! The operator's side of the broker: the web console, and what it shares
//! with the command-line tools `watch`, `dlq` and `enqueue`.
//!
//! - [`event`]: an event as these tools read it (leniently: a newer
//!   worker's events must still show) and the filters they apply.
//! - [`feed`]: reading events live (a private queue) or from the events
//!   log (a stream replayed from a point in time).
//! - [`dlq`]: the dead-letter queue: parked jobs listed, requeued (with
//!   nothing lost) and purged.
//! - [`jobs`], [`window`]: the console's memory: a bounded window of
//!   events, folded into one view per job and the last hour's throughput.
//! - [`management`]: queue depths from RabbitMQ's management API.
//! - [`server`]: the HTTP server, the page (`static/`), the API, the event
//!   stream, authentication and the cross-site guard.

pub mod dlq;
pub mod event;
pub mod feed;
pub mod jobs;
pub mod management;
pub mod server;
pub mod window;
