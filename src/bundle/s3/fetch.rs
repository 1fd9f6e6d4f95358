//! Reads one object, chunk by chunk, into the spool or into memory.
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
use crate::manifest::ManifestEntry;
use crate::spool::Spool;

/// A GetObject body as a chunk stream.
type ObjectStream = std::pin::Pin<
    Box<dyn Stream<Item = Result<Bytes, aws_sdk_s3::primitives::ByteStreamError>> + Send>,
>;

/// Asks for `object` and checks the answer's length against the listing.
async fn open(
    storage: &S3Storage,
    bucket: &str,
    object: &Listed,
) -> Result<SizedBody<ObjectStream>, Failure> {
    let output = storage
        .client
        .get_object()
        .bucket(bucket)
        .key(&object.key)
        .send()
        .await
        .map_err(classify)?;
    if let Some(length) = output.content_length()
        && u64::try_from(length).ok() != Some(object.size)
    {
        return Err(Failure::Changed(format!(
            "listed {} bytes, Content-Length {length}",
            object.size
        )));
    }
    let chunks = futures::stream::unfold(output.body, |mut body| async move {
        body.next().await.map(|chunk| (chunk, body))
    });
    Ok(SizedBody::new(
        Box::pin(chunks),
        object.size,
        storage.request_timeout,
    ))
}

/// Streams one object into the spool, hashing it on the way.
pub(super) async fn to_spool(
    storage: &S3Storage,
    bucket: &str,
    object: &Listed,
    spool: &Spool,
) -> Result<ManifestEntry, BundleError> {
    let subject = format!("s3://{bucket}/{}", object.key);
    let (result, attempts) = with_retries(&storage.policy, &subject, || async {
        Ok(open(storage, bucket, object)
            .await?
            .into_spool(spool)
            .await?)
    })
    .await;
    result.map_err(|f| f.into_error(BundleStep::Hash, &subject, attempts))
}

/// Reads one (small, already size-checked) object into memory.
pub(super) async fn to_memory(
    storage: &S3Storage,
    bucket: &str,
    object: &Listed,
) -> Result<Bytes, BundleError> {
    let subject = format!("s3://{bucket}/{}", object.key);
    let (result, attempts) = with_retries(&storage.policy, &subject, || async {
        Ok(open(storage, bucket, object).await?.into_memory().await?)
    })
    .await;
    result.map_err(|f| f.into_error(BundleStep::Hash, &subject, attempts))
}
