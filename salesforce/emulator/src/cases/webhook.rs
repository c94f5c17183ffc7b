//! The case webhook: what Handoff's Apex (`deploy/salesforce/`) does after a rep's public
//! CaseComment or outbound EmailMessage commits. One sender task posts the events in commit order
//! (Salesforce runs a Queueable after the trigger); a failed callout is recorded and never retried,
//! as Salesforce never retries a callout.
//!
//! Wire format (issue 8 contract §1): a camelCase JSON event; with `hmac_secret`,
//! `X-Handoff-Timestamp: <unix seconds>` and `X-Handoff-Signature: sha256=<lowercase hex of
//! HMAC-SHA256(secret, timestamp + "." + body)>`; with `jwt`, `Authorization: Bearer <JWT>`
//! (RS256, `iss`, `aud`, `iat`, `exp` = `iat` + 120 s) signed with the emulator's own key.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use hmac::{Hmac, KeyInit, Mac};
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::DELIVERY_LOG_LIMIT;
use crate::config::CaseWebhookConfig;
use crate::miaw::MiawError;
use crate::schema::Record;
use crate::server::{AppState, lock};

/// Header carrying the signing time (unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Handoff-Timestamp";
/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Handoff-Signature";
/// Lifetime of the webhook JWT (a Named Credential's default `exp` is two minutes).
pub const JWT_TTL_SECS: i64 = 120;

/// The two kinds of rep output that reach the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    CaseComment,
    EmailMessage,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::CaseComment => "case_comment.created",
            EventType::EmailMessage => "email_message.sent",
        }
    }
}

/// The rep-reply event, field for field as the Apex writes it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplyEvent<'a> {
    event_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    org_id: String,
    case_id: &'a str,
    case_number: &'a str,
    occurred_at: String,
    author: Author<'a>,
    body: Body<'a>,
    is_public: bool,
}

#[derive(Debug, Serialize)]
struct Author<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct Body<'a> {
    text: &'a str,
    html: Option<&'a str>,
}

/// One event waiting for the sender task: the exact bytes it will post.
pub(crate) struct Outgoing {
    event_id: String,
    kind: &'static str,
    body: String,
}

/// One attempt to post an event, as `GET /__emulator/case-webhook/deliveries` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseWebhookDelivery {
    /// The CaseComment or EmailMessage id (the event's `eventId`).
    pub event_id: String,
    /// `case_comment.created` or `email_message.sent`.
    pub event_type: String,
    /// Where it was posted (absent when no webhook was configured any more).
    pub url: Option<String>,
    /// When the attempt ended (RFC 3339, UTC).
    pub attempted_at: String,
    /// The HTTP status the webhook answered, if it answered.
    pub status: Option<u16>,
    /// Why it failed: transport error, timeout, non-2xx, queue full.
    pub error: Option<String>,
}

/// `occurredAt`: the record's CreatedDate as ISO 8601 UTC with milliseconds and `Z`.
fn occurred_at(record: &Record) -> String {
    record
        .get("CreatedDate")
        .and_then(Value::as_str)
        .and_then(crate::dml::parse_datetime)
        .unwrap_or_else(Utc::now)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn str_of<'a>(record: &'a Record, field: &str) -> &'a str {
    record
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The event JSON for a committed record (the exact body that is posted and signed).
pub(crate) fn event_body(
    org_id15: &str,
    kind: EventType,
    case: &Record,
    record: &Record,
    author_name: &str,
) -> String {
    let (text, html, is_public) = match kind {
        EventType::CaseComment => (
            str_of(record, "CommentBody"),
            None,
            record.get("IsPublished").and_then(Value::as_bool) == Some(true),
        ),
        EventType::EmailMessage => (
            str_of(record, "TextBody"),
            record.get("HtmlBody").and_then(Value::as_str),
            true,
        ),
    };
    let event = ReplyEvent {
        event_id: str_of(record, "Id"),
        kind: kind.as_str(),
        org_id: crate::ids::org_id18(org_id15),
        case_id: str_of(case, "Id"),
        case_number: str_of(case, "CaseNumber"),
        occurred_at: occurred_at(record),
        author: Author {
            id: str_of(record, "CreatedById"),
            name: author_name,
        },
        body: Body { text, html },
        is_public,
    };
    serde_json::to_string(&event).expect("the event is plain JSON")
}

