//! Reads one object, chunk by chunk, into the spool or into memory.
//!
//! A body is trusted no further than the listing: it must be exactly the
//! listed size (a longer body is cut off at the first extra byte, not
//! buffered), so the limits checked on the listing also bound what is read.
//! Each chunk must arrive within the request timeout, so a stalled stream
//! fails and is retried instead of hanging the job. A retry starts the object
//! over: the unfinished spool writer is dropped, which removes its file.

use bytes::{Bytes, BytesMut};

use super::S3Storage;
use super::failure::{Failure, classify, error_chain, with_retries};
use super::list::Listed;
use crate::bundle::{BundleError, BundleStep};
use crate::manifest::ManifestEntry;
use crate::spool::Spool;

/// A GetObject body held to its listed size and to a per-chunk deadline.
struct Body {
    stream: aws_sdk_s3::primitives::ByteStream,
    listed: u64,
    read: u64,
    stall: std::time::Duration,
}

impl Body {
    async fn open(storage: &S3Storage, bucket: &str, object: &Listed) -> Result<Body, Failure> {
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
        Ok(Body {
            stream: output.body,
            listed: object.size,
            read: 0,
            stall: storage.request_timeout,
        })
    }

    /// The next chunk, or `None` once exactly the listed size was read.
    async fn next(&mut self) -> Result<Option<Bytes>, Failure> {
        match tokio::time::timeout(self.stall, self.stream.next()).await {
            Err(_) => Err(Failure::Transient(format!(
                "body stalled: no data for {}s after {} of {} bytes",
                self.stall.as_secs_f64(),
                self.read,
                self.listed
            ))),
            Ok(Some(Err(e))) => Err(Failure::Transient(format!(
                "reading body: {}",
                error_chain(&e)
            ))),
            Ok(Some(Ok(chunk))) => {
                self.read += chunk.len() as u64;
                if self.read > self.listed {
                    return Err(Failure::Changed(format!(
                        "listed {} bytes, body is longer",
                        self.listed
                    )));
                }
                Ok(Some(chunk))
            }
            Ok(None) if self.read != self.listed => Err(Failure::Changed(format!(
                "listed {} bytes, read {}",
                self.listed, self.read
            ))),
            Ok(None) => Ok(None),
        }
    }
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
        let mut body = Body::open(storage, bucket, object).await?;
        let mut writer = spool.writer().map_err(Failure::Local)?;
        while let Some(chunk) = body.next().await? {
            writer.write(&chunk).await.map_err(Failure::Local)?;
        }
        writer.finish().await.map_err(Failure::Local)
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
        let mut body = Body::open(storage, bucket, object).await?;
        // The listed size was checked against the limit; the body cannot
        // outgrow it, so this one allocation is all.
        let mut buffer = BytesMut::with_capacity(usize::try_from(object.size).unwrap_or(0));
        while let Some(chunk) = body.next().await? {
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer.freeze())
    })
    .await;
    result.map_err(|f| f.into_error(BundleStep::Hash, &subject, attempts))
}
