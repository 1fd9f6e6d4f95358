//! Step 3: uploading the user worker with the completion JWT.
//!
//! The PUT attaches the uploaded assets to the script through the completion
//! JWT in its metadata, and carries the worker's modules when there is code.
//! That JWT lives about an hour too, and a job may reach this step late: we
//! check its `exp` first and, when it is (nearly) spent, or Cloudflare
//! refuses it with a 401 because its clock is ahead, open a new session —
//! which returns a fresh completion JWT, or asks for what it lost.

use std::fmt;

use bytes::Bytes;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use serde_json::{Value, json};

use super::asset_body::AssetContent;
use super::client::{Auth, CloudflareClient};
use super::envelope::Call;
use super::error::{CfStep, CloudflareError};
use super::jwt::{Jwt, now_epoch};
use super::media::module_media_type;
use super::types::{ScriptTarget, UploadStats};
use super::upload::AssetsUploaded;
use crate::contract::names::is_module_name;
use crate::internal_events::{ScriptDeployed, emit};
use crate::manifest::Manifest;

/// The user worker to deploy with the assets.
#[derive(Debug, Clone, Default)]
pub struct ScriptUpload {
    /// The entry module; `None` deploys assets only (no code, no modules).
    pub main_module: Option<String>,
    pub modules: Vec<Module>,
    pub compatibility_date: String,
    pub compatibility_flags: Vec<String>,
    /// `assets.config` as Cloudflare takes it (`html_handling`, ...).
    pub assets_config: Option<Value>,
    /// Further bindings, passed through as given.
    pub bindings: Vec<Value>,
    /// Name of the assets binding the code reads assets through; used only
    /// when there is code.
    pub assets_binding: Option<String>,
}

/// One worker module: its name (also the part's name and file name) and bytes.
#[derive(Clone)]
pub struct Module {
    pub name: String,
    pub bytes: Bytes,
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// What Cloudflare says it deployed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    pub id: Option<String>,
    pub etag: Option<String>,
    pub modified_on: Option<String>,
    /// The upload counts, including any session (and upload) the deploy
    /// step needed for a fresh completion JWT.
    pub stats: UploadStats,
}

#[derive(Deserialize)]
struct ScriptResult {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    modified_on: Option<String>,
}

impl CloudflareClient {
    /// Step 3: PUTs the script with the completion JWT, renewing the JWT
    /// first if it is (nearly) expired, and once more if Cloudflare answers
    /// 401. A second 401 is an auth error.
    pub async fn deploy(
        &self,
        target: &ScriptTarget,
        manifest: &Manifest,
        content: &dyn AssetContent,
        assets: AssetsUploaded,
        script: &ScriptUpload,
    ) -> Result<Deployment, CloudflareError> {
        let subject = target.to_string();
        let call = Call {
            step: CfStep::Deploy,
            subject: &subject,
        };
        let mut stats = assets.stats;
        let mut completion = assets.completion;
        let expiring = completion
            .is_expiring(now_epoch(), self.inner.jwt_expiry_margin)
            .map_err(|reason| CloudflareError::Jwt {
                step: CfStep::Deploy,
                subject: subject.clone(),
                which: "completion",
                reason: reason.to_string(),
            })?;
        if expiring {
            let reason = "the completion JWT expires";
            completion = self
                .fresh_completion(target, manifest, content, &mut stats, reason)
                .await?;
        }
        let result = match self.put_script(call, target, script, &completion).await {
            Err(err) if err.status() == Some(401) => {
                let reason = "Cloudflare refused the completion JWT (401)";
                completion = self
                    .fresh_completion(target, manifest, content, &mut stats, reason)
                    .await?;
                self.put_script(call, target, script, &completion).await?
            }
            other => other?,
        };
        let deployment = Deployment {
            id: result.id,
            etag: result.etag,
            modified_on: result.modified_on,
            stats,
        };
        emit(ScriptDeployed {
            subject: &subject,
            id: deployment.id.as_deref(),
            etag: deployment.etag.as_deref(),
            sessions: stats.sessions,
        });
        Ok(deployment)
    }

    async fn fresh_completion(
        &self,
        target: &ScriptTarget,
        manifest: &Manifest,
        content: &dyn AssetContent,
        stats: &mut UploadStats,
        reason: &'static str,
    ) -> Result<Jwt, CloudflareError> {
        let session = self
            .renew_session(target, manifest, stats, CfStep::Deploy, reason)
            .await?;
        self.complete(target, manifest, content, session, stats)
            .await
    }

