//! A customer message from a verified provider webhook, checked and bounded before it is
//! stored: its dedupe id, the text as stored (NUL replaced, length capped), what the rep reads
//! (the text and one line per attachment) and the Case note. Linear in the message.

use std::fmt::Write as _;

use channels::{InboundMessage, Media};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::ApiError;
use crate::http::live::MESSAGE_MAX_CHARS;

/// The longest provider message id, sender or recipient accepted (characters).
pub const MAX_ADDRESS_CHARS: usize = 256;
/// The longest text stored for one message (characters); longer texts are cut.
pub const MAX_TEXT_CHARS: usize = 100_000;
/// Attachments listed (and stored) per message at most.
pub const MAX_MEDIA: usize = 20;
/// The longest attachment URL, content type or file name kept (characters).
const MAX_MEDIA_FIELD_CHARS: usize = 2_048;
/// Characters of the customer's text put in a Case note.
const MAX_NOTE_TEXT_CHARS: usize = 32_000;
/// The longest session id a provider may name (longer ones name no session).
const MAX_SESSION_ID_CHARS: usize = 128;

/// One message, ready for [`crate::store::NewInboundMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// `<channel>:<provider message id>`.
    pub id: String,
    pub provider_message_id: String,
    pub named_session: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub text: String,
    pub media: Vec<Media>,
    /// The media as stored (JSON), when there are any.
    pub media_json: Option<String>,
    pub rep_text: String,
    pub note_body: String,
    /// When the customer wrote, never later than when it arrived (epoch ms).
    pub at_ms: i64,
}

fn invalid(index: usize, key: &str, reason: &str) -> ApiError {
    ApiError::invalid(
        "invalid_inbound",
        Some(format!("messages[{index}].{key}")),
        format!("invalid webhook message at `messages[{index}].{key}`: {reason}"),
    )
}

