//! `[channels.email]`: the email adapter's own table. With an `smtp` sub-table the channel sends
//! rep replies to customers; without one it only takes escalations (it does not deliver).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::inbound_config::EmailInboundConfig;
use super::outgoing::Composer;
use super::send::SmtpSender;
use super::{EmailChannel, Outgoing};
use crate::ChannelError;

/// `[channels.email]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// The `From` of every reply, `"Acme Support <support@acme.example>"` or a bare address.
    /// Required with `smtp`.
    #[serde(default)]
    pub from: Option<String>,
    /// The `Reply-To` address; `{token}` is replaced by the session's reply token, so the
    /// customer's answer finds its session (`"support+{token}@acme.example"`). A message without a
    /// token carries no `Reply-To` (answers go to `from`). Without `{token}` the address is fixed.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The domain of our `Message-ID`s (`<delivery id@domain>`); defaults to the domain of `from`.
    #[serde(default)]
    pub message_id_domain: Option<String>,
    /// The SMTP relay replies are sent through; without it email does not deliver.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// `[channels.email.inbound]`: customer replies posted to the gateway.
    #[serde(default)]
    pub inbound: EmailInboundConfig,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            from: None,
            reply_to: None,
            message_id_domain: None,
            smtp: None,
            inbound: EmailInboundConfig::default(),
        }
    }
}

/// `[channels.email.smtp]`: the relay, how to reach it and how to log in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Defaults by `tls`: 587 (starttls), 465 (tls), 25 (plain).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    /// A file holding the password (Docker and Kubernetes secrets); instead of `password`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Connections kept open to the relay at most (1–64).
    #[serde(default = "default_pool_max_size")]
    pub pool_max_size: u32,
    /// Connecting, and each command's answer, may take this long (1–600).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// No TLS at all: for a relay on loopback or a trusted private network only.
    Plain,
    /// Plain connection upgraded with `STARTTLS`, which is required (submission, port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (submissions, port 465).
    Tls,
}

impl SmtpTls {
    fn default_port(self) -> u16 {
        match self {
            Self::Plain => 25,
            Self::Starttls => 587,
            Self::Tls => 465,
        }
    }
}

fn enabled_by_default() -> bool {
    true
}

fn default_pool_max_size() -> u32 {
    4
}

fn default_timeout_secs() -> u64 {
    30
}

pub(crate) fn invalid(setting: &str, reason: impl ToString) -> ChannelError {
    ChannelError::InvalidConfig {
        setting: setting.to_owned(),
        reason: reason.to_string(),
    }
}

impl EmailConfig {
    /// Builds the adapter configured under `[channels.<name>]` (`name` is `email`).
    ///
    /// # Errors
    /// [`ChannelError::InvalidConfig`] naming the setting: `from` missing or not an address,
    /// a `reply_to` that is no address once the token is in, a bad `message_id_domain`, SMTP
    /// settings out of range, or credentials that are half given or unreadable.
    pub fn build(&self, name: &str) -> Result<EmailChannel, ChannelError> {
        let Some(smtp) = &self.smtp else {
            return Ok(EmailChannel::new());
        };
        let setting = |key: &str| format!("channels.{name}.{key}");
        let from = self.from.as_deref().ok_or_else(|| {
            invalid(
                &setting("from"),
                "sending email needs a From address: set from = \"Support <support@example.com>\"",
            )
        })?;
        let composer = Composer::new(
            from,
            self.reply_to.as_deref(),
            self.message_id_domain.as_deref(),
            &setting(""),
        )?;
        let password = smtp.password(&setting("smtp.password"))?;
        let sender = SmtpSender::new(smtp, password, &setting("smtp"))?;
        Ok(EmailChannel {
            outgoing: Some(Arc::new(Outgoing { composer, sender })),
        })
    }
}

