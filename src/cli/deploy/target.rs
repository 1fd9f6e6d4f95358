//! What `deploy`'s one argument names, decided once and by plain rules, so
//! a person can predict it:
//!
//! 1. `-`, or a name ending in `.json`: a job (contract v1), read from
//!    standard input or the file;
//! 2. `s3://bucket/...`: ending in `/` (or naming only the bucket), every
//!    object under that prefix; else one archive object, which must have an
//!    archive extension (`.tar`, `.tar.gz`, `.tgz`, `.tar.zst`, `.tzst`,
//!    `.zip`);
//! 3. an existing directory: the site's files;
//! 4. an existing file with an archive extension: the site's files in it.
//!
//! Anything else is a usage error saying which of these it is not.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::bundle::archive::ArchiveFormat;

/// The archive extensions, as error messages list them.
const ARCHIVES: &str = ".tar, .tar.gz, .tgz, .tar.zst, .tzst, .zip";

/// Where `deploy` takes the site (or the whole job) from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A job file (`-`: standard input).
    Job(PathBuf),
    /// A local directory or archive file.
    Local(PathBuf),
    /// Every object under `prefix` in `bucket`.
    S3Prefix { bucket: String, prefix: String },
    /// One archive object.
    S3Archive { bucket: String, key: String },
}

impl Target {
    /// Decides what `arg` names (the rules are the module's).
    pub fn parse(arg: &str) -> Result<Target, String> {
        if arg == "-" || arg.ends_with(".json") {
            return Ok(Target::Job(PathBuf::from(arg)));
        }
        if let Some(rest) = arg.strip_prefix("s3://") {
            return s3(arg, rest);
        }
        let path = Path::new(arg);
        if path.is_dir() {
            return Ok(Target::Local(path.to_path_buf()));
        }
        let archive = ArchiveFormat::from_name(arg).is_some();
        match (path.is_file(), archive) {
            (true, true) => Ok(Target::Local(path.to_path_buf())),
            (true, false) => Err(format!(
                "{arg}: a file, but not an archive ({ARCHIVES}) nor a job (.json)"
            )),
            (false, _) if path.symlink_metadata().is_ok() => {
                Err(format!("{arg}: neither a directory nor a regular file"))
            }
            (false, _) => Err(format!(
                "{arg}: no such directory or file (give a directory, an archive ({ARCHIVES}), \
                 s3://bucket/prefix/, s3://bucket/key.tar.gz, or a job .json)"
            )),
        }
    }

    /// The job's `bundle` object; for a local target a placeholder that
    /// nothing reads (the pipeline takes the files from disk, and holds
    /// only what it reads from S3 to the access rules).
    pub fn bundle(&self) -> Option<Value> {
        match self {
            Target::Job(_) => None,
            Target::Local(_) => Some(json!({"bucket": "local", "prefix": "local/"})),
            Target::S3Prefix { bucket, prefix } => {
                Some(json!({"bucket": bucket, "prefix": prefix}))
            }
            Target::S3Archive { bucket, key } => Some(json!({"bucket": bucket, "key": key})),
        }
    }
}

/// `s3://bucket/prefix/` or `s3://bucket/key.ext`.
fn s3(arg: &str, rest: &str) -> Result<Target, String> {
    let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{arg}: no bucket (s3://bucket/prefix/)"));
    }
    let bucket = bucket.to_string();
    if path.is_empty() || path.ends_with('/') {
        return Ok(Target::S3Prefix {
            bucket,
            prefix: path.to_string(),
        });
    }
    if ArchiveFormat::from_name(path).is_none() {
        return Err(format!(
            "{arg}: not an archive ({ARCHIVES}); end a prefix with / (s3://{bucket}/{path}/)"
        ));
    }
    Ok(Target::S3Archive {
        bucket,
        key: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_target_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().display().to_string();
        assert_eq!(Target::parse(&site), Ok(Target::Local(dir.path().into())));
        let archive = dir.path().join("site.tar.gz");
        std::fs::write(&archive, b"").unwrap();
        let name = archive.display().to_string();
        assert_eq!(Target::parse(&name), Ok(Target::Local(archive)));
        assert_eq!(Target::parse("-"), Ok(Target::Job("-".into())));
        assert_eq!(
            Target::parse("job.json"),
            Ok(Target::Job("job.json".into()))
        );
        assert_eq!(
            Target::parse("s3://sites/acme/42/"),
            Ok(Target::S3Prefix {
                bucket: "sites".into(),
                prefix: "acme/42/".into()
            })
        );
        assert_eq!(
            Target::parse("s3://sites"),
            Ok(Target::S3Prefix {
                bucket: "sites".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            Target::parse("s3://sites/acme/42.zip"),
            Ok(Target::S3Archive {
                bucket: "sites".into(),
                key: "acme/42.zip".into()
            })
        );
    }

    #[test]
    fn what_is_no_target_says_what_would_be() {
        let err = Target::parse("s3://sites/acme/42").unwrap_err();
        assert!(
            err.contains("end a prefix with / (s3://sites/acme/42/)"),
            "{err}"
        );
        let err = Target::parse("s3:///x/").unwrap_err();
        assert!(err.contains("no bucket"), "{err}");
        let err = Target::parse("/no/such/site").unwrap_err();
        assert!(err.contains("no such directory or file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, b"").unwrap();
        let err = Target::parse(&text.display().to_string()).unwrap_err();
        assert!(err.contains("not an archive"), "{err}");
    }
}
