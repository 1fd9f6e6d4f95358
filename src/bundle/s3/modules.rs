//! A worker's code: every object under a prefix is one module.
//!
//! Modules are few and small and go into one multipart upload, so they are
//! held in memory; the byte cap (`limits.max_worker_bytes`) is checked on the
//! listing before anything is read, and each body is held to its listed size.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::list::{ListLimits, list};
use super::{S3Storage, fetch};
use crate::bundle::BundleError;

/// At most this many modules, whatever their size: a bound on the listing
/// held in memory when the modules are tiny.
const MAX_MODULES: u64 = 10_000;

/// Every object under `prefix` (a folder prefix ending in `/`), named by its
/// path relative to the prefix (`index.js`, `lib/util.js`), in name order;
/// at most `max_bytes` in all. The same path rules as for assets apply.
pub async fn read_modules(
    storage: &S3Storage,
    bucket: &str,
    prefix: &str,
    max_bytes: u64,
) -> Result<Vec<(String, Bytes)>, BundleError> {
    let limits = ListLimits {
        max_files: MAX_MODULES,
        max_file_bytes: max_bytes,
        max_total_bytes: max_bytes,
        noun: "worker modules",
    };
    let objects = list(storage, bucket, prefix, &limits).await?;
    futures::stream::iter(objects)
        .map(|object| async move {
            let bytes = fetch::to_memory(storage, bucket, &object).await?;
            Ok::<_, BundleError>((object.rel, bytes))
        })
        // `buffered` keeps the listing's (name) order.
        .buffered(storage.fetch_concurrency)
        .try_collect()
        .await
}
