//! Parse, don't validate: the JSON body of `POST /v1/escalations` becomes an
//! [`Escalation`] or an error naming the field. Nothing downstream re-checks.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use channels::{
    ChannelKind, Conversation, Customer, EmailAddress, EscalationInput, ReplyTarget, Role, Turn,
    VoiceFormat, VoiceMode, VoiceTranscript,
};

use crate::error::ApiError;

/// The caller's session id: 1–128 of `A-Za-z0-9_.:-` (design §7).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(s: &str) -> Result<SessionId, String> {
        if s.is_empty() || s.len() > 128 {
            return Err("must be 1 to 128 characters".into());
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
        {
            return Err("may only contain A-Z a-z 0-9 _ . : -".into());
        }
        // The id travels as the Case's external id in the URL path
        // (`…/Case/Handoff_Session_Id__c/{id}`): the dot segments are resolved
        // away by URL normalisation, and Salesforce reads a `.json` / `.xml` suffix
        // as the response format, so such an id would name another record.
        if s == "." || s == ".." {
            return Err("cannot be '.' or '..' (not usable as a Salesforce external id)".into());
        }
        let lower = s.to_ascii_lowercase();
        if lower.ends_with(".json") || lower.ends_with(".xml") {
            return Err(
                "cannot end in .json or .xml (Salesforce reads that as a format suffix)".into(),
            );
        }
        Ok(SessionId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

/// What is stored with the session and read back by the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EscalationPayload {
    pub conversation: Conversation,
    pub summary: Option<String>,
    pub priority: Priority,
    pub attributes: BTreeMap<String, String>,
    /// Where the session's outbound messages go, checked by the channel at accept time
    /// (`{"type": "webhook", "url": …}`); `None`: no deliveries for this session. Sessions
    /// stored before `reply_to` was typed hold the caller's raw value, which reads as `None`
    /// (nothing was ever delivered for them) rather than failing their Case job.
    #[serde(default, deserialize_with = "stored_reply_to")]
    pub reply_to: Option<ReplyTarget>,
    /// The customer's identity as the AI product verified it (`identity.subject`
    /// with `identity.verified: true`): live messaging then uses Salesforce's
    /// user-verification flow. `None`: an anonymous visitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_subject: Option<String>,
}

fn stored_reply_to<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ReplyTarget>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.and_then(|v| ReplyTarget::deserialize(v).ok()))
}

/// A fully parsed escalation request.
#[derive(Debug, Clone)]
pub struct Escalation {
    pub session_id: SessionId,
    pub channel: ChannelKind,
    pub payload: EscalationPayload,
    /// SHA-256 (hex) of the canonical request body: same body → same hash.
    pub request_hash: String,
}

pub const SUMMARY_MAX_CHARS: usize = 32_000;
const TURN_MAX_CHARS: usize = 100_000;
const MAX_TURNS: usize = 10_000;

fn bad(code: &'static str, field: &str, detail: impl Into<String>) -> ApiError {
    ApiError::invalid(code, Some(field.to_string()), detail)
}

fn opt_string(
    obj: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<String>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(
            "invalid_field",
            field,
            format!("{field} must be a string"),
        )),
    }
}

/// The channel's reading of an escalation: the conversation and where replies go.
pub type Normalized = (Conversation, Option<ReplyTarget>);

/// Parses a body that has no `reply_to` (tools and tests that build sessions directly); a
/// `reply_to` is refused, since only [`parse_with_reply_to`] lets the channel check it.
pub fn parse(
    body: &Value,
    normalize: impl FnOnce(&ChannelKind, EscalationInput) -> Result<Conversation, ApiError>,
    known_channel: impl Fn(&str) -> Result<ChannelKind, ApiError>,
) -> Result<Escalation, ApiError> {
    parse_with_reply_to(
        body,
        |kind, input, reply_to| match reply_to {
            None => Ok((normalize(kind, input)?, None)),
            Some(_) => Err(bad(
                "reply_to_not_supported",
                "reply_to",
                "reply_to is not accepted here",
            )),
        },
        known_channel,
    )
}

