//! Operators: list API tokens and revoke them (admin scope). Neither the secret
//! nor its hash ever leaves the database. A revocation holds from the next
//! request on: every request looks its token up.

use axum::Json;
use axum::extract::State;
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Admin, RequireScope};
use super::extract::{Path, Query};
use super::openapi::{
    BadRequest, Forbidden, IdempotencyKey, IdempotencyKeyReused, NotFound, PayloadTooLarge,
    RequestTimeout, ServerError, Unauthenticated, Unavailable,
};
use crate::error::{ApiError, Problem};
use crate::store::api_token;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(revoke))
}

/// Default and largest page of `GET /v1/tokens`.
pub const DEFAULT_PAGE: u64 = 50;
pub const MAX_PAGE: u64 = 500;

/// The public shape of a token: never its secret or hash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    /// `read`, `escalate`, `admin`.
    pub scopes: Vec<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339; `null` while the token is live.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

impl From<api_token::Model> for TokenView {
    fn from(t: api_token::Model) -> Self {
        TokenView {
            id: t.id,
            name: t.name,
            scopes: t
                .scopes
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            created_at: t.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            revoked_at: t
                .revoked_at
                .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true)),
        }
    }
}

/// A page of tokens.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenPage {
    pub tokens: Vec<TokenView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Tokens per page, 1–500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// API tokens: id, name, scopes, created, revoked (never the secret).
#[utoipa::path(
    get,
    path = "/v1/tokens",
    operation_id = "list_tokens",
    tag = "operations",
    security(("bearer" = ["admin"])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tokens.", body = TokenPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
async fn list(
    _: RequireScope<Admin>,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<TokenPage>, ApiError> {
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "invalid_limit",
                    Some("limit".into()),
                    format!("limit must be a whole number from 1 to {MAX_PAGE}"),
                )
            })?,
    };
    let cursor = query.cursor.filter(|c| !c.is_empty());
    if cursor
        .as_deref()
        .is_some_and(|c| uuid::Uuid::parse_str(c).is_err())
    {
        return Err(ApiError::invalid(
            "invalid_cursor",
            Some("cursor".into()),
            "cursor must be the next_cursor of a previous page",
        ));
    }
    // One more than asked tells whether another page exists.
    let mut rows = state
        .store
        .list_tokens(cursor.as_deref(), limit + 1)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|t| t.id.clone())).flatten();
    Ok(Json(TokenPage {
        tokens: rows.into_iter().map(TokenView::from).collect(),
        next_cursor,
    }))
}

/// Revokes a token: its next request is refused (401). Revoking a revoked token answers it
/// again.
#[utoipa::path(
    post,
    path = "/v1/tokens/{id}/revoke",
    operation_id = "revoke_token",
    tag = "operations",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, format = Uuid, description = "The token's id (not its secret)."), IdempotencyKey),
    responses(
        (status = 200, description = "The token, revoked.", body = TokenView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, description = "`idempotency_key_in_flight`: a request with this `Idempotency-Key` is still running.", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = IdempotencyKeyReused),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
async fn revoke(
    RequireScope(operator, _): RequireScope<Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(ApiError::NotFound);
    }
    let token = state
        .store
        .revoke_token(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tracing::info!(token_id = %token.id, by = %operator.id, "API token revoked by an operator.");
    Ok(Json(token.into()))
}
