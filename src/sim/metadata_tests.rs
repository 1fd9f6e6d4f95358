//! Unit tests of script metadata checks.

use super::*;
use serde_json::json;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default()
}

fn check_value(value: Value) -> Result<Metadata, String> {
    check(value.to_string().as_bytes(), today())
}

fn base() -> Value {
    json!({
        "main_module": "index.js",
        "assets": {"jwt": "j", "config": {"html_handling": "auto-trailing-slash"}},
        "compatibility_date": "2025-01-24",
        "compatibility_flags": ["nodejs_compat"],
        "bindings": [{"type": "assets", "name": "ASSETS"}],
        "tags": ["customer:acme"],
        "usage_model": "standard",
    })
}

fn with(key: &str, value: Value) -> Value {
    let mut metadata = base();
    metadata[key] = value;
    metadata
}

#[test]
fn the_reference_metadata_passes() {
    let metadata = check_value(base()).map_err(|e| e.to_string());
    let metadata = metadata.as_ref().ok();
    assert_eq!(
        metadata.and_then(|m| m.main_module.as_deref()),
        Some("index.js")
    );
    assert_eq!(metadata.and_then(|m| m.assets_jwt.as_deref()), Some("j"));
    assert_eq!(
        metadata.map(|m| m.compatibility_flags.clone()),
        Some(vec!["nodejs_compat".to_owned()])
    );
}

#[test]
fn today_is_allowed_and_tomorrow_is_not() {
    assert!(check_value(with("compatibility_date", json!("2025-06-01"))).is_ok());
    let err = check_value(with("compatibility_date", json!("2025-06-02")));
    assert!(err.is_err_and(|e| e.contains("future")));
}

#[test]
fn rejections_name_the_key() {
    let mut no_date = base();
    if let Some(obj) = no_date.as_object_mut() {
        obj.remove("compatibility_date");
    }
    let cases = [
        (with("body_part", json!("x")), "unknown key \"body_part\""),
        (no_date, "compatibility_date: required"),
        (with("compatibility_date", json!("2025-1-24")), "YYYY-MM-DD"),
        (
            with("compatibility_date", json!("2025-02-30")),
            "YYYY-MM-DD",
        ),
        (
            with("compatibility_flags", json!("nodejs_compat")),
            "compatibility_flags",
        ),
        (
            with("compatibility_flags", json!([1])),
            "compatibility_flags",
        ),
        (with("main_module", json!(1)), "main_module"),
        (
            with("assets", json!({"jwt": "j", "directory": "x"})),
            "assets: unknown key \"directory\"",
        ),
        (
            with("assets", json!({"config": {}})),
            "assets.jwt: required",
        ),
        (
            with(
                "assets",
                json!({"jwt": "j", "config": {"html_handling": "auto"}}),
            ),
            "config.html_handling",
        ),
        (
            with(
                "assets",
                json!({"jwt": "j", "config": {"not_found_handling": "spa"}}),
            ),
            "not_found_handling",
        ),
        (
            with(
                "assets",
                json!({"jwt": "j", "config": {"serve_directly": "yes"}}),
            ),
            "serve_directly",
        ),
        (
            with(
                "assets",
                json!({"jwt": "j", "config": {"run_worker_first": ["api/*"]}}),
            ),
            "run_worker_first",
        ),
        (
            with("assets", json!({"jwt": "j", "config": {"headers": {}}})),
            "unknown key \"headers\"",
        ),
        (
            with("bindings", json!([{"type": "kv_namespace"}])),
            "bindings[0]",
        ),
        (
            with(
                "bindings",
                json!([{"type": "assets", "name": "A"}, {"type": "kv_namespace", "name": "A"}]),
            ),
            "bound twice",
        ),
        (with("bindings", json!({})), "bindings: must be an array"),
    ];
    for (metadata, expected) in cases {
        match check_value(metadata.clone()) {
            Ok(_) => panic!("{metadata} accepted"),
            Err(e) => assert!(e.contains(expected), "{e} lacks {expected:?}"),
        }
    }
}

#[test]
fn run_worker_first_takes_bool_or_routes() {
    for value in [json!(true), json!(["/api/*", "!/api/static/*"])] {
        let metadata = with(
            "assets",
            json!({"jwt": "j", "config": {"run_worker_first": value}}),
        );
        assert!(check_value(metadata).is_ok());
    }
}

#[test]
fn an_assets_binding_needs_assets() {
    let mut metadata = base();
    if let Some(obj) = metadata.as_object_mut() {
        obj.remove("assets");
    }
    assert!(check_value(metadata).is_err_and(|e| e.contains("needs metadata.assets")));
}

#[test]
fn duplicate_keys_are_refused() {
    let text = r#"{"compatibility_date":"2025-01-01","compatibility_date":"2025-01-02"}"#;
    assert!(check(text.as_bytes(), today()).is_err_and(|e| e.contains("duplicate key")));
}

#[test]
fn keep_assets_must_be_a_bool_and_allows_an_assets_binding() {
    let mut metadata = base();
    if let Some(obj) = metadata.as_object_mut() {
        obj.remove("assets");
        obj.insert("keep_assets".into(), json!(true));
    }
    let checked = check_value(metadata.clone());
    assert!(
        checked
            .as_ref()
            .is_ok_and(|m| m.keep_assets && m.assets_jwt.is_none())
    );
    metadata["keep_assets"] = json!("yes");
    assert!(check_value(metadata).is_err_and(|e| e.contains("keep_assets")));
}

#[test]
fn special_files_in_the_config_must_be_strings() {
    for key in ["_headers", "_redirects"] {
        let ok = with("assets", json!({"jwt": "j", "config": {key: "/a /b\n"}}));
        assert!(check_value(ok).is_ok(), "{key}");
        let bad = with("assets", json!({"jwt": "j", "config": {key: ["/a /b"]}}));
        let want = format!("config.{key}: invalid value");
        assert!(check_value(bad).is_err_and(|e| e.contains(&want)), "{key}");
    }
}
