//! Everything the simulator remembers: the sim clock, the content-addressed
//! asset store, upload sessions, live deployments, statistics and the recent
//! request log.
//!
//! Sessions are pruned once every JWT issued for them has expired by the sim
//! clock (checked whenever a session is created), so a long-running
//! simulator keeps only the manifests still in use.
//!
//! One mutex guards it all; handlers hold it only between awaits, never
//! across one, so a stalled client cannot block the others. A poisoned lock
//! is recovered rather than unwrapped: the data is plain values and stays
//! consistent between statements.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::budget::Budgets;
use super::config::SimConfig;
use super::faults::Faults;
use super::jwt::Keys;
use super::special_files::SpecialFiles;
use super::validate::Manifest;

/// How many requests `/__sim/requests` remembers.
pub const REQUEST_LOG_CAPACITY: usize = 10_000;

/// State shared by every handler.
pub struct Shared {
    pub config: SimConfig,
    pub keys: Keys,
    pub faults: Mutex<Faults>,
    /// Per-token API budgets (`--rate-limit`).
    pub budget: Budgets,
    inner: Mutex<Inner>,
}

/// The mutable part of the simulator.
#[derive(Default)]
pub struct Inner {
    /// Seconds added to the system clock to get sim time.
    pub clock_offset: i64,
    /// Content-addressed files per (account, namespace).
    pub stores: HashMap<(String, String), HashMap<String, StoredFile>>,
    pub sessions: HashMap<String, Session>,
    /// Live deployment per (account, namespace, script).
    pub deployments: HashMap<(String, String, String), Deployment>,
    pub stats: Stats,
    pub requests: VecDeque<RequestRecord>,
}

/// An uploaded asset and the media type it was uploaded with, if its part
/// had a Content-Type header.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub bytes: Bytes,
    pub content_type: Option<String>,
}

/// An upload session: its manifest, the hashes it asked for, those received.
/// Account, namespace and script live in the session's JWT claims.
#[derive(Debug, Clone)]
pub struct Session {
    pub manifest: Manifest,
    /// Hashes missing from the store when the session began, with their
    /// sizes; shared so an upload request can check parts without the lock.
    pub requested: Arc<BTreeMap<String, u64>>,
    /// The manifest paths carrying each requested hash (their extensions
    /// enter salted hashes); shared like `requested`.
    pub paths: Arc<HashMap<String, Vec<String>>>,
    pub received: HashSet<String>,
    /// Sim unix seconds at which the last JWT issued for this session (its
    /// upload JWT or any completion JWT) expires; from then on no token can
    /// reach the session, so it may be pruned.
    pub expires_at: i64,
}

impl Session {
    pub fn is_complete(&self) -> bool {
        self.requested.keys().all(|h| self.received.contains(h))
    }
}

/// One module part of a script upload.
#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    pub content_type: String,
    pub bytes: Bytes,
}

/// The live version of a script.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Metadata as uploaded, with `assets.jwt` redacted.
    pub metadata: Value,
    pub manifest: Manifest,
    pub modules: Vec<Module>,
    /// `_headers` and `_redirects` from `assets.config`, as checked.
    pub special_files: SpecialFiles,
    pub etag: String,
    pub created_on: DateTime<Utc>,
    pub modified_on: DateTime<Utc>,
    pub deployment_id: String,
    pub version: u64,
}

/// Counters served by `/__sim/stats` (which adds `live_sessions`, the
/// sessions not pruned yet).
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Sessions created, pruned ones included.
    pub sessions: u64,
    /// Accepted upload parts, idempotent re-uploads included.
    pub files_uploaded: u64,
    /// Decoded bytes of those parts.
    pub bytes_uploaded: u64,
    pub deploys: u64,
    /// endpoint → status (or `reset`, `aborted`) → count.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
}

/// One API request as seen by `/__sim/requests`.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// Real (not sim) unix milliseconds when the request arrived.
    pub at_ms: i64,
    pub endpoint: &'static str,
    pub method: String,
    pub path: String,
    /// `None` when the connection was dropped without an answer.
    pub status: Option<u16>,
    pub auth: &'static str,
    pub fault: Option<&'static str>,
}

impl Shared {
    pub fn new(config: SimConfig) -> Arc<Shared> {
        let keys = config.jwt_keys();
        let faults = Faults::new(config.faults.clone());
        let budget = Budgets::new(config.rate_limit.clone());
        let mut inner = Inner::default();
        for endpoint in ["session", "upload", "script"] {
            inner
                .stats
                .requests
                .insert(endpoint.to_owned(), BTreeMap::new());
        }
        Arc::new(Shared {
            config,
            keys,
            faults: Mutex::new(faults),
            budget,
            inner: Mutex::new(inner),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn lock_faults(&self) -> MutexGuard<'_, Faults> {
        self.faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The sim clock: system time plus the advanced offset.
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().now()
    }

    /// Moves the sim clock forward (or back) by `seconds`.
    pub fn advance_clock(&self, seconds: i64) -> DateTime<Utc> {
        let mut inner = self.lock();
        inner.clock_offset = inner.clock_offset.saturating_add(seconds);
        inner.now()
    }

    /// Counts a request and appends it to the bounded log.
    pub fn record(&self, record: RequestRecord) {
        let mut inner = self.lock();
        // No status: the connection was dropped on purpose (`reset`) or the
        // client went away before the answer (`aborted`, e.g. during a stall).
        let status = match (record.status, record.fault) {
            (Some(status), _) => status.to_string(),
            (None, Some("reset")) => "reset".to_owned(),
            (None, _) => "aborted".to_owned(),
        };
        *inner
            .stats
            .requests
            .entry(record.endpoint.to_owned())
            .or_default()
            .entry(status)
            .or_default() += 1;
        if inner.requests.len() >= REQUEST_LOG_CAPACITY {
            inner.requests.pop_front();
        }
        inner.requests.push_back(record);
    }
}

impl Inner {
    pub fn now(&self) -> DateTime<Utc> {
        let offset = chrono::TimeDelta::try_seconds(self.clock_offset).unwrap_or_default();
        Utc::now()
            .checked_add_signed(offset)
            .unwrap_or_else(Utc::now)
    }

    /// Forgets the sessions no JWT can reach any more at sim time `now`
    /// (unix seconds): every token issued for them has expired, so a request
    /// presenting one is refused as expired before the session is looked up.
    pub fn prune_sessions(&mut self, now: i64) {
        self.sessions.retain(|_, session| now < session.expires_at);
    }

    pub fn store(&self, account: &str, namespace: &str) -> Option<&HashMap<String, StoredFile>> {
        self.stores.get(&(account.to_owned(), namespace.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_at: i64) -> Session {
        Session {
            manifest: Manifest::new(),
            requested: Arc::new(BTreeMap::new()),
            paths: Arc::new(HashMap::new()),
            received: HashSet::new(),
            expires_at,
        }
    }

    #[test]
    fn pruning_keeps_sessions_until_their_last_jwt_expires() {
        let mut inner = Inner::default();
        inner.sessions.insert("old".into(), session(100));
        inner.sessions.insert("edge".into(), session(101));
        inner.sessions.insert("new".into(), session(200));
        inner.prune_sessions(101);
        let mut left: Vec<&str> = inner.sessions.keys().map(String::as_str).collect();
        left.sort_unstable();
        // A JWT is expired at `now >= exp`, so "edge" goes at 101 too.
        assert_eq!(left, vec!["new"]);
    }
}
