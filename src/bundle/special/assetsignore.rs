//! `.assetsignore`: the files a bundle asks not to upload, in gitignore
//! syntax, and the root files that are never uploaded.
//!
//! # What wrangler does (workers-shared `createAssetsIgnoreFunction`,
//! wrangler `assets.ts`)
//!
//! - It builds one matcher with the `ignore` npm package from
//!   `/.assetsignore`, `/_redirects`, `/_headers`, then the lines of
//!   `.assetsignore` if there is one, and tests each path relative to the
//!   assets directory. The three names are anchored: a `_headers` in a
//!   subdirectory is an ordinary asset.
//! - Because the file's lines come after its defaults, wrangler lets
//!   `!_headers` re-include the file as an asset.
//! - A `_worker.js` file, or anything under a `_worker.js` directory, at the
//!   root makes the deploy fail ("Uploading a Pages _worker.js ... could
//!   expose your private server-side code") unless a `.assetsignore` exists:
//!   with one, it is an ordinary asset unless the file ignores it.
//!
//! # What this worker does
//!
//! - `.assetsignore`, `_headers` and `_redirects` at the root are never
//!   assets ([`reserved`]), whatever the ignore file says: they configure
//!   the site, and a platform's users should not publish them by accident.
//! - Without a `.assetsignore`, a root `_worker.js` (file or directory) is
//!   skipped rather than failing the deploy: the private code stays private
//!   and the site still deploys. With one, it is treated as wrangler does.
//! - The patterns are gitignore's, through the `ignore` crate (ripgrep's),
//!   with git's rule that nothing under an ignored directory can be
//!   re-included (`dir/` then `!dir/keep` still ignores `dir/keep`; use
//!   `dir/*` then `!dir/keep`). Matching is case-sensitive; a trailing `\r`
//!   on a line is dropped, so a file saved with CRLF reads the same.

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::text::{decode, lines};
use super::{ASSETS_IGNORE, HEADERS, REDIRECTS, SpecialFileError, WORKER_JS};

/// The patterns of a bundle's `.assetsignore`.
#[derive(Debug, Clone)]
pub struct AssetsIgnore {
    matcher: Gitignore,
}

impl AssetsIgnore {
    /// Parses the file; a pattern the matcher cannot compile (`[z-a]`, a
    /// trailing `\`) is an error naming its line, where git would skip it
    /// silently and upload what the author meant to keep private.
    pub fn parse(bytes: &[u8]) -> Result<AssetsIgnore, SpecialFileError> {
        let text = decode(ASSETS_IGNORE, bytes)?;
        // Paths are matched relative to the bundle root, so the root is "".
        let mut builder = GitignoreBuilder::new("");
        for (n, line) in lines(text) {
            builder.add_line(None, line).map_err(|e| {
                SpecialFileError::at(ASSETS_IGNORE, n, format!("pattern {line:?}: {e}"))
            })?;
        }
        let matcher = builder
            .build()
            .map_err(|e| SpecialFileError::whole(ASSETS_IGNORE, e.to_string()))?;
        Ok(AssetsIgnore { matcher })
    }

    /// Whether `rel_path` (relative to the bundle root, `/`-separated, with
    /// or without a leading `/`) is ignored. Each directory above it is
    /// tested first, from the root down: once one is ignored, so is
    /// everything under it, as in git.
    pub fn is_ignored(&self, rel_path: &str, is_dir: bool) -> bool {
        let path = rel_path.trim_start_matches('/');
        if path.is_empty() {
            return false;
        }
        let ancestor_ignored = path
            .match_indices('/')
            .map(|(i, _)| &path[..i])
            .filter(|dir| !dir.is_empty())
            .any(|dir| self.ignores(dir, true));
        ancestor_ignored || self.ignores(path, is_dir)
    }

    fn ignores(&self, path: &str, is_dir: bool) -> bool {
        matches!(self.matcher.matched(path, is_dir), Match::Ignore(_))
    }
}

