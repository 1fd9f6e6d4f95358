//! The archive readers and the path rules they use, compiled from the main
//! crate's own files under the same module path (`crate::bundle::...`), so
//! the fuzz build need not compile the whole crate (see Cargo.toml).

#[path = "../../src/bundle/path.rs"]
pub mod path;

#[path = "../../src/bundle/archive/mod.rs"]
pub mod archive;
