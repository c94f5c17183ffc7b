//! The channels a gateway serves, built from configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::{Channel, ChannelError, ChannelKind, EmailChannel, MessagingChannel};

/// One `[[channels]]` entry. Every built-in channel is enabled unless an entry says otherwise;
/// an unknown `type` is refused with the list of valid ones.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelConfig {
    Email(BuiltInConfig),
    Chat(BuiltInConfig),
    Sms(BuiltInConfig),
    Whatsapp(BuiltInConfig),
    Voice(BuiltInConfig),
}

/// Settings every built-in channel has.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltInConfig {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

impl Default for BuiltInConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

fn enabled_by_default() -> bool {
    true
}

impl ChannelConfig {
    fn kind(&self) -> ChannelKind {
        match self {
            Self::Email(_) => ChannelKind::Email,
            Self::Chat(_) => ChannelKind::Chat,
            Self::Sms(_) => ChannelKind::Sms,
            Self::Whatsapp(_) => ChannelKind::Whatsapp,
            Self::Voice(_) => ChannelKind::Voice,
        }
    }

    fn settings(&self) -> &BuiltInConfig {
        match self {
            Self::Email(c) | Self::Chat(c) | Self::Sms(c) | Self::Whatsapp(c) | Self::Voice(c) => c,
        }
    }
}

fn built_in(kind: &ChannelKind) -> Option<Arc<dyn Channel>> {
    Some(match kind {
        ChannelKind::Email => Arc::new(EmailChannel::new()),
        ChannelKind::Chat => Arc::new(MessagingChannel::chat()),
        ChannelKind::Sms => Arc::new(MessagingChannel::sms()),
        ChannelKind::Whatsapp => Arc::new(MessagingChannel::whatsapp()),
        ChannelKind::Voice => Arc::new(MessagingChannel::voice()),
        ChannelKind::Plugin(_) => return None,
    })
}

/// The enabled channels by kind.
#[derive(Clone)]
pub struct Registry {
    channels: BTreeMap<ChannelKind, Arc<dyn Channel>>,
}

impl Registry {
    /// Every built-in channel, enabled (the same as an empty configuration).
    #[must_use]
    pub fn builtin() -> Self {
        Self {
            channels: ChannelKind::BUILT_IN
                .iter()
                .filter_map(|kind| Some((kind.clone(), built_in(kind)?)))
                .collect(),
        }
    }

    /// Every built-in channel, adjusted by `configs` (at most one entry per type).
    ///
    /// # Errors
    /// [`ChannelError::DuplicateChannelConfig`] when a type appears twice.
    pub fn from_config(configs: &[ChannelConfig]) -> Result<Self, ChannelError> {
        let mut settings = BTreeMap::new();
        for config in configs {
            let kind = config.kind();
            if settings.insert(kind.clone(), config.settings()).is_some() {
                return Err(ChannelError::DuplicateChannelConfig(kind.to_string()));
            }
        }
        let channels = ChannelKind::BUILT_IN
            .iter()
            .filter(|kind| settings.get(kind).is_none_or(|s| s.enabled))
            .filter_map(|kind| Some((kind.clone(), built_in(kind)?)))
            .collect();
        Ok(Self { channels })
    }

    /// Adds a plugin channel (its `kind()` must be a [`ChannelKind::Plugin`] not yet registered).
    ///
    /// # Errors
    /// [`ChannelError::InvalidPluginName`] for a built-in kind,
    /// [`ChannelError::DuplicateChannelConfig`] for a name already registered.
    pub fn register_plugin(&mut self, channel: Arc<dyn Channel>) -> Result<(), ChannelError> {
        let kind = channel.kind();
        let ChannelKind::Plugin(name) = &kind else {
            return Err(ChannelError::InvalidPluginName);
        };
        ChannelKind::plugin(name)?;
        if self.channels.contains_key(&kind) {
            return Err(ChannelError::DuplicateChannelConfig(kind.to_string()));
        }
        self.channels.insert(kind, channel);
        Ok(())
    }

    /// The channel for `kind`, if it is enabled.
    #[must_use]
    pub fn get(&self, kind: &ChannelKind) -> Option<Arc<dyn Channel>> {
        self.channels.get(kind).cloned()
    }

