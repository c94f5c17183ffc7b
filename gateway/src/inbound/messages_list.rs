//! `GET /v1/inbound-messages?state=unmatched` (read scope): customer messages from provider
//! webhooks by what became of them, newest first, paged; `GET /v1/inbound-messages/{id}` adds
//! the text and attachments (until retention erases them).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::http::AppState;
use crate::http::auth::require;
use crate::http::extract::{Path, Query};
use crate::http::openapi::{
    BadRequest, Forbidden, NotFound, ServerError, Unauthenticated, Unavailable,
};
use crate::http::page::{self, CursorKey};
use crate::store::{INBOUND_SESSION_PREFIX, InboundMessageState, InboundMessageSummary, Scope};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(one))
}

/// One inbound message as operators see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InboundMessageView {
    pub id: String,
    pub channel: String,
    pub provider_message_id: String,
    pub state: String,
    pub session_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub received_at: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Only in `GET /v1/inbound-messages/{id}` (`null` once retention erased it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Only in `GET /v1/inbound-messages/{id}`: the attachments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Vec<MediaView>>,
    /// Only in `GET /v1/inbound-messages/{id}`: the answers sent to the sender outside any
    /// session (help, opt-in, unknown sender), without their text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<AnswerView>>,
}

/// An attachment of an inbound message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MediaView {
    pub url: String,
    pub content_type: Option<String>,
    pub filename: Option<String>,
}

/// An answer sent to the sender of an inbound message outside any session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AnswerView {
    pub id: String,
    /// queued | sending | sent | failed
    pub state: String,
    pub attempts: i32,
    pub provider_status: Option<String>,
    pub last_error: Option<String>,
}

/// A page of inbound messages, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundMessagePage {
    pub inbound_messages: Vec<InboundMessageView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn ms(t: i64) -> String {
    Utc.timestamp_millis_opt(t)
        .single()
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl From<InboundMessageSummary> for InboundMessageView {
    fn from(m: InboundMessageSummary) -> Self {
        Self {
            id: m.id,
            channel: m.channel,
            provider_message_id: m.provider_message_id,
            state: m.state,
            session_id: m.session_id,
            from: m.from_address,
            to: m.to_address,
            received_at: ms(m.received_at),
            updated_at: ms(m.updated_at),
            text: None,
            media: None,
            answers: None,
        }
    }
}

/// Inbound messages newest first: `(received_at ms, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MessageKey {
    received_at: i64,
    id: String,
}

impl CursorKey for MessageKey {
    const TAG: &'static str = "inbound-messages";
    fn encode(&self) -> String {
        format!("{}|{}", self.received_at, self.id)
    }
    fn decode(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('|')?;
        let well_formed =
            !id.is_empty() && id.chars().count() <= 330 && !id.chars().any(char::is_control);
        well_formed.then_some(())?;
        Some(Self {
            received_at: at.parse().ok()?,
            id: id.to_owned(),
        })
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// What became of the message (default `unmatched`).
    #[param(inline, value_type = Option<InboundMessageListState>)]
    state: Option<String>,
    /// Messages per page, 1–500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// What became of an inbound message (`InboundMessageState::ALL`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum InboundMessageListState {
    ToRep,
    CaseNote,
    OptOut,
    OptIn,
    Help,
    Unmatched,
    Refused,
    EndChat,
}

/// Customer messages from provider webhooks in one state (default `unmatched`), newest
/// first, without their text.
#[utoipa::path(
    get,
    path = "/v1/inbound-messages",
    operation_id = "list_inbound_messages",
    tag = "inbound",
    security(("bearer" = ["read"])),
    params(ListQuery),
    responses(
        (status = 200, description = "`{\"inbound_messages\": […], \"next_cursor\": …}`, newest first.", body = InboundMessagePage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<InboundMessagePage>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let wanted = query.state.unwrap_or_else(|| "unmatched".into());
    if !InboundMessageState::ALL.contains(&wanted.as_str()) {
        return Err(ApiError::invalid(
            "invalid_state",
            Some("state".into()),
            format!(
                "state must be one of {}",
                InboundMessageState::ALL.join(", ")
            ),
        ));
    }
    let page = page::request::<MessageKey>(query.limit.as_deref(), query.cursor.as_deref())?;
    let rows = state
        .store
        .inbound_messages_page(
            &wanted,
            page.after.as_ref().map(|k| (k.received_at, k.id.as_str())),
            page.limit + 1,
        )
        .await?;
    let (rows, next_cursor) = page::finish(rows, page.limit, |m| MessageKey {
        received_at: m.received_at,
        id: m.id.clone(),
    });
    let messages: Vec<InboundMessageView> = rows.into_iter().map(Into::into).collect();
    Ok(Json(InboundMessagePage {
        inbound_messages: messages,
        next_cursor,
    }))
}

/// One inbound message with its text, attachments and the answers it got.
#[utoipa::path(
    get,
    path = "/v1/inbound-messages/{id}",
    operation_id = "get_inbound_message",
    tag = "inbound",
    security(("bearer" = ["read"])),
    params(("id" = String, Path, description = "The inbound message's id (`<channel>:<provider message id>`).")),
    responses(
        (status = 200, description = "The message.", body = InboundMessageView),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
async fn one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<InboundMessageView>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let m = state
        .store
        .inbound_message(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let answers = state
        .store
        .latest_deliveries(&format!("{INBOUND_SESSION_PREFIX}{}", m.id), 20)
        .await?
        .into_iter()
        .map(|d| AnswerView {
            id: d.id,
            state: d.state,
            attempts: d.attempts,
            provider_status: d.provider_status,
            last_error: d.last_error,
        })
        .collect();
    Ok(Json(InboundMessageView {
        id: m.id,
        channel: m.channel,
        provider_message_id: m.provider_message_id,
        state: m.state,
        session_id: m.session_id,
        from: m.from_address,
        to: m.to_address,
        received_at: ms(m.received_at),
        updated_at: ms(m.updated_at),
        text: m.text,
        media: m.media.and_then(|j| serde_json::from_str(&j).ok()),
        answers: Some(answers),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented states are exactly the ones the store lists by.
    #[test]
    fn documented_states_are_the_stored_ones() {
        let schema =
            serde_json::to_value(<InboundMessageListState as utoipa::PartialSchema>::schema())
                .unwrap();
        let documented: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(documented, InboundMessageState::ALL);
    }

    #[test]
    fn cursors_round_trip_ids_with_any_printable_characters() {
        let key = MessageKey {
            received_at: 1_733_100_000_000,
            id: "line:m|1 é".into(),
        };
        let text = page::cursor(&key);
        assert_eq!(
            page::request::<MessageKey>(None, Some(&text))
                .unwrap()
                .after,
            Some(key)
        );
        assert!(MessageKey::decode("12|").is_none());
        assert!(MessageKey::decode("x|sms:1").is_none());
        assert!(MessageKey::decode("1|a\nb").is_none());
    }
}
