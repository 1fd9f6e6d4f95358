//! Who may call what: API tokens for the session and script endpoints, the
//! upload JWT for the upload endpoint, and the account / namespace / script
//! checks that come with the path.
//!
//! Checks run in the order Cloudflare's edge would: the account id must be
//! routable (404), then the credential must be valid (401), then the account
//! must be one the token may use (403), then the namespace must exist (404)
//! and the script name be valid (400). Messages never echo a credential.

use axum::http::{HeaderMap, StatusCode, header};
use secrecy::ExposeSecret;

use super::envelope::{ApiError, CODE_AUTH, CODE_NAMESPACE, CODE_ROUTE, CODE_SCRIPT_NAME};
use super::jwt::{Claims, TokenError, TokenKind};
use super::state::Shared;
use super::validate;

/// The kind of credential a request carried, for the request log.
pub fn classify(shared: &Shared, headers: &HeaderMap) -> &'static str {
    match bearer(headers) {
        Err(Missing::Absent) => "none",
        Err(Missing::Malformed) => "invalid",
        Ok(token) if shared.config.accepts_api_token(token) => "api_token",
        Ok(token) => match shared.keys.decode(token) {
            Ok(Claims {
                kind: TokenKind::Upload,
                ..
            }) => "upload_jwt",
            Ok(Claims {
                kind: TokenKind::Completion,
                ..
            }) => "completion_jwt",
            Err(_) => "invalid",
        },
    }
}

/// Which of the configured API tokens a request carries, by position: the
/// key of its rate-limit budget.
pub fn api_token_position(shared: &Shared, headers: &HeaderMap) -> Option<usize> {
    let token = bearer(headers).ok()?;
    shared
        .config
        .api_tokens
        .iter()
        .position(|t| t.expose_secret() == token)
}

enum Missing {
    Absent,
    Malformed,
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(headers: &HeaderMap) -> Result<&str, Missing> {
    let value = headers.get(header::AUTHORIZATION).ok_or(Missing::Absent)?;
    let value = value.to_str().map_err(|_| Missing::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(Missing::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.contains(char::is_whitespace)
    {
        return Err(Missing::Malformed);
    }
    Ok(token)
}

/// The account id in the path must look like one, else Cloudflare cannot route.
pub fn check_account_format(account: &str) -> Result<(), ApiError> {
    if validate::is_account_id(account) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            CODE_ROUTE,
            "Could not route to /accounts/..., perhaps your object identifier is invalid?",
        ))
    }
}

/// Requires a configured API token; a JWT or anything else is refused.
pub fn require_api_token(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = bearer(headers).map_err(|missing| match missing {
        Missing::Absent => ApiError::auth("missing Authorization: Bearer header"),
        Missing::Malformed => ApiError::auth("malformed Authorization header"),
    })?;
    if shared.config.accepts_api_token(token) {
        return Ok(());
    }
    match shared.keys.decode(token) {
        Ok(claims) => Err(ApiError::auth(&format!(
            "a {} JWT is not an API token",
            kind_name(claims.kind)
        ))),
        Err(_) => Err(ApiError::auth("unknown API token")),
    }
}

/// Requires a valid, unexpired upload JWT for `account`; returns its claims.
pub fn require_upload_jwt(
    shared: &Shared,
    headers: &HeaderMap,
    account: &str,
) -> Result<Claims, ApiError> {
    let token = bearer(headers).map_err(|missing| match missing {
        Missing::Absent => ApiError::auth("missing Authorization: Bearer header"),
        Missing::Malformed => ApiError::auth("malformed Authorization header"),
    })?;
    if shared.config.accepts_api_token(token) {
        return Err(ApiError::auth(
            "the upload endpoint needs the upload JWT, not an API token",
        ));
    }
    let now = shared.now().timestamp();
    let claims = shared
        .keys
        .verify(token, TokenKind::Upload, now)
        .map_err(|e| match e {
            TokenError::Expired => {
                ApiError::new(StatusCode::UNAUTHORIZED, CODE_AUTH, "upload JWT expired")
            }
            TokenError::WrongKind(_) => ApiError::auth("a completion JWT is not an upload JWT"),
            TokenError::Invalid => ApiError::auth("invalid upload JWT"),
        })?;
    if claims.account != account {
        return Err(ApiError::auth("upload JWT is for another account"));
    }
    Ok(claims)
}

/// The account must be one this simulator serves (when any are configured).
pub fn check_account_allowed(shared: &Shared, account: &str) -> Result<(), ApiError> {
    let accounts = &shared.config.accounts;
    if accounts.is_empty() || accounts.iter().any(|a| a == account) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            CODE_AUTH,
            format!("account {account}: the API token has no access to this account"),
        ))
    }
}

/// The namespace must exist and the script name be valid.
pub fn check_namespace_and_script(
    shared: &Shared,
    namespace: &str,
    script: &str,
) -> Result<(), ApiError> {
    let namespaces = &shared.config.namespaces;
    let exists = validate::is_namespace_name(namespace)
        && (namespaces.is_empty() || namespaces.iter().any(|n| n == namespace));
    if !exists {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            CODE_NAMESPACE,
            format!("dispatch namespace {namespace:?} not found"),
        ));
    }
    if !validate::is_script_name(script) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            CODE_SCRIPT_NAME,
            format!(
                "script name {script:?} is invalid: use 1-63 of a-z, 0-9, '-' and '_', \
                 not starting or ending with '-'"
            ),
        ));
    }
    Ok(())
}

/// All checks of the session and script endpoints, in order.
pub fn check_script_route(
    shared: &Shared,
    headers: &HeaderMap,
    account: &str,
    namespace: &str,
    script: &str,
) -> Result<(), ApiError> {
    check_account_format(account)?;
    require_api_token(shared, headers)?;
    check_account_allowed(shared, account)?;
    check_namespace_and_script(shared, namespace, script)
}

fn kind_name(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Upload => "upload",
        TokenKind::Completion => "completion",
    }
}
