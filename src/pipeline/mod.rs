//! One deploy, from a validated job to an [`Outcome`], top to bottom.
//!
//! [`Pipeline::run`] reads as the steps of the product: validate, bundle
//! (list + hash into the spool), upload session, bucket uploads, script PUT.
//! Every lower error becomes a contract error code in one place
//! ([`failure`]), and nothing here knows about AMQP.

mod failure;
mod locks;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::bundle::{self, BundleSource, S3Storage};
use crate::cloudflare::{CloudflareClient, Module, ScriptTarget, ScriptUpload, UploadStats};
use crate::config::{CloudflareSettings, LimitSettings, Settings};
use crate::contract::{DeployJob, DeploymentInfo, FailureInfo, ManifestSummary, UploadSummary};
use crate::manifest::Manifest;
use crate::spool::Spool;

pub use failure::DeployError;
use locks::ScriptLocks;

/// What a deploy came to; the worker turns it into the terminal event.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The account the job deployed to (or would have), when known.
    pub account_id: Option<String>,
    /// Wall time spent on the job.
    pub duration: Duration,
    pub result: Result<Success, FailureInfo>,
}

/// The facts of a successful deploy that the `deploy.succeeded` event reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Success {
    pub manifest: ManifestSummary,
    pub upload: UploadSummary,
    pub deployment: DeploymentInfo,
}

/// Runs one job. A trait so the worker can be tested with a scripted deployer
/// (the real one is [`Pipeline`]).
#[async_trait::async_trait]
pub trait Deploy: Send + Sync + 'static {
    /// Deploys `job`; `attempt` counts deliveries, starting at 1. Never panics
    /// on bad input: every failure is an `Outcome` with a contract error code.
    async fn deploy(&self, job: &DeployJob, attempt: u32) -> Outcome;
}

/// The real deployer: S3 in, Cloudflare out.
pub struct Pipeline {
    storage: S3Storage,
    cloudflare: CloudflareClient,
    accounts: CloudflareSettings,
    limits: LimitSettings,
    spool_root: PathBuf,
    default_compatibility_date: String,
    script_locks: ScriptLocks,
}

impl Pipeline {
    /// Built once per process by `startup`; the clients inside are shared by
    /// every job.
    pub fn new(settings: &Settings, storage: S3Storage, cloudflare: CloudflareClient) -> Self {
        Self {
            storage,
            cloudflare,
            accounts: settings.cloudflare.clone(),
            limits: settings.limits.clone(),
            spool_root: settings.worker.spool_root(),
            default_compatibility_date: settings.worker.default_compatibility_date.clone(),
            script_locks: ScriptLocks::default(),
        }
    }

    /// The account a job deploys into: its own, else the configured default.
    fn account_of(&self, job: &DeployJob) -> String {
        job.account_id
            .clone()
            .unwrap_or_else(|| self.accounts.account_id.clone())
    }

    /// The deploy itself, in the product's order.
    async fn run(&self, job: &DeployJob, account_id: String) -> Result<Success, DeployError> {
        // Validate: what decoding could not know, this worker's accounts.
        if !self.accounts.allows_account(&account_id) {
            return Err(DeployError::Invalid(format!(
                "account_id: {account_id} is not an account this worker is configured for"
            )));
        }
        let target = ScriptTarget {
            account_id,
            namespace: job.namespace.clone(),
            script_name: job.script_name.clone(),
        };

        // One deploy of a script at a time in this process: two builds of
        // one site racing would let the older PUT land last.
        let _script_lock = self.script_locks.lock(&target).await;

        // Worker code first: it is small, and a missing main module should
        // fail before gigabytes of assets are read.
        let script = self.script_upload(job).await?;

        // The bundle: list it, then stream every file once, hashing into the
        // manifest and spooling the bytes for the upload step.
        let spool = Spool::create(&self.spool_root).map_err(DeployError::Spool)?;
        let source = self
            .storage
            .prefix(&job.bundle.bucket, &job.bundle_prefix());
        let manifest = source
            .ingest(&spool, &self.limits)
            .await
            .map_err(DeployError::Bundle)?;

        // Cloudflare 1/3: the upload session says which files it lacks.
        let session = self
            .cloudflare
            .start_session(&target, &manifest)
            .await
            .map_err(DeployError::Cloudflare)?;
        // Cloudflare 2/3: upload those, bucket by bucket, with the upload JWT.
        let assets = self
            .cloudflare
            .upload(&target, &manifest, &spool, session)
            .await
            .map_err(DeployError::Cloudflare)?;

        // Cloudflare 3/3: the script PUT with the completion JWT.
        let deployed = self
            .cloudflare
            .deploy(&target, &manifest, &spool, assets, &script)
            .await
            .map_err(DeployError::Cloudflare)?;

        Ok(Success {
            manifest: summary(&manifest),
            upload: upload_summary(deployed.stats),
            deployment: DeploymentInfo {
                id: deployed.id,
                etag: deployed.etag,
                modified_on: deployed.modified_on,
            },
        })
    }

