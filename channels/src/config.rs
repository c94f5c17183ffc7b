//! `[channels.<name>]`: each table's `type` selects an adapter, and that type's settings build
//! it (vector style). Built-in channels keep their names (`[channels.sms] type = "sms"`); any
//! other name is a plugin and must be a `type = "bridge"` table.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;
use serde::Deserialize;

use crate::bridge::BridgeChannel;
use crate::sms::SmsConfig;
use crate::webhook::{WebhookSecret, check_webhook_url};
use crate::whatsapp::WhatsappConfig;
use crate::{Channel, ChannelError, ChannelKind, ChatChannel, EmailConfig, Route, VoiceConfig};

/// One `[channels.<name>]` table, by its `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// Read once at start, a handful of values: the email table's size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ChannelConfig {
    Email(EmailConfig),
    Chat(ChatConfig),
    Sms(SmsConfig),
    Whatsapp(WhatsappConfig),
    Voice(VoiceConfig),
    Bridge(BridgeConfig),
}

/// Settings of a built-in channel with nothing else to configure yet.
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

/// `[channels.chat]`: the AI product's widget, answered through its signed webhook.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// The `whsec_…` secret chat webhooks are signed with. Without it chat does not deliver
    /// and a chat `reply_to` is refused.
    #[serde(default)]
    pub webhook_secret: Option<SecretString>,
    /// A file holding the secret (Docker and Kubernetes secrets); instead of `webhook_secret`.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// Allows `reply_to.webhook_url`s on loopback, private and link-local addresses (and
    /// plain `http` to loopback). For tests and the sandbox only: it turns off the SSRF guard.
    #[serde(default)]
    pub allow_private_webhook_urls: bool,
}

/// `[channels.<plugin>] type = "bridge"`: a channel Handoff does not know, reached through a
/// signed webhook both ways.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Where outbound messages are POSTed (https).
    pub url: String,
    /// The `whsec_…` secret for both directions: outbound webhooks are signed with it, inbound
    /// ones must be.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// A file holding the secret; instead of `secret`.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// `case` or `messaging` (the default).
    #[serde(default)]
    pub preferred_route: Option<Route>,
    /// Allows a `url` on loopback, private and link-local addresses (and plain `http` to
    /// loopback): a bridge running beside the gateway, tests, the sandbox. It turns off the
    /// SSRF guard for this bridge.
    #[serde(default)]
    pub allow_private_url: bool,
}

impl ChannelConfig {
    /// The adapter type, as written in `type`.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Chat(_) => "chat",
            Self::Sms(_) => "sms",
            Self::Whatsapp(_) => "whatsapp",
            Self::Voice(_) => "voice",
            Self::Bridge(_) => "bridge",
        }
    }

    /// Whether the table switches its channel on.
    #[must_use]
    pub fn enabled(&self) -> bool {
        match self {
            Self::Sms(c) => c.enabled,
            Self::Whatsapp(c) => c.enabled(),
            Self::Voice(c) => c.enabled,
            Self::Email(c) => c.enabled,
            Self::Chat(c) => c.enabled,
            Self::Bridge(c) => c.enabled,
        }
    }

    /// The default table of a built-in channel.
    #[must_use]
    pub fn built_in_default(kind: &ChannelKind) -> Option<Self> {
        Some(match kind {
            ChannelKind::Email => Self::Email(EmailConfig::default()),
            ChannelKind::Chat => Self::Chat(ChatConfig {
                enabled: true,
                ..ChatConfig::default()
            }),
            ChannelKind::Sms => Self::Sms(SmsConfig::default()),
            ChannelKind::Whatsapp => Self::Whatsapp(WhatsappConfig::default()),
            ChannelKind::Voice => Self::Voice(VoiceConfig::default()),
            ChannelKind::Plugin(_) => return None,
        })
    }

    /// Builds the adapter configured under `[channels.<name>]`.
    ///
    /// # Errors
    /// [`ChannelError::InvalidConfig`] naming the setting and what to do: a built-in name with
    /// another type, a plugin that is not a bridge or has a bad name, a bad URL or secret.
    pub fn build(&self, name: &str) -> Result<Arc<dyn Channel>, ChannelError> {
        let setting = |key: &str| format!("channels.{name}.{key}");
        let built_in = name.parse::<ChannelKind>().ok();
        match (&built_in, self) {
            (Some(kind), config) if kind.as_str() != config.type_name() => {
                return Err(invalid(
                    setting("type"),
                    format!(
                        "`{name}` is a built-in channel, so its type must be \"{name}\" \
                         (a bridge needs a name of its own)"
                    ),
                ));
            }
            (None, config) if !matches!(config, Self::Bridge(_)) => {
                return Err(invalid(
                    setting("type"),
                    format!(
                        "`{name}` is not a built-in channel ({}), so it must be type = \"bridge\"",
                        ChannelKind::built_in_names()
                    ),
                ));
            }
            _ => {}
        }
        Ok(match self {
            Self::Email(email) => Arc::new(email.build(name)?),
            Self::Sms(sms) => Arc::new(sms.build(name)?),
            Self::Whatsapp(whatsapp) => whatsapp.build(name)?,
            Self::Voice(voice) => Arc::new(voice.build(name)?),
            Self::Chat(chat) => Arc::new(chat.build(name)?),
            Self::Bridge(bridge) => Arc::new(bridge.build(name)?),
        })
    }
}

