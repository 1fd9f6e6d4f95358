//! Reading the repository's own files (README, contract/, deploy/) for the
//! tests that keep them honest against the code.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A path in the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A file of the repository as text; a missing file fails the test by name.
pub fn read(relative: &str) -> String {
    let path = repo_path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every YAML document in a file (Kubernetes files hold several), as JSON
/// values; a parse error fails the test naming the file.
pub fn yaml_documents(relative: &str) -> Vec<Value> {
    let text = read(relative);
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{relative}: not valid YAML: {e}"))
        })
        .filter(|doc: &Value| !doc.is_null())
        .collect()
}

/// The one YAML document of a file.
pub fn yaml(relative: &str) -> Value {
    let mut docs = yaml_documents(relative);
    assert_eq!(docs.len(), 1, "{relative}: expected one YAML document");
    docs.remove(0)
}

/// A JSON file.
pub fn json(relative: &str) -> Value {
    serde_json::from_str(&read(relative))
        .unwrap_or_else(|e| panic!("{relative}: not valid JSON: {e}"))
}

/// The first fenced ```json block after `heading` in README.md.
pub fn readme_json_after(heading: &str) -> Value {
    let readme = read("README.md");
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no {heading:?}"));
    let rest = &readme[start..];
    let body_start = rest
        .find("```json\n")
        .unwrap_or_else(|| panic!("README.md: no json block after {heading:?}"))
        + "```json\n".len();
    let body_end = rest[body_start..]
        .find("```")
        .unwrap_or_else(|| panic!("README.md: unterminated json block after {heading:?}"));
    let body = &rest[body_start..body_start + body_end];
    serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("README.md: the json block after {heading:?}: {e}"))
}

/// Every file under a repository folder whose name ends with one of `exts`.
pub fn files_under(folder: &str, exts: &[&str]) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, exts: &[&str], out: &mut Vec<String>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, root, exts, out);
            } else if exts.iter().any(|ext| path.to_string_lossy().ends_with(ext)) {
                let relative = path.strip_prefix(root).expect("under the repository");
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    walk(&root.join(folder), root, exts, &mut out);
    out.sort();
    out
}