    /// The script part of the PUT: worker code when the job has it.
    async fn script_upload(&self, job: &DeployJob) -> Result<ScriptUpload, DeployError> {
        let (main_module, modules, assets_binding) = match &job.worker {
            None => (None, Vec::new(), None),
            Some(code) => {
                let bucket = code.bucket.as_deref().unwrap_or(&job.bundle.bucket);
                let modules = bundle::read_modules(
                    &self.storage,
                    bucket,
                    &code.folder_prefix(),
                    self.limits.max_worker_bytes,
                )
                .await
                .map_err(DeployError::WorkerCode)?;
                if let Some((bad, _)) = modules
                    .iter()
                    .find(|(name, _)| !crate::contract::names::is_module_name(name))
                {
                    return Err(DeployError::WorkerCodeInvalid(format!(
                        "module name {bad:?} cannot name a multipart part (quote or control character)"
                    )));
                }
                if !modules.iter().any(|(name, _)| *name == code.main_module) {
                    return Err(DeployError::WorkerCodeInvalid(format!(
                        "main_module {:?} is not among the {} module(s) under s3://{bucket}/{}",
                        code.main_module,
                        modules.len(),
                        code.folder_prefix()
                    )));
                }
                let modules = modules
                    .into_iter()
                    .map(|(name, bytes)| Module { name, bytes })
                    .collect();
                (
                    Some(code.main_module.clone()),
                    modules,
                    Some(job.assets_binding().to_string()),
                )
            }
        };
        Ok(ScriptUpload {
            main_module,
            modules,
            compatibility_date: job
                .compatibility_date
                .clone()
                .unwrap_or_else(|| self.default_compatibility_date.clone()),
            compatibility_flags: job.compatibility_flags.clone(),
            assets_config: job
                .assets_config
                .as_ref()
                .map(|c| serde_json::to_value(c).unwrap_or_default()),
            bindings: job.bindings.clone(),
            assets_binding,
        })
    }
}

#[async_trait::async_trait]
impl Deploy for Pipeline {
    async fn deploy(&self, job: &DeployJob, attempt: u32) -> Outcome {
        let started = Instant::now();
        let account_id = self.account_of(job);
        let span = tracing::info_span!(
            "deploy",
            job_id = %job.job_id,
            namespace = %job.namespace,
            script = %job.script_name,
            attempt
        );
        let result = self
            .run(job, account_id.clone())
            .instrument(span.clone())
            .await
            .map_err(|e| {
                let failure = e.to_failure();
                span.in_scope(|| {
                    tracing::warn!(code = %failure.code, step = %failure.step, error = %failure.message, "deploy failed")
                });
                failure
            });
        Outcome {
            account_id: Some(account_id),
            duration: started.elapsed(),
            result,
        }
    }
}

fn summary(manifest: &Manifest) -> ManifestSummary {
    ManifestSummary {
        files: manifest.len() as u64,
        bytes: manifest.total_bytes(),
        sha256: manifest.sha256(),
    }
}

fn upload_summary(stats: UploadStats) -> UploadSummary {
    UploadSummary {
        sessions: stats.sessions,
        buckets: stats.buckets,
        files: stats.files,
        bytes: stats.bytes,
    }
}