/// Parses the body. `known_channel` turns the channel name into a registered channel;
/// `normalize` lets that channel read the input and check its `reply_to`.
pub fn parse_with_reply_to(
    body: &Value,
    normalize: impl FnOnce(
        &ChannelKind,
        EscalationInput,
        Option<&Value>,
    ) -> Result<Normalized, ApiError>,
    known_channel: impl Fn(&str) -> Result<ChannelKind, ApiError>,
) -> Result<Escalation, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("invalid_body", None, "the body must be a JSON object"))?;
    refuse_nul(body, &mut String::new())?;

    let session_id = match obj.get("session_id") {
        None | Some(Value::Null) => {
            return Err(bad("missing_field", "session_id", "session_id is required"));
        }
        Some(Value::String(s)) => SessionId::parse(s).map_err(|why| {
            bad(
                "invalid_session_id",
                "session_id",
                format!("session_id {why}"),
            )
        })?,
        Some(_) => {
            return Err(bad(
                "invalid_session_id",
                "session_id",
                "session_id must be a string",
            ));
        }
    };

    let channel_name = opt_string(obj, "channel", "channel")?
        .ok_or_else(|| bad("missing_field", "channel", "channel is required"))?;
    let channel = known_channel(&channel_name)?;

    let customer = parse_customer(obj.get("customer"))?;

    let language = opt_string(obj, "language", "language")?.unwrap_or_else(|| "en".into());
    if !is_language_tag(&language) {
        return Err(bad(
            "invalid_language",
            "language",
            "language must be a BCP-47 tag such as en, fr-CA or pt-BR",
        ));
    }

    let priority = match opt_string(obj, "priority", "priority")?.as_deref() {
        None => Priority::Medium,
        Some("low") => Priority::Low,
        Some("medium") => Priority::Medium,
        Some("high") => Priority::High,
        Some("critical") => Priority::Critical,
        Some(_) => {
            return Err(bad(
                "invalid_priority",
                "priority",
                "priority must be one of low, medium, high, critical",
            ));
        }
    };

    let subject = opt_string(obj, "subject", "subject")?;
    let summary = opt_string(obj, "summary", "summary")?.filter(|s| !s.trim().is_empty());
    if let Some(s) = &summary
        && s.chars().count() > SUMMARY_MAX_CHARS
    {
        return Err(bad(
            "summary_too_long",
            "summary",
            format!(
                "summary is longer than {SUMMARY_MAX_CHARS} characters (the Case Description limit)"
            ),
        ));
    }

    let transcript = match obj.get("transcript") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(parse_turns(items)?),
        Some(_) => {
            return Err(bad(
                "invalid_transcript",
                "transcript",
                "transcript must be a list of turns",
            ));
        }
    };
    let raw_email = match obj.get("raw_email") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    _ => {
                        return Err(bad(
                            "invalid_raw_email",
                            &format!("raw_email[{i}]"),
                            "each raw_email entry must be an RFC 5322 message as a string",
                        ));
                    }
                }
            }
            Some(out)
        }
        Some(_) => {
            return Err(bad(
                "invalid_raw_email",
                "raw_email",
                "raw_email must be a list of messages",
            ));
        }
    };

    let voice_transcript = parse_voice_transcript(obj.get("voice_transcript"))?;
    let speakers = parse_speakers(obj.get("speakers"))?;
    let voice_mode = match opt_string(obj, "voice_mode", "voice_mode")? {
        None => None,
        Some(mode) => Some(mode.parse::<VoiceMode>().map_err(|valid| {
            bad(
                "invalid_voice_mode",
                "voice_mode",
                format!("voice_mode must be one of {valid}"),
            )
        })?),
    };

    let attributes = match obj.get("attributes") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => {
            let mut out = BTreeMap::new();
            for (k, v) in map {
                match v {
                    Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    _ => {
                        return Err(bad(
                            "invalid_attributes",
                            &format!("attributes.{k}"),
                            "attribute values must be strings",
                        ));
                    }
                }
            }
            out
        }
        Some(_) => {
            return Err(bad(
                "invalid_attributes",
                "attributes",
                "attributes must be an object of strings",
            ));
        }
    };
    let reply_to = obj.get("reply_to").filter(|v| !v.is_null());
    let verified_subject = parse_identity(obj.get("identity"))?;

    let from_raw_email = raw_email.is_some();
    let input = EscalationInput {
        subject,
        customer,
        language,
        transcript,
        raw_email,
        voice_transcript,
        speakers,
        voice_mode,
    };
    let (conversation, reply_to) = normalize(&channel, input, reply_to)?;
    if from_raw_email {
        refuse_nul_in_conversation(&conversation)?;
    }

    Ok(Escalation {
        session_id,
        channel,
        payload: EscalationPayload {
            conversation,
            summary,
            priority,
            attributes,
            reply_to,
            verified_subject,
        },
        request_hash: canonical_hash(body),
    })
}

