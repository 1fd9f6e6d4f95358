//! From a bundle's content digests to the manifest Cloudflare sees: which
//! tenant a job hashes for, and each path's asset hash.
//!
//! The settings say how (`manifest.hash_scheme`, `manifest.tenant_key`,
//! `manifest.hash_secret`); the job says for whom (its namespace and
//! script, its account, or one of its labels). A job that lacks the label
//! its tenant key names cannot be hashed for anyone, so it is refused as
//! `invalid_job`, naming the label.

use crate::bundle::{BundleError, BundleFile};
use crate::config::{HashScheme, ManifestSettings, TenantKey};
use crate::contract::DeployJob;
use crate::manifest::{AssetHashing, HashKey, Manifest, ManifestEntry, TenantSalt};

use super::DeployError;

/// The settings' hashing rules, ready for every job.
pub(super) struct HashRules {
    scheme: HashScheme,
    tenant_key: TenantKey,
    key: Option<HashKey>,
}

impl HashRules {
    pub(super) fn new(settings: &ManifestSettings) -> HashRules {
        HashRules {
            scheme: settings.hash_scheme,
            tenant_key: settings.tenant_key.clone(),
            key: settings.hash_secret.as_ref().map(HashKey::new),
        }
    }

    /// How `job`, deploying into `account_id`, derives its asset hashes.
    pub(super) fn for_job(
        &self,
        job: &DeployJob,
        account_id: &str,
    ) -> Result<AssetHashing, DeployError> {
        if self.scheme == HashScheme::Content {
            return Ok(AssetHashing::content());
        }
        let salt = match &self.tenant_key {
            TenantKey::Script => TenantSalt::Script {
                namespace: job.namespace.clone(),
                script: job.script_name.clone(),
            },
            TenantKey::Account => TenantSalt::Account {
                account_id: account_id.to_string(),
            },
            TenantKey::None => TenantSalt::None,
            TenantKey::Label(name) => {
                let value = job.labels.get(name).ok_or_else(|| {
                    DeployError::Invalid(format!(
                        "labels: no {name:?} label, which this worker's \
                         manifest.tenant_key (\"label:{name}\") needs to salt asset hashes"
                    ))
                })?;
                TenantSalt::Label {
                    name: name.clone(),
                    value: value.clone(),
                }
            }
        };
        Ok(AssetHashing::salted(&salt, self.key.as_ref()))
    }
}

/// The manifest of `files`, each path's asset hash derived from its digest.
pub(super) fn manifest(
    files: &[BundleFile],
    hashing: &AssetHashing,
) -> Result<Manifest, DeployError> {
    let mut manifest = Manifest::new();
    for file in files {
        let entry = ManifestEntry {
            hash: hashing.asset_hash(&file.digest, &file.path),
            size: file.size,
        };
        if manifest
            .insert(file.path.clone(), entry, file.digest)
            .is_some()
        {
            return Err(DeployError::Bundle(BundleError::Invalid {
                subject: file.origin.clone(),
                reason: format!("a second file at {}", file.path),
            }));
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::contract::{BundlePrefix, BundleRef, ErrorCode, Step};
    use crate::manifest::ContentDigest;

    fn job(labels: &[(&str, &str)]) -> DeployJob {
        DeployJob {
            version: 1,
            job_id: "j".into(),
            namespace: "customers".into(),
            script_name: "acme".into(),
            account_id: None,
            bundle: BundleRef::Prefix(BundlePrefix {
                bucket: "sites".into(),
                prefix: "acme/1".into(),
            }),
            worker: None,
            compatibility_date: None,
            compatibility_flags: Vec::new(),
            assets_config: None,
            bindings: Vec::new(),
            assets_binding: None,
            correlation_id: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            created_at: None,
        }
    }

    fn rules(scheme: HashScheme, tenant_key: TenantKey) -> HashRules {
        HashRules::new(&ManifestSettings {
            hash_scheme: scheme,
            tenant_key,
            hash_secret: None,
        })
    }

    fn hash_of(hashing: &AssetHashing) -> String {
        hashing.asset_hash(&ContentDigest::of(b"x"), "/a.css")
    }

    #[test]
    fn each_tenant_key_salts_with_its_part_of_the_job() {
        let account = "0123456789abcdef0123456789abcdef";
        let acme = job(&[("tenant", "acme")]);
        let salted = |key: TenantKey, job: &DeployJob| {
            hash_of(
                &rules(HashScheme::Salted, key)
                    .for_job(job, account)
                    .unwrap(),
            )
        };
        let by_script = salted(TenantKey::Script, &acme);
        let mut other_site = acme.clone();
        other_site.script_name = "acme-blog".into();
        assert_ne!(by_script, salted(TenantKey::Script, &other_site));

        let label = TenantKey::Label("tenant".into());
        assert_eq!(
            salted(label.clone(), &acme),
            salted(label.clone(), &other_site)
        );
        assert_ne!(
            salted(label.clone(), &acme),
            salted(label, &job(&[("tenant", "globex")]))
        );
        assert_eq!(
            salted(TenantKey::Account, &acme),
            salted(TenantKey::Account, &other_site)
        );
        assert_ne!(salted(TenantKey::None, &acme), by_script);

        let content = rules(HashScheme::Content, TenantKey::Script)
            .for_job(&acme, account)
            .unwrap();
        assert_eq!(hash_of(&content), crate::manifest::asset_hash(b"x"));
    }

    #[test]
    fn a_job_without_the_tenant_label_is_an_invalid_job_naming_it() {
        let rules = rules(HashScheme::Salted, TenantKey::Label("customer".into()));
        let err = rules.for_job(&job(&[("tenant", "acme")]), "a").unwrap_err();
        let failure = err.to_failure();
        assert_eq!(
            (failure.code, failure.step, failure.retryable),
            (ErrorCode::InvalidJob, Step::Validate, false)
        );
        assert!(
            failure.message.contains("\"customer\""),
            "{}",
            failure.message
        );
    }
}
