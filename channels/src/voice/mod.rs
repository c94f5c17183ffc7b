//! The voice channel: an AI phone bot escalates a call with the transcript its voice platform
//! produced (Amazon Transcribe or Contact Lens JSON, WebVTT with voice spans, Deepgram or
//! AssemblyAI JSON) or its own JSON `transcript`. Speakers are mapped to roles by label (the
//! request's `speakers` over `[channels.voice.speakers]`), never guessed; consecutive pieces of
//! one speaker become one turn, dated from the call's start and keeping its offset into the
//! call. Nothing is sent on the call itself: the rep's written answers go to the caller by SMS
//! (`follow_up = "sms"`, through [`Registry::deliverer`](crate::Registry::deliverer)) or stay in
//! Salesforce.
//!
//! Parsing is linear in the content and bounded: at most 5 MiB of content, 100,000 pieces,
//! 100 speakers and 10,000 turns.

mod assemblyai;
mod aws_transcribe;
mod config;
mod deepgram;
mod fragments;
mod json;
mod model;
mod speakers;
mod webvtt;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

pub use config::{FollowUp, VoiceConfig};
pub use json::MAX_CONTENT_BYTES;
pub use model::{VoiceFormat, VoiceInfo, VoiceMode, VoiceTranscript};
pub use speakers::MAX_SPEAKERS;

use crate::{
    Capabilities, Channel, ChannelError, ChannelKind, Conversation, EscalationInput, ReplyTarget,
    Role, Route, Turn, normalize, reply,
};
use fragments::Fragments;
use speakers::SpeakerMap;

/// What a format parser found: the pieces of speech, and the format's own speaker defaults.
pub(crate) struct Parsed {
    fragments: Fragments,
    format_defaults: BTreeMap<String, Role>,
}

/// The voice channel adapter (`[channels.voice]`).
#[derive(Debug, Clone)]
pub struct VoiceChannel {
    follow_up: FollowUp,
    speakers: BTreeMap<String, Role>,
}

impl Default for VoiceChannel {
    fn default() -> Self {
        Self::new(FollowUp::default(), BTreeMap::new())
    }
}

impl VoiceChannel {
    pub(crate) fn new(follow_up: FollowUp, speakers: BTreeMap<String, Role>) -> Self {
        Self {
            follow_up,
            speakers,
        }
    }

    /// How the rep's written answers reach the caller.
    #[must_use]
    pub fn follow_up(&self) -> FollowUp {
        self.follow_up
    }

    /// [`Channel::normalize`] with an explicit clock: without `voice_transcript.started_at`
    /// the call is taken to have ended at `now`.
    ///
    /// # Errors
    /// As [`Channel::normalize`].
    pub fn normalize_at(
        &self,
        input: EscalationInput,
        now: DateTime<Utc>,
    ) -> Result<Conversation, ChannelError> {
        if input.raw_email.is_some() {
            return Err(ChannelError::RawEmailNotSupported {
                channel: ChannelKind::Voice.to_string(),
            });
        }
        let language = normalize::language(&input.language)?;
        let (turns, format) = match (input.transcript, input.voice_transcript) {
            (Some(_), Some(_)) => return Err(ChannelError::TranscriptAndVoiceTranscript),
            (None, None) => return Err(ChannelError::MissingTranscript),
            (Some(turns), None) => {
                if input.speakers.is_some() {
                    return Err(ChannelError::InvalidSpeakers {
                        field: "speakers".to_owned(),
                        reason: "`speakers` maps the labels of a `voice_transcript`; the turns \
                                 of a `transcript` carry their roles"
                            .to_owned(),
                    });
                }
                (normalize::transcript(turns)?, None)
            }
            (None, Some(call)) => (
                self.call_turns(&call, input.speakers.as_ref(), now)?,
                Some(call.format),
            ),
        };
        Ok(Conversation {
            subject: normalize::non_blank(input.subject),
            customer: normalize::customer(input.customer),
            language,
            turns,
            thread: None,
            voice: Some(VoiceInfo {
                mode: input.voice_mode.unwrap_or_default(),
                format,
            }),
        })
    }

