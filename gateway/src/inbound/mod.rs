//! Customers writing back. Email: `POST /channels/email/inbound` takes one raw
//! RFC 5322 message from the mail provider's inbound webhook (signed with
//! `X-Handoff-Signature`, or at a secret path), finds the session it answers
//! and queues it as a note on that session's Case — durably, in one
//! transaction, before answering 202. Operators list what matched nothing at
//! `GET /v1/inbound-emails?state=unmatched`. SMS, WhatsApp and bridges:
//! [`provider`] (the webhooks), [`prepare`] (bounding a message),
//! [`messages_list`] (`GET /v1/inbound-messages`).

pub mod email_message;
pub mod messages_list;
pub mod note;
pub mod prepare;
pub mod provider;

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{SecondsFormat, TimeZone, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use channels::email::{AppendAs, InboundCredentials, InboundEmail, ThreadToken, reply_tokens};
use channels::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

use crate::config::Config;
use crate::error::ApiError;
use crate::http::AppState;
use crate::http::auth::require;
use crate::http::body::read_bytes;
use crate::http::extract::{Path, Query};
use crate::http::openapi::{
    BadRequest, Forbidden, NotFound, ServerError, Unauthenticated, Unavailable,
};
use crate::http::page::{self, CursorKey};
use crate::store::{
    InboundState, InboundSummary, MatchKeys, MatchedBy, NewInbound, Scope, case_note_id,
};

/// The note kind of an inbound email written as an internal CaseComment.
pub const NOTE_KIND_COMMENT: &str = "inbound_email";
/// The note kind of an inbound email written as an incoming EmailMessage.
pub const NOTE_KIND_EMAIL_MESSAGE: &str = "inbound_email_message";

/// `[channels.email.inbound]` and the Reply-To template, read and checked at start.
#[derive(Debug, Clone)]
pub struct InboundSettings {
    pub credentials: InboundCredentials,
    pub max_bytes: usize,
    pub append_as: AppendAs,
    pub append_new_conversations: bool,
    /// `[channels.email] reply_to`, whose `{token}` names a session.
    pub reply_to: Option<String>,
}

impl InboundSettings {
    /// # Errors
    /// A message naming the `channels.email.inbound.*` setting at fault.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let email = match config.channels.get("email") {
            Some(channels::ChannelConfig::Email(email)) => email.clone(),
            _ => channels::EmailConfig::default(),
        };
        Ok(Self {
            credentials: email.inbound.credentials()?,
            max_bytes: email.inbound.max_bytes,
            append_as: email.inbound.append_as,
            append_new_conversations: email.inbound.append_new_conversations,
            reply_to: email.reply_to,
        })
    }
}

/// The inbound routes: provider webhooks outside `/v1` (plain `route`, not in the OpenAPI
/// document: their shapes are the providers'), and the documented `/v1` ones (`routes!`).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(provider::router())
        .merge(messages_list::router())
        .route("/channels/email/inbound", post(receive_signed))
        .route(
            "/channels/email/inbound/{path_token}",
            post(receive_at_path),
        )
        .routes(routes!(list))
        .routes(routes!(one))
}

/// HMAC-signed: the headers are checked before the body is read, the
/// signature after (it covers the body).
async fn receive_signed(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let settings = Arc::clone(&state.inbound);
    let secret = settings
        .credentials
        .hmac
        .as_ref()
        .ok_or(ApiError::InvalidSignature)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (timestamp, signature) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER));
    if timestamp.is_none() || signature.is_none() {
        return Err(ApiError::InvalidSignature);
    }
    let raw = read_bytes(&headers, body, settings.max_bytes).await?;
    if let Err(refused) = secret.verify(timestamp, signature, &raw, Utc::now()) {
        tracing::info!(reason = %refused, "Inbound email refused: bad signature.");
        return Err(ApiError::InvalidSignature);
    }
    accept(state, raw).await
}

