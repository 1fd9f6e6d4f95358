//! The settings as data: every key with its default, read from the settings
//! types themselves (serialized defaults, and doc comments parsed from
//! `src/config/`), for the configuration reference and the deploy-file
//! checks.

use std::collections::BTreeMap;

use serde_json::Value;
use wfp_deployer::config::Settings;

use super::files::{files_under, read};

/// Every setting's default, by dotted key (`worker.concurrency`).
pub fn setting_defaults() -> BTreeMap<String, Value> {
    fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            leaf => {
                out.insert(prefix.to_string(), leaf.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    let settings = serde_json::to_value(Settings::default()).expect("settings serialize");
    flatten("", &settings, &mut out);
    out
}

/// A field of a settings struct: its type's name and its doc comment.
pub struct Field {
    pub type_name: String,
    pub doc: String,
}

/// Every struct in `src/config/`, by name, with its fields in order.
pub fn settings_structs() -> BTreeMap<String, Vec<(String, Field)>> {
    let mut structs = BTreeMap::new();
    for file in files_under("src/config", &[".rs"]) {
        let ast = syn::parse_file(&read(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for item in ast.items {
            let syn::Item::Struct(s) = item else { continue };
            let fields = s
                .fields
                .iter()
                .filter_map(|f| {
                    let name = f.ident.as_ref()?.to_string();
                    Some((
                        name,
                        Field {
                            type_name: type_name(&f.ty),
                            doc: doc_of(&f.attrs),
                        },
                    ))
                })
                .collect();
            structs.insert(s.ident.to_string(), fields);
        }
    }
    structs
}

/// `Foo` for `Foo`, `a::Foo` or `Option<Foo>`'s outer `Option`.
fn type_name(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// A doc comment's text, its lines joined with spaces.
fn doc_of(attrs: &[syn::Attribute]) -> String {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every key of the settings types (`amqp.url`), with its doc comment,
/// walking from `Settings` through the section structs.
pub fn documented_keys() -> BTreeMap<String, String> {
    fn walk(
        structs: &BTreeMap<String, Vec<(String, Field)>>,
        name: &str,
        prefix: &str,
        out: &mut BTreeMap<String, String>,
    ) {
        for (field, info) in &structs[name] {
            let key = if prefix.is_empty() {
                field.clone()
            } else {
                format!("{prefix}.{field}")
            };
            if structs.contains_key(&info.type_name) {
                walk(structs, &info.type_name, &key, out);
            } else {
                out.insert(key, info.doc.clone());
            }
        }
    }
    let structs = settings_structs();
    let mut out = BTreeMap::new();
    walk(&structs, "Settings", "", &mut out);
    out
}
