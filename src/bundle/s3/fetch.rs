//! Reads one object, chunk by chunk: hashed (nothing kept), into the spool
//! (verified against its digest), or into memory (worker modules).
//!
//! The GetObject answer is checked against the listing (its
//! `Content-Length`), then its body is read through the shared
//! [`SizedBody`]: held to the listed size, each chunk within the request
//! timeout. A failed try starts the object over: the unfinished spool
//! writer is dropped, which removes its file.

use bytes::Bytes;
use futures::Stream;

use super::S3Storage;
use super::failure::{Failure, classify, with_retries};
use super::list::Listed;
use crate::bundle::body::SizedBody;
use crate::bundle::{BundleError, BundleStep};
use crate::manifest::ContentDigest;
use crate::spool::Spool;

/// A GetObject body as a chunk stream.
type ObjectStream = std::pin::Pin<
    Box<dyn Stream<Item = Result<Bytes, aws_sdk_s3::primitives::ByteStreamError>> + Send>,
>;

/// Asks for `key` and checks the answer's length against the listed `size`.
async fn open(
    storage: &S3Storage,
    bucket: &str,
    key: &str,
    size: u64,
) -> Result<SizedBody<ObjectStream>, Failure> {
    let output = storage
        .client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(classify)?;
    if let Some(length) = output.content_length()
        && u64::try_from(length).ok() != Some(size)
    {
        return Err(Failure::Changed(format!(
            "listed {size} bytes, Content-Length {length}"
        )));
    }
    let chunks = futures::stream::unfold(output.body, |mut body| async move {
        body.next().await.map(|chunk| (chunk, body))
    });
    Ok(SizedBody::new(
        Box::pin(chunks),
        size,
        storage.request_timeout,
    ))
}

/// Reads one object whole and returns its digest; nothing is kept.
pub(super) async fn digest(
    storage: &S3Storage,
    bucket: &str,
    object: &Listed,
) -> Result<ContentDigest, BundleError> {
    let subject = format!("s3://{bucket}/{}", object.key);
    let (result, attempts) = with_retries(&storage.policy, &subject, || async {
        Ok(open(storage, bucket, &object.key, object.size)
            .await?
            .into_digest()
            .await?)
    })
    .await;
    result.map_err(|f| f.into_error(BundleStep::Hash, &subject, attempts))
}

/// Reads one object whole into the spool, stored only if its bytes have
/// digest `expected`.
pub(super) async fn to_spool(
    storage: &S3Storage,
    bucket: &str,
    key: &str,
    size: u64,
    expected: &ContentDigest,
    spool: &Spool,
) -> Result<(), BundleError> {
    let subject = format!("s3://{bucket}/{key}");
    let (result, attempts) = with_retries(&storage.policy, &subject, || async {
        Ok(open(storage, bucket, key, size)
            .await?
            .into_spool_expecting(spool, expected)
            .await?)
    })
    .await;
    result.map_err(|f| f.into_error(BundleStep::Fetch, &subject, attempts))
}

/// Reads one (small, already size-checked) object into memory.
pub(super) async fn to_memory(
    storage: &S3Storage,
    bucket: &str,
    object: &Listed,
) -> Result<Bytes, BundleError> {
    let subject = format!("s3://{bucket}/{}", object.key);
    let (result, attempts) = with_retries(&storage.policy, &subject, || async {
        Ok(open(storage, bucket, &object.key, object.size)
            .await?
            .into_memory()
            .await?)
    })
    .await;
    result.map_err(|f| f.into_error(BundleStep::Hash, &subject, attempts))
}
