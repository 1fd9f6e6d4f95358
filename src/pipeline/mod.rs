//! One deploy, from a validated job to an [`Outcome`], top to bottom.
//!
//! `Pipeline::run` reads as the steps of the product: validate, bundle
//! (list, and each file's content digest: from the digest cache or by
//! reading it), the manifest (asset hashes salted per tenant: `assets.rs`),
//! upload session, the missing files fetched into the spool and uploaded
//! (`content.rs`), script PUT, and the digests recorded in the cache. Each
//! deploy runs in its script's turn (`order/`: a fleet-wide lease and the
//! last-deployed marker), so an older build never ends live after a newer
//! one and a job older than the live build ends `superseded`. Every
//! lower error becomes a contract error code in one place (`failure.rs`), and
//! nothing here knows about AMQP. The deploy reports each step it enters to
//! the [`DeployObserver`] its runner handed it.
//!
//! The job's account is resolved once, by the runner ([`account_for`]),
//! before `deploy.started`, and handed to both the events and the deploy, so
//! the two can never name different accounts.

mod assets;
mod content;
mod failure;
mod large;
mod local;
mod locks;
mod observer;
mod order;
mod script;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::bundle::{BundleSource, Bundles, IngestContext, Ingested};
use crate::cache::DigestCache;
use crate::cloudflare::{CloudflareClient, ScriptTarget, ScriptUpload, UploadStats};
use crate::config::{CloudflareSettings, LimitSettings, S3Settings, Settings};
use crate::contract::{
    DeployJob, DeploymentInfo, FailureInfo, ManifestSummary, Step, Success, UploadSummary,
};
use crate::internal_events::{DeployFailed, emit};
use crate::manifest::{AssetHashing, Manifest};
use crate::spool::{Spool, SpoolArea};

use assets::HashRules;
use content::JobContent;
pub use failure::DeployError;
pub use large::{LargeBundleHold, LargeBundles};
pub use local::{LocalCode, LocalFiles, Planned};
use locks::ScriptLocks;
pub use observer::{DeployObserver, ProgressSnapshot};
pub use order::{
    LeaseError, LeaseHold, MAX_CLOCK_AHEAD, Marker, Markers, OrderError, ProcessLease, ScriptLease,
    ScriptOrder, Turn,
};

/// What a deploy came to; the runner turns it into the terminal event.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Wall time spent on the job.
    pub duration: Duration,
    pub result: Result<Success, FailureInfo>,
}

/// Runs one job. A trait so the worker can be tested with a scripted deployer
/// (the real one is [`Pipeline`]).
#[async_trait::async_trait]
pub trait Deploy: Send + Sync + 'static {
    /// Deploys `job` into `account_id` (its runner resolved it with
    /// [`account_for`]); `attempt` counts deliveries, starting at 1; each
    /// step is reported to `observer` as the deploy enters it. Never panics
    /// on bad input: every failure is an `Outcome` with a contract error code.
    async fn deploy(
        &self,
        job: &DeployJob,
        account_id: &str,
        attempt: u32,
        observer: &DeployObserver,
    ) -> Outcome;
}

/// The account a job deploys into: its own `account_id`, else the configured
/// default. Called once per job, before `deploy.started`; whether this worker
/// may deploy there is the deploy's first check (`validate`).
pub fn account_for(job: &DeployJob, default_account: &str) -> String {
    job.account_id
        .clone()
        .unwrap_or_else(|| default_account.to_string())
}

/// The real deployer: S3 in, Cloudflare out.
pub struct Pipeline {
    bundles: Bundles,
    cloudflare: CloudflareClient,
    /// Shared by every job of the process (and, through S3, the fleet).
    cache: Arc<DigestCache>,
    hash_rules: HashRules,
    accounts: CloudflareSettings,
    s3: S3Settings,
    limits: LimitSettings,
    spools: Arc<SpoolArea>,
    fetch_concurrency: usize,
    default_compatibility_date: String,
    script_locks: ScriptLocks,
    /// One job at a time past `limits.large_bundle_files` (`large.rs`).
    large_bundles: LargeBundles,
    /// The fleet-wide half of one deploy per script at a time, and build
    /// order.
    order: ScriptOrder,
}

impl Pipeline {
    /// Built once per process by `startup`; the clients, the cache and the
    /// script order inside are shared by every job.
    pub fn new(
        settings: &Settings,
        bundles: Bundles,
        cloudflare: CloudflareClient,
        cache: Arc<DigestCache>,
        spools: Arc<SpoolArea>,
        order: ScriptOrder,
    ) -> Self {
        Self {
            bundles,
            cloudflare,
            cache,
            hash_rules: HashRules::new(&settings.manifest),
            accounts: settings.cloudflare.clone(),
            s3: settings.s3.clone(),
            limits: settings.limits.clone(),
            spools,
            fetch_concurrency: settings.worker.fetch_concurrency,
            default_compatibility_date: settings.worker.default_compatibility_date.clone(),
            script_locks: ScriptLocks::default(),
            large_bundles: LargeBundles::new(settings.limits.large_bundle_files),
            order,
        }
    }

