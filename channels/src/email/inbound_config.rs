//! `[channels.email.inbound]`: how customer emails reach `POST /channels/email/inbound`.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::webhook::TimestampedSecret;

/// The default `max_bytes`: 25 MiB, what common mail providers accept.
pub const DEFAULT_MAX_BYTES: usize = 25 * 1024 * 1024;
/// Shortest accepted HMAC secret, in bytes.
const MIN_SECRET_BYTES: usize = 16;
/// Shortest accepted path token, in characters.
const MIN_PATH_TOKEN_CHARS: usize = 24;

/// Settings of the inbound email route. With neither a secret nor a path token the route
/// refuses every request (401).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailInboundConfig {
    /// Shared secret of the `X-Handoff-Signature` HMAC (over `timestamp.body`).
    #[serde(default)]
    pub hmac_secret: Option<SecretString>,
    /// A file holding `hmac_secret` (Docker and Kubernetes secrets).
    #[serde(default)]
    pub hmac_secret_file: Option<PathBuf>,
    /// Secret path segment: `POST /channels/email/inbound/{path_token}`, for inbound-mail
    /// services that cannot sign (at least 24 of `A-Z a-z 0-9 - _`).
    #[serde(default)]
    pub path_token: Option<SecretString>,
    /// A file holding `path_token`.
    #[serde(default)]
    pub path_token_file: Option<PathBuf>,
    /// Largest message accepted, in bytes; larger ones are answered 413 before parsing.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// How a matched email is written on the Case.
    #[serde(default)]
    pub append_as: AppendAs,
    /// A new email (no token, no thread) from a contact whose Case is open joins that Case.
    #[serde(default = "yes")]
    pub append_new_conversations: bool,
}

/// How a customer's email is written on the Case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppendAs {
    /// An internal CaseComment (the default).
    #[default]
    Comment,
    /// An incoming EmailMessage on the Case.
    EmailMessage,
}

impl AppendAs {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Comment => "comment",
            Self::EmailMessage => "email_message",
        }
    }
}

fn default_max_bytes() -> usize {
    DEFAULT_MAX_BYTES
}

fn yes() -> bool {
    true
}

impl Default for EmailInboundConfig {
    fn default() -> Self {
        Self {
            hmac_secret: None,
            hmac_secret_file: None,
            path_token: None,
            path_token_file: None,
            max_bytes: DEFAULT_MAX_BYTES,
            append_as: AppendAs::Comment,
            append_new_conversations: true,
        }
    }
}

/// The inbound route's credentials, read and checked once at start.
#[derive(Debug, Clone, Default)]
pub struct InboundCredentials {
    pub hmac: Option<TimestampedSecret>,
    pub path_token: Option<SecretString>,
}

impl EmailInboundConfig {
    /// Reads the secret files and checks the values; errors name the setting
    /// (`channels.email.inbound.<key>`) and never echo a value.
    ///
    /// # Errors
    /// A message for the operator.
    pub fn credentials(&self) -> Result<InboundCredentials, String> {
        let key = |k: &str| format!("channels.email.inbound.{k}");
        if self.max_bytes < 1024 {
            return Err(format!("{}: must be at least 1024", key("max_bytes")));
        }
        let hmac = one_of(
            &self.hmac_secret,
            self.hmac_secret_file.as_deref(),
            &key("hmac_secret"),
        )?;
        let hmac = match hmac {
            Some(secret) if secret.trim().len() < MIN_SECRET_BYTES => {
                return Err(format!(
                    "{}: must be at least {MIN_SECRET_BYTES} bytes; generate one with `openssl rand -hex 32`",
                    key("hmac_secret")
                ));
            }
            Some(secret) => Some(TimestampedSecret::new(secret.trim().as_bytes())),
            None => None,
        };
        let path_token = one_of(
            &self.path_token,
            self.path_token_file.as_deref(),
            &key("path_token"),
        )?;
        let path_token = match path_token {
            Some(token) => {
                let token = token.trim();
                let ok = token.len() >= MIN_PATH_TOKEN_CHARS
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(format!(
                        "{}: must be at least {MIN_PATH_TOKEN_CHARS} characters of A-Z, a-z, 0-9, - and _; generate one with `openssl rand -hex 24`",
                        key("path_token")
                    ));
                }
                Some(SecretString::from(token.to_owned()))
            }
            None => None,
        };
        Ok(InboundCredentials { hmac, path_token })
    }
}

/// The value of `setting` or of `setting_file`, not both.
fn one_of(
    value: &Option<SecretString>,
    file: Option<&Path>,
    setting: &str,
) -> Result<Option<String>, String> {
    match (value, file) {
        (Some(_), Some(_)) => Err(format!("{setting}: set it or {setting}_file, not both")),
        (Some(v), None) => Ok(Some(v.expose_secret().to_owned())),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(Some)
            .map_err(|e| format!("{setting}_file: cannot read {}: {e}", path.display())),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_checked_and_named() {
        let config = EmailInboundConfig {
            hmac_secret: Some("short".to_owned().into()),
            ..EmailInboundConfig::default()
        };
        let err = config.credentials().unwrap_err();
        assert!(
            err.starts_with("channels.email.inbound.hmac_secret:"),
            "{err}"
        );
        assert!(!err.contains("short"));
        let config = EmailInboundConfig {
            path_token: Some("has a space in it and is long enough".to_owned().into()),
            ..EmailInboundConfig::default()
        };
        assert!(config.credentials().unwrap_err().contains("path_token"));
        let config = EmailInboundConfig {
            hmac_secret: Some("0123456789abcdef0123".to_owned().into()),
            path_token: Some("0123456789abcdef01234567".to_owned().into()),
            ..EmailInboundConfig::default()
        };
        let credentials = config.credentials().expect("valid");
        assert!(credentials.hmac.is_some() && credentials.path_token.is_some());
        assert!(
            EmailInboundConfig::default()
                .credentials()
                .expect("valid")
                .hmac
                .is_none()
        );
    }
}
