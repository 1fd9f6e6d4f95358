//! Step 2: uploading the buckets a session asks for.
//!
//! Buckets go up in parallel (at most `upload_concurrency`, fewer while the
//! endpoint struggles: `concurrency.rs`), each as one multipart request
//! authorised by the session's upload JWT — never the API token.
//! The JWT lives about an hour, which a large site on a slow link can
//! outlast, so before each bucket we read its `exp`; when it is (nearly)
//! expired, or Cloudflare answers 401 because its clock runs ahead of ours,
//! we stop starting buckets, let the running ones finish, and open a new
//! session, which asks only for what is still missing.
//!
//! The last 201 carries the completion JWT for step 3. If every bucket is
//! stored but none came (a renewal raced it), one more session returns it
//! directly. Sessions are bounded so a misbehaving server cannot loop us.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{StreamExt, stream};
use reqwest::multipart::{Form, Part};
use reqwest::{Body, Method};
use serde::Deserialize;

use super::asset_body::{AssetBody, AssetContent};
use super::client::{Auth, CloudflareClient};
use super::concurrency::UploadLimit;
use super::envelope::Call;
use super::error::{CfStep, CloudflareError};
use super::jwt::{Jwt, now_epoch};
use super::media::asset_media_type;
use super::session::UploadSession;
use super::types::{ScriptTarget, UploadStats};
use crate::internal_events::{self as events, emit};
use crate::manifest::{HashedAsset, Manifest};

/// 401s from the upload endpoint we answer with a new session before
/// treating the refusal as an auth failure.
const MAX_UNAUTHORIZED_RENEWALS: u32 = 3;

/// Every bucket is stored; carries the completion JWT for the deploy.
pub struct AssetsUploaded {
    pub stats: UploadStats,
    pub(crate) completion: Jwt,
}

impl fmt::Debug for AssetsUploaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssetsUploaded")
            .field("stats", &self.stats)
            .field("completion", &self.completion)
            .finish()
    }
}

#[derive(Deserialize)]
struct UploadResult {
    #[serde(default)]
    jwt: Option<String>,
}

/// Why the current session must be replaced.
enum Renew {
    Expiring,
    Unauthorized(CloudflareError),
}

enum Bucket {
    Done {
        files: u64,
        bytes: u64,
        completion: Option<Jwt>,
    },
    /// Not started: another bucket already asked for a new session.
    Skipped,
    Renew(Renew),
}

/// One file of a bucket: where to read it, streamed as base64 anew by
/// every try (see `asset_body`: memory stays a few blocks per part).
struct PlannedPart {
    hash: String,
    media_type: String,
    body: AssetBody,
}

/// What one upload needs to know, shared by its buckets.
struct Job<'a> {
    call: Call<'a>,
    target: &'a ScriptTarget,
    by_hash: BTreeMap<&'a str, HashedAsset<'a>>,
    content: &'a dyn AssetContent,
    /// How many bucket POSTs may be in flight now (`concurrency.rs`).
    limit: UploadLimit,
}

impl CloudflareClient {
    /// Step 2: uploads every bucket the session asks for, renewing the
    /// session when the upload JWT runs out, and returns the completion JWT
    /// with counts. `stats.sessions` counts `session` as the first.
    pub async fn upload(
        &self,
        target: &ScriptTarget,
        manifest: &Manifest,
        content: &dyn AssetContent,
        session: UploadSession,
    ) -> Result<AssetsUploaded, CloudflareError> {
        let mut stats = UploadStats {
            sessions: 1,
            ..UploadStats::default()
        };
        let completion = self
            .complete(target, manifest, content, session, &mut stats)
            .await?;
        emit(events::AssetsUploaded {
            subject: &target.to_string(),
            sessions: stats.sessions,
            buckets: stats.buckets,
            files: stats.files,
            bytes: stats.bytes,
        });
        Ok(AssetsUploaded { stats, completion })
    }

