//! Provider webhooks: `POST /channels/sms/inbound|status`, `GET|POST /channels/whatsapp/inbound`,
//! `POST /channels/whatsapp/status` and `POST /v1/channels/{name}/inbound` (bridges). The
//! channel adapter verifies the request (over the URL the provider called, rebuilt from
//! `public_url`) and parses it; each customer message is recorded with its effects in one
//! transaction, each status report applied to its delivery; then the adapter's
//! acknowledgement is answered. Nothing is written for a request that does not verify.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use channels::{
    Channel, ChannelError, ChannelKind, InboundEvent, InboundMessage, InboundRequest, StatusUpdate,
};

use super::prepare::prepare;
use crate::error::{ApiError, Problem};
use crate::http::AppState;
use crate::http::body::read_bytes;
use crate::http::extract::Path;
use crate::http::openapi::{
    BadRequest, InvalidSignature, NotFound, PayloadTooLarge, RequestTimeout, ServerError,
};
use crate::http::schemas::InboundAck;
use crate::store::{Deliverer, InboundOutcome, NewInboundMessage};

/// The largest provider webhook body read (413 beyond, before anything is parsed).
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

/// The built-in providers' webhooks (outside `/v1`, not in the OpenAPI document: their shapes
/// are Twilio's and Meta's) and bridges' (`routes!`, documented).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/channels/sms/inbound", post(sms))
        .route("/channels/sms/status", post(sms))
        .route(
            "/channels/whatsapp/inbound",
            post(whatsapp).get(whatsapp_handshake),
        )
        .route("/channels/whatsapp/status", post(whatsapp))
        .routes(routes!(bridge))
}

async fn sms(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let channel = built_in(&state, &ChannelKind::Sms)?;
    receive(state, channel, &uri, headers, body).await
}

async fn whatsapp(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let channel = built_in(&state, &ChannelKind::Whatsapp)?;
    receive(state, channel, &uri, headers, body).await
}

/// A bridge channel's inbound messages, signed as a Standard Webhook with the bridge's
/// `whsec_…` secret (`webhook-id`, `webhook-timestamp`, `webhook-signature`). Any name that is
/// not an enabled bridge taking inbound webhooks (a built-in channel, an unknown or disabled
/// name) is the same 404.
#[utoipa::path(
    post,
    path = "/v1/channels/{name}/inbound",
    operation_id = "bridge_inbound",
    tag = "inbound",
    params(
        ("name" = String, Path, description = "The bridge channel's name (`[channels.<name>]`)."),
        ("webhook-id" = String, Header, description = "The message id (dedupes retries)."),
        ("webhook-timestamp" = String, Header, description = "Unix seconds; refused when too far from now."),
        ("webhook-signature" = String, Header, description = "`v1,<base64 HMAC-SHA256>` over `id.timestamp.body`."),
    ),
    request_body(content = Object, content_type = "application/json", description = "The bridge's messages (`docs/channels/inbound.md`)."),
    responses(
        (status = 200, description = "Verified and recorded (or already recorded).", body = InboundAck),
        (status = 400, response = BadRequest),
        (status = 401, response = InvalidSignature),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 500, response = ServerError),
        (status = 503, description = "`public_url_not_configured` or `inbound_not_configured` (`field` names the setting), or the gateway is overloaded or its database unavailable.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying (overloaded, database unavailable)."))),
    )
)]
async fn bridge(
    State(state): State<AppState>,
    Path(name): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let kind = ChannelKind::plugin(&name).map_err(|_| ApiError::NotFound)?;
    let channel = state
        .channels
        .get(&kind)
        .filter(|c| c.capabilities().inbound)
        .ok_or(ApiError::NotFound)?;
    receive(state, channel, &uri, headers, body).await
}

