//! Bearer-token checks. Tokens are looked up by their SHA-256.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use super::AppState;
use crate::error::ApiError;
use crate::store::Scope;

/// Succeeds when the request carries a live token granting `wanted`.
pub async fn require(state: &AppState, headers: &HeaderMap, wanted: Scope) -> Result<(), ApiError> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated)?;
    let scopes = state
        .store
        .token_scopes(token)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if scopes.iter().any(|s| s.grants(wanted)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(wanted.as_str()))
    }
}
