//! Step 3, `PUT .../dispatch/namespaces/{namespace}/scripts/{script}`:
//! checks the multipart script upload (metadata, modules, the completion
//! JWT in `assets.jwt`) and makes it the script's live deployment.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::auth;
use super::envelope::{ApiError, CODE_AUTH, success};
use super::jwt::{TokenError, TokenKind};
use super::metadata::{self, Metadata};
use super::special_files;
use super::state::{Deployment, Module, Shared};
use super::validate::{Manifest, media_type_essence};

/// Content types a module part may have.
const MODULE_TYPES: &[&str] = &[
    "application/javascript+module",
    "application/javascript",
    "text/javascript",
    "application/wasm",
    "application/json",
    "text/plain",
    "application/octet-stream",
];
/// Content types the main module may have.
const JS_TYPES: &[&str] = &[
    "application/javascript+module",
    "application/javascript",
    "text/javascript",
];

pub async fn put_script(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let Path((account, namespace, script)) = path.map_err(|_| ApiError::no_route())?;
    auth::check_script_route(&shared, &headers, &account, &namespace, &script)?;
    let multipart = multipart.map_err(|e| {
        ApiError::validation(format!(
            "body: must be multipart/form-data ({})",
            e.body_text()
        ))
    })?;
    let (metadata_bytes, modules) = read_parts(multipart).await?;
    let today = shared.now().date_naive();
    let metadata = metadata::check(&metadata_bytes, today).map_err(ApiError::validation)?;
    check_modules(&metadata, &modules)?;
    let special_files = special_files::check(&metadata.raw)?;
    let manifest = match &metadata.assets_jwt {
        Some(jwt) => Some(assets_manifest(
            &shared, jwt, &account, &namespace, &script,
        )?),
        // keep_assets without a new JWT keeps whatever assets are live.
        None if metadata.keep_assets => shared
            .lock()
            .deployments
            .get(&(account.clone(), namespace.clone(), script.clone()))
            .filter(|d| !d.manifest.is_empty())
            .map(|d| d.manifest.clone()),
        None => None,
    };
    if manifest.is_none() && modules.is_empty() {
        return Err(ApiError::validation(
            "metadata: neither modules nor assets: nothing to deploy",
        ));
    }

    let etag = etag(&metadata_bytes, &modules);
    let mut redacted = Value::Object(metadata.raw.clone());
    if redacted["assets"].get("jwt").is_some() {
        redacted["assets"]["jwt"] = json!("<redacted>");
    }
    let mut inner = shared.lock();
    let now = inner.now();
    let key = (account, namespace, script.clone());
    let previous = inner.deployments.get(&key);
    let created_on = previous.map_or(now, |d| d.created_on);
    let version = previous.map_or(1, |d| d.version + 1);
    let deployment_id = uuid::Uuid::new_v4().to_string();
    let has_assets = manifest.is_some();
    let has_modules = !modules.is_empty();
    inner.deployments.insert(
        key,
        Deployment {
            metadata: redacted,
            manifest: manifest.unwrap_or_default(),
            modules,
            special_files,
            etag: etag.clone(),
            created_on,
            modified_on: now,
            deployment_id: deployment_id.clone(),
            version,
        },
    );
    inner.stats.deploys += 1;
    drop(inner);
    Ok(success(
        StatusCode::OK,
        json!({
            "id": script,
            "etag": etag,
            "created_on": created_on.to_rfc3339(),
            "modified_on": now.to_rfc3339(),
            "has_assets": has_assets,
            "has_modules": has_modules,
            "compatibility_date": metadata.compatibility_date,
            "compatibility_flags": metadata.compatibility_flags,
            "usage_model": "standard",
            "deployment_id": deployment_id,
        }),
    ))
}

