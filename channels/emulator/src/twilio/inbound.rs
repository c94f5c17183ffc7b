//! A customer's message to one of our numbers: the form Twilio posts to the number's
//! webhook (SMS, or a `whatsapp:` sender's), signed for that URL; STOP/START bookkeeping and
//! the WhatsApp window.

use std::sync::Arc;

use chrono::Utc;
use serde::Deserialize;

use crate::poster::{CallbackKind, InboundResult};
use crate::server::lock;
use crate::twilio::address::{self, Channel};
use crate::twilio::callbacks::signed_form;
use crate::twilio::segments;
use crate::twilio::send::{MAX_BODY_CHARS, MAX_MEDIA};
use crate::twilio::state::{API_VERSION, CUSTOMER_LIMIT, Inner, Message, TwilioState};
use crate::{Error, Result};

/// Twilio's default opt-out keywords (SMS).
const OPT_OUT: [&str; 6] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
/// Twilio's default opt-in keywords (SMS).
const OPT_IN: [&str; 3] = ["START", "YES", "UNSTOP"];

/// Display name sent as `ProfileName` when none was set for the WaId.
pub const DEFAULT_PROFILE_NAME: &str = "Customer";

/// One media item of an inbound message (`MediaUrl{N}` / `MediaContentType{N}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundMedia {
    /// Where the media can be fetched.
    pub url: String,
    /// Its MIME type, e.g. `image/jpeg`.
    pub content_type: String,
}

/// Builds, signs, records and posts an inbound message.
pub(crate) async fn deliver(
    state: &Arc<TwilioState>,
    from: &str,
    to: &str,
    body: &str,
    media: &[InboundMedia],
) -> Result<InboundResult> {
    let (channel, from_number) = address::parse(from)
        .ok_or_else(|| Error::invalid("from", "must be +E164 or whatsapp:+E164"))?;
    match address::parse(to) {
        Some((c, _)) if c == channel => {}
        Some(_) => return Err(Error::invalid("to", "must be on the same channel as from")),
        None => return Err(Error::invalid("to", "must be +E164 or whatsapp:+E164")),
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(Error::invalid(
            "body",
            "Twilio delivers at most 1600 characters",
        ));
    }
    if media.len() > MAX_MEDIA {
        return Err(Error::invalid("media", "at most 10 media items"));
    }
    for m in media {
        crate::poster::check_webhook_url("media.url", &m.url)?;
        if m.content_type.is_empty()
            || m.content_type.len() > 255
            || !m.content_type.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::invalid("media.content_type", "must be a MIME type"));
        }
    }
    let (request, sid) = {
        let mut inner = lock(&state.inner);
        if !inner.owns_address(to) {
            return Err(Error::invalid("to", "not one of the emulator's numbers"));
        }
        let webhook = match channel {
            Channel::Sms => inner.sms_webhook.clone(),
            Channel::Whatsapp => inner.whatsapp_webhook.clone(),
        };
        let webhook = webhook.ok_or(Error::NoWebhook(match channel {
            Channel::Sms => "Twilio SMS inbound",
            Channel::Whatsapp => "Twilio WhatsApp inbound",
        }))?;
        let key = (to.to_string(), from.to_string());
        if !inner.last_inbound.contains_key(&key) && inner.tracked_customers() >= CUSTOMER_LIMIT {
            return Err(Error::LimitReached("customers tracked"));
        }
        inner.last_inbound.insert(key, state.clock.now());
        if channel == Channel::Sms {
            apply_keywords(&mut inner, to, from, body);
        }
        let sid = crate::ids::twilio_sid(if media.is_empty() { "SM" } else { "MM" });
        let service = service_of(&inner, to);
        let digits = from_number.trim_start_matches('+');
        let params = params(
            state,
            &inner,
            Fields {
                sid: &sid,
                channel,
                from,
                to,
                body,
                media,
                service: service.as_deref(),
                wa_id: digits,
            },
        );
        let request = signed_form(state, &webhook, &params, &sid);
        let wall = Utc::now();
        inner.push_message(Message {
            sid: sid.clone(),
            inbound: true,
            from: from.to_string(),
            from_shown: true,
            to: to.to_string(),
            body: body.to_string(),
            status: "received".into(),
            error_code: None,
            messaging_service_sid: service,
            media_urls: media.iter().map(|m| m.url.clone()).collect(),
            num_segments: segments_of(channel, body),
            status_callback: None,
            content_sid: None,
            content_variables: None,
            date_created: wall,
            date_updated: wall,
            date_sent: Some(wall),
        });
        inner.last_inbound_request = Some(request.clone());
        (request, sid)
    };
    let answer = state
        .poster
        .send(&request, CallbackKind::Inbound, None)
        .await?;
    Ok(InboundResult {
        status: answer.status,
        sid,
        body: answer.body,
        content_type: answer.content_type,
    })
}

