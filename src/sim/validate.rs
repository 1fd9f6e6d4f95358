//! The shape rules Cloudflare enforces on identifiers, manifests and media
//! types, as pure functions so they are unit-tested without HTTP.
//!
//! Every rejection names its subject (the path, hash or field) first, so a
//! developer reading a failed deploy knows which file to look at.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::strict_json;

/// One manifest entry: what a client promises to upload for a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub hash: String,
    pub size: u64,
}

/// A checked manifest, in path order.
pub type Manifest = BTreeMap<String, ManifestEntry>;

/// Cloudflare account ids are 32 lowercase hex characters.
///
/// The worker checks the same shape in `contract::names`; the simulator
/// keeps its own copy on purpose, like every rule it enforces. Shared, a
/// wrong rule (say, one that let uppercase through) would pass the worker's
/// check and the simulator's alike, and only real Cloudflare would refuse
/// it: apart, the tests catch it.
pub fn is_account_id(id: &str) -> bool {
    id.len() == 32 && is_lower_hex(id)
}

/// Dispatch namespace names: 1-63 of letters, digits, `-` and `_`.
pub fn is_namespace_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Worker script names: 1-63 of `[a-z0-9_-]`, not starting or ending with `-`.
pub fn is_script_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Asset hashes are exactly 32 lowercase hex characters.
pub fn is_asset_hash(hash: &str) -> bool {
    hash.len() == 32 && is_lower_hex(hash)
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a manifest path: absolute, at most 1024 bytes, no empty, `.` or
/// `..` segment, no control character.
pub fn check_asset_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("manifest path {path:?}: must start with '/'"));
    }
    if path.len() > 1024 {
        return Err(format!("manifest path {path:?}: longer than 1024 bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!(
            "manifest path {path:?}: contains a control character"
        ));
    }
    for segment in path[1..].split('/') {
        match segment {
            "" => return Err(format!("manifest path {path:?}: has an empty segment")),
            "." | ".." => {
                return Err(format!("manifest path {path:?}: has a {segment:?} segment"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Limits a manifest must respect.
#[derive(Debug, Clone, Copy)]
pub struct ManifestLimits {
    pub max_files: usize,
    pub max_file_bytes: u64,
}

/// Parses and checks an assets-upload-session body:
/// `{"manifest": {"/path": {"hash": "<32 hex>", "size": <int>}}}` and nothing else.
pub fn parse_session_body(body: &[u8], limits: ManifestLimits) -> Result<Manifest, String> {
    let value = strict_json::parse(body).map_err(|e| format!("request body: {e}"))?;
    let Value::Object(top) = value else {
        return Err("request body: must be a JSON object".to_owned());
    };
    if let Some(key) = top.keys().find(|k| k.as_str() != "manifest") {
        return Err(format!("request body: unknown key {key:?}"));
    }
    let Some(Value::Object(entries)) = top.get("manifest") else {
        return Err("manifest: required, and must be an object".to_owned());
    };
    if entries.is_empty() {
        return Err("manifest: must list at least one file".to_owned());
    }
    if entries.len() > limits.max_files {
        return Err(format!(
            "manifest: {} files, more than the limit of {}",
            entries.len(),
            limits.max_files
        ));
    }
    let mut manifest = Manifest::new();
    let mut size_of_hash: HashMap<&str, (u64, &str)> = HashMap::new();
    for (path, entry) in entries {
        check_asset_path(path)?;
        let entry = check_entry(path, entry, limits)?;
        manifest.insert(path.clone(), entry);
    }
    for (path, entry) in &manifest {
        if let Some((size, other)) = size_of_hash.insert(&entry.hash, (entry.size, path))
            && size != entry.size
        {
            return Err(format!(
                "manifest path {path:?}: hash {} also listed for {other:?} with size {size}, not {}",
                entry.hash, entry.size
            ));
        }
    }
    Ok(manifest)
}

fn check_entry(path: &str, entry: &Value, limits: ManifestLimits) -> Result<ManifestEntry, String> {
    let Value::Object(fields) = entry else {
        return Err(format!("manifest path {path:?}: entry must be an object"));
    };
    if let Some(key) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "hash" | "size"))
    {
        return Err(format!("manifest path {path:?}: unknown field {key:?}"));
    }
    let hash = match fields.get("hash") {
        Some(Value::String(h)) if is_asset_hash(h) => h.clone(),
        Some(Value::String(_)) => {
            return Err(format!(
                "manifest path {path:?}: hash must be 32 lowercase hex characters"
            ));
        }
        Some(_) => return Err(format!("manifest path {path:?}: hash must be a string")),
        None => return Err(format!("manifest path {path:?}: hash is required")),
    };
    let size = match fields.get("size") {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            format!("manifest path {path:?}: size must be a non-negative integer, got {n}")
        })?,
        Some(_) => return Err(format!("manifest path {path:?}: size must be an integer")),
        None => return Err(format!("manifest path {path:?}: size is required")),
    };
    if size > limits.max_file_bytes {
        return Err(format!(
            "manifest path {path:?}: size {size} is over the limit of {} bytes",
            limits.max_file_bytes
        ));
    }
    Ok(ManifestEntry { hash, size })
}

/// The `type/subtype` part of a Content-Type, lowercased, without parameters;
/// `None` unless it is a syntactically valid media type (RFC 9110 tokens).
pub fn media_type_essence(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next()?.trim();
    let (kind, subtype) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (token(kind) && token(subtype)).then(|| essence.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ManifestLimits = ManifestLimits {
        max_files: 3,
        max_file_bytes: 100,
    };
    const HASH: &str = "0123456789abcdef0123456789abcdef";

    fn parse(body: &str) -> Result<Manifest, String> {
        parse_session_body(body.as_bytes(), LIMITS)
    }

    #[test]
    fn names_follow_cloudflare_rules() {
        assert!(is_account_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_account_id("0123456789ABCDEF0123456789ABCDEF"));
        assert!(!is_account_id("abc"));
        assert!(is_script_name("acme-site_2"));
        assert!(!is_script_name("-acme"));
        assert!(!is_script_name("acme-"));
        assert!(!is_script_name("Acme"));
        assert!(!is_script_name(&"a".repeat(64)));
        assert!(is_namespace_name("customers"));
        assert!(!is_namespace_name("a/b"));
    }

    #[test]
    fn asset_paths_must_be_clean_and_absolute() {
        assert!(check_asset_path("/index.html").is_ok());
        assert!(check_asset_path("/a b/ü.txt").is_ok());
        for bad in [
            "index.html",
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/a/",
            "/",
            "/a\u{7}b",
        ] {
            assert!(check_asset_path(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_asset_path(&format!("/{}", "a".repeat(1024))).is_err());
    }

    #[test]
    fn a_good_manifest_parses_in_path_order() {
        let body = format!(
            r#"{{"manifest":{{"/b":{{"hash":"{HASH}","size":3}},"/a":{{"hash":"{HASH}","size":3}}}}}}"#
        );
        let manifest = parse(&body).map_err(|e| e.to_string());
        let paths: Vec<_> = manifest.iter().flat_map(|m| m.keys().cloned()).collect();
        assert_eq!(paths, vec!["/a".to_owned(), "/b".to_owned()]);
    }

    #[test]
    fn manifest_shape_errors_name_path_and_field() {
        let cases = [
            (r#"{"manifest":{}}"#.to_owned(), "at least one"),
            (
                r#"{"manifest":{},"extra":1}"#.to_owned(),
                "unknown key \"extra\"",
            ),
            (r#"[]"#.to_owned(), "JSON object"),
            (
                format!(r#"{{"manifest":{{"/a":{{"hash":"{HASH}","size":1.0}}}}}}"#),
                "\"/a\": size",
            ),
            (
                format!(r#"{{"manifest":{{"/a":{{"hash":"{HASH}","size":"1"}}}}}}"#),
                "size must be an integer",
            ),
            (
                format!(r#"{{"manifest":{{"/a":{{"hash":"{HASH}","size":-1}}}}}}"#),
                "non-negative",
            ),
            (
                format!(r#"{{"manifest":{{"/a":{{"hash":"{HASH}","size":101}}}}}}"#),
                "over the limit",
            ),
            (
                format!(
                    r#"{{"manifest":{{"/a":{{"hash":"{}","size":1}}}}}}"#,
                    HASH.to_uppercase()
                ),
                "\"/a\": hash",
            ),
            (
                r#"{"manifest":{"/a":{"hash":"abc","size":1}}}"#.to_owned(),
                "32 lowercase hex",
            ),
            (
                format!(r#"{{"manifest":{{"/a":{{"hash":"{HASH}","size":1,"type":"x"}}}}}}"#),
                "unknown field \"type\"",
            ),
            (
                r#"{"manifest":{"/a":{"size":1}}}"#.to_owned(),
                "hash is required",
            ),
            (
                format!(r#"{{"manifest":{{"a":{{"hash":"{HASH}","size":1}}}}}}"#),
                "start with '/'",
            ),
            (
                format!(
                    r#"{{"manifest":{{"/a":{{"hash":"{HASH}","size":1}},"/b":{{"hash":"{HASH}","size":2}}}}}}"#
                ),
                "also listed",
            ),
            (
                format!(
                    r#"{{"manifest":{{"/a":{{"hash":"{HASH}","size":1}},"/a":{{"hash":"{HASH}","size":1}}}}}}"#
                ),
                "duplicate key",
            ),
        ];
        for (body, expected) in cases {
            match parse(&body) {
                Ok(_) => panic!("{body} accepted"),
                Err(e) => assert!(e.contains(expected), "{body}: {e} lacks {expected:?}"),
            }
        }
    }

    #[test]
    fn too_many_files_are_refused() {
        let entries: Vec<String> = (0..4)
            .map(|i| format!(r#""/f{i}":{{"hash":"{HASH}","size":1}}"#))
            .collect();
        let body = format!(r#"{{"manifest":{{{}}}}}"#, entries.join(","));
        assert!(parse(&body).is_err_and(|e| e.contains("more than the limit of 3")));
    }

    #[test]
    fn media_types_are_checked_for_syntax() {
        assert_eq!(
            media_type_essence("text/HTML; charset=utf-8").as_deref(),
            Some("text/html")
        );
        assert_eq!(
            media_type_essence("application/javascript+module").as_deref(),
            Some("application/javascript+module")
        );
        for bad in ["", "text", "text/", "/html", "text/ht ml", "a/b/c"] {
            assert_eq!(media_type_essence(bad), None, "{bad:?} accepted");
        }
    }
}