/// At the secret path: the token is compared (in constant time) before the
/// body is read.
async fn receive_at_path(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let settings = Arc::clone(&state.inbound);
    let expected = settings
        .credentials
        .path_token
        .as_ref()
        .ok_or(ApiError::InvalidSignature)?;
    if !same_secret(token.as_bytes(), expected.expose_secret().as_bytes()) {
        tracing::info!("Inbound email refused: wrong path token.");
        return Err(ApiError::InvalidSignature);
    }
    let raw = read_bytes(&headers, body, settings.max_bytes).await?;
    accept(state, raw).await
}

/// Compares two secrets in time that depends on neither (both are hashed first).
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The dedupe key: SHA-256 of the Message-ID (exactly as sent: ids are
/// case-sensitive), or of the raw bytes when there is none.
fn inbound_id(email: &InboundEmail, raw: &[u8]) -> String {
    match &email.message_id {
        Some(id) => message_id_key(id),
        None => hex(&Sha256::digest(raw)),
    }
}

/// The `inbound_emails` id of the email whose `Message-ID` (without angle brackets) is
/// `message_id`: how the console finds an inbound email by the id an operator pastes.
pub(crate) fn message_id_key(message_id: &str) -> String {
    hex(&Sha256::digest(
        format!("message-id:{message_id}").as_bytes(),
    ))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses on the blocking pool, matches, records, answers.
async fn accept(state: AppState, raw: Vec<u8>) -> Result<Response, ApiError> {
    let settings = Arc::clone(&state.inbound);
    // Parsing and hashing up to `max_bytes` is CPU work: on the blocking pool.
    let (raw, parsed) = tokio::task::spawn_blocking(move || {
        let parsed = channels::email::parse_inbound(&raw).map(|email| {
            let id = inbound_id(&email, &raw);
            (email, id)
        });
        (raw, parsed)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("parsing an inbound email failed: {e}")))?;
    let (email, id) =
        parsed.map_err(|e| ApiError::invalid("invalid_email", None, e.to_string()))?;
    if state.store.inbound_email(&id).await?.is_some() {
        return Ok(duplicate(&id));
    }

    let (inbound_state, matched, reason) = if let Some(auto) = email.auto_reply {
        (InboundState::IgnoredAutoReply, None, Some(auto.as_str()))
    } else {
        let tokens = match &settings.reply_to {
            Some(template) => reply_tokens(
                template,
                email
                    .to
                    .iter()
                    .chain(&email.cc)
                    .chain(&email.delivered_to)
                    .map(String::as_str),
            ),
            None => Vec::new(),
        };
        let message_ids: Vec<String> = email
            .in_reply_to
            .iter()
            .chain(email.references.iter().rev())
            .cloned()
            .collect();
        let case_ids: Vec<String> = email
            .thread_tokens
            .iter()
            .filter_map(|t| match t {
                ThreadToken::Ref { case_id } => Some(case_id.clone()),
                ThreadToken::Lightning(_) => None,
            })
            .collect();
        let from = email.from.as_ref().map(channels::EmailAddress::as_str);
        let keys = MatchKeys {
            reply_tokens: &tokens,
            message_ids: &message_ids,
            case_ids: &case_ids,
            open_case_from: from.filter(|_| settings.append_new_conversations),
        };
        match state.store.match_inbound(&keys).await? {
            Some(found) => (InboundState::Appended, Some(found), None),
            None => (InboundState::Unmatched, None, Some("no session matched")),
        }
    };

    let session_id = matched.as_ref().map(|(s, _)| s.as_str());
    let note_id = session_id.map(|s| case_note_id(s, &format!("inbound:{id}")));
    let (kind, body) = match (settings.append_as, &note_id) {
        (_, None) => (NOTE_KIND_COMMENT, None),
        (AppendAs::Comment, Some(_)) => (NOTE_KIND_COMMENT, Some(note::note_body(&email))),
        (AppendAs::EmailMessage, Some(note_id)) => {
            let record = email_message::InboundEmailRecord::from_email(&email, note_id);
            let json = serde_json::to_string(&record)
                .map_err(|e| ApiError::Internal(format!("an email record: {e}")))?;
            (NOTE_KIND_EMAIL_MESSAGE, Some(json))
        }
    };
    let size = raw.len() as i64;
    let raw_kept = if inbound_state == InboundState::Unmatched {
        let text = tokio::task::spawn_blocking(move || raw_text(&raw))
            .await
            .map_err(|e| ApiError::Internal(format!("keeping an inbound email failed: {e}")))?;
        Some(text)
    } else {
        None
    };
    let from = email.from.as_ref().map(|a| a.as_str().to_owned());
    let recorded = state
        .store
        .record_inbound(NewInbound {
            id: &id,
            state: inbound_state,
            session_id,
            matched_by: matched.as_ref().map(|(_, by)| *by),
            message_id: email.message_id.as_deref(),
            from_address: from.as_deref(),
            subject: email.subject.as_deref(),
            size,
            reason,
            raw: raw_kept,
            note: match (&note_id, &body) {
                (Some(note_id), Some(body)) => Some((note_id.as_str(), kind, body.as_str())),
                _ => None,
            },
        })
        .await?;
    if !recorded {
        return Ok(duplicate(&id));
    }
    if note_id.is_some() {
        state.wake.notify_one();
    }
    tracing::info!(
        inbound_email_id = %id,
        state = inbound_state.as_str(),
        matched_by = matched.as_ref().map_or("none", |(_, by)| MatchedBy::as_str(*by)),
        session_id = session_id.unwrap_or(""),
        "Inbound email recorded."
    );
    let status = match inbound_state {
        InboundState::Appended => "appended",
        InboundState::Unmatched => "unmatched",
        InboundState::IgnoredAutoReply => "ignored",
    };
    let mut answer = json!({"status": status, "id": id});
    if let Some(session_id) = session_id {
        answer["session_id"] = json!(session_id);
    }
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

fn duplicate(id: &str) -> Response {
    (
        StatusCode::OK,
        Json(json!({"status": "duplicate", "id": id})),
    )
        .into_response()
}

/// The raw message as text for storage: UTF-8 as sent; other bytes (an 8-bit
/// legacy charset) and NUL become U+FFFD.
fn raw_text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).replace('\0', "\u{fffd}")
}

/// One inbound email as operators see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InboundEmailView {
    /// SHA-256 (hex) of the Message-ID, or of the raw message when it has none.
    pub id: String,
    /// `appended`, `unmatched` or `ignored_auto_reply`.
    pub state: String,
    pub session_id: Option<String>,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    /// Bytes.
    pub size: i64,
    pub reason: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub received_at: String,
    /// Only in `GET /v1/inbound-emails/{id}`, and only for unmatched emails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

fn ms(t: i64) -> String {
    Utc.timestamp_millis_opt(t)
        .single()
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl From<InboundSummary> for InboundEmailView {
    fn from(e: InboundSummary) -> Self {
        Self {
            id: e.id,
            state: e.state,
            session_id: e.session_id,
            message_id: e.message_id,
            from: e.from_address,
            subject: e.subject,
            size: e.size,
            reason: e.reason,
            received_at: ms(e.received_at),
            raw: None,
        }
    }
}

/// Inbound emails newest first: `(received_at ms, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InboundKey {
    received_at: i64,
    id: String,
}

impl CursorKey for InboundKey {
    const TAG: &'static str = "inbound-emails";
    fn encode(&self) -> String {
        format!("{}|{}", self.received_at, self.id)
    }
    fn decode(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('|')?;
        let well_formed = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then_some(())?;
        Some(Self {
            received_at: at.parse().ok()?,
            id: id.to_owned(),
        })
    }
}

/// A page of inbound emails, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundEmailPage {
    pub inbound_emails: Vec<InboundEmailView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// What became of an inbound email (`InboundState::ALL`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum InboundEmailListState {
    Appended,
    Unmatched,
    IgnoredAutoReply,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// What became of the email (default `unmatched`).
    #[param(inline, value_type = Option<InboundEmailListState>)]
    state: Option<String>,
    /// Emails per page, 1–500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// Customers' emails in one state (default `unmatched`), newest first, without their raw
/// text.
#[utoipa::path(
    get,
    path = "/v1/inbound-emails",
    operation_id = "list_inbound_emails",
    tag = "inbound",
    security(("bearer" = ["read"])),
    params(ListQuery),
    responses(
        (status = 200, description = "`{\"inbound_emails\": […], \"next_cursor\": …}`, newest first.", body = InboundEmailPage),
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
) -> Result<Json<InboundEmailPage>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let wanted = query.state.unwrap_or_else(|| "unmatched".into());
    if !InboundState::ALL.contains(&wanted.as_str()) {
        return Err(ApiError::invalid(
            "invalid_state",
            Some("state".into()),
            format!("state must be one of {}", InboundState::ALL.join(", ")),
        ));
    }
    let page = page::request::<InboundKey>(query.limit.as_deref(), query.cursor.as_deref())?;
    let rows = state
        .store
        .inbound_emails_page(
            &wanted,
            page.after.as_ref().map(|k| (k.received_at, k.id.as_str())),
            page.limit + 1,
        )
        .await?;
    let (rows, next_cursor) = page::finish(rows, page.limit, |e| InboundKey {
        received_at: e.received_at,
        id: e.id.clone(),
    });
    let emails: Vec<InboundEmailView> = rows.into_iter().map(Into::into).collect();
    Ok(Json(InboundEmailPage {
        inbound_emails: emails,
        next_cursor,
    }))
}

