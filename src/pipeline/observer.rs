//! What a running deploy tells whoever runs it, while it runs.
//!
//! The runner (the worker, the `deploy` command) hands one [`DeployObserver`]
//! to each deploy; the pipeline reports every step as it enters it. When a
//! deploy dies (a panic: a bug), the worker reads the last step, so the
//! `internal` failure names the step it happened in instead of guessing.
//!
//! It is handed down per job, never a global, so what else a deploy has to
//! say while it runs can become methods here and, in the runner, events or
//! metrics, without a new parameter threaded through every layer. It also
//! counts how far the deploy got ([`ProgressSnapshot`]: files and bytes
//! hashed, buckets, files and bytes uploaded, bytes read), which the worker
//! turns into `deploy.progress` events and the CLI into a progress display;
//! both learn of each step change through [`DeployObserver::changes`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::watch;

use crate::contract::Step;
use crate::internal_events::{StepFinished, emit};
use crate::manifest::Manifest;

/// How far a deploy got, at one moment. Totals are `None` until the step
/// that learns them began (hashing's once listing ended, upload's once the
/// session said what Cloudflare lacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub step: Step,
    pub files_hashed: u64,
    pub bytes_hashed: u64,
    pub files_to_hash: Option<u64>,
    pub bytes_to_hash: Option<u64>,
    pub buckets_uploaded: u64,
    pub files_uploaded: u64,
    pub bytes_uploaded: u64,
    pub buckets_to_upload: Option<u64>,
    pub files_to_upload: Option<u64>,
    pub bytes_to_upload: Option<u64>,
    /// Bytes read from the bundle's storage (to hash, and again to upload).
    pub bytes_read: u64,
}

impl Default for ProgressSnapshot {
    fn default() -> Self {
        Self {
            step: Step::Validate,
            files_hashed: 0,
            bytes_hashed: 0,
            files_to_hash: None,
            bytes_to_hash: None,
            buckets_uploaded: 0,
            files_uploaded: 0,
            bytes_uploaded: 0,
            buckets_to_upload: None,
            files_to_upload: None,
            bytes_to_upload: None,
            bytes_read: 0,
        }
    }
}

/// What the observer keeps behind its lock.
#[derive(Debug)]
struct State {
    /// When the current step began (its duration is measured when the next
    /// one begins, or the deploy finishes).
    since: Instant,
    progress: ProgressSnapshot,
}

/// Watches one deploy. Clones share what they saw, so the runner keeps one
/// while the deploy's task holds another.
#[derive(Debug, Clone)]
pub struct DeployObserver {
    state: Arc<Mutex<State>>,
    /// The current step, for whoever waits for the next change.
    changes: Arc<watch::Sender<Step>>,
}