/// `s` without control characters (NUL, line breaks) and at most `max` characters.
fn one_line(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// A short identifier or address: 1 to 256 characters, none of them control characters.
fn short(value: &str, index: usize, key: &str) -> Result<String, ApiError> {
    let ok = !value.trim().is_empty()
        && value.chars().count() <= MAX_ADDRESS_CHARS
        && !value.chars().any(char::is_control);
    if ok {
        Ok(value.to_string())
    } else {
        Err(invalid(
            index,
            key,
            "must be 1 to 256 characters without control characters",
        ))
    }
}

/// The first `max` characters of `text`, and how many were left out.
fn cut(text: &str, max: usize) -> (&str, usize) {
    match text.char_indices().nth(max) {
        Some((at, _)) => (&text[..at], text[at..].chars().count()),
        None => (text, 0),
    }
}

/// `[Attachment: image/jpeg photo.jpg https://…]`.
fn attachment_line(media: &Media) -> String {
    let mut line = String::from("[Attachment:");
    for part in [&media.content_type, &media.filename].into_iter().flatten() {
        line.push(' ');
        line.push_str(part);
    }
    line.push(' ');
    line.push_str(&media.url);
    line.push(']');
    line
}

/// Checks and bounds message `index` of a webhook on `channel`, received at `received_at`.
///
/// # Errors
/// 400 `invalid_inbound` naming the field, for an id, sender or recipient that cannot be
/// stored.
pub fn prepare(
    channel: &str,
    index: usize,
    message: &InboundMessage,
    received_at: DateTime<Utc>,
) -> Result<Prepared, ApiError> {
    let provider_message_id = short(&message.provider_message_id, index, "id")?;
    let from = message
        .from
        .as_deref()
        .map(|f| short(f, index, "from"))
        .transpose()?;
    let to = message
        .to
        .as_deref()
        .map(|t| short(t, index, "to"))
        .transpose()?;
    let named_session = message
        .session_id
        .as_deref()
        .filter(|s| s.len() <= MAX_SESSION_ID_CHARS && !s.chars().any(char::is_control))
        .map(str::to_string);
    let clean = message.text.replace('\0', "\u{fffd}");
    let (kept, _) = cut(clean.trim(), MAX_TEXT_CHARS);
    let text = if kept.is_empty() {
        "[empty message]".to_string()
    } else {
        kept.to_string()
    };
    let media: Vec<Media> = message
        .media
        .iter()
        .take(MAX_MEDIA)
        .map(|m| Media {
            url: one_line(&m.url, MAX_MEDIA_FIELD_CHARS),
            content_type: m
                .content_type
                .as_deref()
                .map(|c| one_line(c, MAX_MEDIA_FIELD_CHARS)),
            filename: m
                .filename
                .as_deref()
                .map(|f| one_line(f, MAX_MEDIA_FIELD_CHARS)),
        })
        .filter(|m| !m.url.is_empty())
        .collect();
    let media_json = if media.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&media).map_err(|e| ApiError::Internal(e.to_string()))?)
    };
    let lines: Vec<String> = media.iter().map(attachment_line).collect();
    let more_media = message.media.len().saturating_sub(MAX_MEDIA);

    let mut rep_text = String::new();
    let (for_rep, left) = cut(&text, MESSAGE_MAX_CHARS);
    rep_text.push_str(for_rep);
    if left > 0 {
        let _ = write!(rep_text, "\n[… {left} more characters not shown]");
    }
    for line in &lines {
        rep_text.push('\n');
        rep_text.push_str(line);
    }
    if more_media > 0 {
        let _ = write!(rep_text, "\n[… {more_media} more attachments]");
    }

    let at = message.at.min(received_at);
    let mut note_body = format!("Customer wrote on {channel}\n");
    if let Some(from) = &from {
        let _ = writeln!(note_body, "From: {from}");
    }
    if let Some(name) = message.sender_name.as_deref() {
        let name = one_line(name, MAX_ADDRESS_CHARS);
        if !name.trim().is_empty() {
            let _ = writeln!(note_body, "Name: {name}");
        }
    }
    let _ = writeln!(
        note_body,
        "Date: {}\n",
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    let (for_note, left) = cut(&text, MAX_NOTE_TEXT_CHARS);
    note_body.push_str(for_note);
    if left > 0 {
        let _ = write!(note_body, "\n[… {left} more characters not shown]");
    }
    for line in &lines {
        note_body.push('\n');
        note_body.push_str(line);
    }
    if more_media > 0 {
        let _ = write!(note_body, "\n[… {more_media} more attachments]");
    }

    Ok(Prepared {
        id: format!("{channel}:{provider_message_id}"),
        provider_message_id,
        named_session,
        from,
        to,
        text,
        media,
        media_json,
        rep_text,
        note_body,
        at_ms: at.timestamp_millis(),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn message(text: &str) -> InboundMessage {
        InboundMessage {
            provider_message_id: "SMabc".into(),
            session_id: None,
            from: Some("+15550100001".into()),
            to: Some("+15550100000".into()),
            sender_name: Some("Ana\nRuiz".into()),
            text: text.into(),
            media: vec![],
            at: Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 5).unwrap()
    }

    #[test]
    fn ids_keep_the_provider_id_byte_for_byte() {
        let p = prepare("sms", 0, &message("hi"), now()).unwrap();
        assert_eq!(p.id, "sms:SMabc");
        let mut other = message("hi");
        other.provider_message_id = "SMABC".into();
        assert_ne!(prepare("sms", 0, &other, now()).unwrap().id, p.id);
    }

    #[test]
    fn rep_text_and_note_list_attachments_and_bound_everything() {
        let mut m = message("see the photo\0");
        m.media = (0..25)
            .map(|k| Media {
                url: format!("https://media.example.com/{k}\n"),
                content_type: Some("image/jpeg".into()),
                filename: (k == 0).then(|| "receipt.jpg".to_string()),
            })
            .collect();
        let p = prepare("sms", 0, &m, now()).unwrap();
        assert_eq!(p.text, "see the photo\u{fffd}");
        assert_eq!(p.media.len(), MAX_MEDIA);
        assert!(p.rep_text.starts_with("see the photo\u{fffd}\n[Attachment: image/jpeg receipt.jpg https://media.example.com/0]\n[Attachment: image/jpeg https://media.example.com/1]"), "{}", p.rep_text);
        assert!(p.rep_text.ends_with("[… 5 more attachments]"));
        assert!(p.note_body.starts_with(
            "Customer wrote on sms\nFrom: +15550100001\nName: AnaRuiz\nDate: 2026-12-01T09:00:00Z\n\nsee the photo"
        ), "{}", p.note_body);
        let long = "x".repeat(MESSAGE_MAX_CHARS + 7);
        let p = prepare("sms", 0, &message(&long), now()).unwrap();
        assert!(p.rep_text.ends_with("[… 7 more characters not shown]"));
        assert_eq!(p.text.len(), MESSAGE_MAX_CHARS + 7);
    }

    #[test]
    fn times_never_run_ahead_of_arrival_and_bad_fields_are_named() {
        let mut m = message("hi");
        m.at = now() + chrono::Duration::days(3);
        assert_eq!(
            prepare("sms", 0, &m, now()).unwrap().at_ms,
            now().timestamp_millis()
        );
        let mut m = message("hi");
        m.from = Some("x".repeat(257));
        let err = prepare("sms", 2, &m, now()).unwrap_err();
        assert!(
            matches!(&err, ApiError::Invalid { code: "invalid_inbound", field: Some(f), .. } if f == "messages[2].from"),
            "{err:?}"
        );
        let mut m = message("hi");
        m.provider_message_id = "a\nb".into();
        assert!(prepare("sms", 0, &m, now()).is_err());
        let mut m = message("hi");
        m.session_id = Some("s".repeat(129));
        assert_eq!(prepare("line", 0, &m, now()).unwrap().named_session, None);
    }
}
