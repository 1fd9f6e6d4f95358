//! Step 1: the assets upload session.
//!
//! The session tells us which contents Cloudflare is missing (grouped in
//! buckets) and gives the upload JWT for them — or, when nothing is missing,
//! the completion JWT straight away. We open one per deploy, and again
//! whenever a JWT runs out: the new session asks only for what is still
//! missing, so renewing never re-uploads what was stored.

use std::fmt;

use bytes::Bytes;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::{Auth, CloudflareClient};
use super::envelope::Call;
use super::error::{CfStep, CloudflareError};
use super::jwt::Jwt;
use super::types::{ScriptTarget, UploadStats};
use crate::internal_events::{UploadSessionOpened, UploadSessionRenewed, emit};
use crate::manifest::Manifest;

/// Sessions one deploy may open in all. Each renewal is legitimate (a JWT
/// ran out), but a server that keeps asking must not keep us forever.
pub(crate) const MAX_SESSIONS: u32 = 10;

/// An open upload session: the buckets still to upload and its JWT (the
/// upload JWT, or the completion JWT when there are no buckets).
pub struct UploadSession {
    /// Hashes to upload, one request per bucket. Empty: nothing is missing.
    pub buckets: Vec<Vec<String>>,
    pub(crate) jwt: Jwt,
}

impl fmt::Debug for UploadSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadSession")
            .field("buckets", &self.buckets)
            .field("jwt", &self.jwt)
            .finish()
    }
}

impl UploadSession {
    /// Whether Cloudflare already holds every file of the manifest.
    pub fn is_complete(&self) -> bool {
        self.buckets.iter().all(Vec::is_empty)
    }

    /// Files Cloudflare asked for.
    pub fn missing_files(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }
}

#[derive(Serialize)]
struct SessionRequest<'a> {
    manifest: &'a Manifest,
}

#[derive(Deserialize)]
struct SessionResult {
    jwt: String,
    #[serde(default)]
    buckets: Option<Vec<Vec<String>>>,
}

impl CloudflareClient {
    /// Step 1: `POST .../assets-upload-session` with the manifest, using the
    /// API token. Checks that every hash asked for is one of the manifest's.
    pub async fn start_session(
        &self,
        target: &ScriptTarget,
        manifest: &Manifest,
    ) -> Result<UploadSession, CloudflareError> {
        let subject = target.to_string();
        let call = Call {
            step: CfStep::Session,
            subject: &subject,
        };
        let body = serde_json::to_vec(&SessionRequest { manifest })
            .map(Bytes::from)
            .map_err(|e| CloudflareError::Encode {
                step: CfStep::Session,
                subject: subject.clone(),
                reason: e.to_string(),
            })?;
        let url = self.script_url(target, &["assets-upload-session"]);
        let answer = self
            .send::<SessionResult, _>(call, Method::POST, &url, Auth::ApiToken, |req| {
                req.header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        let result = answer.result;
        if result.jwt.is_empty() {
            return Err(call.invalid(answer.status, "the session has an empty jwt", b""));
        }
        let buckets: Vec<Vec<String>> = result
            .buckets
            .unwrap_or_default()
            .into_iter()
            .filter(|b| !b.is_empty())
            .collect();
        let known = manifest.by_hash();
        if let Some(unknown) = buckets
            .iter()
            .flatten()
            .find(|h| !known.contains_key(h.as_str()))
        {
            return Err(call.invalid(
                answer.status,
                format!("a bucket names {unknown:?}, which is not in the manifest"),
                b"",
            ));
        }
        let session = UploadSession {
            buckets,
            jwt: Jwt::new(result.jwt),
        };
        emit(UploadSessionOpened {
            subject: &subject,
            buckets: session.buckets.len(),
            missing_files: session.missing_files(),
            manifest_files: manifest.len(),
        });
        Ok(session)
    }

    /// Opens a further session for the same deploy, counted in `stats` and
    /// bounded by [`MAX_SESSIONS`].
    pub(crate) async fn renew_session(
        &self,
        target: &ScriptTarget,
        manifest: &Manifest,
        stats: &mut UploadStats,
        step: CfStep,
        reason: &'static str,
    ) -> Result<UploadSession, CloudflareError> {
        if stats.sessions >= MAX_SESSIONS {
            return Err(CloudflareError::TooManySessions {
                step,
                subject: target.to_string(),
                sessions: stats.sessions,
                reason,
            });
        }
        emit(UploadSessionRenewed {
            subject: &target.to_string(),
            sessions: stats.sessions,
            reason,
        });
        let session = self.start_session(target, manifest).await?;
        stats.sessions += 1;
        Ok(session)
    }
}
