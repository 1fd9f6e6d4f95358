//! Memory at Cloudflare's limit: one `wfp-deployer worker` with
//! `worker.concurrency` = 4 deploying four bundles of 100,000 files each at
//! once, each to a script of its own (everything hashed and uploaded). The
//! bundles are `tar.gz` archives of tiny files (one object each, cheap to
//! make and to store), so the figure is what the files' records cost, not
//! their bytes. Its figure is the worker's peak RSS, against the issue's
//! 128 MiB; what keeps it there is `limits.large_bundle_files` (one large
//! bundle at a time, the others waiting).

use std::time::Instant;

use crate::data::{self, DataSet, mib};
use crate::deploy::Source;
use crate::report::Huge;
use crate::stack::Stack;

/// Jobs at once: the worker's concurrency and the number of bundles.
const JOBS: usize = 4;

/// Files per bundle: Cloudflare's limit (Workers Paid).
pub const FILES: usize = 100_000;

/// Puts four archives of `files` tiny files each in `bucket` and deploys
/// them at once through one worker of concurrency 4.
pub async fn measure(
    stack: &Stack,
    s3: &aws_sdk_s3::Client,
    run: &str,
    seed: u64,
    bucket: &str,
    files: usize,
) -> anyhow::Result<Huge> {
    let mut keys = Vec::new();
    let mut bytes_per_job = 0;
    for i in 0..JOBS {
        let started = Instant::now();
        let set = DataSet::tiny(&format!("huge-{i}"), seed, files);
        let archive = data::tar_gz(&set)?;
        let (size, key) = (archive.len() as u64, format!("huge/site-{i}.tar.gz"));
        data::put(s3, bucket, key.clone(), archive).await?;
        println!(
            "  data {} as tar.gz, {:.1} MiB -> s3://{bucket}/{key} in {:.1} s",
            set.describe(),
            mib(size),
            started.elapsed().as_secs_f64()
        );
        bytes_per_job = set.total_bytes();
        keys.push(key);
    }

    let sources: Vec<Source<'_>> = keys.iter().map(|k| Source::Archive(k)).collect();
    let done = crate::stress::at_once(stack, run, "huge", bucket, &sources).await?;
    Ok(Huge {
        jobs: done.succeeded,
        files_per_job: files,
        bytes_per_job,
        wall_s: done.wall_s,
        worker_peak_rss_mib: done.worker_peak_rss_mib,
    })
}