/// A key of the body echoed in a field name: at most 64 characters, control characters replaced.
fn echo_key(key: &str) -> String {
    key.chars()
        .take(64)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// `voice_transcript`: `{"format": "aws_transcribe"|"webvtt"|"deepgram"|"assemblyai",
/// "content": …, "started_at": "RFC 3339"?}`. The content is read by the voice channel.
fn parse_voice_transcript(value: Option<&Value>) -> Result<Option<VoiceTranscript>, ApiError> {
    let obj = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(obj)) => obj,
        Some(_) => {
            return Err(bad(
                "invalid_voice_transcript",
                "voice_transcript",
                "voice_transcript must be an object: {\"format\": \"webvtt\", \"content\": …}",
            ));
        }
    };
    if let Some(key) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "format" | "content" | "started_at"))
    {
        return Err(bad(
            "invalid_voice_transcript",
            &format!("voice_transcript.{}", echo_key(key)),
            "voice_transcript takes only format, content and started_at",
        ));
    }
    let format = opt_string(obj, "format", "voice_transcript.format")?.ok_or_else(|| {
        bad(
            "missing_field",
            "voice_transcript.format",
            format!(
                "voice_transcript.format is required: one of {}",
                VoiceFormat::names()
            ),
        )
    })?;
    let format = format.parse::<VoiceFormat>().map_err(|valid| {
        bad(
            "invalid_voice_transcript",
            "voice_transcript.format",
            format!("voice_transcript.format must be one of {valid}"),
        )
    })?;
    let content = obj
        .get("content")
        .filter(|v| !v.is_null())
        .cloned()
        .ok_or_else(|| {
            bad(
                "missing_field",
                "voice_transcript.content",
                "voice_transcript.content is required: the provider's JSON output, or the \
                 WebVTT text as a string",
            )
        })?;
    let started_at = match opt_string(obj, "started_at", "voice_transcript.started_at")? {
        None => None,
        Some(s) => Some(
            DateTime::parse_from_rfc3339(&s)
                .map_err(|_| {
                    bad(
                        "invalid_time",
                        "voice_transcript.started_at",
                        "voice_transcript.started_at must be an RFC 3339 time such as \
                         2026-11-22T09:30:00Z",
                    )
                })?
                .with_timezone(&Utc),
        ),
    };
    Ok(Some(VoiceTranscript {
        format,
        content,
        started_at,
    }))
}

/// `speakers`: an object of speaker label → role name. The voice channel checks the labels
/// and roles against the transcript.
fn parse_speakers(value: Option<&Value>) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    let map = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(bad(
                "invalid_speakers",
                "speakers",
                "speakers must be an object of speaker label → role, such as {\"spk_0\": \"bot\"}",
            ));
        }
    };
    if map.len() > channels::voice::MAX_SPEAKERS {
        return Err(bad(
            "invalid_speakers",
            "speakers",
            format!(
                "speakers may map at most {} labels",
                channels::voice::MAX_SPEAKERS
            ),
        ));
    }
    map.iter()
        .map(|(label, role)| match role {
            Value::String(role) => Ok((label.clone(), role.clone())),
            _ => Err(bad(
                "invalid_speakers",
                &format!("speakers.{}", echo_key(label)),
                "each speaker's role must be a string: customer, bot, agent or system",
            )),
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// The longest identity subject accepted (Salesforce user ids and emails fit).
const IDENTITY_SUBJECT_MAX_CHARS: usize = 255;

/// `identity`: `{"subject": "…", "verified": true}`. Only a verified subject counts.
fn parse_identity(value: Option<&Value>) -> Result<Option<String>, ApiError> {
    let obj = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(obj)) => obj,
        Some(_) => {
            return Err(bad(
                "invalid_identity",
                "identity",
                "identity must be an object: {\"subject\": \"…\", \"verified\": true}",
            ));
        }
    };
    if let Some(key) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "subject" | "verified"))
    {
        return Err(bad(
            "invalid_identity",
            &format!("identity.{key}"),
            "identity takes only subject and verified",
        ));
    }
    let verified = match obj.get("verified") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(bad(
                "invalid_identity",
                "identity.verified",
                "identity.verified must be true or false",
            ));
        }
    };
    let subject = opt_string(obj, "subject", "identity.subject")?;
    match subject {
        Some(s)
            if s.trim().is_empty()
                || s.chars().count() > IDENTITY_SUBJECT_MAX_CHARS
                || s.chars().any(char::is_control) =>
        {
            Err(bad(
                "invalid_identity",
                "identity.subject",
                format!(
                    "identity.subject must be 1-{IDENTITY_SUBJECT_MAX_CHARS} characters without control characters"
                ),
            ))
        }
        Some(s) if verified => Ok(Some(s)),
        Some(_) => Ok(None),
        None if verified => Err(bad(
            "invalid_identity",
            "identity.subject",
            "a verified identity needs its subject",
        )),
        None => Ok(None),
    }
}

