//! One customer message of a WhatsApp webhook (`messages[]`) as an [`InboundMessage`]: the
//! sender's `wa_id` as `+E.164`, the text (or a short description for a message without
//! text: `[image]`, `[location 52.52, 13.4 "Office"]`, `[reacted 👍 to a message]`), media as
//! `media:<id>` references (Handoff never downloads them).

use serde::Deserialize;

use super::webhook::{RawError, Timestamp, invalid, is_provider_id, profile_name};
use crate::{ChannelError, InboundMessage, Media, is_e164};

/// What a message must look like, for the error naming one that does not.
pub const SHAPE: &str = "each message needs string `id`, `type` and `timestamp` (Unix seconds), \
                         and its type's object with the fields the Cloud API sends";
/// The longest message text accepted, in characters (WhatsApp itself allows 4,096).
pub const MAX_TEXT_CHARS: usize = 65_536;
/// How many shared contacts are listed in the description.
const MAX_LISTED_CONTACTS: usize = 10;
/// The longest label (a name, a title, a file name) in a description, in characters.
const MAX_LABEL_CHARS: usize = 256;

#[derive(Deserialize)]
pub struct RawMessage {
    id: String,
    #[serde(default)]
    from: Option<String>,
    timestamp: Timestamp,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<TextPart>,
    #[serde(default)]
    image: Option<MediaPart>,
    #[serde(default)]
    audio: Option<MediaPart>,
    #[serde(default)]
    video: Option<MediaPart>,
    #[serde(default)]
    document: Option<MediaPart>,
    #[serde(default)]
    sticker: Option<MediaPart>,
    #[serde(default)]
    location: Option<LocationPart>,
    #[serde(default)]
    contacts: Option<Vec<SharedContact>>,
    #[serde(default)]
    interactive: Option<InteractivePart>,
    #[serde(default)]
    button: Option<ButtonPart>,
    #[serde(default)]
    reaction: Option<ReactionPart>,
    #[serde(default)]
    order: Option<OrderPart>,
    #[serde(default)]
    system: Option<SystemPart>,
    #[serde(default)]
    context: Option<ContextPart>,
    #[serde(default)]
    errors: Option<Vec<RawError>>,
}

#[derive(Deserialize)]
struct TextPart {
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize)]
struct MediaPart {
    id: String,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    voice: Option<bool>,
}

#[derive(Deserialize)]
struct LocationPart {
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize)]
struct SharedContact {
    #[serde(default)]
    name: Option<ContactName>,
    #[serde(default)]
    phones: Option<Vec<ContactPhone>>,
}

#[derive(Deserialize)]
struct ContactName {
    #[serde(default)]
    formatted_name: Option<String>,
}

#[derive(Deserialize)]
struct ContactPhone {
    #[serde(default)]
    phone: Option<String>,
}

#[derive(Deserialize)]
struct InteractivePart {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    button_reply: Option<Choice>,
    #[serde(default)]
    list_reply: Option<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize)]
struct ButtonPart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    payload: Option<String>,
}

