//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: authenticate, inject faults,
//! validate like Twilio, store the message, answer 201 and start its status callbacks.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode, Uri};

use crate::clock::window_open;
use crate::fault::Injected;
use crate::server::lock;
use crate::twilio::address::{self, Channel};
use crate::twilio::errors::TwilioError;
use crate::twilio::form::Form;
use crate::twilio::state::{Inner, Message, TwilioState};
use crate::twilio::{auth, callbacks, segments};

/// Longest `Body` Twilio accepts, in characters.
pub const MAX_BODY_CHARS: usize = 1600;
/// Most `MediaUrl` values per message.
pub const MAX_MEDIA: usize = 10;
/// Longest `StatusCallback` URL.
const MAX_CALLBACK_URL: usize = 4000;

/// A send request that passed validation.
#[derive(Debug)]
struct Accepted {
    to: String,
    from: String,
    from_shown: bool,
    service: Option<String>,
    body: String,
    media_urls: Vec<String>,
    content_sid: Option<String>,
    content_variables: Option<String>,
    status_callback: Option<String>,
    num_segments: u32,
}

/// The create handler.
pub(crate) async fn create(
    State(state): State<Arc<TwilioState>>,
    Path(account): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !auth::authenticated(&state, &headers) {
        return TwilioError::authenticate().into_response();
    }
    if account != state.account_sid {
        return TwilioError::not_found(uri.path()).into_response();
    }
    let injected = lock(&state.faults).take();
    match injected {
        Injected::None => {}
        Injected::Delay(d) => tokio::time::sleep(d).await,
        Injected::RateLimit { retry_after_secs } => {
            tracing::info!("injected fault: 429 on send");
            return TwilioError::too_many_requests(retry_after_secs).into_response();
        }
        Injected::ServerError { status } => {
            tracing::info!(status, "injected fault: server error on send");
            return TwilioError::server_error(status).into_response();
        }
    }
    let form = Form::parse(&body);
    let now = state.clock.now();
    let (message, resource) = {
        let mut inner = lock(&state.inner);
        let accepted = match validate(&inner, &form, now) {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(code = e.code, "send refused");
                return e.into_response();
            }
        };
        let wall = Utc::now();
        let sid = crate::ids::twilio_sid(if accepted.media_urls.is_empty() {
            "SM"
        } else {
            "MM"
        });
        let message = Message {
            sid,
            inbound: false,
            from: accepted.from,
            from_shown: accepted.from_shown,
            to: accepted.to,
            body: accepted.body,
            status: "queued".into(),
            error_code: None,
            messaging_service_sid: accepted.service,
            media_urls: accepted.media_urls,
            num_segments: accepted.num_segments,
            status_callback: accepted.status_callback,
            content_sid: accepted.content_sid,
            content_variables: accepted.content_variables,
            date_created: wall,
            date_updated: wall,
            date_sent: None,
        };
        let resource = message.resource(&state.account_sid);
        inner.push_message(message.clone());
        (message, resource)
    };
    tracing::info!(sid = %message.sid, segments = message.num_segments, "message queued");
    callbacks::schedule(&state, &message);
    (StatusCode::CREATED, Json(resource)).into_response()
}

