//! S3 helpers for integration tests: a fresh bucket on a real S3 server,
//! seeded with objects, and the settings or [`S3Storage`] that read it.
//!
//! Two servers, started by `make services` (`scripts/s3-start.sh`), both on
//! loopback with path-style addressing, region `us-east-1` and credentials
//! `wfptest` / `wfptestsecret`:
//! - [`S3Server::Moto`] on 127.0.0.1:9000: AWS's behaviour, modelled closely;
//! - [`S3Server::S3s`] on 127.0.0.1:9100: s3s-fs, a second implementation
//!   (on disk; it normalises `a//b`, `./` and `../` in keys when storing).
//!
//! Every test gets its own bucket ([`test_bucket`]: a UUID in the name), so
//! tests run in parallel. Helpers panic with a message on any error: they are
//! test code, and a down server must fail the test loudly, never skip it.
//!
//! ```ignore
//! let bucket = test_bucket(S3Server::Moto).await;
//! bucket.put("site/index.html", "<h1>hi</h1>").await;
//! bucket.put_many((0..10).map(|i| (format!("site/{i}.txt"), format!("file {i}")))).await;
//! let storage = bucket.storage().await;                 // fast retries
//! let source = storage.prefix(bucket.name(), "site/");  // a BundleSource
//! ```

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures::StreamExt;
use wfp_deployer::bundle::S3Storage;
use wfp_deployer::config::{RetrySettings, S3Settings};

/// The access key both test servers accept.
pub const TEST_ACCESS_KEY: &str = "wfptest";
/// The secret key both test servers accept.
pub const TEST_SECRET_KEY: &str = "wfptestsecret";
/// The region the tests use.
pub const TEST_REGION: &str = "us-east-1";

/// Objects stored at once by [`TestBucket::put_many`].
const PUT_CONCURRENCY: usize = 16;

/// One of the real S3 servers the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Server {
    /// moto on 127.0.0.1:9000.
    Moto,
    /// s3s-fs on 127.0.0.1:9100.
    S3s,
}

impl S3Server {
    pub fn name(self) -> &'static str {
        match self {
            S3Server::Moto => "moto",
            S3Server::S3s => "s3s-fs",
        }
    }

    pub fn endpoint(self) -> &'static str {
        match self {
            S3Server::Moto => "http://127.0.0.1:9000",
            S3Server::S3s => "http://127.0.0.1:9100",
        }
    }

    /// Settings that reach this server: endpoint, path style, region,
    /// static credentials, short timeouts.
    pub fn settings(self) -> S3Settings {
        S3Settings {
            endpoint_url: Some(self.endpoint().to_string()),
            region: Some(TEST_REGION.to_string()),
            force_path_style: true,
            access_key_id: Some(TEST_ACCESS_KEY.to_string()),
            secret_access_key: Some(TEST_SECRET_KEY.to_string().into()),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
            ..S3Settings::default()
        }
    }

    /// A plain SDK client for seeding (the SDK's own retries on).
    pub fn client(self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(Region::new(TEST_REGION))
            .credentials_provider(Credentials::new(
                TEST_ACCESS_KEY,
                TEST_SECRET_KEY,
                None,
                None,
                "wfp-tests",
            ))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// Retries fast enough for tests: 3 tries, waits of at most 100 ms.
pub fn fast_retry() -> RetrySettings {
    RetrySettings {
        max_attempts: 3,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        max_retry_after: Duration::from_millis(100),
    }
}

/// A bucket of its own on `server`, created empty.
///
/// Panics, saying how to start the servers, when `server` does not answer.
pub async fn test_bucket(server: S3Server) -> TestBucket {
    let name = format!("wfp-it-{}", uuid::Uuid::new_v4().simple());
    let client = server.client();
    if let Err(e) = client.create_bucket().bucket(&name).send().await {
        if matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) {
            panic!(
                "S3 server {} does not answer at {}: start the test services with \
                 `make services` (or scripts/s3-install.sh && scripts/s3-start.sh). \
                 Error: {}",
                server.name(),
                server.endpoint(),
                DisplayErrorContext(&e)
            );
        }
        panic!(
            "{}: creating bucket {name}: {}",
            server.name(),
            DisplayErrorContext(&e)
        );
    }
    TestBucket {
        server,
        name,
        client,
    }
}

/// A uniquely named bucket on one test server.
pub struct TestBucket {
    server: S3Server,
    name: String,
    client: aws_sdk_s3::Client,
}

impl TestBucket {
    pub fn name(&self) -> &str {
        &self.name
    }

    #[allow(dead_code)] // for other areas' tests
    pub fn server(&self) -> S3Server {
        self.server
    }

    /// The seeding client, for anything the helpers do not cover.
    #[allow(dead_code)] // for other areas' tests
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Settings that reach this bucket's server (see [`S3Server::settings`]).
    pub fn settings(&self) -> S3Settings {
        self.server.settings()
    }

    /// The deployer's own storage on this server, with [`fast_retry`] and a
    /// fetch concurrency of 8.
    pub async fn storage(&self) -> S3Storage {
        S3Storage::new(&self.settings(), &fast_retry(), 8).await
    }

    /// Stores one object.
    pub async fn put(&self, key: impl Into<String>, body: impl Into<Bytes>) {
        let key = key.into();
        if let Err(e) = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(&key)
            .body(ByteStream::from(body.into()))
            .send()
            .await
        {
            panic!(
                "{}: putting s3://{}/{key}: {}",
                self.server.name(),
                self.name,
                DisplayErrorContext(&e)
            );
        }
    }

    /// Stores many objects, several at a time.
    pub async fn put_many<K, B>(&self, objects: impl IntoIterator<Item = (K, B)>)
    where
        K: Into<String>,
        B: Into<Bytes>,
    {
        futures::stream::iter(objects)
            .map(|(key, body)| self.put(key, body))
            .buffer_unordered(PUT_CONCURRENCY)
            .collect::<Vec<()>>()
            .await;
    }
}
