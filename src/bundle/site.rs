//! The root files of a bundle that configure the site rather than being
//! served: what every source hands over once it has read them, and what the
//! script upload carries.
//!
//! Sources find `.assetsignore`, `_headers` and `_redirects` at the bundle
//! root in their own way (a listed key, an archive entry, a file on disk)
//! and collect their bytes in [`SpecialFiles`], each at most
//! [`MAX_SPECIAL_FILE_BYTES`]. From there the rules are shared: the ignore
//! file becomes the [`Gate`](super::gate::Gate)'s matcher, and `_headers` and
//! `_redirects` are checked with Cloudflare's rules
//! ([`special`](super::special)) and kept byte-exact in a [`SiteConfig`],
//! which the pipeline sends as `assets.config._headers` and
//! `assets.config._redirects` in the script metadata.

use serde_json::{Value, json};

use super::special::{
    ASSETS_IGNORE, AssetsIgnore, HEADERS, Headers, REDIRECTS, Redirects, SpecialFileError,
};

/// Largest root special file read: far above what Cloudflare's rule limits
/// allow (2,100 redirect rules of 1,000 characters), small enough to hold.
pub const MAX_SPECIAL_FILE_BYTES: u64 = 4 << 20;

/// The serving configuration a bundle carries at its root, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteConfig {
    /// The `_headers` file, byte for byte.
    pub headers: Option<String>,
    /// The `_redirects` file, byte for byte.
    pub redirects: Option<String>,
}

impl SiteConfig {
    /// The job's `assets_config` with the site's files added as
    /// `_headers` / `_redirects` (the job cannot set those keys itself).
    pub fn apply(&self, config: Option<Value>) -> Option<Value> {
        if self.headers.is_none() && self.redirects.is_none() {
            return config;
        }
        let mut config = match config {
            Some(Value::Object(map)) => Value::Object(map),
            _ => json!({}),
        };
        if let Some(text) = &self.headers {
            config["_headers"] = json!(text);
        }
        if let Some(text) = &self.redirects {
            config["_redirects"] = json!(text);
        }
        Some(config)
    }
}

/// Which root special file a relative path is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialFile {
    AssetsIgnore,
    Headers,
    Redirects,
}

impl SpecialFile {
    /// The special file at `rel` (relative to the bundle root), if it is one.
    pub fn at(rel: &str) -> Option<SpecialFile> {
        match rel {
            ASSETS_IGNORE => Some(SpecialFile::AssetsIgnore),
            HEADERS => Some(SpecialFile::Headers),
            REDIRECTS => Some(SpecialFile::Redirects),
            _ => None,
        }
    }

    /// Its name at the bundle root.
    pub fn name(self) -> &'static str {
        match self {
            SpecialFile::AssetsIgnore => ASSETS_IGNORE,
            SpecialFile::Headers => HEADERS,
            SpecialFile::Redirects => REDIRECTS,
        }
    }
}

/// The bytes of the root special files a source found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialFiles {
    pub assetsignore: Option<Vec<u8>>,
    pub headers: Option<Vec<u8>>,
    pub redirects: Option<Vec<u8>>,
}

impl SpecialFiles {
    /// Keeps the bytes of `file`.
    pub fn set(&mut self, file: SpecialFile, bytes: Vec<u8>) {
        *self.slot(file) = Some(bytes);
    }

    fn slot(&mut self, file: SpecialFile) -> &mut Option<Vec<u8>> {
        match file {
            SpecialFile::AssetsIgnore => &mut self.assetsignore,
            SpecialFile::Headers => &mut self.headers,
            SpecialFile::Redirects => &mut self.redirects,
        }
    }

    /// The ignore file's patterns, when the bundle has one.
    pub fn ignore(&self) -> Result<Option<AssetsIgnore>, SpecialFileError> {
        self.assetsignore
            .as_deref()
            .map(AssetsIgnore::parse)
            .transpose()
    }

