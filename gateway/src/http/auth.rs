//! Bearer-token checks. Tokens are looked up by their SHA-256.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

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

/// A scope as a type, for [`RequireScope`].
pub trait ScopeName {
    const SCOPE: Scope;
}

/// The `admin` scope.
pub struct Admin;

impl ScopeName for Admin {
    const SCOPE: Scope = Scope::Admin;
}

/// An extractor: the request carries a live token granting `S` (401 / 403
/// otherwise). The token is looked up once per request; the identity is kept
/// in the request's extensions for later extractors and middleware.
pub struct RequireScope<S>(pub TokenIdentity, pub PhantomData<S>);

impl<S: ScopeName> FromRequestParts<AppState> for RequireScope<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let identity = match parts.extensions.get::<TokenIdentity>() {
            Some(known) => known.clone(),
            None => {
                let identity = identify(state, &parts.headers).await?;
                parts.extensions.insert(identity.clone());
                identity
            }
        };
        if identity.scopes.iter().any(|s| s.grants(S::SCOPE)) {
            Ok(RequireScope(identity, PhantomData))
        } else {
            Err(ApiError::Forbidden(S::SCOPE.as_str()))
        }
    }
}
