//! `ChannelError`: every way an escalation input or a channel configuration can be refused.

/// Why a raw email was refused. Kept apart so the texts stay generic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawEmailProblem {
    /// Not an RFC 5322 message (no header section).
    Unparseable,
    /// No `From` address.
    MissingFrom,
    /// A `From` address that is not a usable email address.
    InvalidFrom,
    /// No text or HTML body, or one with nothing but whitespace.
    MissingBody,
}

impl RawEmailProblem {
    fn describe(self) -> &'static str {
        match self {
            Self::Unparseable => "is not an RFC 5322 message",
            Self::MissingFrom => "has no From address",
            Self::InvalidFrom => "has a From address that is not a valid email address",
            Self::MissingBody => "has no text body",
        }
    }
}

impl std::fmt::Display for RawEmailProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// An input or configuration the channels refuse. `code()` is stable and `field()` names the
/// offending input field, so the gateway can answer a problem+json body. The texts never echo
/// message bodies, addresses or phone numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    #[error("unknown channel `{name}`; valid channels are: {valid}")]
    UnknownChannel { name: String, valid: String },
    #[error(
        "invalid plugin channel name: use 1-64 of a-z, 0-9, `_` and `-`, starting with a letter, \
         and not a built-in channel name"
    )]
    InvalidPluginName,
    #[error("channel `{channel}` takes no `reply_to`")]
    ReplyToNotSupported { channel: String },
    #[error("channel `{channel}` does not accept inbound webhooks")]
    InboundNotSupported { channel: String },
    #[error("channel `{0}` is not enabled")]
    ChannelDisabled(String),
    #[error("channel `{0}` is configured more than once")]
    DuplicateChannelConfig(String),
    #[error("invalid language tag; expected a BCP-47 tag such as `en` or `pt-BR`")]
    InvalidLanguage,
    #[error("a transcript is required")]
    MissingTranscript,
    #[error("the transcript is empty")]
    EmptyTranscript,
    #[error("transcript turn {index} has no text")]
    EmptyTurnText { index: usize },
    #[error("send either `transcript` or `raw_email`, not both")]
    TranscriptAndRawEmail,
    #[error("send either `transcript` or `raw_email`")]
    MissingConversation,
    #[error("the {channel} channel does not accept `raw_email`; send a `transcript`")]
    RawEmailNotSupported { channel: String },
    #[error("`raw_email` is empty")]
    EmptyRawEmail,
    #[error("raw email {index} {problem}")]
    InvalidRawEmail {
        index: usize,
        problem: RawEmailProblem,
    },
    #[error("`raw_email` holds only automatic replies or bounces, no customer message")]
    NoCustomerMessage,
    /// A `reply_to` that does not fit the channel's addressing; `field` is `reply_to` or the
    /// key inside it (`reply_to.webhook_url`).
    #[error("invalid `{field}`: {reason}")]
    InvalidReplyTo { field: String, reason: String },
    /// A channel setting that cannot be used; `setting` is its configuration key.
    #[error("{setting}: {reason}")]
    InvalidConfig { setting: String, reason: String },
    /// A provider webhook whose signature, id or timestamp does not verify.
    #[error("the webhook could not be verified: {0}")]
    WebhookNotVerified(crate::webhook::VerifyError),
    /// A verified provider webhook whose body is not what the channel expects.
    #[error("invalid webhook body at `{field}`: {reason}")]
    InvalidInbound { field: String, reason: String },
    /// A voice-only field (`voice_transcript`, `speakers`, `voice_mode`) on another channel.
    #[error("the {channel} channel does not accept `{field}`; it is for `channel: \"voice\"`")]
    VoiceNotSupported {
        channel: String,
        field: &'static str,
    },
    #[error("send either `transcript` or `voice_transcript`, not both")]
    TranscriptAndVoiceTranscript,
    /// A voice transcript that is not what its `format` says; `reason` names the place (a
    /// JSON path or a line number) and never quotes the transcript's text.
    #[error("invalid voice_transcript: {reason}")]
    InvalidVoiceTranscript { field: &'static str, reason: String },
    /// A voice transcript over the size, fragment or turn limits.
    #[error("voice_transcript.content is too large: {reason}")]
    VoiceTranscriptTooLarge { reason: String },
    /// A speaker of the transcript that neither the request's `speakers` nor the configured
    /// defaults map to a role. `label` is bounded and printable.
    #[error(
        "speaker `{label}` of the voice_transcript is not mapped to a role; add it to `speakers` \
         (for example {{\"{label}\": \"customer\"}}) or to [channels.voice.speakers]"
    )]
    UnmappedSpeaker { label: String },
    /// A `speakers` map that cannot be used; `field` is `speakers` or `speakers.<label>`.
    #[error("invalid `{field}`: {reason}")]
    InvalidSpeakers { field: String, reason: String },
}