    /// The deploy itself, in the product's order, each step reported to
    /// `observer` as it starts (the bundle's source reports the step from
    /// listing to hashing itself, through [`crate::bundle::IngestProgress`]);
    /// fetching the missing files is part of `upload`.
    async fn run(
        &self,
        job: &DeployJob,
        account_id: &str,
        observer: &DeployObserver,
        local: &LocalFiles,
    ) -> Result<Success, DeployError> {
        observer.step(Step::Validate);
        let plan = self.validate(job, account_id, local)?;

        // One deploy of a script at a time: first in this process, in order
        // of arrival (two builds racing would let the older PUT land last),
        // then across the fleet (the lease), where the marker also says
        // whether this build is older than the live one.
        let _script_lock = self.script_locks.lock(&plan.target).await;
        let turn = self
            .order
            .begin(&plan.scope, job)
            .await
            .map_err(DeployError::Order)?;
        let deployed = self.run_in_turn(&plan, &turn, observer).await;
        turn.end().await;
        deployed
    }

    /// Validate: what decoding could not know, this worker's accounts and
    /// what it may read from S3 (what `local` replaces is not read there).
    /// Returns the deploy's [`Plan`].
    fn validate<'a>(
        &self,
        job: &'a DeployJob,
        account_id: &str,
        local: &'a LocalFiles,
    ) -> Result<Plan<'a>, DeployError> {
        if !self.accounts.allows_account(account_id) {
            return Err(DeployError::Invalid(format!(
                "account_id: {account_id} is not an account this worker is configured for"
            )));
        }
        if local.bundle.is_none() {
            crate::config::check_bundle_ref_access(job, &self.s3).map_err(DeployError::Invalid)?;
        }
        if local.code.is_none() {
            crate::config::check_worker_access(job, &self.s3).map_err(DeployError::Invalid)?;
        }
        local.check_apart().map_err(DeployError::Invalid)?;
        let hashing = self.hash_rules.for_job(job, account_id)?;
        let target = ScriptTarget {
            account_id: account_id.to_string(),
            namespace: job.namespace.clone(),
            script_name: job.script_name.clone(),
        };
        // The digest cache's index of this script (see `crate::cache`).
        let scope = format!("{account_id}/{}/{}", job.namespace, job.script_name);
        Ok(Plan {
            job,
            target,
            scope,
            hashing,
            local,
        })
    }

    /// The deploy proper, in the script's turn: nothing else deploys this
    /// script meanwhile, and the turn is checked before the PUT.
    async fn run_in_turn(
        &self,
        plan: &Plan<'_>,
        turn: &Turn<'_>,
        observer: &DeployObserver,
    ) -> Result<Success, DeployError> {
        let (target, scope) = (&plan.target, plan.scope.as_str());
        // First, so it is dropped last: the large-bundle permit, if the
        // listing takes it, is given back once every per-file record below
        // is gone.
        let large = self.large_bundles.for_job();
        let spool = self.spools.spool().map_err(DeployError::Spool)?;
        let Built {
            script,
            source,
            ingested,
            manifest,
        } = self.build(plan, observer, &spool, &large).await?;

        // Cloudflare 1/3: the upload session says which files it lacks.
        observer.step(Step::Session);
        let session = self
            .cloudflare
            .start_session(target, &manifest)
            .await
            .map_err(DeployError::Cloudflare)?;
        // Cloudflare 2/3: read only those into the spool, verified, and
        // upload them, bucket by bucket, with the upload JWT; a bucket goes
        // up as soon as its files are read, while the next ones are read.
        // The totals first: the step's first progress report has them.
        observer.upload_asked(&manifest, &session.buckets);
        observer.step(Step::Upload);
        let content = JobContent::new(
            source.as_ref(),
            &ingested.files,
            &spool,
            &self.cache,
            scope,
            self.fetch_concurrency,
        )
        .observed_by(observer);
        let assets = content
            .upload(&self.cloudflare, target, &manifest, session)
            .await?;

        // Cloudflare 3/3: the script PUT with the completion JWT — only
        // while the script's turn is still ours (the fence), and recorded
        // as the live build before the turn is given up.
        observer.step(Step::Deploy);
        turn.fence().await.map_err(DeployError::Order)?;
        let deployed = self
            .cloudflare
            .deploy(target, &manifest, &content, assets, &script)
            .await
            .map_err(DeployError::Cloudflare)?;
        turn.deployed().await.map_err(DeployError::Order)?;

        // Live: what was learnt is now worth sharing with the fleet.
        let known = ingested
            .files
            .iter()
            .filter_map(|f| f.content_key.as_deref().map(|k| (k.clone(), f.digest)))
            .collect();
        self.cache.record(scope, known).await;

        Ok(Success {
            manifest: summary(&manifest, &ingested),
            upload: upload_summary(deployed.stats, content.bytes_read()),
            deployment: DeploymentInfo {
                id: deployed.id,
                etag: deployed.etag,
                modified_on: deployed.modified_on,
            },
        })
    }

    /// Steps list and hash: the worker code read first (it is small, and
    /// a missing main module should fail before gigabytes of assets are
    /// read), then the bundle listed and every file's content digest
    /// learnt, from the cache where the listing names content seen before,
    /// else by reading it; then the manifest, hashed for this job's tenant.
    async fn build(
        &self,
        plan: &Plan<'_>,
        observer: &DeployObserver,
        spool: &Spool,
        large: &LargeBundleHold,
    ) -> Result<Built, DeployError> {
        let (job, scope, hashing, local) =
            (plan.job, plan.scope.as_str(), &plan.hashing, plan.local);
        observer.step(Step::List);
        let mut script = self.script_upload(job, local.code.as_ref()).await?;
        let source = match &local.bundle {
            Some(path) => self.bundles.open_local(path, None),
            None => self.bundles.open(&job.bundle),
        }
        .map_err(DeployError::Bundle)?;
        self.cache.warm(scope).await;
        let html_handling = job
            .assets_config
            .as_ref()
            .and_then(|c| c.html_handling.as_deref());
        let ingested = source
            .ingest(&IngestContext {
                limits: &self.limits,
                cache: &self.cache,
                spool,
                html_handling,
                progress: observer,
                gate: large,
            })
            .await
            .map_err(DeployError::Bundle)?;
        // The bundle's `_headers` and `_redirects` travel in the metadata.
        script.assets_config = ingested.config.apply(script.assets_config.take());
        let manifest = assets::manifest(&ingested.files, hashing)?;
        Ok(Built {
            script,
            source,
            ingested,
            manifest,
        })
    }
}

