//! The root special files through whole deploys: `_headers` and
//! `_redirects` arrive byte-exact in the script metadata (and the
//! simulator's view of the deployment), `.assetsignore` keeps files back,
//! and none of the three is ever an asset; the same from an archive.
