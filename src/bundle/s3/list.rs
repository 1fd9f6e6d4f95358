//! Lists the objects under a prefix, checking each key as it comes, before
//! a single byte of content is read.
//!
//! Listing is paginated (1,000 keys a page) and each object is handed to the
//! caller as it comes ([`list_each`]), so a prefix holding millions of
//! objects costs a few pages, not a full walk, when an early one breaks a
//! rule, and the caller decides what it holds in memory.
//!
//! Keys are asked for URL-encoded (`encoding-type=url`) and decoded here:
//! S3 keys may hold characters XML 1.0 cannot carry (`\x01`), which would
//! otherwise make the whole listing unreadable ("HTTP 200", no key named)
//! instead of failing the one key by name. Some servers (s3s-fs) echo the
//! encoding type without encoding; an encoded key never holds a space, a
//! control or a non-ASCII character, so a page holding one is read as is.

use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, EncodingType, Object};
use percent_encoding::percent_decode_str;

use super::S3Storage;
use super::failure::{Failure, classify, with_retries};
use crate::bundle::path::{check_relative, shown};
use crate::bundle::{BundleError, BundleStep, ListingGate};

/// One object to read.
#[derive(Debug, Clone)]
pub(super) struct Listed {
    /// The key, decoded: what GetObject takes.
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
    /// What the objects are, for messages ("worker modules").
    pub noun: &'static str,
}

/// Every object under `prefix`, in key order, at most `limits` (worker
/// modules: all are kept, so the caps bound memory).
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
    let mut out: Vec<Listed> = Vec::new();
    let mut total: u64 = 0;
    // Worker modules: a few small files, never a large bundle.
    list_each(storage, bucket, prefix, &(), &mut |object: Listed| {
        if out.len() as u64 >= limits.max_files {
            return Err(too_large(
                &location,
                format!("more than {} {}, the limit", limits.max_files, limits.noun),
            ));
        }
        if object.size > limits.max_file_bytes {
            return Err(too_large(
                &format!("s3://{bucket}/{}", shown(&object.key)),
                format!(
                    "{} bytes, more than the limit of {} bytes for one of the {}",
                    object.size, limits.max_file_bytes, limits.noun
                ),
            ));
        }
        total = total.saturating_add(object.size);
        if total > limits.max_total_bytes {
            return Err(too_large(
                &location,
                format!(
                    "{} total more than {} bytes, the limit",
                    limits.noun, limits.max_total_bytes
                ),
            ));
        }
        out.push(object);
        Ok(())
    })
    .await?;
    if out.is_empty() {
        return Err(no_objects(location));
    }
    Ok(out)
}

/// The error of a prefix that holds nothing.
pub(super) fn no_objects(location: String) -> BundleError {
    BundleError::NotFound {
        step: BundleStep::List,
        subject: location,
        detail: "no objects".into(),
    }
}

/// Hands every object under `prefix` to `take`, in key order, its key
/// decoded and through the path rules; stops at the first error, `take`'s
/// included. Zero-byte keys ending in `/` are folder markers some tools
/// create, not files: they are skipped. After each page, `gate` is told how
/// many objects were handed in all, and the next page waits for it.
/// Returns how many objects it handed.
pub(super) async fn list_each(
    storage: &S3Storage,
    bucket: &str,
    prefix: &str,
    gate: &dyn ListingGate,
    take: &mut (dyn FnMut(Listed) -> Result<(), BundleError> + Send),
) -> Result<u64, BundleError> {
    let location = format!("s3://{bucket}/{prefix}");
    let broken = |detail: &str, attempts| BundleError::Storage {
        step: BundleStep::List,
        subject: location.clone(),
        detail: detail.to_string(),
        retryable: false,
        attempts,
    };

    let mut handed = 0;
    let mut token: Option<String> = None;
    loop {
        let (page, attempts) = with_retries(&storage.policy, &location, || {
            let request = storage
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .encoding_type(EncodingType::Url)
                .set_continuation_token(token.clone());
            async move { request.send().await.map_err(classify) }
        })
        .await;
        let page =
            page.map_err(|f: Failure| f.into_error(BundleStep::List, &location, attempts))?;
        let encoded = page.encoding_type() == Some(&EncodingType::Url)
            && page
                .contents()
                .iter()
                .filter_map(Object::key)
                .all(could_be_url_encoded);

        for object in page.contents() {
            let Some(raw) = object.key() else {
                return Err(broken("listing gave an object without a key", attempts));
            };
            let key = if encoded {
                decode_key(raw).ok_or_else(|| BundleError::Invalid {
                    subject: format!("s3://{bucket}/{raw}"),
                    reason: "key is not UTF-8 once URL-decoded".into(),
                })?
            } else {
                raw.to_string()
            };
            let subject = format!("s3://{bucket}/{}", shown(&key));
            let size = object
                .size()
                .and_then(|s| u64::try_from(s).ok())
                .ok_or_else(|| broken(&format!("listing gave no size for {subject}"), attempts))?;
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
            let listed = Listed {
                rel: rel.to_string(),
                size,
                etag: object.e_tag().map(str::to_string),
                sha256_checksum: object
                    .checksum_algorithm()
                    .contains(&ChecksumAlgorithm::Sha256)
                    && object.checksum_type() != Some(&ChecksumType::Composite),
                key,
            };
            take(listed)?;
            handed += 1;
        }
        gate.holding(handed).await;

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
    Ok(handed)
}

/// Whether `key` could be what a URL encoder gave: it never leaves a space,
/// a control or a non-ASCII character raw.
fn could_be_url_encoded(key: &str) -> bool {
    key.bytes().all(|b| b.is_ascii_graphic())
}

/// A key as S3's `encoding-type=url` gives it, decoded as S3 encodes (form
/// encoding: `+` is a space, a real `+` comes as `%2B`); `None` when the
/// bytes are not UTF-8.
fn decode_key(raw: &str) -> Option<String> {
    let plus_as_space = raw.replace('+', " ");
    percent_decode_str(&plus_as_space)
        .decode_utf8()
        .ok()
        .map(|key| key.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_keys_are_decoded_as_s3_encodes_them() {
        assert_eq!(
            decode_key("site/a%01b.html").as_deref(),
            Some("site/a\u{1}b.html")
        );
        assert_eq!(
            decode_key("site/e%252Ff.html").as_deref(),
            Some("site/e%2Ff.html")
        );
        assert_eq!(decode_key("a+b%2Bc.html").as_deref(), Some("a b+c.html"));
        assert_eq!(
            decode_key("%E2%80%AEevil.html").as_deref(),
            Some("\u{202e}evil.html")
        );
        assert_eq!(decode_key("bad%FF.html"), None);
    }

    #[test]
    fn a_page_with_raw_characters_was_not_encoded() {
        assert!(could_be_url_encoded("site/a%20b.html"));
        assert!(could_be_url_encoded("site/a\\b.html"));
        assert!(!could_be_url_encoded("site/a b.html"));
        assert!(!could_be_url_encoded("site/t\tab.html"));
        assert!(!could_be_url_encoded("site/ünï.html"));
    }
}
