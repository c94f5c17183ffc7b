//! `[channels.voice]`: how rep answers follow a call up, and the default speaker map.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::VoiceChannel;
use super::speakers;
use crate::ChannelError;

/// `[channels.voice]`.
///
/// ```toml
/// [channels.voice]
/// type = "voice"
/// follow_up = "sms"          # or "none"
/// [channels.voice.speakers]  # transcript label → customer | bot | agent | system
/// spk_0 = "bot"
/// CUSTOMER = "customer"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceConfig {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// How the rep's written answers reach the caller.
    #[serde(default)]
    pub follow_up: FollowUp,
    /// Speaker labels of voice transcripts → roles, used for every label the request's
    /// `speakers` does not map.
    #[serde(default)]
    pub speakers: BTreeMap<String, String>,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            follow_up: FollowUp::default(),
            speakers: BTreeMap::new(),
        }
    }
}

fn enabled_by_default() -> bool {
    true
}

/// `follow_up`: where the rep's written answers to a caller go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUp {
    /// By SMS to the caller's number, when one is known and the SMS channel delivers.
    #[default]
    Sms,
    /// Nowhere: the answers stay in Salesforce.
    None,
}

impl FollowUp {
    /// The wire name (`sms`, `none`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::None => "none",
        }
    }
}

impl VoiceConfig {
    /// The voice adapter these settings describe.
    ///
    /// # Errors
    /// [`ChannelError::InvalidConfig`] naming `channels.<name>.speakers.<label>` for a label
    /// that is empty or too long or a role that is not one of customer, bot, agent, system.
    pub fn build(&self, name: &str) -> Result<VoiceChannel, ChannelError> {
        let speakers = speakers::configured(&self.speakers, name)?;
        Ok(VoiceChannel::new(self.follow_up, speakers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Channel, ChannelKind};

    fn config(json: serde_json::Value) -> VoiceConfig {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_follow_up_by_sms_with_no_speakers() {
        let voice = config(serde_json::json!({}));
        assert_eq!(voice, VoiceConfig::default());
        assert_eq!(voice.follow_up, FollowUp::Sms);
        let channel = voice.build("voice").unwrap();
        assert_eq!(channel.delivers_through(), Some(ChannelKind::Sms));
        let none = config(serde_json::json!({"follow_up": "none"}))
            .build("voice")
            .unwrap();
        assert_eq!(none.delivers_through(), None);
    }

    #[test]
    fn bad_settings_are_named() {
        let err = serde_json::from_value::<VoiceConfig>(serde_json::json!({"follow_up": "email"}))
            .unwrap_err();
        assert!(err.to_string().contains("unknown variant `email`"), "{err}");
        let err =
            serde_json::from_value::<VoiceConfig>(serde_json::json!({"speaker": {}})).unwrap_err();
        assert!(err.to_string().contains("unknown field `speaker`"), "{err}");
        let err = config(serde_json::json!({"speakers": {"spk_0": "robot"}}))
            .build("voice")
            .unwrap_err();
        assert_eq!(
            err.field().as_deref(),
            Some("channels.voice.speakers.spk_0")
        );
        assert!(
            err.to_string().contains("customer, bot, agent, system"),
            "{err}"
        );
        let err = config(serde_json::json!({"speakers": {"": "bot"}}))
            .build("voice")
            .unwrap_err();
        assert_eq!(err.field().as_deref(), Some("channels.voice.speakers"));
    }
}