    /// `_headers` and `_redirects` checked with Cloudflare's rules
    /// (`html_handling` decides which rewrites loop), kept byte-exact.
    pub fn site_config(&self, html_handling: Option<&str>) -> Result<SiteConfig, SpecialFileError> {
        let headers = self
            .headers
            .as_deref()
            .map(|bytes| Headers::parse(bytes).map(|h| h.text().to_owned()))
            .transpose()?;
        let redirects = self
            .redirects
            .as_deref()
            .map(|bytes| Redirects::parse(bytes, html_handling).map(|r| r.text().to_owned()))
            .transpose()?;
        Ok(SiteConfig { headers, redirects })
    }

    /// The files by name, as text (for the archive cache); `None` if one is
    /// not UTF-8, which [`SpecialFiles::site_config`] refuses anyway.
    pub fn to_texts(&self) -> Option<Vec<(String, String)>> {
        [
            (SpecialFile::AssetsIgnore, &self.assetsignore),
            (SpecialFile::Headers, &self.headers),
            (SpecialFile::Redirects, &self.redirects),
        ]
        .into_iter()
        .filter_map(|(file, bytes)| Some((file, bytes.as_ref()?)))
        .map(|(file, bytes)| {
            Some((
                file.name().to_owned(),
                String::from_utf8(bytes.clone()).ok()?,
            ))
        })
        .collect()
    }

    /// Back from [`SpecialFiles::to_texts`]; unknown names are ignored.
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let mut files = SpecialFiles::default();
        for (name, text) in texts {
            if let Some(file) = SpecialFile::at(name) {
                files.set(file, text.clone().into_bytes());
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_are_checked_and_kept_byte_exact() {
        let mut files = SpecialFiles::default();
        let headers = "/*\r\n  X-Frame-Options: DENY\r\n";
        files.set(SpecialFile::Headers, headers.as_bytes().to_vec());
        files.set(SpecialFile::Redirects, b"/old /new 301\n".to_vec());
        let config = files.site_config(None).unwrap();
        assert_eq!(config.headers.as_deref(), Some(headers));
        assert_eq!(config.redirects.as_deref(), Some("/old /new 301\n"));

        files.set(SpecialFile::Redirects, b"/a /b 301\n/c /d 999\n".to_vec());
        let err = files.site_config(None).unwrap_err();
        assert_eq!(err.file, "_redirects");
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn the_site_config_joins_the_jobs_assets_config() {
        let site = SiteConfig {
            headers: Some("/*\n  X: y\n".into()),
            redirects: None,
        };
        let job = json!({"html_handling": "none"});
        assert_eq!(
            site.apply(Some(job.clone())),
            Some(json!({"html_handling": "none", "_headers": "/*\n  X: y\n"}))
        );
        assert_eq!(site.apply(None), Some(json!({"_headers": "/*\n  X: y\n"})));
        assert_eq!(SiteConfig::default().apply(Some(job.clone())), Some(job));
        assert_eq!(SiteConfig::default().apply(None), None);
    }

    #[test]
    fn texts_round_trip_and_only_root_names_are_special() {
        let mut files = SpecialFiles::default();
        files.set(SpecialFile::AssetsIgnore, b"*.map\n".to_vec());
        files.set(SpecialFile::Headers, b"/a\n  X: y\n".to_vec());
        let texts: std::collections::BTreeMap<String, String> =
            files.to_texts().unwrap().into_iter().collect();
        assert_eq!(SpecialFiles::from_texts(&texts), files);
        files.set(SpecialFile::Redirects, vec![0xff]);
        assert_eq!(files.to_texts(), None);
        assert_eq!(SpecialFile::at("_headers"), Some(SpecialFile::Headers));
        assert_eq!(SpecialFile::at("sub/_headers"), None);
        assert_eq!(SpecialFile::at("_worker.js"), None);
    }
}
