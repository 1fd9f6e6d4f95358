//! The operator's side of the broker: the web console, and what it shares
//! with the command-line tools `watch`, `dlq` and `enqueue`.
//!
//! - [`event`]: an event as these tools read it (leniently: a newer
//!   worker's events must still show) and the filters they apply.
//! - [`feed`]: reading events live (a private queue) or from the events
//!   log (a stream replayed from a point in time).

pub mod event;
pub mod feed;