    /// Uploads until Cloudflare holds everything; returns the completion JWT.
    /// Shared with the deploy step, which may need a fresh one.
    pub(crate) async fn complete(
        &self,
        target: &ScriptTarget,
        manifest: &Manifest,
        content: &dyn AssetContent,
        mut session: UploadSession,
        stats: &mut UploadStats,
    ) -> Result<Jwt, CloudflareError> {
        let subject = target.to_string();
        let job = Job {
            call: Call {
                step: CfStep::Upload,
                subject: &subject,
            },
            target,
            by_hash: manifest.by_hash(),
            content,
            limit: UploadLimit::new(self.inner.upload_concurrency, &subject),
        };
        let mut unauthorized = 0;
        loop {
            if session.is_complete() {
                return Ok(session.jwt);
            }
            let (completion, renew) = self.upload_round(&job, &session, stats).await?;
            let reason = match (renew, completion) {
                (None, Some(completion)) => return Ok(completion),
                (None, None) => "every bucket is stored but no completion JWT came",
                (Some(Renew::Expiring), _) => "the upload JWT expires",
                (Some(Renew::Unauthorized(err)), _) => {
                    unauthorized += 1;
                    if unauthorized > MAX_UNAUTHORIZED_RENEWALS {
                        return Err(err);
                    }
                    "Cloudflare refused the upload JWT (401)"
                }
            };
            session = self
                .renew_session(target, manifest, stats, CfStep::Upload, reason)
                .await?;
        }
    }

    /// Uploads the session's buckets, `upload_concurrency` at a time (each
    /// POST also waits for a place of the adaptive limit). Stops
    /// starting new ones once one says the session must be renewed.
    async fn upload_round(
        &self,
        job: &Job<'_>,
        session: &UploadSession,
        stats: &mut UploadStats,
    ) -> Result<(Option<Jwt>, Option<Renew>), CloudflareError> {
        let stop = AtomicBool::new(false);
        // The futures are built up front (they are lazy: nothing runs until
        // polled) rather than in a `map` closure over the stream, whose
        // borrowed argument makes the whole deploy future fail to be `Send`
        // for every lifetime, which the worker's spawned tasks need.
        let uploads: Vec<_> = session
            .buckets
            .iter()
            .map(|bucket| self.upload_bucket(job, &session.jwt, bucket, &stop))
            .collect();
        let mut results = stream::iter(uploads).buffer_unordered(self.inner.upload_concurrency);
        let (mut completion, mut renew) = (None, None);
        while let Some(outcome) = results.next().await {
            match outcome? {
                Bucket::Done {
                    files,
                    bytes,
                    completion: jwt,
                } => {
                    stats.buckets += 1;
                    stats.files += files;
                    stats.bytes += bytes;
                    job.content.uploaded(files, bytes);
                    if jwt.is_some() {
                        completion = jwt;
                    }
                }
                Bucket::Skipped => {}
                Bucket::Renew(why) => {
                    stop.store(true, Ordering::Relaxed);
                    // A 401 counts toward the bound; keep it over a mere expiry.
                    if !matches!(renew, Some(Renew::Unauthorized(_))) {
                        renew = Some(why);
                    }
                }
            }
        }
        Ok((completion, renew))
    }

    async fn upload_bucket(
        &self,
        job: &Job<'_>,
        jwt: &Jwt,
        bucket: &[String],
        stop: &AtomicBool,
    ) -> Result<Bucket, CloudflareError> {
        if stop.load(Ordering::Relaxed) {
            return Ok(Bucket::Skipped);
        }
        let (parts, raw_bytes) = read_bucket(job, bucket).await?;
        if stop.load(Ordering::Relaxed) {
            return Ok(Bucket::Skipped);
        }
        let expiring = jwt
            .is_expiring(now_epoch(), self.inner.jwt_expiry_margin)
            .map_err(|reason| CloudflareError::Jwt {
                step: CfStep::Upload,
                subject: job.call.subject.to_string(),
                which: "upload",
                reason: reason.to_string(),
            })?;
        if expiring {
            return Ok(Bucket::Renew(Renew::Expiring));
        }
        let mut url = self.url(&[
            "accounts",
            &job.target.account_id,
            "workers",
            "assets",
            "upload",
        ]);
        url.set_query(Some("base64=true"));
        let encoded: u64 = parts.iter().map(|p| p.body.base64_len()).sum();
        let timeout = self.upload_timeout(encoded);
        let sent = self
            .send_limited::<Option<UploadResult>, _>(
                job.call,
                Method::POST,
                &url,
                Auth::UploadJwt(jwt),
                Some(&job.limit),
                |req| req.multipart(form(&parts)).timeout(timeout),
            )
            .await;
        let answer = match sent {
            Ok(answer) => answer,
            Err(err) if err.status() == Some(401) => {
                return Ok(Bucket::Renew(Renew::Unauthorized(err)));
            }
            Err(err) => return Err(err),
        };
        let completion = answer
            .result
            .and_then(|r| r.jwt)
            .filter(|jwt| answer.status == 201 && !jwt.is_empty())
            .map(Jwt::new);
        tracing::debug!(
            subject = job.call.subject,
            status = answer.status,
            files = parts.len(),
            bytes = raw_bytes,
            completion = completion.is_some(),
            "bucket uploaded"
        );
        Ok(Bucket::Done {
            files: parts.len() as u64,
            bytes: raw_bytes,
            completion,
        })
    }
}

