//! The shapes of request bodies the handlers read by hand (field by field, so that every
//! error names its field), described for the OpenAPI document, and the small answers that
//! have no other home. The response views (`SessionView`, `JobView`, …) derive their schemas
//! where they are defined.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The body of `POST /v1/escalations` (design §7): what `escalation::request::parse` reads.
/// A conversation comes as `transcript`, or for email as `raw_email`, or for voice as
/// `voice_transcript`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "session_id": "conv-8842",
    "channel": "chat",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
    "priority": "high",
    "subject": "Refund for order 1042",
    "summary": "Customer was charged twice for order 1042 and wants a refund.",
    "transcript": [
        {"role": "customer", "text": "I was charged twice for order 1042.", "at": "2026-11-22T09:00:00Z"},
        {"role": "bot", "text": "Let me get a person to help with the refund.", "at": "2026-11-22T09:00:05Z"}
    ]
}))]
pub struct EscalationRequest {
    /// The caller's id for the conversation: 1–128 of `A-Za-z0-9_.:-`. Not `.` or `..`, not
    /// ending in `.json` / `.xml`, not starting with `inbound:`. Compared ignoring letter case
    /// with other sessions (Salesforce external ids are).
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]{1,128}$")]
    pub session_id: String,
    /// `email`, `chat`, `sms`, `whatsapp`, `voice`, or a configured plugin channel's name.
    #[schema(pattern = "^[a-z][a-z0-9_-]{0,63}$", example = "chat")]
    pub channel: String,
    pub customer: Option<CustomerInput>,
    /// A BCP-47 tag (default `en`).
    #[schema(example = "en")]
    pub language: Option<String>,
    /// Default `medium`.
    pub priority: Option<PriorityInput>,
    pub subject: Option<String>,
    /// The AI's summary for the rep (at most the Case Description limit).
    pub summary: Option<String>,
    /// The conversation, oldest turn first.
    pub transcript: Option<Vec<TurnInput>>,
    /// For `email`: RFC 5322 messages, oldest first, instead of `transcript`.
    pub raw_email: Option<Vec<String>>,
    /// For `voice`: the voice platform's transcript instead of `transcript`.
    pub voice_transcript: Option<VoiceTranscriptInput>,
    /// For `voice`: the platform's speaker or channel labels mapped to `customer` / `bot`.
    pub speakers: Option<BTreeMap<String, String>>,
    /// For `voice`: `live_transfer` or `logged`.
    pub voice_mode: Option<String>,
    /// Strings, allow-listed by configuration into routing attributes and Case fields.
    pub attributes: Option<BTreeMap<String, String>>,
    /// Where the channel answers the customer; its shape is the channel's (chat:
    /// `{"webhook_url": "https://…"}`).
    pub reply_to: Option<Value>,
    /// A subject the AI product has verified; only `verified: true` counts.
    pub identity: Option<IdentityInput>,
}

/// The customer, as the escalation names them.
#[derive(Deserialize, ToSchema)]
pub struct CustomerInput {
    pub name: Option<String>,
    pub email: Option<String>,
    /// E.164 or a number the channel can read.
    pub phone: Option<String>,
}

/// `low`, `medium`, `high` or `critical`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriorityInput {
    Low,
    Medium,
    High,
    Critical,
}

/// One turn of the conversation.
#[derive(Deserialize, ToSchema)]
pub struct TurnInput {
    /// `customer`, `bot`, `agent` or `system`.
    pub role: String,
    pub text: String,
    /// RFC 3339.
    pub at: Option<String>,
}

/// A voice platform's transcript.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoiceTranscriptInput {
    /// `aws_transcribe`, `webvtt`, `deepgram` or `assemblyai`.
    pub format: String,
    /// The platform's own JSON, or the WebVTT text.
    pub content: Value,
    /// RFC 3339: when the call started.
    pub started_at: Option<String>,
}

/// A verified identity.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityInput {
    pub subject: Option<String>,
    pub verified: Option<bool>,
}

/// The body of `POST /v1/sessions/{id}/messages`: the customer's message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "Is there any news on my refund?"}))]
pub struct MessageRequest {
    /// Up to 32,000 characters, no NUL; split into parts the rep can receive. The live
    /// messaging end keyword (`miaw.end_keyword`) ends the session instead.
    #[schema(min_length = 1, max_length = 32000)]
    pub text: String,
}

/// `202` to a customer message: queued for the rep, or (the end keyword) the session closing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageAccepted {
    pub session_id: String,
    /// `queued`, or `closing` after the end keyword.
    pub status: String,
    /// The queued parts' ids, in order (absent after the end keyword).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    /// How many parts the message was split into (absent after the end keyword).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<usize>,
    /// `true` when the message was the end keyword and the session is closing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<bool>,
}

/// Where a live session stands after `POST /v1/sessions/{id}/close`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CloseAnswer {
    pub session_id: String,
    /// `closing` (202) or `closed` (200).
    pub status: String,
}

/// What a bridge's inbound webhook is answered when it verified.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InboundAck {
    pub received: bool,
}