impl ChatConfig {
    fn build(&self, name: &str) -> Result<ChatChannel, ChannelError> {
        let secret = load_secret(
            self.webhook_secret.as_ref(),
            self.webhook_secret_file.as_deref(),
            &format!("channels.{name}.webhook_secret"),
        )?;
        ChatChannel::new(secret, self.allow_private_webhook_urls)
    }
}

impl BridgeConfig {
    fn build(&self, name: &str) -> Result<BridgeChannel, ChannelError> {
        let kind = ChannelKind::plugin(name).map_err(|e| invalid(format!("channels.{name}"), e))?;
        let url = check_webhook_url(&self.url, self.allow_private_url).map_err(|problem| {
            invalid(
                format!("channels.{name}.url"),
                format!("the bridge URL {problem}; give the https address of the bridge"),
            )
        })?;
        let secret_setting = format!("channels.{name}.secret");
        let secret = load_secret(
            self.secret.as_ref(),
            self.secret_file.as_deref(),
            &secret_setting,
        )?
        .ok_or_else(|| {
            invalid(
                secret_setting,
                "a bridge needs a signing secret: set `secret` (whsec_…) or `secret_file`",
            )
        })?;
        BridgeChannel::new(
            kind,
            url,
            secret,
            self.preferred_route.unwrap_or(Route::Messaging),
            self.allow_private_url,
        )
    }
}

fn invalid(setting: String, reason: impl ToString) -> ChannelError {
    ChannelError::InvalidConfig {
        setting,
        reason: reason.to_string(),
    }
}