/// Locates a bucket's files (each asset hash mapped to its content through
/// the manifest); checks each against its manifest size before anything is
/// sent.
async fn read_bucket(
    job: &Job<'_>,
    bucket: &[String],
) -> Result<(Vec<PlannedPart>, u64), CloudflareError> {
    let mut parts = Vec::with_capacity(bucket.len());
    let mut raw_bytes = 0;
    for hash in bucket {
        let read_error = |path: &str, source| CloudflareError::AssetRead {
            subject: job.call.subject.to_string(),
            hash: hash.clone(),
            path: path.to_string(),
            error: source,
        };
        // The session checked every hash against the manifest already.
        let Some(&HashedAsset {
            path,
            size,
            content,
        }) = job.by_hash.get(hash.as_str())
        else {
            return Err(read_error(
                "?",
                std::io::Error::other("not a hash of the manifest"),
            ));
        };
        let body = job
            .content
            .locate(content)
            .await
            .map_err(|e| read_error(path, e))?;
        if body.len() != size {
            return Err(read_error(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} bytes stored, the manifest says {size}", body.len()),
                ),
            ));
        }
        raw_bytes += size;
        parts.push(PlannedPart {
            hash: hash.clone(),
            media_type: asset_media_type(path),
            body,
        });
    }
    Ok((parts, raw_bytes))
}

/// The multipart body of a bucket: one part per file, named by its hash,
/// holding its base64 (streamed, with its exact length so the request has a
/// `Content-Length`) and typed by its path.
fn form(parts: &[PlannedPart]) -> Form {
    parts.iter().fold(Form::new(), |form, p| {
        let part = || {
            Part::stream_with_length(
                Body::wrap_stream(p.body.clone().base64_stream()),
                p.body.base64_len(),
            )
            .file_name(p.hash.clone())
        };
        let typed = part().mime_str(&p.media_type).unwrap_or_else(|_| part());
        form.part(p.hash.clone(), typed)
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use bytes::Bytes;

    use super::*;

    #[tokio::test]
    async fn forms_name_parts_by_hash_with_base64_and_type() {
        let parts = vec![PlannedPart {
            hash: "0123456789abcdef0123456789abcdef".into(),
            media_type: "text/html; charset=utf-8".into(),
            body: AssetBody::Memory(Bytes::from_static(b"<h1>hi</h1>")),
        }];
        let form = form(&parts);
        let boundary = form.boundary().to_string();
        let mut body = Vec::new();
        let mut stream = Box::pin(form.into_stream());
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk.unwrap());
        }
        let body = String::from_utf8(body).unwrap();
        assert!(body.contains(&boundary));
        assert!(
            body.contains(r#"name="0123456789abcdef0123456789abcdef"; filename="0123456789abcdef0123456789abcdef""#),
            "{body}"
        );
        assert!(
            body.contains("Content-Type: text/html; charset=utf-8"),
            "{body}"
        );
        assert!(body.contains(&STANDARD.encode("<h1>hi</h1>")), "{body}");
    }
}
