//! README's configuration reference: every key with its default, its
//! environment variables and its meaning, generated from the settings
//! types (defaults serialized from `Settings::default()`, meanings from
//! the fields' doc comments in `src/config/`). The test fails while README
//! differs; `make config-reference` runs it with `WFP_BLESS=1` to rewrite
//! the table, so a new setting costs one command after writing its doc.

use serde_json::Value;
use wfp_deployer::config::{CONVENTIONAL_ENV, REDACTED};

use crate::helpers::files::{read, repo_path};
use crate::helpers::settings::{documented_keys, setting_defaults};

const BEGIN: &str =
    "<!-- config-reference:begin (generated from src/config/ by `make config-reference`) -->";
const END: &str = "<!-- config-reference:end -->";

/// A default as the table shows it.
fn shown(key: &str, value: &Value) -> String {
    match value {
        Value::String(s) if s == REDACTED => "(secret)".into(),
        Value::Null => "unset".into(),
        Value::String(s) if s.is_empty() => "`\"\"`".into(),
        Value::String(s) => format!("`{s}`"),
        Value::Object(_) => panic!(
            "{key} serializes as an object: serialize it as it deserializes \
             (e.g. `#[serde(with = \"humantime_serde\")]` for a duration)"
        ),
        other => format!("`{other}`"),
    }
}

/// The environment variables that set `key`.
fn env_vars(key: &str) -> String {
    let mut vars = format!("`WFP__{}`", key.replace('.', "__").to_uppercase());
    for (var, _) in CONVENTIONAL_ENV.iter().filter(|(_, k)| *k == key) {
        vars.push_str(&format!(", `{var}`"));
    }
    vars
}

/// The reference table, with its markers.
fn reference() -> String {
    let defaults = setting_defaults();
    let docs = documented_keys();
    let serialized: Vec<&String> = defaults.keys().collect();
    let declared: Vec<&String> = docs.keys().collect();
    assert_eq!(
        serialized, declared,
        "the keys Settings serializes differ from the fields of the settings structs"
    );
    let undocumented: Vec<&String> = docs
        .iter()
        .filter(|(_, d)| d.is_empty())
        .map(|(k, _)| k)
        .collect();
    assert!(
        undocumented.is_empty(),
        "no doc comment on {undocumented:?}: document these fields in src/config/"
    );
    let mut out =
        format!("{BEGIN}\n\n| key | default | environment | meaning |\n|---|---|---|---|\n");
    for (key, doc) in &docs {
        let meaning = doc.replace('|', "\\|");
        out.push_str(&format!(
            "| `{key}` | {} | {} | {meaning} |\n",
            shown(key, &defaults[key]),
            env_vars(key)
        ));
    }
    out.push('\n');
    out.push_str(END);
    out
}

#[test]
fn readme_config_reference_matches_the_settings() {
    let readme = read("README.md");
    let (start, end) = match (readme.find(BEGIN), readme.find(END)) {
        (Some(start), Some(end)) if start < end => (start, end + END.len()),
        _ => panic!("README.md has no configuration reference markers ({BEGIN} ... {END})"),
    };
    let fresh = reference();
    if readme[start..end] == fresh {
        return;
    }
    if std::env::var_os("WFP_BLESS").is_some() {
        let updated = format!("{}{fresh}{}", &readme[..start], &readme[end..]);
        std::fs::write(repo_path("README.md"), updated).expect("README.md is writable");
        return;
    }
    panic!(
        "README.md's configuration reference is stale: run `make config-reference`\n\nexpected:\n{fresh}"
    );
}

/// `config/default.toml` shows operators every default: it must repeat the
/// built-in ones exactly, or the file and the reference would disagree.
#[test]
fn config_default_toml_repeats_the_built_in_defaults() {
    let loaded = wfp_deployer::config::Settings::load_from(
        &repo_path("config"),
        None,
        &std::collections::HashMap::new(),
    )
    .expect("config/default.toml loads");
    assert_eq!(
        serde_json::to_value(&loaded).unwrap(),
        serde_json::to_value(wfp_deployer::config::Settings::default()).unwrap(),
        "config/default.toml differs from the built-in defaults in src/config/"
    );
}
