//! The plain types every step of a deploy shares: which worker it goes to,
//! and what was sent. Kept apart from `mod.rs` so the step modules import
//! them from here, not from their parent.

use std::fmt;

/// The user worker a deploy goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptTarget {
    pub account_id: String,
    pub namespace: String,
    pub script_name: String,
}

impl fmt::Display for ScriptTarget {
    /// `namespace/script_name`: the subject of every message about it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.script_name)
    }
}

/// What one deploy sent to Cloudflare, for the succeeded event and logs.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadStats {
    /// Upload sessions opened, the first included (1 unless a JWT ran out).
    pub sessions: u32,
    /// Buckets uploaded.
    pub buckets: u32,
    /// Files uploaded (a file Cloudflare already held is not counted).
    pub files: u64,
    /// Raw (decoded) bytes of the files uploaded.
    pub bytes: u64,
}
