//! A verified WhatsApp Cloud API webhook body, parsed into [`InboundEvent`]s.
//!
//! Every notification has the same envelope: `{"object": "whatsapp_business_account",
//! "entry": [{"changes": [{"field": "messages", "value": {"metadata": {"phone_number_id"},
//! "contacts": [...], "messages": [...], "statuses": [...]}}]}]}`; one POST may carry several
//! entries, changes, messages and statuses, and all are read. Changes of other fields
//! (template and account updates) and of other phone numbers of the same business account are
//! skipped: they are not for this channel, and refusing them would make Meta retry the whole
//! body for a day. Parsing is linear in the body (whose size the gateway caps), nesting is
//! bounded by `serde_json`'s recursion limit, and one body holds at most [`MAX_EVENTS`]
//! messages and statuses.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

use super::message::{self, RawMessage};
use crate::{ChannelError, InboundEvent, ProviderStatus, StatusUpdate};

/// At most this many messages and statuses in one webhook body (Meta batches up to 1,000).
pub const MAX_EVENTS: usize = 1_000;
/// The longest provider id (message id, media id) accepted, in bytes.
pub const MAX_ID_BYTES: usize = 512;

/// What the parse needs to know about the channel and the request.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Our business phone number's id: changes for other numbers are skipped.
    pub phone_number_id: &'a str,
    /// When the gateway received the request.
    pub received_at: DateTime<Utc>,
    /// Customer messages older than this (relative to `received_at`) are stale replays.
    pub max_event_age: chrono::Duration,
}

/// `metadata` of a change.
#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

/// `contacts[]`: the profile name of a sender.
#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
}

/// `statuses[]`: what became of a message we sent.
#[derive(Deserialize)]
struct RawStatus {
    id: String,
    status: String,
    timestamp: Timestamp,
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    errors: Option<Vec<RawError>>,
}

/// An entry of `errors[]`.
#[derive(Deserialize)]
pub(super) struct RawError {
    #[serde(default)]
    pub(super) code: Option<i64>,
}

/// Unix seconds, sent as a string (`"1730231903"`); a number is accepted too.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timestamp(pub(super) DateTime<Utc>);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(i64),
        }
        let seconds = match Raw::deserialize(deserializer)? {
            Raw::Number(n) => n,
            Raw::Text(text) if (1..=12).contains(&text.len()) => text
                .parse::<i64>()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| de::Error::custom("not Unix seconds"))?,
            Raw::Text(_) => return Err(de::Error::custom("not Unix seconds")),
        };
        DateTime::from_timestamp(seconds, 0)
            .filter(|_| seconds >= 0)
            .map(Timestamp)
            .ok_or_else(|| de::Error::custom("out of range"))
    }
}

pub(super) fn invalid(field: impl Into<String>, reason: &str) -> ChannelError {
    ChannelError::InvalidInbound {
        field: field.into(),
        reason: reason.to_owned(),
    }
}

/// A provider id: 1 to [`MAX_ID_BYTES`] visible ASCII characters (it becomes part of a key).
pub(super) fn is_provider_id(id: &str) -> bool {
    (1..=MAX_ID_BYTES).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// `parent.key` as an array (absent or `null`: empty); `path` is the parent's, empty for the
/// body itself.
fn array<'v>(parent: &'v Value, key: &str, path: &str) -> Result<&'v [Value], ChannelError> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) if path.is_empty() => Err(invalid(key, "must be an array")),
        Some(_) => Err(invalid(format!("{path}.{key}"), "must be an array")),
    }
}

/// The events a verified body carries, in the order Meta listed them.
///
/// # Errors
/// [`ChannelError::InvalidInbound`] naming the first field that is not what the Cloud API
/// sends (wrong type, missing id, more than [`MAX_EVENTS`] events); the reason never quotes
/// the body.
pub fn parse(body: &[u8], context: Context<'_>) -> Result<Vec<InboundEvent>, ChannelError> {
    let root: Value = serde_json::from_slice(body).map_err(|_| {
        invalid(
            "body",
            "must be a JSON object (nested at most 128 levels deep)",
        )
    })?;
    if !root.is_object() {
        return Err(invalid("body", "must be a JSON object"));
    }
    match root.get("object") {
        Some(Value::String(object)) if object == "whatsapp_business_account" => {}
        Some(Value::String(_)) => {
            // Another product's notification (a Page, Instagram) sent to this URL.
            tracing::info!("WhatsApp webhook for another kind of object skipped.");
            return Ok(Vec::new());
        }
        _ => return Err(invalid("object", "must be \"whatsapp_business_account\"")),
    }
    let changes = ours(&root, context.phone_number_id)?;
    let mut events = Vec::new();
    let mut stale = 0usize;
    let mut skipped_statuses = 0usize;
    for (path, value) in changes {
        let contacts = contacts(value, &path)?;
        for (k, raw) in array(value, "messages", &path)?.iter().enumerate() {
            let field = format!("{path}.messages[{k}]");
            let raw =
                RawMessage::deserialize(raw).map_err(|_| invalid(field.clone(), message::SHAPE))?;
            let parsed = message::parse(raw, &field, &contacts, context.phone_number_id)?;
            if context.received_at.signed_duration_since(parsed.at) > context.max_event_age {
                stale += 1;
                continue;
            }
            events.push(InboundEvent::Message(parsed));
        }
        for (k, raw) in array(value, "statuses", &path)?.iter().enumerate() {
            let field = format!("{path}.statuses[{k}]");
            match status(raw, &field)? {
                Some(update) => events.push(InboundEvent::Status(update)),
                None => skipped_statuses += 1,
            }
        }
    }
    if stale > 0 {
        tracing::info!(
            stale,
            "Stale WhatsApp messages dropped (older than max_event_age_secs)."
        );
    }
    if skipped_statuses > 0 {
        tracing::debug!(
            skipped_statuses,
            "WhatsApp statuses of unknown kinds skipped."
        );
    }
    Ok(events)
}

