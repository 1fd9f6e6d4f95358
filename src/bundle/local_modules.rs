//! Worker code from a local directory, for the one-shot `deploy --code
//! DIR`: every file under it is one module, named by its path below it.
//!
//! The directory is walked with the same rules as a local site (path rules,
//! symbolic links and special files refused); like the S3 reader, the byte
//! cap (`limits.max_worker_bytes`) is checked on the listing before any
//! file is read, and the modules are held in memory for the multipart PUT.

use std::path::Path;

use bytes::Bytes;

use super::local::{io_error, walk};
use super::{BundleError, BundleStep};

/// At most this many modules, as for worker code in S3.
const MAX_MODULES: u64 = 10_000;

/// Every file under `dir`, named by its path below it, in name order; at
/// most `max_bytes` in all.
pub async fn read_local_modules(
    dir: &Path,
    max_bytes: u64,
) -> Result<Vec<(String, Bytes)>, BundleError> {
    let root = dir.to_path_buf();
    let location = format!("{}/", dir.display());
    let found = tokio::task::spawn_blocking(move || {
        if !root.is_dir() {
            return Err(BundleError::NotFound {
                step: BundleStep::List,
                subject: format!("{}/", root.display()),
                detail: "not a directory".into(),
            });
        }
        walk(&root, MAX_MODULES)
    })
    .await
    .map_err(|e| BundleError::Storage {
        step: BundleStep::List,
        subject: location.clone(),
        detail: format!("walking the directory: {e}"),
        retryable: false,
        attempts: 1,
    })??;
    let total: u64 = found.iter().map(|f| f.size).sum();
    if total > max_bytes {
        return Err(BundleError::TooLarge {
            step: BundleStep::List,
            subject: location,
            detail: format!(
                "worker modules of {total} bytes, over limits.max_worker_bytes ({max_bytes})"
            ),
        });
    }
    let mut modules = Vec::with_capacity(found.len());
    for file in found {
        let path = dir.join(&file.rel);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| io_error(path.display().to_string(), BundleStep::List, &e))?;
        modules.push((file.rel, Bytes::from(bytes)));
    }
    Ok(modules)
}
