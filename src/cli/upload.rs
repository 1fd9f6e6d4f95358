//! `wfp-deployer upload-bundle DIR --bucket B --prefix P`: puts a local
//! directory in S3 the way the worker expects a bundle (one object per file,
//! keys = prefix + relative path), creating the bucket when missing.
//!
//! Platform services usually have their own upload path; this is for the
//! demo, for trying the tool, and for seeding test stacks.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use aws_sdk_s3::primitives::ByteStream;

use crate::bundle::S3Storage;
use crate::config::Settings;

#[derive(Debug, Clone, clap::Args)]
pub struct UploadArgs {
    /// The directory to upload.
    pub dir: PathBuf,
    /// The bucket to put it in (created if missing).
    #[arg(long)]
    pub bucket: String,
    /// Key prefix (a folder: a trailing `/` is added when missing).
    #[arg(long, default_value = "")]
    pub prefix: String,
}

pub async fn run(settings: &Settings, args: &UploadArgs) -> anyhow::Result<()> {
    let files = files_under(&args.dir)?;
    if files.is_empty() {
        bail!("{}: no files to upload", args.dir.display());
    }
    let storage = S3Storage::new(&settings.s3, &settings.retry, 1).await;
    let client = storage.client();
    let created = client.create_bucket().bucket(&args.bucket).send().await;
    if let Err(e) = created {
        let already = e
            .as_service_error()
            .is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists());
        if !already {
            bail!(
                "creating bucket {}: {}",
                args.bucket,
                aws_sdk_s3::error::DisplayErrorContext(e)
            );
        }
    }
    let prefix = match args.prefix.as_str() {
        "" => String::new(),
        p if p.ends_with('/') => p.to_string(),
        p => format!("{p}/"),
    };
    let mut bytes = 0u64;
    for (rel, path) in &files {
        let body = ByteStream::from_path(path)
            .await
            .with_context(|| format!("{}: reading", path.display()))?;
        let key = format!("{prefix}{rel}");
        client
            .put_object()
            .bucket(&args.bucket)
            .key(&key)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "s3://{}/{key}: upload: {}",
                    args.bucket,
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })?;
        bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    eprintln!(
        "uploaded {} files ({bytes} bytes) to s3://{}/{prefix}",
        files.len(),
        args.bucket
    );
    Ok(())
}

/// Every regular file under `dir`, with its `/`-separated path relative to it,
/// sorted so uploads are repeatable.
fn files_under(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries = std::fs::read_dir(&current)
            .with_context(|| format!("{}: listing", current.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                let rel = path
                    .strip_prefix(dir)
                    .context("a file outside the directory")?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}
