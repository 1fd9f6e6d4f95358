//! The cache's shared half: index objects in S3, so every worker of the
//! fleet (and a restarted one) finds what any other worker hashed.
//!
//! Two kinds of object under `cache.prefix` in `cache.bucket`:
//! - `scripts/<account>/<namespace>/<script>.json`: the content keys and
//!   digests of the last successful deploy of that script, one object per
//!   script, overwritten after each deploy that changed it. A new build of
//!   the script (under any prefix) finds its unchanged files here.
//! - `archives/<sha256 of the archive's key>.json`: the whole manifest of
//!   an archive bundle (path, size, digest per file, and its root special
//!   files), so an unchanged archive is not read at all.
//!
//! A failed read or write only costs speed (the files are hashed again), so
//! the caller logs it and goes on. The pipeline keeps its last-deployed
//! markers with the same store (`crate::pipeline`'s ordering), under
//! `markers/`: small JSON objects read with the same bounds. Bodies are read up to `max_bytes`: an
//! index is never allowed to grow the worker's memory without bound.

use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// Why an index object could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("s3://{bucket}/{key}: {detail}")]
    S3 {
        bucket: String,
        key: String,
        detail: String,
    },
    #[error("s3://{bucket}/{key}: more than {max} bytes, the limit for an index")]
    TooLarge {
        bucket: String,
        key: String,
        max: u64,
    },
    #[error("s3://{bucket}/{key}: not a valid index")]
    Corrupt {
        bucket: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// What a conditional read found.
pub(crate) enum Fetched<T> {
    /// No such object yet.
    Missing,
    /// Unchanged since the ETag passed in.
    NotModified,
    /// The object and its ETag.
    Found(T, Option<String>),
}

/// Reads and writes index objects.
#[derive(Debug, Clone)]
pub(crate) struct IndexStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    max_bytes: u64,
    timeout: Duration,
}

impl IndexStore {
    pub(crate) fn new(
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
        max_bytes: u64,
        timeout: Duration,
    ) -> Self {
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix
        } else {
            format!("{prefix}/")
        };
        Self {
            client,
            bucket,
            prefix,
            max_bytes,
            timeout,
        }
    }

    /// The key of `path` under this store's prefix.
    pub(crate) fn key(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    /// The index object of one script (`scope` is `account/namespace/script`).
    pub(super) fn script_key(&self, scope: &str) -> String {
        format!("{}scripts/{scope}.json", self.prefix)
    }

    /// The manifest object of one archive bundle, by its encoded key.
    pub(super) fn archive_key(&self, encoded: &str) -> String {
        let digest = Sha256::digest(encoded.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}archives/{hex}.json", self.prefix)
    }

    fn error(&self, key: &str, detail: String) -> StoreError {
        StoreError::S3 {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            detail,
        }
    }

    /// Reads `key` as JSON, unless its ETag is still `known_etag`.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        key: &str,
        known_etag: Option<&str>,
    ) -> Result<Fetched<T>, StoreError> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_none_match(known_etag.map(str::to_string));
        let output = match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => return Err(self.error(key, "timed out".into())),
            Ok(Err(SdkError::ServiceError(e))) => {
                let status = e.raw().status().as_u16();
                if status == 304 {
                    return Ok(Fetched::NotModified);
                }
                if status == 404 || e.err().code() == Some("NoSuchKey") {
                    return Ok(Fetched::Missing);
                }
                return Err(self.error(key, format!("HTTP {status}")));
            }
            Ok(Err(e)) => return Err(self.error(key, e.to_string())),
            Ok(Ok(output)) => output,
        };
        if output
            .content_length()
            .is_some_and(|len| u64::try_from(len).unwrap_or(u64::MAX) > self.max_bytes)
        {
            return Err(self.too_large(key));
        }
        let etag = output.e_tag().map(str::to_string);
        let mut body = output.body;
        let mut bytes = Vec::new();
        loop {
            let chunk = tokio::time::timeout(self.timeout, body.next()).await;
            match chunk {
                Err(_) => return Err(self.error(key, "body stalled".into())),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(self.error(key, e.to_string())),
                Ok(Some(Ok(chunk))) => {
                    if (bytes.len() + chunk.len()) as u64 > self.max_bytes {
                        return Err(self.too_large(key));
                    }
                    bytes.extend_from_slice(&chunk);
                }
            }
        }
        let value = serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            source,
        })?;
        Ok(Fetched::Found(value, etag))
    }

    /// Writes `value` as JSON to `key`; returns the new ETag.
    pub(crate) async fn put<T: Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<Option<String>, StoreError> {
        let body = serde_json::to_vec(value).map_err(|source| StoreError::Corrupt {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            source,
        })?;
        if body.len() as u64 > self.max_bytes {
            return Err(self.too_large(key));
        }
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => Err(self.error(key, "timed out".into())),
            Ok(Err(e)) => Err(self.error(key, sdk_detail(&e))),
            Ok(Ok(output)) => Ok(output.e_tag().map(str::to_string)),
        }
    }

    /// Deletes `key` (a missing object is no error in S3).
    pub(super) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let request = self.client.delete_object().bucket(&self.bucket).key(key);
        match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => Err(self.error(key, "timed out".into())),
            Ok(Err(e)) => Err(self.error(key, sdk_detail(&e))),
            Ok(Ok(_)) => Ok(()),
        }
    }

    fn too_large(&self, key: &str) -> StoreError {
        StoreError::TooLarge {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            max: self.max_bytes,
        }
    }
}

fn sdk_detail<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    match e {
        SdkError::ServiceError(s) => {
            format!(
                "{}: {}",
                s.err().code().unwrap_or("error"),
                s.err().message().unwrap_or("")
            )
        }
        SdkError::TimeoutError(_) => "timed out".into(),
        _ => "request failed (connection or dispatch error)".into(),
    }
}