/// The `value`s of the `messages` changes for our phone number, with their paths, after
/// checking the shape of the envelope and counting every event in it.
fn ours<'v>(
    root: &'v Value,
    phone_number_id: &str,
) -> Result<Vec<(String, &'v Value)>, ChannelError> {
    let mut total = 0usize;
    let mut ours = Vec::new();
    let mut others = 0usize;
    for (i, entry) in array(root, "entry", "")?.iter().enumerate() {
        let entry_path = format!("entry[{i}]");
        if !entry.is_object() {
            return Err(invalid(entry_path, "must be an object"));
        }
        for (j, change) in array(entry, "changes", &entry_path)?.iter().enumerate() {
            let path = format!("{entry_path}.changes[{j}]");
            let field = change.get("field").and_then(Value::as_str);
            if field != Some("messages") {
                if field.is_none() {
                    return Err(invalid(format!("{path}.field"), "must be a string"));
                }
                continue;
            }
            let value = change
                .get("value")
                .filter(|v| v.is_object())
                .ok_or_else(|| invalid(format!("{path}.value"), "must be an object"))?;
            let value_path = format!("{path}.value");
            total += array(value, "messages", &value_path)?.len()
                + array(value, "statuses", &value_path)?.len();
            if total > MAX_EVENTS {
                return Err(invalid(
                    "entry",
                    "more than 1000 messages and statuses in one webhook",
                ));
            }
            let metadata = value
                .get("metadata")
                .and_then(|m| Metadata::deserialize(m).ok())
                .ok_or_else(|| {
                    invalid(
                        format!("{value_path}.metadata.phone_number_id"),
                        "must be a string",
                    )
                })?;
            if metadata.phone_number_id == phone_number_id {
                ours.push((value_path, value));
            } else {
                others += 1;
            }
        }
    }
    if others > 0 {
        tracing::info!(
            changes = others,
            "WhatsApp changes for another phone number of the business account skipped."
        );
    }
    Ok(ours)
}

/// `wa_id` → profile name, from a change's `contacts`.
fn contacts(value: &Value, path: &str) -> Result<Vec<(String, String)>, ChannelError> {
    let list = array(value, "contacts", path)?;
    if list.len() > MAX_EVENTS {
        return Err(invalid(
            format!("{path}.contacts"),
            "more than 1000 contacts",
        ));
    }
    list.iter()
        .enumerate()
        .filter_map(|(i, raw)| match Contact::deserialize(raw) {
            Err(_) => Some(Err(invalid(
                format!("{path}.contacts[{i}]"),
                "must be {\"wa_id\": \"…\", \"profile\": {\"name\": \"…\"}}",
            ))),
            Ok(Contact {
                wa_id: Some(wa_id),
                profile: Some(Profile { name: Some(name) }),
            }) => Some(Ok((wa_id, name))),
            Ok(_) => None,
        })
        .collect()
}

/// One status; `None` for a kind this channel does not track.
fn status(raw: &Value, field: &str) -> Result<Option<StatusUpdate>, ChannelError> {
    let raw = RawStatus::deserialize(raw).map_err(|_| {
        invalid(
            field,
            "each status needs string `id`, `status` and `timestamp` (Unix seconds)",
        )
    })?;
    if !is_provider_id(&raw.id) {
        return Err(invalid(
            format!("{field}.id"),
            "must be 1 to 512 visible ASCII characters",
        ));
    }
    let status = match raw.status.as_str() {
        "sent" => ProviderStatus::Sent,
        "delivered" => ProviderStatus::Delivered,
        // A voice message played implies it was read; we send text, so this is rare.
        "read" | "played" => ProviderStatus::Read,
        "failed" => ProviderStatus::Failed,
        _ => return Ok(None),
    };
    // Our delivery ids are short printable strings; anything else was not ours.
    let delivery_id = raw
        .biz_opaque_callback_data
        .filter(|data| is_provider_id(data));
    let error_code = raw
        .errors
        .and_then(|errors| errors.into_iter().next())
        .and_then(|error| error.code)
        .map(|code| code.to_string());
    Ok(Some(StatusUpdate {
        provider_message_id: raw.id,
        delivery_id,
        status,
        error_code,
        at: raw.timestamp.0,
    }))
}

/// For the message parser: the profile name of `wa_id`, if the change listed one.
pub(super) fn profile_name<'c>(contacts: &'c [(String, String)], wa_id: &str) -> Option<&'c str> {
    contacts
        .iter()
        .find(|(id, _)| id == wa_id)
        .map(|(_, name)| name.as_str())
}
