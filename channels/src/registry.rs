//! The channels a gateway serves, built from configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::{Channel, ChannelConfig, ChannelError, ChannelKind};

/// The enabled channels by kind.
#[derive(Clone)]
pub struct Registry {
    channels: BTreeMap<ChannelKind, Arc<dyn Channel>>,
}

impl Registry {
    /// Every built-in channel, enabled with its defaults (the same as an empty configuration).
    #[must_use]
    pub fn builtin() -> Self {
        Self::from_config(&BTreeMap::new()).expect("the built-in defaults build")
    }

    /// The channels of `[channels.<name>]` tables: every built-in channel unless its table says
    /// `enabled = false` (built with its table's settings, or its defaults when it has none),
    /// then every enabled bridge.
    ///
    /// # Errors
    /// The first table that does not build ([`ChannelConfig::build`]), naming its setting.
    pub fn from_config(configs: &BTreeMap<String, ChannelConfig>) -> Result<Self, ChannelError> {
        let mut channels = BTreeMap::new();
        for kind in ChannelKind::BUILT_IN {
            if configs.contains_key(kind.as_str()) {
                continue;
            }
            let config = ChannelConfig::built_in_default(&kind).expect("a built-in kind");
            channels.insert(kind.clone(), config.build(kind.as_str())?);
        }
        for (name, config) in configs {
            let channel = config.build(name)?;
            if config.enabled() {
                channels.insert(channel.kind(), channel);
            }
        }
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

    /// The adapter that carries `kind`'s messages to the customer: the channel it
    /// [delivers through](Channel::delivers_through) when that one is enabled, else itself.
    #[must_use]
    pub fn deliverer(&self, kind: &ChannelKind) -> Option<Arc<dyn Channel>> {
        let channel = self.get(kind)?;
        match channel.delivers_through() {
            Some(through) if &through != kind => self.get(&through),
            _ => Some(channel),
        }
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

    fn configs(json: serde_json::Value) -> BTreeMap<String, ChannelConfig> {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn everything_is_enabled_by_default() {
        for registry in [
            Registry::builtin(),
            Registry::default(),
            Registry::from_config(&BTreeMap::new()).unwrap(),
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

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn config_tables_disable_configure_and_add_channels() {
        let registry = Registry::from_config(&configs(serde_json::json!({
            "sms": {"type": "sms", "enabled": false},
            "email": {"type": "email"},
            "chat": {"type": "chat", "webhook_secret": SECRET},
            "line": {"type": "bridge", "url": "https://bridge.example.com/line", "secret": SECRET},
            "teams": {"type": "bridge", "enabled": false, "url": "https://bridge.example.com/t",
                      "secret": SECRET},
        })))
        .unwrap();
        assert!(registry.get(&ChannelKind::Sms).is_none());
        assert_eq!(
            registry.names(),
            ["email", "chat", "whatsapp", "voice", "line"]
        );
        let err = registry.resolve("sms").unwrap_err();
        assert_eq!(err.code(), "channel_disabled");
        assert_eq!(err.field().as_deref(), Some("channel"));
        assert_eq!(registry.resolve("chat").unwrap(), ChannelKind::Chat);
        assert_eq!(
            registry.resolve("line").unwrap(),
            ChannelKind::Plugin("line".into())
        );
        assert!(
            registry
                .get(&ChannelKind::Chat)
                .unwrap()
                .capabilities()
                .delivers
        );
        assert_eq!(
            registry.resolve("teams").unwrap_err().code(),
            "unknown_channel"
        );
    }

    #[test]
    fn unknown_config_type_names_the_valid_ones() {
        let err = serde_json::from_value::<BTreeMap<String, ChannelConfig>>(
            serde_json::json!({"fax": {"type": "fax"}}),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "unknown variant `fax`, expected one of `email`, `chat`, `sms`, `whatsapp`, \
                 `voice`, `bridge`"
            ),
            "{text}"
        );
        let err = serde_json::from_value::<ChannelConfig>(
            serde_json::json!({"type": "sms", "enabeld": false}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `enabeld`"), "{err}");
    }

    #[test]
    fn a_bad_table_stops_the_build_and_names_its_setting() {
        let err = Registry::from_config(&configs(serde_json::json!({
            "line": {"type": "bridge", "url": "https://127.0.0.1/x", "secret": SECRET}
        })))
        .unwrap_err();
        assert_eq!(err.code(), "invalid_channel_config");
        assert_eq!(err.field().as_deref(), Some("channels.line.url"));
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
            registry.register_plugin(Arc::new(crate::ChatChannel::new(None, false).unwrap())),
            Err(ChannelError::InvalidPluginName)
        );
        let err = registry.resolve("telegram").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown channel `telegram`; valid channels are: email, chat, sms, whatsapp, voice, line"
        );
    }
}
