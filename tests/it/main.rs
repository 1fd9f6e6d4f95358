//! Integration tests: one binary, so the crate links once.
//!
//! They run against the real RabbitMQ (127.0.0.1:5672), the real S3 servers
//! started by `make services` (moto and s3s-fs) and the in-process Cloudflare
//! simulator. Set `TEST_LOG=1` to see the worker's logs.

mod helpers;

mod amqp;
mod bundles;
mod cache;
mod cli;
mod cli_tools;
mod cloudflare;
mod config_reference;
mod console;
mod contract_files;
mod deploy;
mod deploy_cli;
mod deploy_files;
mod examples;
mod ops;
mod reliability;
mod s3;
mod sim;
