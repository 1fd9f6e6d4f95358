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

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    #[test]
    fn serialized_settings_show_no_secret() {
        let mut settings = Settings::default();
        settings.amqp.url = "amqp://u:amqp-pass-1@h/%2f".to_string().into();
        settings.cloudflare.api_token = Some("cf-token-2".to_string().into());
        settings.s3.secret_access_key = Some("s3-secret-3".to_string().into());
        let json = serde_json::to_string(&settings).unwrap();
        for secret in ["amqp-pass-1", "cf-token-2", "s3-secret-3"] {
            assert!(!json.contains(secret), "{secret} leaked: {json}");
        }
        assert_eq!(json.matches(super::REDACTED).count(), 3);
        settings.s3.secret_access_key = None;
        let value = serde_json::to_value(&settings).unwrap();
        assert!(
            value["s3"]["secret_access_key"].is_null(),
            "unset stays unset"
        );
    }
}