/// Reads every part: the `metadata` JSON and the modules, each checked for
/// a name, no duplicate and an allowed content type.
async fn read_parts(mut multipart: Multipart) -> Result<(Vec<u8>, Vec<Module>), ApiError> {
    let mut metadata: Option<Vec<u8>> = None;
    let mut modules: Vec<Module> = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(ApiError::from)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name.is_empty() {
            return Err(ApiError::validation("body: a part has no name"));
        }
        if name == "metadata" && metadata.is_some() || modules.iter().any(|m| m.name == name) {
            return Err(ApiError::validation(format!("part {name:?}: sent twice")));
        }
        let raw_type = field.content_type().map(str::to_owned);
        let essence = raw_type.as_deref().and_then(media_type_essence);
        let bytes = field.bytes().await.map_err(ApiError::from)?;
        if name == "metadata" {
            if essence.as_deref() != Some("application/json") {
                return Err(ApiError::validation(
                    "part \"metadata\": Content-Type must be application/json",
                ));
            }
            metadata = Some(bytes.to_vec());
            continue;
        }
        let Some(essence) = essence.filter(|e| MODULE_TYPES.contains(&e.as_str())) else {
            return Err(ApiError::validation(format!(
                "part {name:?}: Content-Type must be one of {}",
                MODULE_TYPES.join(", ")
            )));
        };
        modules.push(Module {
            name,
            content_type: raw_type.unwrap_or(essence),
            bytes,
        });
    }
    let metadata =
        metadata.ok_or_else(|| ApiError::validation("body: the metadata part is required"))?;
    Ok((metadata, modules))
}

/// `main_module` must name a JS part; modules need a `main_module`.
fn check_modules(metadata: &Metadata, modules: &[Module]) -> Result<(), ApiError> {
    match &metadata.main_module {
        None => match modules.first() {
            Some(module) => Err(ApiError::validation(format!(
                "part {:?}: a module was sent but metadata.main_module is not set",
                module.name
            ))),
            None => Ok(()),
        },
        Some(main) => {
            let module = modules.iter().find(|m| &m.name == main).ok_or_else(|| {
                ApiError::validation(format!("metadata.main_module: no part named {main:?}"))
            })?;
            let essence = media_type_essence(&module.content_type).unwrap_or_default();
            if JS_TYPES.contains(&essence.as_str()) {
                Ok(())
            } else {
                Err(ApiError::validation(format!(
                    "part {main:?}: the main module must be JavaScript ({}), not {essence}",
                    JS_TYPES.join(", ")
                )))
            }
        }
    }
}

/// Verifies `assets.jwt` for this script and returns its session's manifest.
fn assets_manifest(
    shared: &Shared,
    jwt: &str,
    account: &str,
    namespace: &str,
    script: &str,
) -> Result<Manifest, ApiError> {
    let unauthorized = |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, CODE_AUTH, message);
    let inner = shared.lock();
    let claims = shared
        .keys
        .verify(jwt, TokenKind::Completion, inner.now().timestamp())
        .map_err(|e| match e {
            TokenError::Expired => unauthorized("assets.jwt: expired"),
            TokenError::WrongKind(_) => unauthorized("assets.jwt: invalid (not a completion JWT)"),
            TokenError::Invalid => unauthorized("assets.jwt: invalid"),
        })?;
    if (
        claims.account.as_str(),
        claims.namespace.as_str(),
        claims.script.as_str(),
    ) != (account, namespace, script)
    {
        return Err(ApiError::validation(format!(
            "assets.jwt: the completion JWT is for script {}/{}, not {namespace}/{script}",
            claims.namespace, claims.script
        )));
    }
    let session = inner
        .sessions
        .get(&claims.sid)
        .ok_or_else(|| unauthorized("assets.jwt: invalid (unknown upload session)"))?;
    if !session.is_complete() {
        return Err(ApiError::validation(
            "assets.jwt: the upload session is not complete",
        ));
    }
    let store = inner.store(account, namespace);
    let empty = HashMap::new();
    let store = store.unwrap_or(&empty);
    if let Some((path, _)) = session
        .manifest
        .iter()
        .find(|(_, e)| !store.contains_key(&e.hash))
    {
        return Err(ApiError::validation(format!(
            "assets.jwt: {path} was never uploaded"
        )));
    }
    Ok(session.manifest.clone())
}

/// Hex SHA-256 over the metadata and every module's name, type and bytes.
fn etag(metadata: &[u8], modules: &[Module]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(metadata);
    for module in modules {
        hasher.update([0]);
        hasher.update(module.name.as_bytes());
        hasher.update([0]);
        hasher.update(module.content_type.as_bytes());
        hasher.update([0]);
        hasher.update(&module.bytes);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