/// One deploy as validated: what it deploys, where, and how its assets are
/// hashed.
struct Plan<'a> {
    job: &'a DeployJob,
    target: ScriptTarget,
    /// The script's digest-cache index and lease name
    /// (`account/namespace/script`).
    scope: String,
    hashing: AssetHashing,
    local: &'a LocalFiles,
}

/// What the list and hash steps made: all a deploy needs from the bundle
/// before it asks Cloudflare anything.
struct Built {
    script: ScriptUpload,
    source: Box<dyn BundleSource>,
    ingested: Ingested,
    manifest: Manifest,
}

impl Pipeline {
    /// Runs the deploy in its span and turns it into an [`Outcome`].
    async fn outcome(
        &self,
        job: &DeployJob,
        account_id: &str,
        attempt: u32,
        observer: &DeployObserver,
        local: &LocalFiles,
    ) -> Outcome {
        let started = Instant::now();
        let span = tracing::info_span!(
            "deploy",
            job_id = %job.job_id,
            namespace = %job.namespace,
            script = %job.script_name,
            attempt
        );
        // Boxed: the deploy's future is large, and the binary's `main`
        // awaits it through a few layers.
        let result = Box::pin(self.run(job, account_id, observer, local))
            .instrument(span.clone())
            .await
            .map_err(|e| {
                let failure = e.to_failure();
                span.in_scope(|| {
                    emit(DeployFailed {
                        code: failure.code,
                        step: failure.step,
                        message: &failure.message,
                    })
                });
                failure
            });
        observer.finish();
        Outcome {
            duration: started.elapsed(),
            result,
        }
    }
}

#[async_trait::async_trait]
impl Deploy for Pipeline {
    async fn deploy(
        &self,
        job: &DeployJob,
        account_id: &str,
        attempt: u32,
        observer: &DeployObserver,
    ) -> Outcome {
        self.outcome(job, account_id, attempt, observer, &LocalFiles::default())
            .await
    }
}

/// What was deployed, and what learning its digests cost (the bytes read
/// to hash: what the cache saves).
fn summary(manifest: &Manifest, ingested: &Ingested) -> ManifestSummary {
    ManifestSummary {
        files: manifest.len() as u64,
        bytes: manifest.total_bytes(),
        sha256: manifest.sha256(),
        cache_hits: Some(ingested.cache_hits),
        bytes_read: Some(ingested.bytes_read),
    }
}

/// What was sent, and the bytes read again to send it (`fetched`).
fn upload_summary(stats: UploadStats, fetched: u64) -> UploadSummary {
    UploadSummary {
        sessions: stats.sessions,
        buckets: stats.buckets,
        files: stats.files,
        bytes: stats.bytes,
        bytes_read: Some(fetched),
    }
}