/// Sends the last inbound request again, byte for byte (same signature, same `MessageSid`).
pub(crate) async fn replay(state: &Arc<TwilioState>) -> Result<InboundResult> {
    let request = lock(&state.inner)
        .last_inbound_request
        .clone()
        .ok_or(Error::NothingToReplay)?;
    let answer = state
        .poster
        .send(&request, CallbackKind::Replay, None)
        .await?;
    Ok(InboundResult {
        status: answer.status,
        sid: request.message_id,
        body: answer.body,
        content_type: answer.content_type,
    })
}

fn segments_of(channel: Channel, body: &str) -> u32 {
    match channel {
        Channel::Sms => segments::num_segments(body),
        Channel::Whatsapp => 1,
    }
}

/// STOP (and synonyms) opts the customer out of our number; START (and synonyms) back in.
fn apply_keywords(inner: &mut Inner, to: &str, from: &str, body: &str) {
    let word = body.trim().to_ascii_uppercase();
    let key = (to.to_string(), from.to_string());
    if OPT_OUT.contains(&word.as_str()) {
        inner.opt_outs.insert(key);
    } else if OPT_IN.contains(&word.as_str()) {
        inner.opt_outs.remove(&key);
        // Opting in on one number of a Messaging Service opts in on its whole pool.
        let pools: Vec<Vec<String>> = inner
            .services
            .values()
            .filter(|pool| pool.iter().any(|a| a == to))
            .cloned()
            .collect();
        for address in pools.into_iter().flatten() {
            inner.opt_outs.remove(&(address, from.to_string()));
        }
    }
}

/// The Messaging Service whose pool holds `to`, if any.
fn service_of(inner: &Inner, to: &str) -> Option<String> {
    inner
        .services
        .iter()
        .find(|(_, pool)| pool.iter().any(|a| a == to))
        .map(|(sid, _)| sid.clone())
}

struct Fields<'a> {
    sid: &'a str,
    channel: Channel,
    from: &'a str,
    to: &'a str,
    body: &'a str,
    media: &'a [InboundMedia],
    service: Option<&'a str>,
    wa_id: &'a str,
}

/// The webhook's form parameters, in the order Twilio's captured bodies show them.
fn params(state: &TwilioState, inner: &Inner, f: Fields<'_>) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = Vec::with_capacity(32);
    let mut push = |k: &str, v: &str| p.push((k.to_string(), v.to_string()));
    let num_media = f.media.len().to_string();
    let segments = segments_of(f.channel, f.body).to_string();
    match f.channel {
        Channel::Sms => {
            push("ToCountry", country(f.to));
            push("ToState", "");
            push("SmsMessageSid", f.sid);
            push("NumMedia", &num_media);
            push("ToCity", "");
            push("FromZip", "");
            push("SmsSid", f.sid);
            push("FromState", "");
            push("SmsStatus", "received");
            push("FromCity", "");
            push("Body", f.body);
            push("FromCountry", country(f.from));
            push("To", f.to);
            if let Some(service) = f.service {
                push("MessagingServiceSid", service);
            }
            push("ToZip", "");
            push("NumSegments", &segments);
        }
        Channel::Whatsapp => {
            let name = inner
                .profile_names
                .get(f.wa_id)
                .map(String::as_str)
                .unwrap_or(DEFAULT_PROFILE_NAME);
            push("SmsMessageSid", f.sid);
            push("NumMedia", &num_media);
            push("ProfileName", name);
            push("SmsSid", f.sid);
            push("WaId", f.wa_id);
            push("SmsStatus", "received");
            push("Body", f.body);
            push("To", f.to);
            if let Some(service) = f.service {
                push("MessagingServiceSid", service);
            }
            push("NumSegments", &segments);
            push("ReferralNumMedia", "0");
        }
    }
    for (i, m) in f.media.iter().enumerate() {
        push(&format!("MediaContentType{i}"), &m.content_type);
        push(&format!("MediaUrl{i}"), &m.url);
    }
    push("MessageSid", f.sid);
    push("AccountSid", &state.account_sid);
    push("From", f.from);
    push("ApiVersion", API_VERSION);
    p
}

/// The country Twilio's geo look-up would report (only North America's +1 is known here).
fn country(address: &str) -> &'static str {
    let number = address.trim_start_matches(address::WHATSAPP_PREFIX);
    if number.starts_with("+1") { "US" } else { "" }
}