/// Queues the event for a committed record, when a webhook is configured. Never blocks: a full
/// queue is recorded as a failed delivery.
pub(crate) fn fire(
    state: &AppState,
    kind: EventType,
    case: &Record,
    record: &Record,
    author_name: &str,
) {
    if lock(&state.cases.webhook).is_none() {
        return;
    }
    let out = Outgoing {
        event_id: str_of(record, "Id").to_string(),
        kind: kind.as_str(),
        body: event_body(&state.config.org_id, kind, case, record, author_name),
    };
    if let Err(e) = state.cases.queue.try_send(out) {
        let out = match e {
            mpsc::error::TrySendError::Full(o) | mpsc::error::TrySendError::Closed(o) => o,
        };
        tracing::warn!(event_id = %out.event_id, "case webhook queue full; event dropped");
        let url = lock(&state.cases.webhook).as_ref().map(|w| w.url.clone());
        log_attempt(
            state,
            &out,
            url,
            None,
            Some("queue full (the emulator's sender is behind)".into()),
        );
    }
}

fn log_attempt(
    state: &AppState,
    out: &Outgoing,
    url: Option<String>,
    status: Option<u16>,
    error: Option<String>,
) {
    let mut log = lock(&state.cases.deliveries);
    if log.len() == DELIVERY_LOG_LIMIT {
        log.pop_front();
    }
    log.push_back(CaseWebhookDelivery {
        event_id: out.event_id.clone(),
        event_type: out.kind.to_string(),
        url,
        attempted_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        status,
        error,
    });
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, timestamp + "." + body)>`.
pub(crate) fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// The emulator's JWT signing key and its self-signed certificate.
pub(crate) struct Signer {
    key: EncodingKey,
    pub(crate) certificate_pem: String,
}

fn generate_signer() -> Result<Signer, String> {
    let fail = |e: rcgen::Error| format!("cannot make the case webhook's signing key: {e}");
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Handoff emulator case webhook");
    let cert = params.self_signed(&key_pair).map_err(fail)?;
    let key = EncodingKey::from_rsa_pem(key_pair.serialize_pem().as_bytes())
        .map_err(|e| format!("cannot load the case webhook's signing key: {e}"))?;
    Ok(Signer {
        key,
        certificate_pem: cert.pem(),
    })
}

/// The signer, made on first use (RSA key generation: call off the async runtime).
pub(crate) fn signer(state: &AppState) -> Result<&Signer, String> {
    state
        .cases
        .signer
        .get_or_init(generate_signer)
        .as_ref()
        .map_err(Clone::clone)
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// The sender task: posts queued events one at a time until shutdown.
pub(crate) async fn run(
    state: Arc<AppState>,
    mut rx: mpsc::Receiver<Outgoing>,
    cancel: CancellationToken,
) {
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "case webhook: cannot build the HTTP client");
            return;
        }
    };
    loop {
        let out = tokio::select! {
            _ = cancel.cancelled() => break,
            next = rx.recv() => match next {
                Some(out) => out,
                None => break,
            },
        };
        deliver(&state, &http, &out).await;
    }
}

async fn deliver(state: &Arc<AppState>, http: &reqwest::Client, out: &Outgoing) {
    let Some(hook) = lock(&state.cases.webhook).clone() else {
        log_attempt(
            state,
            out,
            None,
            None,
            Some("no case webhook configured".into()),
        );
        return;
    };
    let now = Utc::now().timestamp();
    let mut req = http
        .post(&hook.url)
        .timeout(Duration::from_secs(hook.timeout_secs))
        .header(http::header::CONTENT_TYPE, "application/json")
        // What an Apex callout sends (API version of the shipped classes).
        .header(http::header::USER_AGENT, "SFDC-Callout/66.0")
        .body(out.body.clone());
    if let Some(secret) = &hook.hmac_secret {
        req = req
            .header(TIMESTAMP_HEADER, now.to_string())
            .header(SIGNATURE_HEADER, signature(secret, now, &out.body));
    }
    if let Some(jwt) = &hook.jwt {
        let state2 = state.clone();
        let claims = Claims {
            iss: &jwt.issuer,
            aud: &jwt.audience,
            iat: now,
            exp: now + JWT_TTL_SECS,
        };
        let token = match tokio::task::spawn_blocking(move || signer(&state2).map(|_| ())).await {
            Ok(Ok(())) => signer(state).and_then(|s| {
                jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &s.key)
                    .map_err(|e| format!("cannot sign the JWT: {e}"))
            }),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(format!("key generation failed: {e}")),
        };
        match token {
            Ok(t) => req = req.bearer_auth(t),
            Err(e) => {
                log_attempt(state, out, Some(hook.url), None, Some(e));
                return;
            }
        }
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            // Read (and drop) the answer so the connection can be reused.
            let _ = resp.bytes().await;
            let error = (!status.is_success()).then(|| format!("HTTP {status}"));
            tracing::info!(event_id = %out.event_id, status = status.as_u16(), "case webhook posted");
            log_attempt(state, out, Some(hook.url), Some(status.as_u16()), error);
        }
        Err(e) => {
            let why = if e.is_timeout() {
                format!("timed out after {} s", hook.timeout_secs)
            } else {
                format!("callout failed: {}", e.without_url())
            };
            tracing::warn!(event_id = %out.event_id, error = %why, "case webhook failed (not retried)");
            log_attempt(state, out, Some(hook.url), None, Some(why));
        }
    }
}

/// The webhook config as shown (the secret is never echoed).
fn shown(hook: Option<&CaseWebhookConfig>) -> Value {
    match hook {
        None => Value::Null,
        Some(h) => json!({
            "url": h.url,
            "hmac_secret_set": h.hmac_secret.is_some(),
            "jwt": h.jwt,
            "timeout_secs": h.timeout_secs,
        }),
    }
}

/// `GET /__emulator/case-webhook`: the webhook in force (`null` when none).
pub(crate) async fn get_config(State(state): State<Arc<AppState>>) -> Response {
    Json(shown(lock(&state.cases.webhook).as_ref())).into_response()
}

/// `PUT /__emulator/case-webhook` with a `CaseWebhookConfig`, or `null` to stop posting.
pub(crate) async fn put_config(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let hook: Option<CaseWebhookConfig> = match serde_json::from_slice(&body) {
        Ok(h) => h,
        Err(e) => {
            return MiawError::bad_request(format!(
                r#"Send {{"url": "…", "hmac_secret": "…", "jwt": {{"issuer": "…", "audience": "…"}}, "timeout_secs": 10}} or null: {e}"#
            ))
            .into_response();
        }
    };
    if let Some(Err(e)) = hook.as_ref().map(CaseWebhookConfig::validate) {
        return MiawError::bad_request(e).into_response();
    }
    tracing::info!(configured = hook.is_some(), "case webhook replaced");
    let answer = shown(hook.as_ref());
    *lock(&state.cases.webhook) = hook;
    Json(answer).into_response()
}

/// `GET /__emulator/case-webhook/certificate`: the PEM certificate that verifies the webhook's
/// JWTs (what an admin downloads from Certificate and Key Management).
pub(crate) async fn certificate(State(state): State<Arc<AppState>>) -> Response {
    let made =
        tokio::task::spawn_blocking(move || signer(&state).map(|s| s.certificate_pem.clone()))
            .await;
    match made {
        Ok(Ok(pem)) => (
            [(http::header::CONTENT_TYPE, "application/x-pem-file")],
            pem,
        )
            .into_response(),
        Ok(Err(e)) => MiawError::new(StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
        Err(e) => MiawError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /__emulator/case-webhook/deliveries`: the last attempts, oldest first.
pub(crate) async fn deliveries(State(state): State<Arc<AppState>>) -> Response {
    let list: Vec<CaseWebhookDelivery> = lock(&state.cases.deliveries).iter().cloned().collect();
    Json(json!({"deliveries": list})).into_response()
}