impl ChannelError {
    /// A stable, snake_case code for API clients.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownChannel { .. } => "unknown_channel",
            Self::InvalidPluginName => "invalid_channel_name",
            Self::ChannelDisabled(_) => "channel_disabled",
            Self::DuplicateChannelConfig(_) => "duplicate_channel_config",
            Self::InvalidLanguage => "invalid_language",
            Self::MissingTranscript => "missing_transcript",
            Self::EmptyTranscript => "empty_transcript",
            Self::EmptyTurnText { .. } => "empty_turn_text",
            Self::TranscriptAndRawEmail => "transcript_and_raw_email",
            Self::MissingConversation => "missing_conversation",
            Self::RawEmailNotSupported { .. } => "raw_email_not_supported",
            Self::EmptyRawEmail => "empty_raw_email",
            Self::InvalidRawEmail { .. } => "invalid_raw_email",
            Self::NoCustomerMessage => "no_customer_message",
            Self::ReplyToNotSupported { .. } => "reply_to_not_supported",
            Self::InboundNotSupported { .. } => "inbound_not_supported",
            Self::InvalidReplyTo { .. } => "invalid_reply_to",
            Self::InvalidConfig { .. } => "invalid_channel_config",
            Self::WebhookNotVerified(_) => "invalid_signature",
            Self::InvalidInbound { .. } => "invalid_inbound",
            Self::VoiceNotSupported { .. } => "voice_transcript_not_supported",
            Self::TranscriptAndVoiceTranscript => "transcript_and_voice_transcript",
            Self::InvalidVoiceTranscript { .. } => "invalid_voice_transcript",
            Self::VoiceTranscriptTooLarge { .. } => "voice_transcript_too_large",
            Self::UnmappedSpeaker { .. } => "unmapped_speaker",
            Self::InvalidSpeakers { .. } => "invalid_speakers",
        }
    }

    /// The input field at fault, in the escalation body's terms (`raw_email[1]`,
    /// `transcript[3].text`), or `None` when no single field is.
    #[must_use]
    pub fn field(&self) -> Option<String> {
        match self {
            Self::UnknownChannel { .. } | Self::InvalidPluginName | Self::ChannelDisabled(_) => {
                Some("channel".to_owned())
            }
            Self::DuplicateChannelConfig(_) => Some("channels".to_owned()),
            Self::InvalidLanguage => Some("language".to_owned()),
            Self::MissingTranscript | Self::EmptyTranscript | Self::MissingConversation => {
                Some("transcript".to_owned())
            }
            Self::EmptyTurnText { index } => Some(format!("transcript[{index}].text")),
            Self::TranscriptAndRawEmail
            | Self::RawEmailNotSupported { .. }
            | Self::EmptyRawEmail
            | Self::NoCustomerMessage => Some("raw_email".to_owned()),
            Self::InvalidRawEmail { index, .. } => Some(format!("raw_email[{index}]")),
            Self::ReplyToNotSupported { .. } => Some("reply_to".to_owned()),
            Self::InboundNotSupported { .. } | Self::WebhookNotVerified(_) => None,
            Self::InvalidReplyTo { field, .. } | Self::InvalidInbound { field, .. } => {
                Some(field.clone())
            }
            Self::InvalidConfig { setting, .. } => Some(setting.clone()),
            Self::VoiceNotSupported { field, .. } => Some((*field).to_owned()),
            Self::TranscriptAndVoiceTranscript => Some("voice_transcript".to_owned()),
            Self::InvalidVoiceTranscript { field, .. } => Some((*field).to_owned()),
            Self::VoiceTranscriptTooLarge { .. } => Some("voice_transcript.content".to_owned()),
            Self::UnmappedSpeaker { .. } => Some("speakers".to_owned()),
            Self::InvalidSpeakers { field, .. } => Some(field.clone()),
        }
    }
}
