//! Step 2, `POST /accounts/{account}/workers/assets/upload?base64=true`:
//! takes base64 parts named by hash, checks each against the session's
//! manifest (its size, and its hash under the configured scheme: see
//! `hashing.rs`) and stores them; answers 200 `{"jwt": null}` while files
//! are still missing and 201 with a completion JWT once none are.
//!
//! A request is checked whole before anything is stored, so a rejected
//! request leaves no partial state behind.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::json;

use super::auth;
use super::envelope::{ApiError, CODE_AUTH, success};
use super::hashing::{SimHashing, Uploader};
use super::jwt::TokenKind;
use super::session::mint_claims;
use super::state::{Shared, StoredFile};
use super::validate::media_type_essence;

/// A checked part, ready to store.
struct Part {
    hash: String,
    bytes: Bytes,
    content_type: Option<String>,
}

pub async fn upload(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let Path(account) = path.map_err(|_| ApiError::no_route())?;
    auth::check_account_format(&account)?;
    let claims = auth::require_upload_jwt(&shared, &headers, &account)?;
    if !query_says_base64(query.as_deref()) {
        return Err(ApiError::validation(
            "query: base64=true is required; files must be sent base64-encoded",
        ));
    }
    let (requested, paths) = shared
        .lock()
        .sessions
        .get(&claims.sid)
        .map(|s| (Arc::clone(&s.requested), Arc::clone(&s.paths)))
        .ok_or_else(|| ApiError::auth("invalid upload JWT: unknown upload session"))?;
    let uploader = Uploader {
        account: &claims.account,
        namespace: &claims.namespace,
        script: &claims.script,
    };
    let mut multipart = multipart.map_err(|e| {
        ApiError::validation(format!(
            "body: must be multipart/form-data ({})",
            e.body_text()
        ))
    })?;

    let mut parts: Vec<Part> = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(ApiError::from)? {
        let hash = field.name().unwrap_or_default().to_owned();
        let Some(&expected_size) = requested.get(&hash) else {
            return Err(ApiError::validation(format!(
                "part {hash:?}: not a hash this upload session asked for"
            )));
        };
        if parts.iter().any(|p| p.hash == hash) {
            return Err(ApiError::validation(format!(
                "part {hash}: sent twice in one request"
            )));
        }
        let content_type = part_content_type(&hash, field.headers())?;
        let encoded = field.bytes().await.map_err(ApiError::from)?;
        let bytes = decode_and_check(&hash, &encoded, expected_size)?;
        let part_paths = paths.get(&hash).map(Vec::as_slice).unwrap_or_default();
        check_hash(
            &shared.config.hashing(),
            &hash,
            &bytes,
            part_paths,
            &uploader,
        )?;
        parts.push(Part {
            hash,
            bytes,
            content_type,
        });
    }
    if parts.is_empty() {
        return Err(ApiError::validation("body: no file parts in the form"));
    }

    let mut inner = shared.lock();
    let now = inner.now().timestamp();
    // The session is gone only if it was pruned while the parts were read:
    // its upload JWT expired meanwhile. Refuse before storing anything.
    if !inner.sessions.contains_key(&claims.sid) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            CODE_AUTH,
            "upload JWT expired",
        ));
    }
    let uploaded_bytes: u64 = parts.iter().map(|p| p.bytes.len() as u64).sum();
    inner.stats.files_uploaded += parts.len() as u64;
    inner.stats.bytes_uploaded += uploaded_bytes;
    let key = (claims.account.clone(), claims.namespace.clone());
    let store = inner.stores.entry(key).or_insert_with(HashMap::new);
    let hashes: Vec<String> = parts.iter().map(|p| p.hash.clone()).collect();
    for part in parts {
        store.insert(
            part.hash,
            StoredFile {
                bytes: part.bytes,
                content_type: part.content_type,
            },
        );
    }
    let completion = inner.sessions.get_mut(&claims.sid).and_then(|live| {
        live.received.extend(hashes);
        live.is_complete().then(|| {
            let completion = mint_claims(
                &shared,
                TokenKind::Completion,
                &claims.sid,
                &claims.account,
                &claims.namespace,
                &claims.script,
                now,
            );
            // The session must outlive every token issued for it.
            live.expires_at = live.expires_at.max(completion.exp);
            completion
        })
    });
    drop(inner);
    let Some(completion) = completion else {
        return Ok(success(StatusCode::OK, json!({ "jwt": null })));
    };
    let jwt = shared
        .keys
        .mint(&completion)
        .map_err(|e| ApiError::internal(format!("signing the completion JWT: {e}")))?;
    Ok(success(StatusCode::CREATED, json!({ "jwt": jwt })))
}

