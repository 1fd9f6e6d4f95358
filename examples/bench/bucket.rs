//! The run's S3 buckets: created empty, deleted with everything in them at
//! the end (`BENCH_KEEP=1` keeps them).

pub async fn create(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "creating bucket {}: {}",
                bucket,
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        })?;
    Ok(())
}

/// Deletes every object of `bucket`, then the bucket; best effort
/// (a leftover bucket only takes space), said when it fails.
pub async fn delete(s3: &aws_sdk_s3::Client, bucket: &str) {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(Ok(page)) = pages.next().await {
        let ids: Vec<ObjectIdentifier> = page
            .contents()
            .iter()
            .filter_map(|o| {
                ObjectIdentifier::builder()
                    .set_key(o.key.clone())
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            continue;
        }
        let Ok(delete) = Delete::builder().set_objects(Some(ids)).quiet(true).build() else {
            continue;
        };
        let _ = s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await;
    }
    if let Err(e) = s3.delete_bucket().bucket(bucket).send().await {
        eprintln!(
            "  leaving bucket {}: {}",
            bucket,
            aws_sdk_s3::error::DisplayErrorContext(e)
        );
    }
}
