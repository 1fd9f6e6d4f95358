//! Lists the objects under a prefix, checking path rules and limits as they
//! come, before a single byte of content is read.
//!
//! Listing is paginated (1,000 keys a page) and stops at the first broken
//! rule, so a prefix holding millions of objects costs a few pages, not a
//! full walk, and the list held in memory never exceeds the file limit.

use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType};

use super::S3Storage;
use super::failure::{Failure, classify, with_retries};
use crate::bundle::path::check_relative;
use crate::bundle::{BundleError, BundleStep};

/// One object to read.
#[derive(Debug, Clone)]
pub(super) struct Listed {
    pub key: String,
    /// The key without the prefix; passed the path rules.
    pub rel: String,
    pub size: u64,
    /// As the listing gives it (quotes and all): with the size, what names
    /// the content in the digest cache.
    pub etag: Option<String>,
    /// The listing says S3 keeps a SHA-256 of the whole object: a HEAD can
    /// give its digest without reading it.
    pub sha256_checksum: bool,
}

/// What one listing may hold.
#[derive(Debug, Clone)]
pub(super) struct ListLimits {
    pub max_files: u64,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    /// What the objects are, for messages ("files", "worker modules").
    pub noun: &'static str,
}

/// Every object under `prefix`, in key order. Zero-byte keys ending in `/`
/// are folder markers some tools create, not files: they are skipped.
pub(super) async fn list(
    storage: &S3Storage,
    bucket: &str,
    prefix: &str,
    limits: &ListLimits,
) -> Result<Vec<Listed>, BundleError> {
    let location = format!("s3://{bucket}/{prefix}");
    let too_large = |subject: &str, detail: String| BundleError::TooLarge {
        step: BundleStep::List,
        subject: subject.to_string(),
        detail,
    };
    let broken = |detail: &str, attempts| BundleError::Storage {
        step: BundleStep::List,
        subject: location.clone(),
        detail: detail.to_string(),
        retryable: false,
        attempts,
    };

    let mut out: Vec<Listed> = Vec::new();
    let mut total: u64 = 0;
    let mut token: Option<String> = None;
    loop {
        let (page, attempts) = with_retries(&storage.policy, &location, || {
            let request = storage
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone());
            async move { request.send().await.map_err(classify) }
        })
        .await;
        let page =
            page.map_err(|f: Failure| f.into_error(BundleStep::List, &location, attempts))?;

        for object in page.contents() {
            let Some(key) = object.key() else {
                return Err(broken("listing gave an object without a key", attempts));
            };
            let subject = format!("s3://{bucket}/{key}");
            let size = object
                .size()
                .and_then(|s| u64::try_from(s).ok())
                .ok_or_else(|| broken(&format!("listing gave no size for {key}"), attempts))?;
            if size == 0 && key.ends_with('/') {
                continue;
            }
            let Some(rel) = key.strip_prefix(prefix) else {
                return Err(BundleError::Invalid {
                    subject,
                    reason: format!("key is not under the prefix {prefix:?}"),
                });
            };
            check_relative(rel).map_err(|e| BundleError::Invalid {
                subject: subject.clone(),
                reason: e.to_string(),
            })?;
            if out.len() as u64 >= limits.max_files {
                return Err(too_large(
                    &location,
                    format!("more than {} {}, the limit", limits.max_files, limits.noun),
                ));
            }
            if size > limits.max_file_bytes {
                return Err(too_large(
                    &subject,
                    format!(
                        "{size} bytes, more than the limit of {} bytes for one of the {}",
                        limits.max_file_bytes, limits.noun
                    ),
                ));
            }
            total = total.saturating_add(size);
            if total > limits.max_total_bytes {
                return Err(too_large(
                    &location,
                    format!(
                        "{} total more than {} bytes, the limit",
                        limits.noun, limits.max_total_bytes
                    ),
                ));
            }
            out.push(Listed {
                key: key.to_string(),
                rel: rel.to_string(),
                size,
                etag: object.e_tag().map(str::to_string),
                sha256_checksum: object
                    .checksum_algorithm()
                    .contains(&ChecksumAlgorithm::Sha256)
                    && object.checksum_type() != Some(&ChecksumType::Composite),
            });
        }

        match (page.is_truncated(), page.next_continuation_token()) {
            (Some(true), Some(next)) if !next.is_empty() && token.as_deref() != Some(next) => {
                token = Some(next.to_string());
            }
            (Some(true), _) => {
                return Err(broken(
                    "listing is truncated but gives no new continuation token",
                    attempts,
                ));
            }
            _ => break,
        }
    }

    if out.is_empty() {
        return Err(BundleError::NotFound {
            step: BundleStep::List,
            subject: location,
            detail: "no objects".into(),
        });
    }
    Ok(out)
}