/// The WhatsApp subscription handshake: the challenge as text when the query proves the
/// provider knows our verify token, else 403.
async fn whatsapp_handshake(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let channel = built_in(&state, &ChannelKind::Whatsapp)?;
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .take(32)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    match channel.handshake(&query) {
        Ok(challenge) => {
            tracing::info!(channel = "whatsapp", "Webhook handshake answered.");
            let mut response = (StatusCode::OK, challenge).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            Ok(response)
        }
        Err(ChannelError::InboundNotSupported { .. }) => {
            Err(not_configured(&ChannelKind::Whatsapp))
        }
        Err(e) => {
            tracing::info!(
                channel = "whatsapp",
                code = e.code(),
                "Webhook handshake refused."
            );
            Err(ApiError::HandshakeRefused)
        }
    }
}

/// An enabled built-in channel that takes inbound webhooks (404 when it is switched off, 503
/// naming its settings when it is not set up for inbound).
fn built_in(state: &AppState, kind: &ChannelKind) -> Result<Arc<dyn Channel>, ApiError> {
    let channel = state.channels.get(kind).ok_or(ApiError::NotFound)?;
    if !channel.capabilities().inbound {
        return Err(not_configured(kind));
    }
    Ok(channel)
}

fn not_configured(kind: &ChannelKind) -> ApiError {
    let what = match kind {
        ChannelKind::Sms => {
            "account_sid and auth_token (Twilio signs its webhooks with the auth token)"
        }
        ChannelKind::Whatsapp => {
            "app_secret (X-Hub-Signature-256) and verify_token (the subscription handshake)"
        }
        _ => "the channel's webhook secret",
    };
    ApiError::InboundNotConfigured {
        setting: format!("channels.{kind}"),
        detail: format!(
            "the {kind} channel is not set up to receive provider webhooks; configure {what} in [channels.{kind}]"
        ),
    }
}

/// Verifies, parses, records, acknowledges.
async fn receive(
    state: AppState,
    channel: Arc<dyn Channel>,
    uri: &axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let kind = channel.kind();
    let public_url = state
        .config
        .public_url
        .as_deref()
        .map(|u| u.trim_end_matches('/'))
        .filter(|u| !u.is_empty())
        .ok_or(ApiError::PublicUrlNotConfigured)?;
    let raw = read_bytes(&headers, body, MAX_WEBHOOK_BYTES).await?;
    let url = match uri.query() {
        Some(query) => format!("{public_url}{}?{query}", uri.path()),
        None => format!("{public_url}{}", uri.path()),
    };
    let request = InboundRequest {
        url,
        headers: headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect(),
        body: raw,
        received_at: Utc::now(),
    };
    let events = channel
        .inbound(&request)
        .await
        .map_err(|e| refused(&kind, e))?;
    let scope = ChannelScope::new(&state, &kind);
    let (mut messages, mut statuses, mut duplicates) = (0usize, 0usize, 0usize);
    for (index, event) in events.iter().enumerate() {
        match event {
            InboundEvent::Message(message) => {
                let outcome = record(
                    &state,
                    &*channel,
                    &scope,
                    index,
                    message,
                    request.received_at,
                )
                .await?;
                match outcome {
                    InboundOutcome::Duplicate => duplicates += 1,
                    InboundOutcome::Recorded { .. } => messages += 1,
                }
            }
            InboundEvent::Status(update) => {
                if apply_status(&state, &scope, update).await? {
                    statuses += 1;
                }
            }
        }
    }
    if messages > 0 || statuses > 0 {
        state.wake.notify_one();
    }
    tracing::info!(
        channel = %kind,
        events = events.len(),
        messages,
        duplicates,
        statuses,
        "Provider webhook recorded."
    );
    let ack = channel.inbound_ack();
    let mut response = (StatusCode::OK, ack.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ack.content_type),
    );
    Ok(response)
}