fn parse_customer(value: Option<&Value>) -> Result<Customer, ApiError> {
    let obj = match value {
        None | Some(Value::Null) => return Ok(Customer::default()),
        Some(Value::Object(obj)) => obj,
        Some(_) => {
            return Err(bad(
                "invalid_customer",
                "customer",
                "customer must be an object",
            ));
        }
    };
    let name = opt_string(obj, "name", "customer.name")?.filter(|s| !s.trim().is_empty());
    let email = match opt_string(obj, "email", "customer.email")? {
        None => None,
        Some(raw) => Some(EmailAddress::parse(&raw).map_err(|_| {
            bad(
                "invalid_email",
                "customer.email",
                "customer.email is not a valid email address",
            )
        })?),
    };
    let phone = match opt_string(obj, "phone", "customer.phone")? {
        None => None,
        Some(raw) => Some(parse_phone(&raw).ok_or_else(|| {
            bad(
                "invalid_phone",
                "customer.phone",
                "customer.phone must be a phone number such as +14155550100",
            )
        })?),
    };
    Ok(Customer { name, email, phone })
}

/// The longest phone text kept (Salesforce's `SuppliedPhone` and the column hold 40).
pub const PHONE_MAX_CHARS: usize = 40;

/// A phone number as the customer wrote it (trimmed), kept for display: an
/// optional leading `+`, then 5–20 digits, with spaces, dots, dashes and
/// parentheses allowed between them. Lookup uses [`phone_e164`], not this text.
fn parse_phone(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.chars().count() > PHONE_MAX_CHARS {
        return None;
    }
    let rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let mut digits = 0;
    for c in rest.chars() {
        match c {
            '0'..='9' => digits += 1,
            ' ' | '.' | '-' | '(' | ')' => {}
            _ => return None,
        }
    }
    (5..=20).contains(&digits).then(|| trimmed.to_string())
}

