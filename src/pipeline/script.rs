//! The script part of the PUT: the worker code's modules (from S3, or from
//! a local directory for the one-shot `deploy --code`), its main module
//! checked to be among them, and the metadata the job gives.

use bytes::Bytes;

use super::{DeployError, LocalCode, Pipeline};
use crate::cloudflare::{Module, ScriptUpload};
use crate::contract::DeployJob;

impl Pipeline {
    /// The script part of the PUT: worker code when the job has it (or
    /// `local` gives it), else an assets-only worker.
    pub(super) async fn script_upload(
        &self,
        job: &DeployJob,
        local: Option<&LocalCode>,
    ) -> Result<ScriptUpload, DeployError> {
        let code = match (local, &job.worker) {
            (Some(local), _) => {
                let modules = self
                    .bundles
                    .read_local_modules(&local.dir, self.limits.max_worker_bytes)
                    .await
                    .map_err(DeployError::WorkerCode)?;
                let place = local.dir.display().to_string();
                Some(checked(modules, &local.main_module, &place)?)
            }
            (None, Some(code)) => {
                let bucket = code.bucket.as_deref().unwrap_or(job.bundle.bucket());
                let modules = self
                    .bundles
                    .read_modules(bucket, &code.folder_prefix(), self.limits.max_worker_bytes)
                    .await
                    .map_err(DeployError::WorkerCode)?;
                let place = format!("s3://{bucket}/{}", code.folder_prefix());
                Some(checked(modules, &code.main_module, &place)?)
            }
            (None, None) => None,
        };
        let (main_module, modules, assets_binding) = match code {
            None => (None, Vec::new(), None),
            Some((main, modules)) => (Some(main), modules, Some(job.assets_binding().to_string())),
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

/// The modules read from `place`, each name one a multipart part can carry
/// and `main_module` among them.
fn checked(
    modules: Vec<(String, Bytes)>,
    main_module: &str,
    place: &str,
) -> Result<(String, Vec<Module>), DeployError> {
    if let Some((bad, _)) = modules
        .iter()
        .find(|(name, _)| !crate::contract::names::is_module_name(name))
    {
        return Err(DeployError::WorkerCodeInvalid(format!(
            "module name {bad:?} cannot name a multipart part (quote or control character)"
        )));
    }
    if !modules.iter().any(|(name, _)| name == main_module) {
        return Err(DeployError::WorkerCodeInvalid(format!(
            "main_module {main_module:?} is not among the {} module(s) under {place}",
            modules.len(),
        )));
    }
    let modules = modules
        .into_iter()
        .map(|(name, bytes)| Module { name, bytes })
        .collect();
    Ok((main_module.to_string(), modules))
}
