//! Bearer-token checks. Tokens are looked up by their SHA-256.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use super::AppState;
use crate::error::ApiError;
use crate::store::{Scope, TokenIdentity};

/// Succeeds when the request carries a live token granting `wanted`.
pub async fn require(state: &AppState, headers: &HeaderMap, wanted: Scope) -> Result<(), ApiError> {
    let identity = identify(state, headers).await?;
    if identity.scopes.iter().any(|s| s.grants(wanted)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(wanted.as_str()))
    }
}

/// The live token the request carries (401 when there is none).
pub async fn identify(state: &AppState, headers: &HeaderMap) -> Result<TokenIdentity, ApiError> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated)?;
    state
        .store
        .token_identity(token)
        .await?
        .ok_or(ApiError::Unauthenticated)
}
