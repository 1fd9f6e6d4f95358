//! Shared test helpers: each area's in its own file.

pub mod amqp;
pub mod app;
pub mod archives;
pub mod files;
pub mod pipeline;
pub mod proxy;
pub mod s3;
pub mod settings;
pub mod sim;