/// Whether a file at `rel_path` (relative to the bundle root) is never
/// uploaded as an asset: the three special files at the root, and a root
/// `_worker.js` file or directory when the bundle has no `.assetsignore`.
pub fn reserved(rel_path: &str, has_assetsignore: bool) -> bool {
    let path = rel_path.trim_start_matches('/');
    let worker_js = path == WORKER_JS
        || path
            .strip_prefix(WORKER_JS)
            .is_some_and(|rest| rest.starts_with('/'));
    [ASSETS_IGNORE, HEADERS, REDIRECTS].contains(&path) || (worker_js && !has_assetsignore)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> AssetsIgnore {
        match AssetsIgnore::parse(text.as_bytes()) {
            Ok(ignore) => ignore,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn wranglers_own_examples_hold() {
        // workers-shared's test of `.assetsignore`, with wrangler's answers.
        let ig = ignore("logo.png\nchild/**/*.svg\n!child/nope.svg\n/*.js");
        for (path, ignored) in [
            ("abc", false),
            ("logo.png", true),
            ("child/logo.png", true),
            ("foo.js", true),
            ("child/foo.js", false),
            ("child/yup.svg", true),
            ("child/a/b/c/yup.svg", true),
            ("child/nope.svg", false),
        ] {
            assert_eq!(ig.is_ignored(path, false), ignored, "{path}");
        }
    }

    #[test]
    fn an_ignored_directory_hides_everything_under_it() {
        let ig = ignore("# drafts\nsecret/\n!secret/public.txt\nbuild/*\n!build/keep.txt\n");
        assert!(ig.is_ignored("secret", true));
        assert!(
            !ig.is_ignored("secret", false),
            "secret/ matches directories only"
        );
        assert!(ig.is_ignored("secret/a/b.txt", false));
        assert!(
            ig.is_ignored("secret/public.txt", false),
            "git cannot re-include under an ignored directory"
        );
        assert!(ig.is_ignored("build/app.js", false));
        assert!(!ig.is_ignored("build/keep.txt", false));
        assert!(!ig.is_ignored("/index.html", false));
    }

    #[test]
    fn crlf_comments_escapes_and_anchors_work() {
        let ig = ignore("*.map\r\n\\#notes.txt\r\n/top.txt\r\n");
        assert!(ig.is_ignored("js/app.js.map", false));
        assert!(ig.is_ignored("#notes.txt", false));
        assert!(ig.is_ignored("top.txt", false));
        assert!(!ig.is_ignored("sub/top.txt", false));
        assert!(!ig.is_ignored("", true));
        assert!(
            !ig.is_ignored("JS/APP.JS.MAP", false),
            "matching is case-sensitive"
        );
    }

    #[test]
    fn a_broken_pattern_names_its_line() {
        let err = AssetsIgnore::parse(b"ok.txt\n[z-a]\n")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with(".assetsignore:2: pattern \"[z-a]\"")),
            "{err:?}"
        );
        let err = AssetsIgnore::parse(b"a\n\xff\n")
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(".assetsignore:2: not valid UTF-8"));
    }

    #[test]
    fn special_files_at_the_root_are_reserved() {
        for has_ignore in [false, true] {
            for path in [".assetsignore", "_headers", "/_redirects"] {
                assert!(reserved(path, has_ignore), "{path}");
            }
            for path in [
                "child/_headers",
                "child/.assetsignore",
                "_headers.txt",
                "index.html",
            ] {
                assert!(!reserved(path, has_ignore), "{path}");
            }
        }
    }

    #[test]
    fn worker_js_is_reserved_only_without_an_ignore_file() {
        for path in ["_worker.js", "_worker.js/index.js", "/_worker.js/lib/a.js"] {
            assert!(reserved(path, false), "{path}");
            assert!(!reserved(path, true), "{path}");
        }
        for path in ["_worker.jsx", "_worker.js.map", "sub/_worker.js"] {
            assert!(!reserved(path, false), "{path}");
        }
    }
}