fn validate(inner: &Inner, form: &Form, now: DateTime<Utc>) -> Result<Accepted, TwilioError> {
    let to = form
        .get("To")
        .ok_or_else(|| TwilioError::bad_request(21604, "A 'To' phone number is required."))?;
    let (to_channel, _) = address::parse(to).ok_or_else(|| {
        TwilioError::bad_request(
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        )
    })?;
    let service = form.get("MessagingServiceSid");
    let (from, from_shown) = match (form.get("From"), service) {
        (None, None) => {
            return Err(TwilioError::bad_request(
                21603,
                "A 'From' phone number is required.",
            ));
        }
        (Some(from), _) => {
            if !inner.owns_sender(from) {
                return Err(if address::channel_of(from) == Channel::Whatsapp {
                    TwilioError::bad_request(
                        63007,
                        "Twilio could not find a Channel with the specified From address",
                    )
                } else {
                    TwilioError::bad_request(
                        21606,
                        format!(
                            "The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."
                        ),
                    )
                });
            }
            (from.to_string(), true)
        }
        (None, Some(_)) => (String::new(), false),
    };
    if let Some(sid) = service
        && !inner.services.contains_key(sid)
    {
        return Err(TwilioError::bad_request(
            21705,
            format!("The Messaging Service Sid {sid} is invalid."),
        ));
    }
    let from = if from_shown {
        from
    } else {
        // A Messaging Service send: the first sender of the pool on the To's channel.
        let pool = service
            .and_then(|sid| inner.services.get(sid))
            .map(Vec::as_slice)
            .unwrap_or_default();
        pool.iter()
            .find(|a| address::channel_of(a) == to_channel)
            .cloned()
            .ok_or_else(channel_mismatch)?
    };
    if address::channel_of(&from) != to_channel {
        return Err(channel_mismatch());
    }
    let content_sid = form.get("ContentSid");
    let content_variables = form.get("ContentVariables");
    if content_variables.is_some() && content_sid.is_none() {
        return Err(TwilioError::bad_request(
            21654,
            "A ContentSid must be specified if ContentVariables are provided in the request.",
        ));
    }
    if let Some(sid) = content_sid
        && !(sid.starts_with("HX") && crate::hex::is_hex(&sid[2..], 32))
    {
        return Err(TwilioError::bad_request(21655, "The ContentSid is Invalid"));
    }
    if let Some(vars) = content_variables
        && !content_variables_ok(vars)
    {
        return Err(TwilioError::bad_request(
            21656,
            "The ContentVariables Parameter is invalid",
        ));
    }
    let media_urls = form.all("MediaUrl");
    if media_urls.len() > MAX_MEDIA {
        return Err(TwilioError::bad_request(
            21623,
            "Number of media files exceeds allowed limit",
        ));
    }
    if media_urls.iter().any(|u| !http_url(u)) {
        return Err(TwilioError::bad_request(21620, "Invalid media URL(s)"));
    }
    let body = form.get("Body").unwrap_or_default();
    if body.is_empty() && media_urls.is_empty() && content_sid.is_none() {
        return Err(if from_shown {
            TwilioError::bad_request(21602, "Message body is required.")
        } else {
            TwilioError::bad_request(
                21619,
                "A text message body, media URL or Content SID is required.",
            )
        });
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(TwilioError::bad_request(
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    let status_callback = form.get("StatusCallback");
    if let Some(url) = status_callback
        && !callback_url_ok(url)
    {
        return Err(TwilioError::bad_request(
            21609,
            "The StatusCallback URL is not a valid URL.",
        ));
    }
    if to_channel == Channel::Sms && opted_out(inner, &from, to, service) {
        return Err(TwilioError::bad_request(
            21610,
            "Attempt to send to unsubscribed recipient",
        ));
    }
    if to_channel == Channel::Whatsapp && content_sid.is_none() {
        let last = inner
            .last_inbound
            .get(&(from.clone(), to.to_string()))
            .copied();
        if !window_open(last, now) {
            return Err(TwilioError::bad_request(
                63016,
                "Failed to send freeform message because you are outside the allowed window. If you are using WhatsApp, please use a Message Template.",
            ));
        }
    }
    let num_segments = match to_channel {
        Channel::Sms => segments::num_segments(body),
        Channel::Whatsapp => 1,
    };
    Ok(Accepted {
        to: to.to_string(),
        from,
        from_shown,
        service: service.map(str::to_string),
        body: body.to_string(),
        media_urls: media_urls.into_iter().map(str::to_string).collect(),
        content_sid: content_sid.map(str::to_string),
        content_variables: content_variables.map(str::to_string),
        status_callback: status_callback.map(str::to_string),
        num_segments,
    })
}

fn channel_mismatch() -> TwilioError {
    TwilioError::bad_request(
        21910,
        "Invalid 'From' and 'To' pair. 'From' and 'To' should be of the same channel",
    )
}

/// Whether the customer opted out of the sender (or of any sender of the service's pool).
fn opted_out(inner: &Inner, from: &str, to: &str, service: Option<&str>) -> bool {
    let customer = to.to_string();
    if inner
        .opt_outs
        .contains(&(from.to_string(), customer.clone()))
    {
        return true;
    }
    service
        .and_then(|sid| inner.services.get(sid))
        .is_some_and(|pool| {
            pool.iter()
                .any(|a| inner.opt_outs.contains(&(a.clone(), customer.clone())))
        })
}

/// `ContentVariables`: a JSON object whose values are non-empty strings.
fn content_variables_ok(vars: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(vars) {
        Ok(serde_json::Value::Object(map)) => map
            .values()
            .all(|v| v.as_str().is_some_and(|s| !s.is_empty())),
        _ => false,
    }
}

/// An absolute `http`/`https` URL with a host.
fn http_url(value: &str) -> bool {
    url::Url::parse(value)
        .ok()
        .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// A `StatusCallback` Twilio accepts: an http(s) URL of at most 4,000 characters whose host
/// has no underscore.
fn callback_url_ok(value: &str) -> bool {
    value.len() <= MAX_CALLBACK_URL
        && url::Url::parse(value).ok().is_some_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.contains('_'))
        })
}
