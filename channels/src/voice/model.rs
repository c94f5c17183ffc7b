//! What a voice escalation carries (the transcript a voice platform produced, its format, how
//! the call was handed over) and what the conversation keeps of it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The transcript formats voice platforms produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoiceFormat {
    /// Amazon Transcribe batch output (speaker or channel labels), or Amazon Connect Contact
    /// Lens post-call output (`Participants`, `Transcript`).
    AwsTranscribe,
    /// W3C WebVTT captions with `<v Speaker>` voice spans.
    Webvtt,
    /// A Deepgram pre-recorded response (`results.utterances`, else `results.channels` words).
    Deepgram,
    /// An AssemblyAI transcript (`utterances` with letter speakers).
    Assemblyai,
}

impl VoiceFormat {
    /// Every format, in the order they are listed to users.
    pub const ALL: [VoiceFormat; 4] = [
        VoiceFormat::AwsTranscribe,
        VoiceFormat::Webvtt,
        VoiceFormat::Deepgram,
        VoiceFormat::Assemblyai,
    ];

    /// The wire name (`aws_transcribe`, `webvtt`, `deepgram`, `assemblyai`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwsTranscribe => "aws_transcribe",
            Self::Webvtt => "webvtt",
            Self::Deepgram => "deepgram",
            Self::Assemblyai => "assemblyai",
        }
    }

    /// The wire names joined for error messages.
    #[must_use]
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl fmt::Display for VoiceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a wire name exactly (no case folding); the error is the list of valid names.
impl FromStr for VoiceFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|format| format.as_str() == s)
            .ok_or_else(Self::names)
    }
}

/// How a voice platform handed the call over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoiceMode {
    /// The platform is bridging the caller to a rep by phone; the conversation carries the
    /// transcript so the rep has it when picking up.
    LiveTransfer,
    /// The AI ended the call; the conversation (or Case) is for a written follow-up.
    #[default]
    Logged,
}

impl VoiceMode {
    /// Both modes, in the order they are listed to users.
    pub const ALL: [VoiceMode; 2] = [VoiceMode::LiveTransfer, VoiceMode::Logged];

    /// The wire name (`live_transfer`, `logged`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LiveTransfer => "live_transfer",
            Self::Logged => "logged",
        }
    }

    /// How a rep reads the mode ("live transfer", "logged").
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::LiveTransfer => "live transfer",
            Self::Logged => "logged",
        }
    }
}

impl fmt::Display for VoiceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a wire name exactly; the error is the list of valid names.
impl FromStr for VoiceMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| Self::ALL.map(Self::as_str).join(", "))
    }
}

/// `voice_transcript` of an escalation: a transcript as the voice platform produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceTranscript {
    pub format: VoiceFormat,
    /// JSON for `aws_transcribe`, `deepgram` and `assemblyai`; a string for `webvtt`.
    pub content: Value,
    /// When the call started. Without it the call is taken to have ended when the escalation
    /// is accepted (its last utterance is "now").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
}

/// What a voice conversation keeps of how it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceInfo {
    pub mode: VoiceMode,
    /// The transcript's format; `None` when the AI product sent its own JSON `transcript`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<VoiceFormat>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_exactly() {
        for format in VoiceFormat::ALL {
            assert_eq!(format.as_str().parse::<VoiceFormat>(), Ok(format));
            assert_eq!(
                serde_json::to_value(format).unwrap(),
                Value::String(format.as_str().into())
            );
        }
        assert_eq!(
            "WebVTT".parse::<VoiceFormat>(),
            Err("aws_transcribe, webvtt, deepgram, assemblyai".into())
        );
        for mode in VoiceMode::ALL {
            assert_eq!(mode.as_str().parse::<VoiceMode>(), Ok(mode));
        }
        assert_eq!(VoiceMode::default(), VoiceMode::Logged);
        assert!("live".parse::<VoiceMode>().is_err());
    }

    #[test]
    fn voice_info_without_format_omits_it() {
        let info = VoiceInfo {
            mode: VoiceMode::LiveTransfer,
            format: None,
        };
        assert_eq!(
            serde_json::to_value(info).unwrap(),
            serde_json::json!({"mode": "live_transfer"})
        );
    }
}
