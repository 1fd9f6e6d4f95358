//! Builds the one S3 client a process uses.
//!
//! The AWS SDK's own configuration chain applies first (`AWS_ENDPOINT_URL_S3`
//! / `AWS_ENDPOINT_URL`, `AWS_REGION`, credentials from the environment,
//! profiles or instance metadata), so the worker runs on AWS with no settings
//! at all; [`S3Settings`] then overrides what it sets. The SDK's own retries
//! are off: every remote call retries through [`crate::retry::RetryPolicy`],
//! so one policy, one set of settings and one log line cover them all.

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};
use secrecy::ExposeSecret;

use crate::config::S3Settings;

/// The region used when neither the settings nor the SDK's chain name one.
const DEFAULT_REGION: &str = "us-east-1";

/// An S3 client configured from the SDK's chain, then `settings`.
pub(super) async fn build(settings: &S3Settings) -> aws_sdk_s3::Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout)
        // With the SDK's retries off, one operation is one attempt. A body
        // being streamed is outside it; the reader times each chunk instead.
        .operation_timeout(settings.request_timeout)
        // Until the answer's first byte: a server that accepts and hangs.
        .read_timeout(settings.first_byte_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(RetryConfig::disabled());

    loader = match settings.region.as_deref().filter(|r| !r.is_empty()) {
        Some(region) => loader.region(Region::new(region.to_string())),
        None => loader.region(
            RegionProviderChain::default_provider().or_else(Region::from_static(DEFAULT_REGION)),
        ),
    };
    if let Some(url) = settings.endpoint_url.as_deref().filter(|u| !u.is_empty()) {
        loader = loader.endpoint_url(url);
    }
    match (&settings.access_key_id, &settings.secret_access_key) {
        (Some(id), Some(secret)) => {
            loader = loader.credentials_provider(Credentials::new(
                id.clone(),
                secret.expose_secret().to_string(),
                None,
                None,
                "wfp-deployer-settings",
            ));
        }
        (None, None) => {}
        _ => tracing::warn!(
            "s3.access_key_id and s3.secret_access_key must be set together; \
             using the AWS SDK's credential chain instead"
        ),
    }

    let shared = loader.load().await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(settings.force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
