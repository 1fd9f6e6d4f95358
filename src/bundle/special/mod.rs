//! The files at a bundle's root that configure how a site is served instead
//! of being served: `.assetsignore`, `_headers` and `_redirects`.
//!
//! Wrangler reads them from the assets directory and so does this worker:
//!
//! - [`AssetsIgnore`] is gitignore syntax (through the `ignore` crate, not
//!   hand-written globbing) naming files that are not uploaded;
//! - [`Headers`] and [`Redirects`] are parsed only to refuse a broken file
//!   before anything is uploaded, naming the file and the line
//!   (`_headers:12: ...`). What Cloudflare receives is the file itself,
//!   byte-exact, as the `assets.config._headers` and
//!   `assets.config._redirects` strings of the script-upload metadata (the
//!   field names of Cloudflare's API schema, "the contents of a _headers
//!   file" and "the contents of a _redirects file"; wrangler sends the same);
//! - [`reserved`] says which root files are never uploaded as assets.
//!
//! Cloudflare's own parsers (workers-shared `parseHeaders.ts`,
//! `parseRedirects.ts`) skip a bad line with a warning in wrangler, but the
//! API refuses the script upload with code 100324 ("Invalid _headers
//! configuration: Line 1: ..."), so a bad line here is an error too. Where
//! the documentation and that code disagree, or where Cloudflare would
//! accept a rule that cannot work (two splats, a header name the runtime
//! refuses), these checks take the stricter reading: a file that passes here
//! passes Cloudflare. Each module says where it is stricter.
//!
//! Wiring: every bundle source hands its root files to `bundle/site.rs`,
//! and `bundle/gate.rs` applies [`reserved`] and [`AssetsIgnore`].

mod assetsignore;
mod error;
mod headers;
mod pattern;
mod redirects;
mod text;

#[cfg(test)]
mod proptests;

pub use self::assetsignore::{AssetsIgnore, reserved};
pub use self::error::SpecialFileError;
pub use self::headers::{HeaderRule, Headers};
pub use self::redirects::{RedirectRule, Redirects};

/// The ignore file's name, at the bundle root.
pub const ASSETS_IGNORE: &str = ".assetsignore";
/// The custom-headers file's name, at the bundle root.
pub const HEADERS: &str = "_headers";
/// The redirects file's name, at the bundle root.
pub const REDIRECTS: &str = "_redirects";
/// A Pages "advanced mode" worker, file or directory, at the bundle root.
pub const WORKER_JS: &str = "_worker.js";