    /// Resolves a channel name from a request (`channel` field) to an enabled channel's kind.
    ///
    /// # Errors
    /// [`ChannelError::ChannelDisabled`] for a built-in channel switched off,
    /// [`ChannelError::UnknownChannel`] (listing the enabled names) otherwise.
    pub fn resolve(&self, name: &str) -> Result<ChannelKind, ChannelError> {
        let found = self.channels.keys().find(|kind| kind.as_str() == name);
        if let Some(kind) = found {
            return Ok(kind.clone());
        }
        if let Ok(kind) = name.parse::<ChannelKind>() {
            return Err(ChannelError::ChannelDisabled(kind.to_string()));
        }
        Err(ChannelError::UnknownChannel {
            name: crate::printable_prefix(name),
            valid: self.names().join(", "),
        })
    }

    /// The enabled channels' names: built-ins first in their usual order, then plugins by name.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.channels.keys().map(ChannelKind::as_str).collect()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("channels", &self.names())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Conversation, EscalationInput, Route};

    fn configs(json: &str) -> Vec<ChannelConfig> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn everything_is_enabled_by_default() {
        for registry in [
            Registry::builtin(),
            Registry::default(),
            Registry::from_config(&[]).unwrap(),
        ] {
            assert_eq!(
                registry.names(),
                ["email", "chat", "sms", "whatsapp", "voice"]
            );
            for kind in ChannelKind::BUILT_IN {
                let channel = registry.get(&kind).unwrap();
                assert_eq!(channel.kind(), kind);
            }
            assert_eq!(
                registry.get(&ChannelKind::Email).unwrap().preferred_route(),
                Route::Case
            );
            assert_eq!(
                registry.get(&ChannelKind::Voice).unwrap().preferred_route(),
                Route::Messaging
            );
        }
    }

    #[test]
    fn config_entries_disable_and_keep_channels() {
        let registry = Registry::from_config(&configs(
            r#"[{"type":"sms","enabled":false},{"type":"email"},{"type":"voice","enabled":true}]"#,
        ))
        .unwrap();
        assert!(registry.get(&ChannelKind::Sms).is_none());
        assert!(registry.get(&ChannelKind::Email).is_some());
        assert_eq!(registry.names(), ["email", "chat", "whatsapp", "voice"]);
        let err = registry.resolve("sms").unwrap_err();
        assert_eq!(err.code(), "channel_disabled");
        assert_eq!(err.field().as_deref(), Some("channel"));
        assert_eq!(registry.resolve("chat").unwrap(), ChannelKind::Chat);
    }

    #[test]
    fn unknown_config_type_names_the_valid_ones() {
        let err = serde_json::from_str::<Vec<ChannelConfig>>(r#"[{"type":"fax"}]"#).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "unknown variant `fax`, expected one of `email`, `chat`, `sms`, `whatsapp`, `voice`"
            ),
            "{text}"
        );
        let err = serde_json::from_str::<Vec<ChannelConfig>>(r#"[{"type":"sms","enabeld":false}]"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `enabeld`"), "{err}");
    }

    #[test]
    fn duplicate_config_entries_are_refused() {
        let err = Registry::from_config(&configs(
            r#"[{"type":"chat"},{"type":"chat","enabled":false}]"#,
        ))
        .unwrap_err();
        assert_eq!(err, ChannelError::DuplicateChannelConfig("chat".into()));
        assert_eq!(err.code(), "duplicate_channel_config");
    }

    struct Bridge(&'static str);

    #[async_trait::async_trait]
    impl Channel for Bridge {
        fn kind(&self) -> ChannelKind {
            ChannelKind::Plugin(self.0.to_owned())
        }
        fn preferred_route(&self) -> Route {
            Route::Case
        }
        fn normalize(&self, _: EscalationInput) -> Result<Conversation, ChannelError> {
            Err(ChannelError::MissingTranscript)
        }
    }

    #[test]
    fn plugins_register_and_resolve() {
        let mut registry = Registry::default();
        registry.register_plugin(Arc::new(Bridge("line"))).unwrap();
        let kind = registry.resolve("line").unwrap();
        assert_eq!(kind, ChannelKind::Plugin("line".into()));
        assert_eq!(registry.get(&kind).unwrap().kind(), kind);
        assert_eq!(
            registry.register_plugin(Arc::new(Bridge("line"))),
            Err(ChannelError::DuplicateChannelConfig("line".into()))
        );
        assert_eq!(
            registry.register_plugin(Arc::new(Bridge("Bad Name"))),
            Err(ChannelError::InvalidPluginName)
        );
        assert_eq!(
            registry.register_plugin(Arc::new(MessagingChannel::chat())),
            Err(ChannelError::InvalidPluginName)
        );
        let err = registry.resolve("telegram").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown channel `telegram`; valid channels are: email, chat, sms, whatsapp, voice, line"
        );
    }
}
