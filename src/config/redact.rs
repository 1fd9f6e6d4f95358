//! Secrets in serialized settings: written as a marker, never as the value.
//!
//! Settings serialize so tools can list every key with its default (the
//! configuration reference, the deploy-file checks); a secret must not leak
//! that way any more than through `Debug`.

use secrecy::SecretString;
use serde::Serializer;

/// What a set secret serializes as.
pub const REDACTED: &str = "[REDACTED]";

pub(super) fn secret<S: Serializer>(_: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(REDACTED)
}

/// An unset secret stays visibly unset (`null`); a set one is redacted.
pub(super) fn optional_secret<S: Serializer>(
    value: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => serializer.serialize_str(REDACTED),
        None => serializer.serialize_none(),
    }
}