    /// The turns of a call transcript, dated from the call's start.
    fn call_turns(
        &self,
        call: &VoiceTranscript,
        speakers: Option<&BTreeMap<String, String>>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Turn>, ChannelError> {
        let requested = speakers
            .map(speakers::requested)
            .transpose()?
            .unwrap_or_default();
        let parsed = parse(call.format, &call.content)?;
        let map = SpeakerMap {
            requested: &requested,
            configured: &self.speakers,
            format_defaults: &parsed.format_defaults,
        };
        let roles = parsed
            .fragments
            .labels()
            .iter()
            .map(|label| map.role(label))
            .collect::<Result<Vec<Role>, ChannelError>>()?;
        let length_ms = parsed.fragments.call_length_ms();
        let labelled = parsed.fragments.into_turns()?;
        if labelled.is_empty() {
            return Err(ChannelError::InvalidVoiceTranscript {
                field: "voice_transcript.content",
                reason: "the transcript holds no speech".to_owned(),
            });
        }
        let started_at = call.started_at.unwrap_or_else(|| now - millis(length_ms));
        Ok(labelled
            .into_iter()
            .map(|turn| Turn {
                role: roles[turn.label],
                text: turn.text,
                at: started_at + millis(turn.start_ms),
                offset_ms: Some(turn.start_ms),
            })
            .collect())
    }
}

/// Offsets are at most 7 days ([`fragments::MAX_OFFSET_MS`]), well within a `Duration`.
fn millis(ms: u64) -> Duration {
    Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The pieces of speech in `content`, read as `format` says.
fn parse(format: VoiceFormat, content: &Value) -> Result<Parsed, ChannelError> {
    let wrong_type = |reason: &str| ChannelError::InvalidVoiceTranscript {
        field: "voice_transcript.content",
        reason: reason.to_owned(),
    };
    let parser: fn(&Value) -> Result<Parsed, ChannelError> = match format {
        VoiceFormat::Webvtt => {
            return match content {
                Value::String(text) => webvtt::parse(text),
                _ => Err(wrong_type(
                    "for webvtt, content must be the WebVTT file's text as a string",
                )),
            };
        }
        VoiceFormat::AwsTranscribe => aws_transcribe::parse,
        VoiceFormat::Deepgram => deepgram::parse,
        VoiceFormat::Assemblyai => assemblyai::parse,
    };
    if !content.is_object() {
        return Err(wrong_type(&format!(
            "for {format}, content must be the provider's JSON output itself (an object), not \
             a string or a list"
        )));
    }
    json::check_size(content)?;
    parser(content)
}

#[async_trait::async_trait]
impl Channel for VoiceChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Voice
    }

    fn preferred_route(&self) -> Route {
        Route::Messaging
    }

    /// Nothing is sent on the call: follow-ups go through SMS ([`Channel::delivers_through`]).
    fn capabilities(&self) -> Capabilities {
        Capabilities::receive_only()
    }

    /// `{"phone": "+E.164"}`, defaulting to the caller's phone: where SMS follow-ups go.
    fn reply_target(
        &self,
        reply_to: Option<&Value>,
        conversation: &Conversation,
    ) -> Result<Option<ReplyTarget>, ChannelError> {
        reply::phone(ChannelKind::Voice.as_str(), reply_to, conversation)
    }

    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError> {
        self.normalize_at(input, Utc::now())
    }

    /// SMS when `follow_up = "sms"`; otherwise the answers stay in Salesforce.
    fn delivers_through(&self) -> Option<ChannelKind> {
        match self.follow_up {
            FollowUp::Sms => Some(ChannelKind::Sms),
            FollowUp::None => None,
        }
    }
}
