//! Operators: list API tokens and revoke them (admin scope). Neither the secret
//! nor its hash ever leaves the database. A revocation holds from the next
//! request on: every request looks its token up.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Admin, RequireScope};
use crate::error::ApiError;
use crate::store::api_token;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", get(list))
        .route("/v1/tokens/{id}/revoke", post(revoke))
}

/// Default and largest page of `GET /v1/tokens`.
pub const DEFAULT_PAGE: u64 = 50;
pub const MAX_PAGE: u64 = 500;

/// The public shape of a token: never its secret or hash.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
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

#[derive(Debug, Serialize, Deserialize)]
pub struct TokenPage {
    pub tokens: Vec<TokenView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

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
