//! Media types of the multipart parts we send.
//!
//! Cloudflare serves an asset with the content type of the part it was
//! uploaded in, so the type must come from the file's path (the first path
//! holding that content); text gets an explicit UTF-8 charset so browsers do
//! not guess. Worker modules are typed by extension because that is how the
//! Workers runtime tells an ES module from a CommonJS script or Wasm.

/// The type an asset is uploaded (and later served) with.
pub fn asset_media_type(path: &str) -> String {
    match mime_guess::from_path(path).first() {
        Some(mime) if mime.type_() == mime_guess::mime::TEXT => {
            format!("{}; charset=utf-8", mime.essence_str())
        }
        Some(mime) => mime.essence_str().to_string(),
        None => "application/octet-stream".to_string(),
    }
}

/// The type a worker module part is sent with, by its name's extension.
pub fn module_media_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "js" | "mjs" => "application/javascript+module",
        "cjs" => "application/javascript",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "txt" | "html" => "text/plain",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_typed_by_extension_with_charset_for_text() {
        assert_eq!(asset_media_type("/index.html"), "text/html; charset=utf-8");
        assert_eq!(asset_media_type("/css/site.css"), "text/css; charset=utf-8");
        assert_eq!(asset_media_type("/robots.txt"), "text/plain; charset=utf-8");
        assert_eq!(asset_media_type("/img/logo.png"), "image/png");
        assert_eq!(asset_media_type("/data.json"), "application/json");
        assert_eq!(asset_media_type("/font.woff2"), "font/woff2");
        assert_eq!(asset_media_type("/INDEX.HTML"), "text/html; charset=utf-8");
    }

    #[test]
    fn unknown_assets_are_octet_streams() {
        assert_eq!(asset_media_type("/LICENSE"), "application/octet-stream");
        assert_eq!(
            asset_media_type("/blob.zzzunknown"),
            "application/octet-stream"
        );
    }

    #[test]
    fn modules_are_typed_for_the_runtime() {
        assert_eq!(
            module_media_type("index.js"),
            "application/javascript+module"
        );
        assert_eq!(
            module_media_type("lib/a.mjs"),
            "application/javascript+module"
        );
        assert_eq!(module_media_type("old.cjs"), "application/javascript");
        assert_eq!(module_media_type("add.wasm"), "application/wasm");
        assert_eq!(module_media_type("data.json"), "application/json");
        assert_eq!(module_media_type("note.txt"), "text/plain");
        assert_eq!(module_media_type("page.HTML"), "text/plain");
        assert_eq!(module_media_type("blob.bin"), "application/octet-stream");
        assert_eq!(module_media_type("noext"), "application/octet-stream");
    }
}
