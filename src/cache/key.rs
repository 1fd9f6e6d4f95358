//! What identifies an object's content without reading it (the digest that
//! content has is [`crate::manifest::ContentDigest`]).
//!
//! A listing gives every object's size and ETag. A single-part upload's ETag
//! is the MD5 of its bytes (32 hex characters, no `-N` suffix), so (MD5,
//! size) names the content wherever it lies: under any key, prefix or
//! bucket, which is what lets a new build under a new prefix skip every file
//! it shares with the last one. Any other ETag (multipart uploads, SSE-KMS,
//! servers that do not use MD5) names only one version of one object, so the
//! key then holds the bucket, the key and the version (id or ETag) too.

/// What names an object's content, as far as a listing can tell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContentKey {
    /// A content-derived ETag (the MD5 of the bytes) and the size.
    Md5 { md5: String, size: u64 },
    /// One version of one object: anything else.
    Object {
        bucket: String,
        key: String,
        /// The version id where the bucket is versioned, else the ETag.
        version: String,
        size: u64,
    },
}

impl ContentKey {
    /// The key of a listed object. `etag` as S3 gives it (quotes and all);
    /// `None` when the listing gave no ETag: such an object is never cached.
    pub fn for_object(
        bucket: &str,
        key: &str,
        etag: Option<&str>,
        version_id: Option<&str>,
        size: u64,
        etag_is_md5: bool,
    ) -> Option<ContentKey> {
        let etag = etag
            .map(|e| e.trim_matches('"'))
            .filter(|e| !e.is_empty())?;
        if etag_is_md5 && is_md5_hex(etag) {
            return Some(ContentKey::Md5 {
                md5: etag.to_ascii_lowercase(),
                size,
            });
        }
        Some(ContentKey::Object {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version: version_id.unwrap_or(etag).to_string(),
            size,
        })
    }

    /// The form stored in index objects: `m:<md5>:<size>` or
    /// `o:<size>:<version-length>:<version><bucket>/<key>` (the length
    /// prefix keeps any character in a version or key unambiguous).
    pub fn encode(&self) -> String {
        match self {
            ContentKey::Md5 { md5, size } => format!("m:{md5}:{size}"),
            ContentKey::Object {
                bucket,
                key,
                version,
                size,
            } => format!("o:{size}:{}:{version}{bucket}/{key}", version.len()),
        }
    }

    /// Reads [`ContentKey::encode`]'s form; `None` for anything else.
    pub fn decode(s: &str) -> Option<ContentKey> {
        if let Some(rest) = s.strip_prefix("m:") {
            let (md5, size) = rest.split_once(':')?;
            if !is_md5_hex(md5) {
                return None;
            }
            return Some(ContentKey::Md5 {
                md5: md5.to_string(),
                size: size.parse().ok()?,
            });
        }
        let rest = s.strip_prefix("o:")?;
        let (size, rest) = rest.split_once(':')?;
        let (len, rest) = rest.split_once(':')?;
        let len: usize = len.parse().ok()?;
        let version = rest.get(..len)?;
        let (bucket, key) = rest.get(len..)?.split_once('/')?;
        Some(ContentKey::Object {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version: version.to_string(),
            size: size.parse().ok()?,
        })
    }
}

/// What names one archive bundle's manifest: the archive object's content
/// and the directory of it the bundle is (`bundle.root`), since one archive
/// read under two roots gives two bundles.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArchiveKey {
    pub content: ContentKey,
    /// The root directory, without a trailing `/`; `None` for the whole
    /// archive.
    pub root: Option<String>,
}

impl ArchiveKey {
    /// The content key's form, followed by `|root:<root>` when there is a
    /// root (the content key's form never holds a `|` outside its key part,
    /// whose length it gives).
    pub fn encode(&self) -> String {
        match &self.root {
            None => self.content.encode(),
            Some(root) => format!("{}|root:{root}", self.content.encode()),
        }
    }
}

fn is_md5_hex(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_part_etags_name_content_anywhere() {
        let a = ContentKey::for_object(
            "b1",
            "x/a.css",
            Some("\"0CC175B9C0F1B6A831C399E269772661\""),
            None,
            1,
            true,
        );
        let b = ContentKey::for_object(
            "b2",
            "y/b.css",
            Some("0cc175b9c0f1b6a831c399e269772661"),
            Some("v9"),
            1,
            true,
        );
        assert_eq!(a, b);
        assert!(matches!(a, Some(ContentKey::Md5 { .. })));
    }

    #[test]
    fn other_etags_name_one_object_version() {
        let multipart = ContentKey::for_object(
            "b",
            "k",
            Some("\"9b2cf535f27731c974343645a3985328-3\""),
            None,
            10,
            true,
        )
        .unwrap();
        assert_eq!(
            multipart,
            ContentKey::Object {
                bucket: "b".into(),
                key: "k".into(),
                version: "9b2cf535f27731c974343645a3985328-3".into(),
                size: 10
            }
        );
        let versioned =
            ContentKey::for_object("b", "k", Some("abc"), Some("v1"), 10, true).unwrap();
        assert!(matches!(versioned, ContentKey::Object { ref version, .. } if version == "v1"));
        // A server known not to use MD5 ETags: never content-wide.
        let not_md5 = ContentKey::for_object(
            "b",
            "k",
            Some("0cc175b9c0f1b6a831c399e269772661"),
            None,
            1,
            false,
        )
        .unwrap();
        assert!(matches!(not_md5, ContentKey::Object { .. }));
        assert_eq!(ContentKey::for_object("b", "k", None, None, 1, true), None);
        assert_eq!(
            ContentKey::for_object("b", "k", Some("\"\""), None, 1, true),
            None
        );
    }

    #[test]
    fn an_archive_read_under_another_root_is_another_key() {
        let content = ContentKey::Md5 {
            md5: "0cc175b9c0f1b6a831c399e269772661".into(),
            size: 7,
        };
        let whole = ArchiveKey {
            content: content.clone(),
            root: None,
        };
        let dist = ArchiveKey {
            content: content.clone(),
            root: Some("dist".into()),
        };
        assert_eq!(whole.encode(), content.encode());
        assert_eq!(dist.encode(), format!("{}|root:dist", content.encode()));
        assert_ne!(whole, dist);
    }

    #[test]
    fn encoding_round_trips_any_key() {
        let keys = [
            ContentKey::Md5 {
                md5: "0cc175b9c0f1b6a831c399e269772661".into(),
                size: 7,
            },
            ContentKey::Object {
                bucket: "b".into(),
                key: "a:b/c d/é:/x".into(),
                version: "v:1/2".into(),
                size: 0,
            },
        ];
        for key in keys {
            assert_eq!(ContentKey::decode(&key.encode()), Some(key.clone()));
        }
        for bad in [
            "",
            "m:zz:1",
            "m:0cc175b9c0f1b6a831c399e269772661:x",
            "o:1:99:v",
            "q:1",
        ] {
            assert_eq!(ContentKey::decode(bad), None, "{bad}");
        }
    }
}
