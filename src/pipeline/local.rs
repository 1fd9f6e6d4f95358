//! The one-shot `deploy` command's ways into the pipeline: the site's
//! files or the worker code from this machine's disk ([`LocalFiles`]), and
//! the dry run ([`Pipeline::plan`]), which stops before Cloudflare.
//!
//! Workers never call these, and no job can name a local path, so no
//! queued job can make a worker read its disk.

use std::path::PathBuf;
use std::time::Instant;

use super::{Built, DeployObserver, Outcome, Pipeline};
use crate::contract::{DeployJob, FailureInfo, ManifestSummary};

/// What a one-shot deploy reads from this machine instead of S3.
#[derive(Debug, Clone, Default)]
pub struct LocalFiles {
    /// The site's files, a directory or an archive file, instead of the
    /// job's bundle.
    pub bundle: Option<PathBuf>,
    /// The worker code, instead of the job's `worker`.
    pub code: Option<LocalCode>,
}

/// Worker code from a directory: every file under it is a module, named
/// by its path below it.
#[derive(Debug, Clone)]
pub struct LocalCode {
    /// One of the modules, e.g. `index.js`.
    pub main_module: String,
    pub dir: PathBuf,
}

impl LocalFiles {
    /// Worker code inside the site's directory (or the other way round)
    /// would be served to anyone as static files: the two must not overlap.
    pub(super) fn check_apart(&self) -> Result<(), String> {
        let (Some(site), Some(code)) = (&self.bundle, &self.code) else {
            return Ok(());
        };
        let (Ok(site_abs), Ok(code_abs)) = (site.canonicalize(), code.dir.canonicalize()) else {
            // A path that does not exist fails with its own message when read.
            return Ok(());
        };
        if site_abs.is_dir() && (code_abs.starts_with(&site_abs) || site_abs.starts_with(&code_abs))
        {
            return Err(format!(
                "--code {} overlaps the site's directory {}: worker code would be published \
                 as static assets (keep the code outside the site's files)",
                code.dir.display(),
                site.display()
            ));
        }
        Ok(())
    }
}

/// What a dry run found: the manifest as it would be deployed.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub manifest: ManifestSummary,
    /// Worker code modules read (0 for an assets-only worker).
    pub modules: usize,
}

impl Pipeline {
    /// Deploys `job` with what `local` names taken from this machine's disk
    /// instead of S3: the one-shot `deploy` command.
    pub async fn deploy_local(
        &self,
        job: &DeployJob,
        account_id: &str,
        local: &LocalFiles,
        observer: &DeployObserver,
    ) -> Outcome {
        self.outcome(job, account_id, 1, observer, local).await
    }

    /// The deploy's steps up to the manifest (validate, list, hash: every
    /// rule and limit checked, every file hashed) and nothing after: no
    /// upload session, no upload, no script PUT, no lease taken and no
    /// digest recorded. Cloudflare is asked nothing.
    pub async fn plan(
        &self,
        job: &DeployJob,
        account_id: &str,
        local: &LocalFiles,
        observer: &DeployObserver,
    ) -> (std::time::Duration, Result<Planned, FailureInfo>) {
        let started = Instant::now();
        let planned = Box::pin(self.plan_steps(job, account_id, local, observer))
            .await
            .map_err(|e| e.to_failure());
        observer.finish();
        (started.elapsed(), planned)
    }

    async fn plan_steps(
        &self,
        job: &DeployJob,
        account_id: &str,
        local: &LocalFiles,
        observer: &DeployObserver,
    ) -> Result<Planned, super::DeployError> {
        observer.step(crate::contract::Step::Validate);
        let plan = self.validate(job, account_id, local)?;
        let large = self.large_bundles.for_job();
        let spool = self.spools.spool().map_err(super::DeployError::Spool)?;
        let Built {
            script,
            ingested,
            manifest,
            ..
        } = self.build(&plan, observer, &spool, &large).await?;
        Ok(Planned {
            manifest: super::summary(&manifest, &ingested),
            modules: script.modules.len(),
        })
    }
}