/// The part's media type as sent, or `None` without a Content-Type header
/// (Cloudflare's own `curl -F "<hash>=<base64>"` example sends none). A
/// header that is present must hold a valid media type. The raw header is
/// read because multer turns an unparsable one into `None` too.
fn part_content_type(hash: &str, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|ct| media_type_essence(ct).is_some())
        .map(|ct| Some(ct.trim().to_owned()))
        .ok_or_else(|| {
            ApiError::validation(format!(
                "part {hash}: Content-Type is not a valid media type"
            ))
        })
}

/// `base64=true` must be among the query parameters.
fn query_says_base64(query: Option<&str>) -> bool {
    query
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair == "base64=true")
}

/// The part's bytes are the content its name (hash) stands for.
fn check_hash(
    hashing: &SimHashing,
    hash: &str,
    bytes: &[u8],
    paths: &[String],
    uploader: &Uploader<'_>,
) -> Result<(), ApiError> {
    hashing
        .verify(hash, bytes, paths, uploader)
        .map_err(|reason| ApiError::validation(format!("part {hash}: {reason}")))
}

/// Canonical standard base64 (padding required, no whitespace), whose
/// decoded bytes have the promised size.
fn decode_and_check(hash: &str, encoded: &[u8], expected_size: u64) -> Result<Bytes, ApiError> {
    let bytes = STANDARD.decode(encoded).map_err(|e| {
        ApiError::validation(format!(
            "part {hash}: value is not canonical padded base64 ({e})"
        ))
    })?;
    if bytes.len() as u64 != expected_size {
        return Err(ApiError::validation(format!(
            "part {hash}: decoded size {} does not match the manifest size {expected_size}",
            bytes.len()
        )));
    }
    Ok(Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const HELLO_HASH: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e";

    const WHO: Uploader<'static> = Uploader {
        account: "0123456789abcdef0123456789abcdef",
        namespace: "customers",
        script: "acme",
    };

    /// Decoded, then checked as contract v1's content hash.
    fn part(hash: &str, encoded: &[u8], size: u64) -> Result<Vec<u8>, ApiError> {
        let bytes = decode_and_check(hash, encoded, size)?;
        check_hash(&SimHashing::Content, hash, &bytes, &["/x".to_owned()], &WHO)?;
        Ok(bytes.to_vec())
    }

    #[test]
    fn canonical_base64_of_the_right_bytes_passes() {
        let got = part(HELLO_HASH, b"aGVsbG8=", 5);
        assert_eq!(got.ok(), Some(b"hello".to_vec()));
    }

    #[test]
    fn non_canonical_or_mismatched_parts_fail() {
        for (encoded, size) in [
            (&b"aGVsbG8"[..], 5),    // no padding
            (&b"aGVs bG8="[..], 5),  // whitespace
            (&b"aGVsbG9="[..], 5),   // non-zero trailing bits
            (&b"aGVsbG8=\n"[..], 5), // trailing newline
            (&b"aGVsbG8="[..], 6),   // wrong size
            (&b"aGVsbG8h"[..], 6),   // right size, wrong hash
        ] {
            assert!(part(HELLO_HASH, encoded, size).is_err(), "{encoded:?}");
        }
    }

    #[test]
    fn a_part_content_type_is_optional_but_must_be_valid_when_sent() {
        let mut headers = HeaderMap::new();
        assert_eq!(part_content_type(HELLO_HASH, &headers).ok(), Some(None));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        assert_eq!(
            part_content_type(HELLO_HASH, &headers).ok(),
            Some(Some("text/plain; charset=utf-8".to_owned()))
        );
        for bad in ["not a type", "", "text/"] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(bad));
            assert!(part_content_type(HELLO_HASH, &headers).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn base64_flag_must_be_true() {
        assert!(query_says_base64(Some("base64=true")));
        assert!(query_says_base64(Some("x=1&base64=true")));
        assert!(!query_says_base64(Some("base64=1")));
        assert!(!query_says_base64(None));
    }
}