/// The secret from its setting or from `<setting>_file`; never both.
fn load_secret(
    value: Option<&SecretString>,
    file: Option<&Path>,
    setting: &str,
) -> Result<Option<WebhookSecret>, ChannelError> {
    let from_file;
    let raw = match (value, file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                setting.to_owned(),
                format!("set either {setting} or {setting}_file, not both"),
            ));
        }
        (None, None) => return Ok(None),
        (Some(value), None) => value,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid(
                    format!("{setting}_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            from_file = SecretString::from(text);
            &from_file
        }
    };
    WebhookSecret::parse(raw).map(Some).map_err(|problem| {
        invalid(
            setting.to_owned(),
            format!("{problem}; generate one with `echo whsec_$(openssl rand -base64 32)`"),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write as _;

    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn table(json: serde_json::Value) -> ChannelConfig {
        serde_json::from_value(json).unwrap()
    }

    fn build_err(name: &str, json: serde_json::Value) -> ChannelError {
        match table(json).build(name) {
            Ok(_) => panic!("{name} should not build"),
            Err(e) => e,
        }
    }

    #[test]
    fn each_type_builds_its_adapter() {
        for name in ["email", "sms", "whatsapp", "voice", "chat"] {
            let channel = table(serde_json::json!({"type": name}))
                .build(name)
                .unwrap();
            assert_eq!(channel.kind().as_str(), name);
        }
        let bridge = table(serde_json::json!({
            "type": "bridge", "url": "https://bridge.example.com/out", "secret": SECRET,
            "preferred_route": "case"
        }))
        .build("line")
        .unwrap();
        assert_eq!(bridge.kind(), ChannelKind::Plugin("line".into()));
        assert_eq!(bridge.preferred_route(), Route::Case);
        assert!(bridge.capabilities().delivers);
        let chat = table(serde_json::json!({"type": "chat", "webhook_secret": SECRET}))
            .build("chat")
            .unwrap();
        assert!(chat.capabilities().delivers);
    }

    #[test]
    fn names_and_types_must_agree() {
        let err = build_err("sms", serde_json::json!({"type": "voice"}));
        assert_eq!(err.field().as_deref(), Some("channels.sms.type"));
        assert!(err.to_string().contains("must be \"sms\""), "{err}");
        let err = build_err("fax", serde_json::json!({"type": "sms"}));
        assert_eq!(err.field().as_deref(), Some("channels.fax.type"));
        assert!(err.to_string().contains("type = \"bridge\""), "{err}");
        let err = build_err(
            "Line Bridge",
            serde_json::json!({"type": "bridge", "url": "https://b.example.com", "secret": SECRET}),
        );
        assert_eq!(err.field().as_deref(), Some("channels.Line Bridge"));
        let err = build_err(
            "chat",
            serde_json::json!({"type": "bridge", "url": "https://b.example.com", "secret": SECRET}),
        );
        assert_eq!(err.field().as_deref(), Some("channels.chat.type"));
    }

    #[test]
    fn bridge_settings_are_checked_with_a_hint() {
        let err = build_err(
            "line",
            serde_json::json!({"type": "bridge", "url": "http://b.example.com", "secret": SECRET}),
        );
        assert_eq!(err.field().as_deref(), Some("channels.line.url"));
        assert!(err.to_string().contains("https"), "{err}");
        let err = build_err(
            "line",
            serde_json::json!({"type": "bridge", "url": "https://b.example.com"}),
        );
        assert_eq!(err.field().as_deref(), Some("channels.line.secret"));
        let err = build_err(
            "line",
            serde_json::json!({"type": "bridge", "url": "https://b.example.com", "secret": "hunter2"}),
        );
        assert_eq!(err.field().as_deref(), Some("channels.line.secret"));
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = serde_json::from_value::<ChannelConfig>(
            serde_json::json!({"type": "bridge", "url": "https://b.example.com", "secrte": "x"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `secrte`"), "{err}");
    }

    #[test]
    fn secrets_come_from_files_too() {
        let mut file = tempfile_in_target();
        writeln!(file.1, "{SECRET}").unwrap();
        let chat = table(serde_json::json!({
            "type": "chat", "webhook_secret_file": file.0.to_str().unwrap()
        }))
        .build("chat")
        .unwrap();
        assert!(chat.capabilities().delivers);
        let err = build_err(
            "chat",
            serde_json::json!({
                "type": "chat", "webhook_secret": SECRET,
                "webhook_secret_file": file.0.to_str().unwrap()
            }),
        );
        assert!(err.to_string().contains("not both"), "{err}");
        let err = build_err(
            "chat",
            serde_json::json!({"type": "chat", "webhook_secret_file": "/nonexistent/secret"}),
        );
        assert_eq!(
            err.field().as_deref(),
            Some("channels.chat.webhook_secret_file")
        );
        std::fs::remove_file(&file.0).unwrap();
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let config = table(serde_json::json!({"type": "chat", "webhook_secret": SECRET}));
        let shown = format!("{config:?}");
        assert!(!shown.contains("MfKQ"), "{shown}");
        let configs: BTreeMap<String, ChannelConfig> =
            serde_json::from_value(serde_json::json!({"chat": {"type": "chat"}})).unwrap();
        assert!(configs["chat"].enabled());
    }

    fn tempfile_in_target() -> (PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!(
            "handoff-channels-secret-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let file = std::fs::File::create(&path).unwrap();
        (path, file)
    }
}
