//! Reads one object, chunk by chunk: hashed (nothing kept), into the spool
//! (verified against its digest), or into memory (worker modules); or asks
//! only for its version and stored SHA-256 (a HEAD).
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

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::types::{ChecksumMode, ChecksumType};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
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
pub(super) type ObjectStream = std::pin::Pin<
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
    opened(storage, output, size)
}

/// Asks for bytes `start..end` of the version `pin` of `key` (its version
/// id, else its ETag as `If-Match`): every read of one archive reads the
/// same object. A version that is gone or replaced is a change (HTTP 412),
/// worth a try of the whole job, not of this read.
pub(super) async fn open_range(
    storage: &S3Storage,
    bucket: &str,
    key: &str,
    pin: &Version,
    start: u64,
    end: u64,
) -> Result<SizedBody<ObjectStream>, Failure> {
    let mut request = storage
        .client
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(format!("bytes={start}-{}", end.saturating_sub(1)));
    request = match (&pin.version_id, &pin.etag) {
        (Some(id), _) => request.version_id(id),
        (None, Some(etag)) => request.if_match(etag),
        (None, None) => request,
    };
    let output = request.send().await.map_err(|e| match &e {
        SdkError::ServiceError(service) if service.raw().status().as_u16() == 412 => {
            Failure::Changed("the object was replaced while being read".into())
        }
        _ => classify(e),
    })?;
    Ok(opened(storage, output, end - start)?.body)
}

/// A GetObject answer as a body held to `size` bytes, and its version.
fn opened(storage: &S3Storage, output: GetObjectOutput, size: u64) -> Result<Opened, Failure> {
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
    let body = SizedBody::<ObjectStream>::new(Box::pin(chunks), size, storage.idle_timeout);
    Ok(Opened { body, version })
}

/// Reads one object whole and returns its digest and the version read; a
/// copy of the bytes is kept in `spool` while it has room, for the upload
/// (see [`SizedBody::into_digest_keeping`]).
pub(super) async fn digest(
    storage: &S3Storage,
    bucket: &str,
    object: &Listed,
    spool: &Spool,
) -> Result<(ContentDigest, Version), BundleError> {
    let subject = format!("s3://{bucket}/{}", object.key);
    let (result, attempts) = with_retries(&storage.policy, &subject, || async {
        let opened = open(storage, bucket, &object.key, object.size).await?;
        Ok((
            opened.body.into_digest_keeping(spool).await?,
            opened.version,
        ))
    })
    .await;
    result.map_err(|f| f.into_error(BundleStep::Hash, &subject, attempts))
}

/// What a HEAD tells of an object.
pub(super) struct Headed {
    pub version: Version,
    /// The SHA-256 S3 keeps of the whole object, when it keeps one.
    pub sha256: Option<ContentDigest>,
}

/// The current version of a listed object, and its SHA-256 when S3 keeps
/// one, without its bytes: for listings that carry no ETag (s3s-fs), so the
/// digest cache can still name the content, and for objects stored with a
/// SHA-256 checksum. Its length is checked against the listing.
pub(super) async fn head(
    storage: &S3Storage,
    bucket: &str,
    object: &Listed,
) -> Result<Headed, BundleError> {
    let subject = format!("s3://{bucket}/{}", object.key);
    let (result, attempts) = with_retries(&storage.policy, &subject, || async {
        let output = storage
            .client
            .head_object()
            .bucket(bucket)
            .key(&object.key)
            .checksum_mode(ChecksumMode::Enabled)
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
        Ok(Headed {
            sha256: full_object_sha256(
                output.checksum_sha256(),
                output.checksum_type(),
                output.e_tag(),
            ),
            version: Version {
                etag: output.e_tag().map(str::to_string),
                version_id: output.version_id().map(str::to_string),
            },
        })
    })
    .await;
    result.map_err(|f| f.into_error(BundleStep::Hash, &subject, attempts))
}

/// The digest a `x-amz-checksum-sha256` gives, when it is of the whole
/// object: not a composite of parts (a multipart upload's, its type says so,
/// its value carries a `-N` suffix, and so does its ETag).
fn full_object_sha256(
    checksum: Option<&str>,
    kind: Option<&ChecksumType>,
    etag: Option<&str>,
) -> Option<ContentDigest> {
    if kind == Some(&ChecksumType::Composite) || etag.is_some_and(|e| e.contains('-')) {
        return None;
    }
    let bytes = STANDARD.decode(checksum?).ok()?;
    Some(ContentDigest(bytes.try_into().ok()?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_object_sha256_is_a_digest() {
        // base64 of sha256("hello world")
        let hello = "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=";
        let want = Some(ContentDigest::of(b"hello world"));
        assert_eq!(
            full_object_sha256(Some(hello), None, Some("\"5eb6\"")),
            want
        );
        assert_eq!(
            full_object_sha256(Some(hello), Some(&ChecksumType::FullObject), None),
            want
        );
        assert_eq!(
            full_object_sha256(Some(hello), Some(&ChecksumType::Composite), None),
            None
        );
        assert_eq!(
            full_object_sha256(Some(hello), None, Some("\"ab-3\"")),
            None
        );
        assert_eq!(
            full_object_sha256(Some(&format!("{hello}-3")), None, None),
            None
        );
        assert_eq!(full_object_sha256(Some("c2hvcnQ="), None, None), None);
        assert_eq!(full_object_sha256(None, None, None), None);
    }
}