impl SmtpConfig {
    /// The port, from the setting or the `tls` mode's default.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// The password from `password` or `password_file` (trailing line break dropped), checked
    /// against `username`: both or neither.
    fn password(&self, setting: &str) -> Result<Option<SecretString>, ChannelError> {
        let password = match (&self.password, &self.password_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    setting,
                    format!("set either {setting} or {setting}_file, not both"),
                ));
            }
            (Some(password), None) => Some(password.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    invalid(
                        &format!("{setting}_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                Some(SecretString::from(
                    text.trim_end_matches(['\r', '\n']).to_owned(),
                ))
            }
            (None, None) => None,
        };
        match (&self.username, &password) {
            (Some(_), None) => Err(invalid(
                setting,
                "a username needs a password (or password_file)",
            )),
            (None, Some(_)) => Err(invalid(
                setting,
                "a password needs a username: set smtp.username too",
            )),
            (Some(_), Some(p)) if p.expose_secret().is_empty() => {
                Err(invalid(setting, "the password is empty"))
            }
            _ => Ok(password),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use crate::{Channel, ChannelConfig};

    fn build(json: serde_json::Value) -> Result<std::sync::Arc<dyn Channel>, crate::ChannelError> {
        serde_json::from_value::<ChannelConfig>(json)
            .unwrap()
            .build("email")
    }

    #[test]
    fn email_delivers_only_with_a_relay() {
        let plain = build(serde_json::json!({"type": "email"})).unwrap();
        assert!(!plain.capabilities().delivers);
        let sending = build(serde_json::json!({
            "type": "email", "from": "Acme Support <support@acme.example>",
            "reply_to": "support+{token}@acme.example",
            "smtp": {"host": "127.0.0.1", "port": 2525, "tls": "plain"},
            "inbound": {}
        }))
        .unwrap();
        let capabilities = sending.capabilities();
        assert!(capabilities.delivers);
        assert!(!capabilities.provider_dedupe);
        assert_eq!(capabilities.max_message_chars, None);
        assert_eq!(capabilities.split, crate::SplitRule::Whole);
    }

    #[test]
    fn email_settings_are_named_when_wrong() {
        let smtp = serde_json::json!({"host": "127.0.0.1", "tls": "plain"});
        let field = |json| build(json).err().unwrap().field().unwrap();
        assert_eq!(
            field(serde_json::json!({"type": "email", "smtp": smtp})),
            "channels.email.from"
        );
        assert_eq!(
            field(
                serde_json::json!({"type": "email", "from": "support@acme.example",
                "smtp": {"host": "127.0.0.1", "username": "u"}})
            ),
            "channels.email.smtp.password"
        );
        assert_eq!(
            field(
                serde_json::json!({"type": "email", "from": "support@acme.example",
                "smtp": {"host": "127.0.0.1", "password": "p"}})
            ),
            "channels.email.smtp.password"
        );
        assert_eq!(
            field(
                serde_json::json!({"type": "email", "from": "support@acme.example",
                "smtp": {"host": "127.0.0.1", "username": "u",
                         "password_file": "/nonexistent/smtp-password"}})
            ),
            "channels.email.smtp.password_file"
        );
        for bad in [
            serde_json::json!({"type": "email", "form": "x"}),
            serde_json::json!({"type": "email", "smtp": {"host": "h", "tls": "ssl"}}),
            serde_json::json!({"type": "email", "smtp": {"host": "h", "prot": 25}}),
            serde_json::json!({"type": "email", "inbound": {"x": 1}}),
        ] {
            assert!(
                serde_json::from_value::<ChannelConfig>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_password_comes_from_a_file_and_stays_hidden() {
        let path =
            std::env::temp_dir().join(format!("handoff-smtp-password-{}", std::process::id()));
        let mut file = std::fs::File::create(&path).unwrap();
        writeln!(file, "s3cret-pass").unwrap();
        let json = serde_json::json!({
            "type": "email", "from": "support@acme.example",
            "smtp": {"host": "127.0.0.1", "username": "u", "password_file": path}
        });
        let channel = build(json).unwrap();
        assert!(channel.capabilities().delivers);
        let config: ChannelConfig = serde_json::from_value(serde_json::json!({
            "type": "email", "smtp": {"host": "h", "username": "u", "password": "s3cret-pass"}
        }))
        .unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
        std::fs::remove_file(&path).unwrap();
    }
}