/// One inbound email, with its raw message when it was kept (unmatched ones).
#[utoipa::path(
    get,
    path = "/v1/inbound-emails/{id}",
    operation_id = "get_inbound_email",
    tag = "inbound",
    security(("bearer" = ["read"])),
    params(("id" = String, Path, description = "The inbound email's id.")),
    responses(
        (status = 200, description = "The email.", body = InboundEmailView),
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
) -> Result<Json<InboundEmailView>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let email = state
        .store
        .inbound_email(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(InboundEmailView {
        id: email.id,
        state: email.state,
        session_id: email.session_id,
        message_id: email.message_id,
        from: email.from_address,
        subject: email.subject,
        size: email.size,
        reason: email.reason,
        received_at: ms(email.received_at),
        raw: email.raw,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented states are exactly the ones the store lists by.
    #[test]
    fn documented_states_are_the_stored_ones() {
        let schema =
            serde_json::to_value(<InboundEmailListState as utoipa::PartialSchema>::schema())
                .unwrap();
        let documented: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(documented, InboundState::ALL);
    }

    #[test]
    fn ids_follow_the_message_id_exactly() {
        let parse = |id: &str| {
            channels::email::parse_inbound(format!("Message-ID: <{id}>\r\n\r\nx").as_bytes())
                .unwrap()
        };
        let upper = inbound_id(&parse("A@x"), b"1");
        assert_eq!(
            upper,
            inbound_id(&parse("A@x"), b"2"),
            "the raw bytes do not matter"
        );
        assert_ne!(
            upper,
            inbound_id(&parse("a@x"), b"1"),
            "ids are case-sensitive"
        );
        assert_eq!(upper.len(), 64);
        let no_id = channels::email::parse_inbound(b"From: a@example.com\r\n\r\nx").unwrap();
        assert_ne!(inbound_id(&no_id, b"one"), inbound_id(&no_id, b"two"));
    }

    #[test]
    fn path_tokens_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"abc"));
    }

    #[test]
    fn raw_text_keeps_utf8_and_replaces_nul_and_bad_bytes() {
        assert_eq!(raw_text(b"Gr\xc3\xbc\xc3\x9fe"), "Grüße");
        assert_eq!(raw_text(b"a\0b\xffc"), "a\u{fffd}b\u{fffd}c");
    }
}