    async fn put_script(
        &self,
        call: Call<'_>,
        target: &ScriptTarget,
        script: &ScriptUpload,
        completion: &Jwt,
    ) -> Result<ScriptResult, CloudflareError> {
        let encode_error = |reason: String| CloudflareError::Encode {
            step: CfStep::Deploy,
            subject: call.subject.to_string(),
            reason,
        };
        let metadata = serde_json::to_vec(&metadata(script, completion.expose()))
            .map(Bytes::from)
            .map_err(|e| encode_error(e.to_string()))?;
        let modules: &[Module] = match script.main_module {
            Some(_) => &script.modules,
            None => &[],
        };
        // The pipeline checks names too; a caller that did not would get a
        // corrupt body (a `"` ends the part's name), so refuse it here.
        if let Some(bad) = modules.iter().find(|m| !is_module_name(&m.name)) {
            return Err(encode_error(format!(
                "module name {:?} cannot name a part",
                bad.name
            )));
        }
        let url = self.script_url(target, &[]);
        let answer = self
            .send::<Option<ScriptResult>, _>(call, Method::PUT, &url, Auth::ApiToken, |req| {
                req.multipart(form(&metadata, modules))
            })
            .await?;
        Ok(answer.result.unwrap_or(ScriptResult {
            id: None,
            etag: None,
            modified_on: None,
        }))
    }
}

/// The `metadata` part. Holds the completion JWT: never log it.
fn metadata(script: &ScriptUpload, completion_jwt: &str) -> Value {
    let mut assets = json!({ "jwt": completion_jwt });
    if let Some(config) = &script.assets_config {
        assets["config"] = config.clone();
    }
    let mut bindings = script.bindings.clone();
    let mut meta = json!({
        "assets": assets,
        "compatibility_date": script.compatibility_date,
        "compatibility_flags": script.compatibility_flags,
    });
    if let Some(main) = &script.main_module {
        meta["main_module"] = json!(main);
        if let Some(name) = &script.assets_binding {
            bindings.push(json!({ "type": "assets", "name": name }));
        }
    }
    meta["bindings"] = Value::Array(bindings);
    meta
}

fn form(metadata: &Bytes, modules: &[Module]) -> Form {
    let meta = Part::stream(metadata.clone());
    let meta = meta
        .mime_str("application/json")
        .unwrap_or_else(|_| Part::stream(metadata.clone()));
    let form = Form::new().percent_encode_noop().part("metadata", meta);
    modules.iter().fold(form, |form, m| {
        let part = Part::stream(m.bytes.clone())
            .file_name(m.name.clone())
            .mime_str(module_media_type(&m.name))
            .unwrap_or_else(|_| Part::stream(m.bytes.clone()).file_name(m.name.clone()));
        form.part(m.name.clone(), part)
    })
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn script(main: Option<&str>) -> ScriptUpload {
        ScriptUpload {
            main_module: main.map(String::from),
            modules: vec![Module {
                name: "lib/index.js".into(),
                bytes: Bytes::from_static(b"export default {}"),
            }],
            compatibility_date: "2025-01-24".into(),
            compatibility_flags: vec!["nodejs_compat".into()],
            assets_config: Some(json!({ "html_handling": "auto-trailing-slash" })),
            bindings: vec![json!({ "type": "plain_text", "name": "MODE", "text": "prod" })],
            assets_binding: Some("ASSETS".into()),
        }
    }

    #[test]
    fn assets_only_metadata_has_no_code_and_no_assets_binding() {
        let meta = metadata(&script(None), "cjwt");
        assert_eq!(
            meta,
            json!({
                "assets": { "jwt": "cjwt", "config": { "html_handling": "auto-trailing-slash" } },
                "compatibility_date": "2025-01-24",
                "compatibility_flags": ["nodejs_compat"],
                "bindings": [{ "type": "plain_text", "name": "MODE", "text": "prod" }],
            })
        );
    }

    #[test]
    fn code_metadata_names_the_main_module_and_adds_the_assets_binding() {
        let meta = metadata(&script(Some("lib/index.js")), "cjwt");
        assert_eq!(meta["main_module"], "lib/index.js");
        assert_eq!(
            meta["bindings"],
            json!([
                { "type": "plain_text", "name": "MODE", "text": "prod" },
                { "type": "assets", "name": "ASSETS" },
            ])
        );
        let mut bare = script(Some("lib/index.js"));
        bare.assets_config = None;
        bare.assets_binding = None;
        let meta = metadata(&bare, "cjwt");
        assert_eq!(meta["assets"], json!({ "jwt": "cjwt" }));
        assert_eq!(meta["bindings"].as_array().map(Vec::len), Some(1));
    }

    #[tokio::test]
    async fn module_parts_keep_their_names_and_types() {
        let s = script(Some("lib/index.js"));
        let form = form(&Bytes::from_static(b"{}"), &s.modules);
        let mut body = Vec::new();
        let mut stream = Box::pin(form.into_stream());
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk.unwrap());
        }
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.contains("name=\"metadata\"\r\nContent-Type: application/json"),
            "{body}"
        );
        assert!(
            body.contains("name=\"lib/index.js\"; filename=\"lib/index.js\"\r\nContent-Type: application/javascript+module"),
            "{body}"
        );
    }
}