impl DeployObserver {
    /// An observer of a deploy that has not reported a step yet: it is at
    /// `validate`, the first one.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                since: Instant::now(),
                progress: ProgressSnapshot::default(),
            })),
            changes: Arc::new(watch::Sender::new(Step::Validate)),
        }
    }

    /// Runs `update` on the state. Nothing panics while holding the lock,
    /// but a poisoned lock still holds valid counts: read through it rather
    /// than lose the report.
    fn with<T>(&self, update: impl FnOnce(&mut State) -> T) -> T {
        update(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The deploy enters `step`; the previous step's duration is recorded.
    pub fn step(&self, step: Step) {
        let changed = self.with(|state| {
            if state.progress.step == step {
                return false;
            }
            emit(StepFinished {
                step: state.progress.step,
                duration: state.since.elapsed(),
            });
            state.progress.step = step;
            state.since = Instant::now();
            true
        });
        if changed {
            self.changes.send_replace(step);
        }
    }

    /// Listing ended: `files` files of `bytes` bytes are to be hashed.
    pub fn to_hash(&self, files: u64, bytes: u64) {
        self.with(|state| {
            state.progress.files_to_hash = Some(files);
            state.progress.bytes_to_hash = Some(bytes);
        });
    }

    /// The digests of `files` more files (of `bytes` bytes) are known, for
    /// which `read` bytes were read (none when the cache knew them).
    pub fn hashed(&self, files: u64, bytes: u64, read: u64) {
        self.with(|state| {
            state.progress.files_hashed += files;
            state.progress.bytes_hashed += bytes;
            state.progress.bytes_read += read;
        });
    }

    /// The session asked for `files` files (`bytes` bytes) in `buckets`
    /// upload requests.
    pub fn to_upload(&self, buckets: u64, files: u64, bytes: u64) {
        self.with(|state| {
            state.progress.buckets_to_upload = Some(buckets);
            state.progress.files_to_upload = Some(files);
            state.progress.bytes_to_upload = Some(bytes);
        });
    }

    /// The session asked for `buckets` of asset hashes of `manifest`: the
    /// upload's totals.
    pub fn upload_asked(&self, manifest: &Manifest, buckets: &[Vec<String>]) {
        let by_hash = manifest.by_hash();
        let sizes = buckets
            .iter()
            .flatten()
            .filter_map(|h| by_hash.get(h.as_str()));
        let (files, bytes) = sizes.fold((0, 0), |(n, sum), a| (n + 1, sum + a.size));
        self.to_upload(buckets.len() as u64, files, bytes);
    }

    /// `bytes` more bytes were read from the bundle's storage to upload.
    pub fn read(&self, bytes: u64) {
        self.with(|state| state.progress.bytes_read += bytes);
    }

    /// One bucket of `files` files (`bytes` raw bytes) is stored.
    pub fn bucket_uploaded(&self, files: u64, bytes: u64) {
        self.with(|state| {
            state.progress.buckets_uploaded += 1;
            state.progress.files_uploaded += files;
            state.progress.bytes_uploaded += bytes;
        });
    }

    /// How far the deploy got, now.
    pub fn snapshot(&self) -> ProgressSnapshot {
        self.with(|state| state.progress)
    }

    /// Wakes its holder at each step change (`changed().await`); the value
    /// is the step entered.
    pub fn changes(&self) -> watch::Receiver<Step> {
        self.changes.subscribe()
    }

    /// The deploy ended: the last step's duration is recorded.
    pub fn finish(&self) {
        let (step, duration) = self.with(|state| (state.progress.step, state.since.elapsed()));
        emit(StepFinished { step, duration });
    }

    /// The last step the deploy entered.
    pub fn current_step(&self) -> Step {
        self.with(|state| state.progress.step)
    }
}

/// The bundle's source reports here when listing ends and hashing begins,
/// and as digests become known.
impl crate::bundle::IngestProgress for DeployObserver {
    fn hashing(&self) {
        self.step(Step::Hash);
    }

    fn listed(&self, files: u64, bytes: u64) {
        self.to_hash(files, bytes);
    }

    fn hashed(&self, files: u64, bytes: u64, read: u64) {
        DeployObserver::hashed(self, files, bytes, read);
    }
}

impl Default for DeployObserver {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_see_the_last_step_reported() {
        let runner = DeployObserver::new();
        assert_eq!(runner.current_step(), Step::Validate);
        let deploy = runner.clone();
        deploy.step(Step::List);
        deploy.step(Step::Upload);
        assert_eq!(runner.current_step(), Step::Upload);
    }

    #[test]
    fn a_step_reported_before_a_panic_survives_it() {
        let runner = DeployObserver::new();
        let deploy = runner.clone();
        let died = std::thread::spawn(move || {
            deploy.step(Step::Hash);
            panic!("a bug while hashing");
        })
        .join();
        assert!(died.is_err());
        assert_eq!(runner.current_step(), Step::Hash);
    }

    #[test]
    fn a_source_that_starts_hashing_moves_the_deploy_to_hash() {
        use crate::bundle::IngestProgress;
        let runner = DeployObserver::new();
        runner.step(Step::List);
        let source_side: &dyn IngestProgress = &runner;
        source_side.hashing();
        assert_eq!(
            runner.current_step(),
            Step::Hash,
            "a panic now reports hash"
        );
    }

    #[test]
    fn counts_add_up_and_totals_appear_when_learnt() {
        use crate::bundle::IngestProgress;
        let runner = DeployObserver::new();
        let mut changes = runner.changes();
        let deploy = runner.clone();
        assert_eq!(runner.snapshot().files_to_hash, None);
        let source_side: &dyn IngestProgress = &deploy;
        source_side.listed(3, 300);
        source_side.hashing();
        source_side.hashed(1, 100, 100);
        source_side.hashed(1, 100, 0);
        deploy.step(Step::Upload);
        deploy.to_upload(2, 1, 100);
        deploy.read(100);
        deploy.bucket_uploaded(1, 100);
        let seen = runner.snapshot();
        assert_eq!(
            seen,
            ProgressSnapshot {
                step: Step::Upload,
                files_hashed: 2,
                bytes_hashed: 200,
                files_to_hash: Some(3),
                bytes_to_hash: Some(300),
                buckets_uploaded: 1,
                files_uploaded: 1,
                bytes_uploaded: 100,
                buckets_to_upload: Some(2),
                files_to_upload: Some(1),
                bytes_to_upload: Some(100),
                bytes_read: 200,
            }
        );
        assert!(
            changes.has_changed().unwrap(),
            "a step change wakes a watcher"
        );
        assert_eq!(*changes.borrow_and_update(), Step::Upload);
        deploy.step(Step::Upload);
        assert!(
            !changes.has_changed().unwrap(),
            "the same step is no change"
        );
    }
}