/// What an adapter's refusal answers: 401 for anything about the signature (which check
/// failed is logged, not said), 400 naming the field for a body that verified but does not
/// parse.
fn refused(kind: &ChannelKind, e: ChannelError) -> ApiError {
    match e {
        ChannelError::WebhookNotVerified(reason) => {
            tracing::info!(channel = %kind, reason = %reason, "Provider webhook refused: not verified.");
            ApiError::InvalidSignature
        }
        ChannelError::InboundNotSupported { .. } => not_configured(kind),
        other => {
            tracing::info!(channel = %kind, code = other.code(), "Provider webhook refused: invalid body.");
            ApiError::invalid(other.code(), other.field(), other.to_string())
        }
    }
}

/// The channels a webhook of `kind` speaks for: itself and those that deliver through it
/// (voice through SMS), and where its answers go.
struct ChannelScope {
    channels: Vec<String>,
    deliverer: Option<(String, channels::Capabilities)>,
}

impl ChannelScope {
    fn new(state: &AppState, kind: &ChannelKind) -> ChannelScope {
        let mut channels = vec![kind.to_string()];
        for name in state.channels.names() {
            let Some(other) = state
                .channels
                .resolve(name)
                .ok()
                .and_then(|k| state.channels.get(&k))
            else {
                continue;
            };
            if other.kind() != *kind && other.delivers_through().as_ref() == Some(kind) {
                channels.push(name.to_string());
            }
        }
        let deliverer = state
            .channels
            .deliverer(kind)
            .map(|d| (d.kind().to_string(), d.capabilities()));
        ChannelScope {
            channels,
            deliverer,
        }
    }
}

async fn record(
    state: &AppState,
    channel: &dyn Channel,
    scope: &ChannelScope,
    index: usize,
    message: &InboundMessage,
    received_at: chrono::DateTime<Utc>,
) -> Result<InboundOutcome, ApiError> {
    let kind = channel.kind();
    let name = kind.to_string();
    let prepared = prepare(&name, index, message, received_at)?;
    let keyword = prepared
        .from
        .as_ref()
        .and_then(|_| channel.keyword(&prepared.text));
    let outcome = state
        .store
        .record_inbound_message(&NewInboundMessage {
            id: &prepared.id,
            channel: &name,
            provider_message_id: &prepared.provider_message_id,
            named_session: prepared.named_session.as_deref(),
            from: prepared.from.as_deref(),
            to: prepared.to.as_deref(),
            text: &prepared.text,
            media: prepared.media_json.clone(),
            at_ms: prepared.at_ms,
            session_channels: &scope.channels,
            match_bridge_address: matches!(kind, ChannelKind::Plugin(_)),
            keyword,
            deliverer: scope
                .deliverer
                .as_ref()
                .map(|(channel, capabilities)| Deliverer {
                    channel,
                    capabilities: capabilities.clone(),
                }),
            unknown_sender_reply: channel.unknown_sender_reply(),
            rep_text: &prepared.rep_text,
            note_body: &prepared.note_body,
            miaw: &state.config.miaw,
            max_attempts: state.config.worker.max_attempts,
        })
        .await?;
    match &outcome {
        InboundOutcome::Duplicate => {
            tracing::info!(channel = %name, inbound_message_id = %prepared.id, "Inbound message already recorded.");
        }
        InboundOutcome::Recorded {
            state: recorded,
            session_id,
            answers,
        } => {
            tracing::info!(
                channel = %name,
                inbound_message_id = %prepared.id,
                state = recorded.as_str(),
                session_id = session_id.as_deref().unwrap_or(""),
                answers,
                "Inbound message recorded."
            );
        }
    }
    Ok(outcome)
}

/// Applies a status report to the delivery it is about, on any of the channels the webhook
/// speaks for. `true` when a delivery changed.
async fn apply_status(
    state: &AppState,
    scope: &ChannelScope,
    update: &StatusUpdate,
) -> Result<bool, ApiError> {
    let mut names: Vec<&str> = scope.channels.iter().map(String::as_str).collect();
    if let Some((deliverer, _)) = &scope.deliverer
        && !names.contains(&deliverer.as_str())
    {
        names.push(deliverer);
    }
    for name in names {
        if state.store.apply_provider_status(name, update).await? {
            return Ok(true);
        }
    }
    Ok(false)
}