#[derive(Deserialize)]
struct ReactionPart {
    #[serde(default)]
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct OrderPart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    product_items: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct SystemPart {
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct ContextPart {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    forwarded: Option<bool>,
    #[serde(default)]
    frequently_forwarded: Option<bool>,
}

/// The note put before a message that quotes one of ours (a swipe reply); [`strip_reply_note`]
/// removes it again so `STOP` sent as a reply is still a keyword.
pub const REPLY_NOTE: &str = "[replying to an earlier message] ";

/// `text` without a leading [`REPLY_NOTE`].
#[must_use]
pub fn strip_reply_note(text: &str) -> &str {
    text.strip_prefix(REPLY_NOTE).unwrap_or(text)
}

/// A checked, described message. `field` is its path for errors; `contacts` maps `wa_id`s to
/// profile names; `to` is our phone number id.
///
/// # Errors
/// [`ChannelError::InvalidInbound`] for an id, media id, text or location that is not what
/// the Cloud API sends.
pub fn parse(
    raw: RawMessage,
    field: &str,
    contacts: &[(String, String)],
    to: &str,
) -> Result<InboundMessage, ChannelError> {
    if !is_provider_id(&raw.id) {
        return Err(invalid(
            format!("{field}.id"),
            "must be 1 to 512 visible ASCII characters",
        ));
    }
    // A business-scoped user id (`US.…`) or a missing sender is kept, without an address.
    let from = raw
        .from
        .as_deref()
        .map(|digits| format!("+{digits}"))
        .filter(|number| is_e164(number));
    if from.is_none() {
        tracing::info!("A WhatsApp message without a phone number as its sender.");
    }
    let sender_name = raw
        .from
        .as_deref()
        .and_then(|wa_id| profile_name(contacts, wa_id))
        .map(|name| label(name, MAX_LABEL_CHARS))
        .filter(|name| !name.is_empty());
    let (body, media) = describe(&raw, field)?;
    let mut text = String::new();
    if let Some(context) = &raw.context {
        if context.frequently_forwarded == Some(true) {
            text.push_str("[forwarded many times] ");
        } else if context.forwarded == Some(true) {
            text.push_str("[forwarded] ");
        } else if context.id.is_some()
            && !matches!(raw.kind.as_str(), "interactive" | "button" | "reaction")
        {
            text.push_str(REPLY_NOTE);
        }
    }
    text.push_str(&body);
    Ok(InboundMessage {
        provider_message_id: raw.id,
        session_id: None,
        from,
        to: Some(to.to_owned()),
        sender_name,
        text,
        media,
        at: raw.timestamp.0,
    })
}

/// The message's text or description, and its media.
fn describe(raw: &RawMessage, field: &str) -> Result<(String, Vec<Media>), ChannelError> {
    let kind = raw.kind.as_str();
    let described = match kind {
        "text" => {
            let body = raw.text.as_ref().and_then(|t| t.body.as_deref());
            match body.filter(|b| !b.trim().is_empty()) {
                Some(body) if body.chars().count() > MAX_TEXT_CHARS => {
                    return Err(invalid(
                        format!("{field}.text.body"),
                        "longer than 65536 characters",
                    ));
                }
                Some(body) => clean_text(body),
                None => "[empty message]".to_owned(),
            }
        }
        "image" | "audio" | "video" | "document" | "sticker" => {
            return media(raw, kind, field);
        }
        "location" => location(raw, field)?,
        "contacts" => shared_contacts(raw.contacts.as_deref().unwrap_or_default()),
        "interactive" => {
            let part = raw.interactive.as_ref();
            match part.map(|p| (p.kind.as_deref(), &p.button_reply, &p.list_reply)) {
                Some((_, Some(choice), _)) => choice_text("button", choice, "id"),
                Some((_, None, Some(choice))) => choice_text("list choice", choice, "id"),
                Some((Some("nfm_reply"), None, None)) => "[form reply]".to_owned(),
                _ => "[interactive reply]".to_owned(),
            }
        }
        "button" => match &raw.button {
            Some(button) => choice_text(
                "button",
                &Choice {
                    id: button.payload.clone(),
                    title: button.text.clone(),
                },
                "payload",
            ),
            None => "[button]".to_owned(),
        },
        "reaction" => match raw
            .reaction
            .as_ref()
            .and_then(|r| r.emoji.as_deref())
            .map(|emoji| label(emoji, 16))
            .filter(|emoji| !emoji.is_empty())
        {
            Some(emoji) => format!("[reacted {emoji} to a message]"),
            None => "[removed a reaction]".to_owned(),
        },
        "order" => {
            let order = raw.order.as_ref();
            let items = order
                .and_then(|o| o.product_items.as_ref())
                .map_or(0, Vec::len);
            let note = order
                .and_then(|o| o.text.as_deref())
                .map(|t| label(t, MAX_LABEL_CHARS))
                .filter(|t| !t.is_empty())
                .map(|t| format!(": {t}"))
                .unwrap_or_default();
            let noun = if items == 1 { "item" } else { "items" };
            format!("[order of {items} {noun}{note}]")
        }
        "system" => match raw
            .system
            .as_ref()
            .and_then(|s| s.kind.as_deref())
            .filter(|k| is_identifier(k))
        {
            Some(kind) => format!("[system message: {kind}]"),
            None => "[system message]".to_owned(),
        },
        "unsupported" => match first_error(raw) {
            Some(code) => format!("[a message WhatsApp does not support (error {code})]"),
            None => "[a message WhatsApp does not support]".to_owned(),
        },
        other if is_identifier(other) => format!("[{other} message]"),
        _ => "[a message of an unknown type]".to_owned(),
    };
    Ok((described, Vec::new()))
}

fn first_error(raw: &RawMessage) -> Option<i64> {
    raw.errors.as_ref()?.first()?.code
}

/// A media message: its caption, else what it is; and the media reference.
fn media(raw: &RawMessage, kind: &str, field: &str) -> Result<(String, Vec<Media>), ChannelError> {
    let part = match kind {
        "image" => &raw.image,
        "audio" => &raw.audio,
        "video" => &raw.video,
        "document" => &raw.document,
        _ => &raw.sticker,
    };
    let Some(part) = part else {
        return Ok((format!("[{kind}]"), Vec::new()));
    };
    if !is_provider_id(&part.id) {
        return Err(invalid(
            format!("{field}.{kind}.id"),
            "must be 1 to 512 visible ASCII characters",
        ));
    }
    let filename = part
        .filename
        .as_deref()
        .map(|name| label(name, MAX_LABEL_CHARS))
        .filter(|name| !name.is_empty());
    let caption = part
        .caption
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .map(|c| clean_text(&c.chars().take(MAX_TEXT_CHARS).collect::<String>()));
    let text = caption.unwrap_or_else(|| match (kind, &filename) {
        ("audio", _) if part.voice == Some(true) => "[voice note]".to_owned(),
        ("document", Some(name)) => format!("[document \"{name}\"]"),
        _ => format!("[{kind}]"),
    });
    let media = Media {
        url: format!("media:{}", part.id),
        content_type: part
            .mime_type
            .as_deref()
            .map(|m| label(m, MAX_LABEL_CHARS))
            .filter(|m| !m.is_empty()),
        filename,
    };
    Ok((text, vec![media]))
}

/// `[location 52.52, 13.4 "Name, Address"]`.
fn location(raw: &RawMessage, field: &str) -> Result<String, ChannelError> {
    let Some(place) = &raw.location else {
        return Ok("[location]".to_owned());
    };
    if !(-90.0..=90.0).contains(&place.latitude) || !(-180.0..=180.0).contains(&place.longitude) {
        return Err(invalid(
            format!("{field}.location"),
            "latitude must be within ±90 and longitude within ±180",
        ));
    }
    let name: Vec<String> = [place.name.as_deref(), place.address.as_deref()]
        .into_iter()
        .flatten()
        .map(|part| label(part, MAX_LABEL_CHARS))
        .filter(|part| !part.is_empty())
        .collect();
    let label = if name.is_empty() {
        String::new()
    } else {
        format!(" \"{}\"", name.join(", "))
    };
    Ok(format!(
        "[location {}, {}{label}]",
        coordinate(place.latitude),
        coordinate(place.longitude)
    ))
}

/// A coordinate to six decimals (about 10 cm), trailing zeros dropped.
fn coordinate(value: f64) -> String {
    let fixed = format!("{value:.6}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// `[contacts: Ann Lee +1 555-0100; Bob]`, the first ten.
fn shared_contacts(contacts: &[SharedContact]) -> String {
    if contacts.is_empty() {
        return "[contacts]".to_owned();
    }
    let listed: Vec<String> = contacts
        .iter()
        .take(MAX_LISTED_CONTACTS)
        .map(|contact| {
            let name = contact
                .name
                .as_ref()
                .and_then(|n| n.formatted_name.as_deref())
                .map(|n| label(n, 64))
                .filter(|n| !n.is_empty());
            let phone = contact
                .phones
                .as_deref()
                .and_then(|phones| phones.iter().find_map(|p| p.phone.as_deref()))
                .map(|p| label(p, 32))
                .filter(|p| !p.is_empty());
            match (name, phone) {
                (Some(name), Some(phone)) => format!("{name} {phone}"),
                (Some(one), None) | (None, Some(one)) => one,
                (None, None) => "(no name)".to_owned(),
            }
        })
        .collect();
    let more = if contacts.len() > MAX_LISTED_CONTACTS {
        format!("; … {} in all", contacts.len())
    } else {
        String::new()
    };
    format!("[contacts: {}{more}]", listed.join("; "))
}

/// `[button "Yes" (id: confirm)]`.
fn choice_text(what: &str, choice: &Choice, id_name: &str) -> String {
    let title = choice
        .title
        .as_deref()
        .map(|t| label(t, MAX_LABEL_CHARS))
        .filter(|t| !t.is_empty());
    let id = choice
        .id
        .as_deref()
        .map(|i| label(i, MAX_LABEL_CHARS))
        .filter(|i| !i.is_empty());
    match (title, id) {
        (Some(title), Some(id)) => format!("[{what} \"{title}\" ({id_name}: {id})]"),
        (Some(title), None) => format!("[{what} \"{title}\"]"),
        (None, Some(id)) => format!("[{what} ({id_name}: {id})]"),
        (None, None) => format!("[{what}]"),
    }
}

/// A wire identifier worth echoing: 1 to 32 of `a-z`, `0-9`, `_`.
fn is_identifier(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Message text with control characters other than line breaks and tabs replaced (NUL cannot
/// be stored in PostgreSQL text).
fn clean_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// A one-line label: control characters and runs of whitespace become one space, trimmed,
/// at most `max` characters (a longer one cut with `…`).
fn label(text: &str, max: usize) -> String {
    let flat = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}
