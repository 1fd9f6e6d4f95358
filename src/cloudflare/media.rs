//! Media types of the multipart parts we send.
//!
//! Cloudflare serves an asset with the content type of the part it was
//! uploaded in, so the type must come from the file's path (the first path
//! holding that content); text gets an explicit UTF-8 charset so browsers do
//! not guess. Worker modules are typed by extension because that is how the
//! Workers runtime tells an ES module from a CommonJS script or Wasm.
//!
//! Asset types come from `mime_guess`'s table (maintained, derived from
//! Apache httpd's `mime.types`), as wrangler takes them from the `mime`
//! package; text gets `; charset=utf-8` as wrangler's `getContentType` adds
//! it. The few entries of the table that are behind the standards are
//! corrected here.

/// Extensions the MIME table types with a superseded name: RFC 9239 (2022)
/// registers `.mjs`, like `.js`, as `text/javascript` (the table's
/// `application/javascript` would also lose the charset); RFC 8081 (2017)
/// registers `font/woff` and `font/otf`.
const OVERRIDES: &[(&str, &str)] = &[
    ("mjs", "text/javascript"),
    ("woff", "font/woff"),
    ("otf", "font/otf"),
];

/// The type an asset is uploaded (and later served) with.
pub fn asset_media_type(path: &str) -> String {
    let ext = std::path::Path::new(path)
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let guess = match OVERRIDES.iter().find(|(e, _)| *e == ext) {
        Some((_, essence)) => essence.parse().ok(),
        None => mime_guess::from_path(path).first(),
    };
    match guess {
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
    fn scripts_and_other_text_carry_a_charset() {
        // wrangler's own expectation for a `.js` asset.
        for path in [
            "/_astro/sponsors.CIiPz7eJ.js",
            "/lib/mod.mjs",
            "/LIB/MOD.MJS",
        ] {
            assert_eq!(
                asset_media_type(path),
                "text/javascript; charset=utf-8",
                "{path}"
            );
        }
        for (path, want) in [
            ("/feed.xml", "text/xml; charset=utf-8"),
            ("/data.csv", "text/csv; charset=utf-8"),
            ("/README.md", "text/markdown; charset=utf-8"),
            ("/captions.vtt", "text/vtt; charset=utf-8"),
            ("/old.htm", "text/html; charset=utf-8"),
        ] {
            assert_eq!(asset_media_type(path), want, "{path}");
        }
    }

    #[test]
    fn binary_and_structured_types_have_no_charset() {
        for (path, want) in [
            ("/logo.svg", "image/svg+xml"),
            ("/photo.avif", "image/avif"),
            ("/add.wasm", "application/wasm"),
            ("/site.webmanifest", "application/manifest+json"),
            ("/doc.pdf", "application/pdf"),
            ("/font.woff", "font/woff"),
            ("/font.otf", "font/otf"),
            ("/font.ttf", "font/ttf"),
            ("/clip.mp4", "video/mp4"),
            ("/dir.with.dots/file.json", "application/json"),
        ] {
            assert_eq!(asset_media_type(path), want, "{path}");
        }
    }

    #[test]
    fn the_type_comes_from_the_file_name_not_its_directories() {
        assert_eq!(asset_media_type("/a.css/b"), "application/octet-stream");
        assert_eq!(
            asset_media_type("/.well-known/security.txt"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(asset_media_type("/.htaccess"), "application/octet-stream");
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
