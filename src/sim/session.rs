//! Step 1, `POST .../scripts/{script}/assets-upload-session`: checks the
//! manifest, works out which hashes the store lacks and answers with an
//! upload JWT and buckets, or with a completion JWT alone when nothing is
//! missing.
//!
//! Creating a session first prunes those whose JWTs have all expired.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::auth;
use super::envelope::{ApiError, success};
use super::jwt::{Claims, TokenKind};
use super::state::{Session, Shared};
use super::validate::{self, Manifest, ManifestLimits};

/// Largest session body read: a full manifest of long paths fits well within.
const MAX_SESSION_BODY: usize = 64 * 1024 * 1024;

pub async fn create_session(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Path((account, namespace, script)) = path.map_err(|_| ApiError::no_route())?;
    auth::check_script_route(&shared, &headers, &account, &namespace, &script)?;
    require_json(&headers)?;
    let body = axum::body::to_bytes(body, MAX_SESSION_BODY)
        .await
        .map_err(|e| {
            let mut error =
                ApiError::validation(format!("request body: unreadable or over 64 MiB ({e})"));
            error.status = StatusCode::PAYLOAD_TOO_LARGE;
            error
        })?;
    let limits = ManifestLimits {
        max_files: shared.config.max_files,
        max_file_bytes: shared.config.max_file_bytes,
    };
    let manifest = validate::parse_session_body(&body, limits).map_err(ApiError::validation)?;

    let sid = uuid::Uuid::new_v4().to_string();
    let mut inner = shared.lock();
    let now = inner.now().timestamp();
    inner.prune_sessions(now);
    let store = inner.store(&account, &namespace);
    let requested: BTreeMap<String, u64> = manifest
        .values()
        .filter(|e| !store.is_some_and(|s| s.contains_key(&e.hash)))
        .map(|e| (e.hash.clone(), e.size))
        .collect();
    let mut paths: HashMap<String, Vec<String>> = HashMap::new();
    for (path, entry) in &manifest {
        if requested.contains_key(&entry.hash) {
            paths
                .entry(entry.hash.clone())
                .or_default()
                .push(path.clone());
        }
    }
    let kind = if requested.is_empty() {
        TokenKind::Completion
    } else {
        TokenKind::Upload
    };
    let claims = mint_claims(&shared, kind, &sid, &account, &namespace, &script, now);
    let jwt = shared
        .keys
        .mint(&claims)
        .map_err(|e| ApiError::internal(format!("signing the session JWT: {e}")))?;
    let buckets = buckets(
        &manifest,
        &requested,
        shared.config.bucket_max_files,
        shared.config.bucket_max_bytes,
    );
    inner.stats.sessions += 1;
    inner.sessions.insert(
        sid,
        Session {
            manifest,
            requested: Arc::new(requested),
            paths: Arc::new(paths),
            received: HashSet::new(),
            expires_at: claims.exp,
        },
    );
    drop(inner);
    let result = if buckets.is_empty() {
        json!({ "jwt": jwt })
    } else {
        json!({ "jwt": jwt, "buckets": buckets })
    };
    Ok(success(StatusCode::OK, result))
}

/// Claims of a fresh token for one session, timed by the sim clock.
pub fn mint_claims(
    shared: &Shared,
    kind: TokenKind,
    sid: &str,
    account: &str,
    namespace: &str,
    script: &str,
    now: i64,
) -> Claims {
    let ttl = i64::try_from(shared.config.jwt_ttl.as_secs()).unwrap_or(i64::MAX);
    Claims {
        kind,
        sid: sid.to_owned(),
        account: account.to_owned(),
        namespace: namespace.to_owned(),
        script: script.to_owned(),
        iat: now,
        exp: now.saturating_add(ttl),
        jti: uuid::Uuid::new_v4().to_string(),
    }
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(validate::media_type_essence);
    if content_type.as_deref() == Some("application/json") {
        Ok(())
    } else {
        Err(ApiError::validation(
            "Content-Type: must be application/json",
        ))
    }
}

/// Groups the missing hashes, in manifest path order, into buckets of at
/// most `max_files` hashes and `max_bytes` bytes; a file larger than
/// `max_bytes` goes in a bucket of its own.
pub fn buckets(
    manifest: &Manifest,
    missing: &BTreeMap<String, u64>,
    max_files: usize,
    max_bytes: u64,
) -> Vec<Vec<String>> {
    let mut seen = HashSet::new();
    let mut buckets: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut current_bytes = 0u64;
    for entry in manifest.values() {
        if !missing.contains_key(&entry.hash) || !seen.insert(entry.hash.as_str()) {
            continue;
        }
        let too_many = current.len() >= max_files;
        let too_big = current_bytes.saturating_add(entry.size) > max_bytes;
        if !current.is_empty() && (too_many || too_big) {
            buckets.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current.push(entry.hash.clone());
        current_bytes = current_bytes.saturating_add(entry.size);
    }
    if !current.is_empty() {
        buckets.push(current);
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::validate::ManifestEntry;

    fn manifest(sizes: &[u64]) -> (Manifest, BTreeMap<String, u64>) {
        let mut manifest = Manifest::new();
        for (i, size) in sizes.iter().enumerate() {
            let hash = format!("{i:032x}");
            manifest.insert(format!("/f{i:03}"), ManifestEntry { hash, size: *size });
        }
        let missing = manifest
            .values()
            .map(|e| (e.hash.clone(), e.size))
            .collect();
        (manifest, missing)
    }

    #[test]
    fn buckets_respect_the_file_cap() {
        let (m, missing) = manifest(&[1; 25]);
        let sizes: Vec<usize> = buckets(&m, &missing, 10, 1000)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![10, 10, 5]);
    }

    #[test]
    fn buckets_respect_the_byte_cap_and_big_files_go_alone() {
        let (m, missing) = manifest(&[40, 40, 30, 500, 10, 10]);
        let got = buckets(&m, &missing, 10, 100);
        let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 1, 1, 2]);
        assert_eq!(got[2], vec![format!("{:032x}", 3)]);
    }

    #[test]
    fn only_missing_hashes_are_asked_for_once() {
        let (mut m, mut missing) = manifest(&[5, 5, 5]);
        let shared_hash = format!("{:032x}", 0);
        m.insert(
            "/copy".into(),
            ManifestEntry {
                hash: shared_hash,
                size: 5,
            },
        );
        missing.remove(&format!("{:032x}", 1));
        let got: Vec<String> = buckets(&m, &missing, 10, 100).concat();
        assert_eq!(got, vec![format!("{:032x}", 0), format!("{:032x}", 2)]);
    }
}
