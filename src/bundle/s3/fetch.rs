//! Reads one object, chunk by chunk: hashed (nothing kept), into the spool
//! (verified against its digest), or into memory (worker modules); or asks
//! only for its version (a HEAD), when the listing did not give its ETag.
//!
//! The GetObject answer is checked against the listing (its
//! `Content-Length`), then its body is read through the shared
//! [`SizedBody`]: held to the listed size, each chunk within the request
//! timeout. A failed try starts the object over: the unfinished spool
//! writer is dropped, which removes its file.
//!
//! A hashed object's version (ETag, version id) is taken from the GET
//! answer that carried the bytes, never from the listing: an object
//! replaced in between is then cached under the version it was hashed as,
//! so the cache can never pair one version's key with another's digest.

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

/// Which version of an object: its ETag and, in a versioned bucket, its
/// version id, as S3 gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Version {
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

/// An object's body, and the version it is.
struct Opened {
    body: SizedBody<ObjectStream>,
    version: Version,
}

/// Asks for `key` and checks the answer's length against the listed `size`.
async fn open(storage: &S3Storage, bucket: &str, key: &str, size: u64) -> Result<Opened, Failure> {
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
    let version = Version {
        etag: output.e_tag().map(str::to_string),
        version_id: output.version_id().map(str::to_string),
    };
    let chunks = futures::stream::unfold(output.body, |mut body| async move {
        body.next().await.map(|chunk| (chunk, body))
    });
    let body = SizedBody::<ObjectStream>::new(Box::pin(chunks), size, storage.request_timeout);
    Ok(Opened { body, version })
}

/// Reads one object whole and returns its digest and the version read;
/// nothing is kept.
pub(super) async fn digest(
    storage: &S3Storage,
    bucket: &str,
    object: &Listed,
) -> Result<(ContentDigest, Version), BundleError> {
    let subject = format!("s3://{bucket}/{}", object.key);
    let (result, attempts) = with_retries(&storage.policy, &subject, || async {
        let opened = open(storage, bucket, &object.key, object.size).await?;
        Ok((opened.body.into_digest().await?, opened.version))
    })
    .await;
    result.map_err(|f| f.into_error(BundleStep::Hash, &subject, attempts))
}

/// The current version of a listed object, without its bytes: for servers
/// whose listings carry no ETag (s3s-fs), so the digest cache can still
/// name its content. Its length is checked against the listing.
pub(super) async fn head(
    storage: &S3Storage,
    bucket: &str,
    object: &Listed,
) -> Result<Version, BundleError> {
    let subject = format!("s3://{bucket}/{}", object.key);
    let (result, attempts) = with_retries(&storage.policy, &subject, || async {
        let output = storage
            .client
            .head_object()
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
        Ok(Version {
            etag: output.e_tag().map(str::to_string),
            version_id: output.version_id().map(str::to_string),
        })
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
            .body
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
            .body
            .into_memory()
            .await?)
    })
    .await;
    result.map_err(|f| f.into_error(BundleStep::Hash, &subject, attempts))
}
