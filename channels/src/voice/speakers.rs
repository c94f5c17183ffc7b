//! Speaker labels → roles: the request's `speakers`, over `[channels.voice.speakers]`, over a
//! format's own defaults (Contact Lens participant roles). A label mapped nowhere is refused.

use std::collections::BTreeMap;

use crate::{ChannelError, Role, printable_prefix};

/// The most entries a `speakers` map (request or configuration) may have, and the most
/// speakers a transcript may have.
pub const MAX_SPEAKERS: usize = 100;
/// The longest speaker label, in characters.
pub(crate) const MAX_LABEL_CHARS: usize = 128;

const ROLE_NAMES: &str = "customer, bot, agent, system";

/// A role by its wire name, exactly.
pub(crate) fn role(name: &str) -> Option<Role> {
    match name {
        "customer" => Some(Role::Customer),
        "bot" => Some(Role::Bot),
        "agent" => Some(Role::Agent),
        "system" => Some(Role::System),
        _ => None,
    }
}

/// Why a label cannot be one: empty, or longer than [`MAX_LABEL_CHARS`].
pub(crate) fn label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        Some("a speaker label cannot be empty".to_owned())
    } else if label.chars().count() > MAX_LABEL_CHARS {
        Some(format!(
            "a speaker label may be at most {MAX_LABEL_CHARS} characters"
        ))
    } else {
        None
    }
}

/// `[channels.<name>.speakers]` checked: errors name the setting.
pub(crate) fn configured(
    speakers: &BTreeMap<String, String>,
    name: &str,
) -> Result<BTreeMap<String, Role>, ChannelError> {
    let setting = format!("channels.{name}.speakers");
    let invalid = |setting: String, reason: String| ChannelError::InvalidConfig { setting, reason };
    if speakers.len() > MAX_SPEAKERS {
        return Err(invalid(
            setting,
            format!("at most {MAX_SPEAKERS} speaker labels"),
        ));
    }
    speakers
        .iter()
        .map(|(label, value)| {
            if let Some(problem) = label_problem(label) {
                return Err(invalid(setting.clone(), problem));
            }
            let role = role(value).ok_or_else(|| {
                invalid(
                    format!("{setting}.{}", printable_prefix(label)),
                    format!("a role must be one of {ROLE_NAMES}"),
                )
            })?;
            Ok((label.clone(), role))
        })
        .collect()
}

/// The request's `speakers` checked: errors name `speakers` or `speakers.<label>`.
pub(crate) fn requested(
    speakers: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Role>, ChannelError> {
    let invalid = |field: String, reason: String| ChannelError::InvalidSpeakers { field, reason };
    if speakers.len() > MAX_SPEAKERS {
        return Err(invalid(
            "speakers".to_owned(),
            format!("at most {MAX_SPEAKERS} speaker labels"),
        ));
    }
    speakers
        .iter()
        .map(|(label, value)| {
            if let Some(problem) = label_problem(label) {
                return Err(invalid("speakers".to_owned(), problem));
            }
            let role = role(value).ok_or_else(|| {
                invalid(
                    format!("speakers.{}", printable_prefix(label)),
                    format!("a role must be one of {ROLE_NAMES}"),
                )
            })?;
            Ok((label.clone(), role))
        })
        .collect()
}

/// The roles of one escalation's speakers, looked up in order of precedence.
pub(crate) struct SpeakerMap<'a> {
    pub requested: &'a BTreeMap<String, Role>,
    pub configured: &'a BTreeMap<String, Role>,
    /// The transcript format's own mapping (Contact Lens participant roles).
    pub format_defaults: &'a BTreeMap<String, Role>,
}

impl SpeakerMap<'_> {
    /// The role of `label`; never guessed.
    pub(crate) fn role(&self, label: &str) -> Result<Role, ChannelError> {
        self.requested
            .get(label)
            .or_else(|| self.configured.get(label))
            .or_else(|| self.format_defaults.get(label))
            .copied()
            .ok_or_else(|| ChannelError::UnmappedSpeaker {
                label: printable_prefix(label),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_request_wins_over_configuration_over_format_defaults() {
        let requested = requested(&map(&[("spk_0", "customer")])).unwrap();
        let configured = configured(&map(&[("spk_0", "bot"), ("spk_1", "bot")]), "voice").unwrap();
        let format_defaults = BTreeMap::from([
            ("spk_1".to_owned(), Role::Customer),
            ("AGENT".to_owned(), Role::Bot),
        ]);
        let speakers = SpeakerMap {
            requested: &requested,
            configured: &configured,
            format_defaults: &format_defaults,
        };
        assert_eq!(speakers.role("spk_0"), Ok(Role::Customer));
        assert_eq!(speakers.role("spk_1"), Ok(Role::Bot));
        assert_eq!(speakers.role("AGENT"), Ok(Role::Bot));
        let err = speakers.role("spk_2").unwrap_err();
        assert_eq!(err.code(), "unmapped_speaker");
        assert_eq!(err.field().as_deref(), Some("speakers"));
        assert!(err.to_string().contains("`spk_2`"), "{err}");
        // Labels are exact: no case folding.
        assert!(speakers.role("Spk_0").is_err());
    }

    #[test]
    fn requested_roles_and_labels_are_checked() {
        let err = requested(&map(&[("A", "customer"), ("B", "human")])).unwrap_err();
        assert_eq!(err.code(), "invalid_speakers");
        assert_eq!(err.field().as_deref(), Some("speakers.B"));
        let err = requested(&map(&[("", "bot")])).unwrap_err();
        assert_eq!(err.field().as_deref(), Some("speakers"));
        let long = "x".repeat(MAX_LABEL_CHARS + 1);
        assert!(requested(&map(&[(&long, "bot")])).is_err());
        let many: BTreeMap<String, String> = (0..=MAX_SPEAKERS)
            .map(|i| (format!("spk_{i}"), "bot".to_owned()))
            .collect();
        assert_eq!(
            requested(&many).unwrap_err().field().as_deref(),
            Some("speakers")
        );
        for name in ["customer", "bot", "agent", "system"] {
            assert!(requested(&map(&[("A", name)])).is_ok(), "{name}");
        }
    }

    #[test]
    fn an_unmapped_label_is_echoed_bounded_and_printable() {
        let empty = BTreeMap::new();
        let speakers = SpeakerMap {
            requested: &empty,
            configured: &empty,
            format_defaults: &empty,
        };
        let label = format!("a\u{7}{}", "b".repeat(500));
        let ChannelError::UnmappedSpeaker { label } = speakers.role(&label).unwrap_err() else {
            panic!("wrong error");
        };
        assert_eq!(label.chars().count(), 64);
        assert!(label.starts_with("a\u{fffd}b"));
    }
}
