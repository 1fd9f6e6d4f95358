//! Upload and completion JWTs: real HS256 tokens, timed by the sim clock.
//!
//! Cloudflare hands out two short-lived tokens: an upload token (for the
//! assets upload endpoint) and a completion token (for `assets.jwt` in the
//! script upload). They are separate kinds here so a client that mixes them
//! up is refused. Expiry is checked against the sim clock, not the system
//! clock, so tests can expire a token by advancing time.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Which step a token unlocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Upload,
    Completion,
}

/// The claims of both kinds of token; `sid` is the upload session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub kind: TokenKind,
    pub sid: String,
    pub account: String,
    pub namespace: String,
    pub script: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// Why a presented token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("invalid")]
    Invalid,
    #[error("expired")]
    Expired,
    #[error("not a {0:?} token")]
    WrongKind(TokenKind),
}

/// Signs and checks tokens with the simulator's secret.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    pub fn new(secret: &[u8]) -> Keys {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Signs `claims`; HS256 signing of serializable claims cannot fail in
    /// practice, but the error is passed on rather than unwrapped.
    pub fn mint(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// Checks signature and shape only, not expiry nor kind.
    pub fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is judged by the sim clock in `verify`, never the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
    }

    /// Checks signature, kind and expiry at sim time `now` (unix seconds).
    pub fn verify(&self, token: &str, kind: TokenKind, now: i64) -> Result<Claims, TokenError> {
        let claims = self.decode(token)?;
        if claims.kind != kind {
            return Err(TokenError::WrongKind(kind));
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(kind: TokenKind) -> Claims {
        Claims {
            kind,
            sid: "s1".into(),
            account: "a".into(),
            namespace: "n".into(),
            script: "s".into(),
            iat: 1_000,
            exp: 4_600,
            jti: "j".into(),
        }
    }

    #[test]
    fn a_token_round_trips_and_expires_by_the_given_clock() {
        let keys = Keys::new(b"secret");
        let token = keys.mint(&claims(TokenKind::Upload)).unwrap_or_default();
        assert_eq!(
            keys.verify(&token, TokenKind::Upload, 4_599),
            Ok(claims(TokenKind::Upload))
        );
        assert_eq!(
            keys.verify(&token, TokenKind::Upload, 4_600),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn kinds_are_not_interchangeable() {
        let keys = Keys::new(b"secret");
        let token = keys
            .mint(&claims(TokenKind::Completion))
            .unwrap_or_default();
        assert_eq!(
            keys.verify(&token, TokenKind::Upload, 2_000),
            Err(TokenError::WrongKind(TokenKind::Upload))
        );
    }

    #[test]
    fn another_secret_or_a_tampered_token_is_invalid() {
        let token = Keys::new(b"one")
            .mint(&claims(TokenKind::Upload))
            .unwrap_or_default();
        let other = Keys::new(b"two");
        assert_eq!(other.decode(&token), Err(TokenError::Invalid));
        let mut tampered = token.clone();
        tampered.push('x');
        assert_eq!(
            Keys::new(b"one").decode(&tampered),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            Keys::new(b"one").decode("not.a.jwt"),
            Err(TokenError::Invalid)
        );
    }
}