/// The number in E.164 (`+15550107788`), the form sessions are stored and found
/// by, whatever the punctuation. `None` when it cannot be read as an
/// international number: without a `+country code` there is no region to
/// assume, and a number with an extension is not one E.164 number.
pub fn phone_e164(raw: &str) -> Option<String> {
    let number = phonenumber::parse(None, raw.trim()).ok()?;
    if number.extension().is_some() {
        return None;
    }
    Some(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Refuses NUL anywhere in the body (string values and object keys): PostgreSQL
/// text cannot hold it, and no customer-facing text needs it. `path` is the
/// JSON path so far.
fn refuse_nul(value: &Value, path: &mut String) -> Result<(), ApiError> {
    let nul = |path: &str| {
        bad(
            "invalid_text",
            path,
            format!("{path} contains a NUL character (\\u0000); remove it"),
        )
    };
    match value {
        Value::String(s) if s.contains('\0') => Err(nul(path)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                refuse_nul(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if key.contains('\0') {
                    return Err(nul(path));
                }
                refuse_nul(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// NUL can also arrive encoded inside a `raw_email` (quoted-printable, base64):
/// the decoded conversation is checked too.
fn refuse_nul_in_conversation(conversation: &Conversation) -> Result<(), ApiError> {
    let customer = &conversation.customer;
    let texts = conversation
        .turns
        .iter()
        .map(|t| t.text.as_str())
        .chain(conversation.subject.as_deref())
        .chain(customer.name.as_deref());
    for text in texts {
        if text.contains('\0') {
            return Err(bad(
                "invalid_text",
                "raw_email",
                "a message in raw_email decodes to text with a NUL character; remove it",
            ));
        }
    }
    Ok(())
}

fn parse_turns(items: &[Value]) -> Result<Vec<Turn>, ApiError> {
    if items.len() > MAX_TURNS {
        return Err(bad(
            "transcript_too_long",
            "transcript",
            format!("transcript has more than {MAX_TURNS} turns"),
        ));
    }
    let now = Utc::now();
    let mut turns = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| format!("transcript[{i}].{name}");
        let obj = item.as_object().ok_or_else(|| {
            bad(
                "invalid_turn",
                &format!("transcript[{i}]"),
                "each turn must be an object",
            )
        })?;
        let role = match opt_string(obj, "role", &field("role"))?.as_deref() {
            Some("customer") => Role::Customer,
            Some("bot") => Role::Bot,
            Some("agent") => Role::Agent,
            Some("system") => Role::System,
            _ => {
                return Err(bad(
                    "invalid_role",
                    &field("role"),
                    "role must be one of customer, bot, agent, system",
                ));
            }
        };
        let text = opt_string(obj, "text", &field("text"))?
            .ok_or_else(|| bad("missing_field", &field("text"), "each turn needs text"))?;
        if text.chars().count() > TURN_MAX_CHARS {
            return Err(bad(
                "turn_too_long",
                &field("text"),
                format!("a turn may hold at most {TURN_MAX_CHARS} characters"),
            ));
        }
        let at = match opt_string(obj, "at", &field("at"))? {
            None => now,
            Some(s) => DateTime::parse_from_rfc3339(&s)
                .map_err(|_| {
                    bad(
                        "invalid_time",
                        &field("at"),
                        "at must be an RFC 3339 time such as 2026-11-22T09:30:00Z",
                    )
                })?
                .with_timezone(&Utc),
        };
        turns.push(Turn {
            role,
            text,
            at,
            offset_ms: None,
        });
    }
    Ok(turns)
}

fn is_language_tag(tag: &str) -> bool {
    if tag.len() > 35 {
        return false;
    }
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// SHA-256 of a canonical rendering (object keys sorted at every level), so key
/// order and whitespace do not make "the same body" look different.
pub fn canonical_hash(value: &Value) -> String {
    use sha2::{Digest, Sha256};
    let mut out = String::new();
    canonical(value, &mut out);
    let digest = Sha256::digest(out.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                canonical(&map[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_reply_to_is_typed_and_old_raw_values_read_as_none() {
        let payload = |reply_to: Value| {
            serde_json::from_value::<EscalationPayload>(json!({
                "conversation": {"subject": null, "customer": {}, "language": "en",
                                 "turns": [], "thread": null},
                "summary": null, "priority": "low", "attributes": {}, "reply_to": reply_to,
            }))
            .unwrap()
            .reply_to
        };
        assert_eq!(
            payload(json!({"type": "webhook", "url": "https://bot.example.com/h"})),
            Some(ReplyTarget::Webhook {
                url: "https://bot.example.com/h".into()
            })
        );
        assert_eq!(
            payload(json!({"webhook_url": "https://bot.example.com/h"})),
            None
        );
        assert_eq!(payload(Value::Null), None);
    }

    #[test]
    fn session_ids() {
        assert!(SessionId::parse("abc-123_x.y:z").is_ok());
        assert!(SessionId::parse("").is_err());
        assert!(SessionId::parse(&"a".repeat(128)).is_ok());
        assert!(SessionId::parse(&"a".repeat(129)).is_err());
        assert!(SessionId::parse("a b").is_err());
        assert!(SessionId::parse("é").is_err());
    }

    #[test]
    fn canonical_hash_ignores_key_order_but_not_values() {
        let a = json!({"a": 1, "b": {"x": [1, 2], "y": "z"}});
        let b: Value = serde_json::from_str(r#"{"b":{"y":"z","x":[1,2]},"a":1}"#).unwrap();
        let c = json!({"a": 1, "b": {"x": [2, 1], "y": "z"}});
        assert_eq!(canonical_hash(&a), canonical_hash(&b));
        assert_ne!(canonical_hash(&a), canonical_hash(&c));
    }

    #[test]
    fn languages_and_phones() {
        for ok in ["en", "fr-CA", "zh-Hant-TW", "pt-BR"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in ["", "e", "english-language-x", "en_US", "en--US"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
        assert_eq!(
            parse_phone(" +1 (415) 555-0100 ").as_deref(),
            Some("+1 (415) 555-0100")
        );
        assert_eq!(parse_phone("call me"), None);
        assert_eq!(parse_phone("+12"), None);
        assert_eq!(parse_phone(&format!("+1 {}", "5 ".repeat(20))), None);
    }

    #[test]
    fn phones_compare_in_e164() {
        let want = Some("+15550107788".to_string());
        for same in [
            "+15550107788",
            "+1 (555) 010-7788",
            "+1.555.010.7788",
            "+1 555 0107788",
        ] {
            assert_eq!(phone_e164(same), want, "{same}");
        }
        assert_eq!(
            phone_e164("+44 20 7946 0958").as_deref(),
            Some("+442079460958")
        );
        assert_ne!(phone_e164("+15550107788"), phone_e164("+15550107789"));
        assert_eq!(phone_e164("5550107788"), None, "no country code");
    }

    /// The body read by the built-in channels, as `POST /v1/escalations` reads it.
    fn through_channels(body: &Value) -> Result<Escalation, ApiError> {
        let registry = channels::Registry::builtin();
        let invalid =
            |e: channels::ChannelError| ApiError::invalid(e.code(), e.field(), e.to_string());
        parse_with_reply_to(
            body,
            |kind, input, reply_to| {
                let channel = registry.get(kind).expect("a built-in channel");
                let conversation = channel.normalize(input).map_err(invalid)?;
                let target = channel
                    .reply_target(reply_to, &conversation)
                    .map_err(invalid)?;
                Ok((conversation, target))
            },
            |name| registry.resolve(name).map_err(invalid),
        )
    }

    const VTT: &str = "WEBVTT\n\n00:01.000 --> 00:02.500\n<v Bot>Hello, how can I help?\n\n\
                       00:03.000 --> 00:04.000\n<v Caller>My card was declined.\n";

    fn call() -> Value {
        json!({
            "session_id": "call-1",
            "channel": "voice",
            "customer": {"phone": "+14155550100"},
            "voice_transcript": {"format": "webvtt", "content": VTT,
                                 "started_at": "2026-11-22T09:00:00Z"},
            "speakers": {"Bot": "bot", "Caller": "customer"},
            "voice_mode": "live_transfer",
        })
    }

    #[test]
    fn a_voice_transcript_becomes_turns_with_their_place_in_the_call() {
        let escalation = through_channels(&call()).unwrap();
        let conversation = &escalation.payload.conversation;
        let turns: Vec<(Role, &str, String, Option<u64>)> = conversation
            .turns
            .iter()
            .map(|t| (t.role, t.text.as_str(), t.at.to_rfc3339(), t.offset_ms))
            .collect();
        assert_eq!(
            turns,
            [
                (
                    Role::Bot,
                    "Hello, how can I help?",
                    "2026-11-22T09:00:01+00:00".to_owned(),
                    Some(1_000)
                ),
                (
                    Role::Customer,
                    "My card was declined.",
                    "2026-11-22T09:00:03+00:00".to_owned(),
                    Some(3_000)
                ),
            ]
        );
        let stored = serde_json::to_value(&escalation.payload).unwrap();
        assert_eq!(
            stored["conversation"]["voice"],
            json!({"mode": "live_transfer", "format": "webvtt"})
        );
        assert_eq!(stored["conversation"]["turns"][1]["offset_ms"], 3_000);
        assert_eq!(
            escalation.payload.reply_to,
            Some(ReplyTarget::Phone {
                number: "+14155550100".into()
            })
        );

        // Other conversations store exactly what they stored before.
        let chat = through_channels(&json!({
            "session_id": "chat-1", "channel": "chat",
            "transcript": [{"role": "customer", "text": "hi", "at": "2026-11-22T09:00:00Z"}],
        }))
        .unwrap();
        let stored = serde_json::to_value(&chat.payload).unwrap();
        assert!(stored["conversation"].get("voice").is_none());
        assert!(
            stored["conversation"]["turns"][0]
                .get("offset_ms")
                .is_none()
        );
    }

    #[test]
    fn voice_fields_are_refused_by_name() {
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut body = call();
            edit(&mut body);
            body
        };
        let many: serde_json::Map<String, Value> = (0..=channels::voice::MAX_SPEAKERS)
            .map(|i| (format!("spk_{i}"), json!("bot")))
            .collect();
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                with(&|b| b["voice_transcript"] = json!("WEBVTT")),
                "invalid_voice_transcript",
                "voice_transcript",
            ),
            (
                with(&|b| b["voice_transcript"]["fromat"] = json!("webvtt")),
                "invalid_voice_transcript",
                "voice_transcript.fromat",
            ),
            (
                with(&|b| {
                    b["voice_transcript"]
                        .as_object_mut()
                        .unwrap()
                        .remove("format");
                }),
                "missing_field",
                "voice_transcript.format",
            ),
            (
                with(&|b| b["voice_transcript"]["format"] = json!("vtt")),
                "invalid_voice_transcript",
                "voice_transcript.format",
            ),
            (
                with(&|b| b["voice_transcript"]["format"] = json!(3)),
                "invalid_field",
                "voice_transcript.format",
            ),
            (
                with(&|b| b["voice_transcript"]["content"] = Value::Null),
                "missing_field",
                "voice_transcript.content",
            ),
            (
                with(&|b| b["voice_transcript"]["content"] = json!({"cues": []})),
                "invalid_voice_transcript",
                "voice_transcript.content",
            ),
            (
                with(&|b| b["voice_transcript"]["content"] = json!("WEBVTT\n\n00:01 --> x\n")),
                "invalid_voice_transcript",
                "voice_transcript.content",
            ),
            (
                with(&|b| b["voice_transcript"]["started_at"] = json!("yesterday")),
                "invalid_time",
                "voice_transcript.started_at",
            ),
            (
                with(&|b| b["speakers"] = json!(["Bot"])),
                "invalid_speakers",
                "speakers",
            ),
            (
                with(&|b| b["speakers"]["Bot"] = json!(1)),
                "invalid_speakers",
                "speakers.Bot",
            ),
            (
                with(&|b| b["speakers"]["Bot"] = json!("assistant")),
                "invalid_speakers",
                "speakers.Bot",
            ),
            (
                with(&|b| b["speakers"] = Value::Object(many.clone())),
                "invalid_speakers",
                "speakers",
            ),
            (
                with(&|b| {
                    b["speakers"].as_object_mut().unwrap().remove("Caller");
                }),
                "unmapped_speaker",
                "speakers",
            ),
            (
                with(&|b| b["voice_mode"] = json!("transfer")),
                "invalid_voice_mode",
                "voice_mode",
            ),
            (
                with(&|b| b["voice_mode"] = json!(true)),
                "invalid_field",
                "voice_mode",
            ),
            (
                with(&|b| b["channel"] = json!("chat")),
                "voice_transcript_not_supported",
                "voice_transcript",
            ),
            (
                with(&|b| {
                    b["transcript"] = json!([{"role": "customer", "text": "hi"}]);
                }),
                "transcript_and_voice_transcript",
                "voice_transcript",
            ),
        ];
        for (body, code, field) in cases {
            match through_channels(&body) {
                Err(ApiError::Invalid {
                    code: got_code,
                    field: got_field,
                    detail,
                }) => {
                    assert_eq!(
                        (got_code, got_field.as_deref()),
                        (code, Some(field)),
                        "{detail}"
                    );
                    assert!(!detail.contains("declined"), "{detail}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn dot_segments_and_format_suffixes_are_not_session_ids() {
        for bad in [".", "..", "order.json", "a.XML"] {
            assert!(SessionId::parse(bad).is_err(), "{bad}");
        }
        for ok in ["...", ".a", "a..b", "json", "a.jsonx"] {
            assert!(SessionId::parse(ok).is_ok(), "{ok}");
        }
    }
}
