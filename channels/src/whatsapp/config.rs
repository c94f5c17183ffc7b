//! `[channels.whatsapp]`: which provider carries WhatsApp (`provider`, default `cloud_api`)
//! and its settings. Every value is checked when the gateway starts, naming the setting.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::{Map, Value};
use url::Url;

use super::cloud_api::CloudApi;
use super::signature::{AppSecret, VerifyToken};
use super::twilio::TwilioWhatsappConfig;
use super::{Template, WhatsappChannel};
use crate::{Channel, ChannelError, KeywordConfig};

/// The Graph API host.
pub const DEFAULT_API_URL: &str = "https://graph.facebook.com";
/// The Graph API version messages are sent with.
pub const DEFAULT_API_VERSION: &str = "v21.0";
/// Customer messages older than this when they arrive are stale replays (48 hours: Meta
/// retries a webhook for about a day).
pub const DEFAULT_MAX_EVENT_AGE_SECS: u64 = 48 * 60 * 60;
/// The longest `unknown_sender_reply` or help text: one WhatsApp text message.
const MAX_REPLY_CHARS: usize = 4_096;

/// `[channels.whatsapp]`, by its `provider`.
#[derive(Debug, Clone)]
pub enum WhatsappConfig {
    /// Meta's WhatsApp Cloud API (`provider = "cloud_api"`, the default).
    CloudApi(CloudApiConfig),
    /// Twilio's WhatsApp senders (`provider = "twilio"`).
    Twilio(TwilioWhatsappConfig),
}

impl Default for WhatsappConfig {
    fn default() -> Self {
        Self::CloudApi(CloudApiConfig::default())
    }
}

/// The table with its `provider` tag, which may be left out for `cloud_api`.
#[derive(Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
enum Tagged {
    CloudApi(CloudApiConfig),
}

/// The providers, for the error naming an unknown one.
const PROVIDERS: &str = "cloud_api, twilio";

impl<'de> Deserialize<'de> for WhatsappConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = Map::<String, Value>::deserialize(deserializer)?;
        let provider = table
            .entry("provider")
            .or_insert_with(|| Value::from("cloud_api"))
            .clone();
        if provider == "twilio" {
            return TwilioWhatsappConfig::deserialize(Value::Object(table))
                .map(Self::Twilio)
                .map_err(de::Error::custom);
        }
        if provider != "cloud_api" {
            let shown = provider
                .as_str()
                .map_or_else(|| provider.to_string(), crate::printable_prefix);
            return Err(de::Error::custom(format!(
                "unknown WhatsApp provider `{}`; valid providers are: {PROVIDERS}",
                crate::printable_prefix(&shown)
            )));
        }
        match Tagged::deserialize(Value::Object(table)).map_err(de::Error::custom)? {
            Tagged::CloudApi(config) => Ok(Self::CloudApi(config)),
        }
    }
}

impl WhatsappConfig {
    /// Whether the table switches the channel on.
    #[must_use]
    pub fn enabled(&self) -> bool {
        match self {
            Self::CloudApi(config) => config.enabled,
            Self::Twilio(config) => config.twilio.enabled,
        }
    }

    /// Builds the adapter configured under `[channels.<name>]`.
    ///
    /// # Errors
    /// [`ChannelError::InvalidConfig`] naming the setting (`channels.whatsapp.<key>`).
    pub fn build(&self, name: &str) -> Result<Arc<dyn Channel>, ChannelError> {
        Ok(match self {
            Self::CloudApi(config) => Arc::new(config.build(name)?),
            Self::Twilio(config) => Arc::new(config.build(name)?),
        })
    }

    /// The Cloud API adapter itself, for callers that need its own methods (a test clock).
    ///
    /// # Errors
    /// As [`WhatsappConfig::build`]; [`ChannelError::InvalidConfig`] naming `provider` for a
    /// table of another provider.
    pub fn build_cloud_api(&self, name: &str) -> Result<WhatsappChannel, ChannelError> {
        match self {
            Self::CloudApi(config) => config.build(name),
            Self::Twilio(_) => Err(invalid(
                format!("channels.{name}.provider"),
                "this table configures the twilio provider, not cloud_api",
            )),
        }
    }
}

/// `provider = "cloud_api"`: Meta's WhatsApp Cloud API. Without `phone_number_id` and
/// `access_token` the channel does not deliver; without `app_secret` it refuses webhooks;
/// without `verify_token` it refuses the subscription handshake.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudApiConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The business phone number's id (digits; not the phone number).
    #[serde(default)]
    pub phone_number_id: Option<String>,
    /// A system user access token with `whatsapp_business_messaging`.
    #[serde(default)]
    pub access_token: Option<SecretString>,
    #[serde(default)]
    pub access_token_file: Option<PathBuf>,
    /// The Meta app's secret: webhook bodies are signed with it (`X-Hub-Signature-256`).
    #[serde(default)]
    pub app_secret: Option<SecretString>,
    #[serde(default)]
    pub app_secret_file: Option<PathBuf>,
    /// The token typed into the app dashboard's webhook form (the `GET` handshake).
    #[serde(default)]
    pub verify_token: Option<SecretString>,
    #[serde(default)]
    pub verify_token_file: Option<PathBuf>,
    /// The Graph API base URL (the provider emulator's in tests and the demo).
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// `vNN.N`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// The approved template sent when the 24-hour window is closed; without one such a
    /// message fails and the rep is told.
    #[serde(default)]
    pub template: Option<TemplateConfig>,
    /// Customer messages older than this when they arrive are dropped (stale replays).
    #[serde(default = "default_max_event_age_secs")]
    pub max_event_age_secs: u64,
    /// How long one send may take.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The answer to a message from someone without an open session (none: not answered).
    #[serde(default)]
    pub unknown_sender_reply: Option<String>,
    #[serde(default)]
    pub keywords: KeywordConfig,
}

impl Default for CloudApiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            phone_number_id: None,
            access_token: None,
            access_token_file: None,
            app_secret: None,
            app_secret_file: None,
            verify_token: None,
            verify_token_file: None,
            api_url: default_api_url(),
            api_version: default_api_version(),
            template: None,
            max_event_age_secs: DEFAULT_MAX_EVENT_AGE_SECS,
            timeout_secs: default_timeout_secs(),
            unknown_sender_reply: None,
            keywords: KeywordConfig::default(),
        }
    }
}

/// `template = { name = "case_update", language = "en_US", body_parameter = true }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// The approved template's name (lowercase letters, digits, `_`).
    pub name: String,
    /// The template's language code (`en`, `en_US`, `pt_BR`).
    pub language: String,
    /// Whether the template's body has one `{{1}}` that carries the reply's text (cut to
    /// 1,024 characters, on one line). Default true.
    #[serde(default = "yes")]
    pub body_parameter: bool,
}

fn yes() -> bool {
    true
}

fn default_api_url() -> String {
    DEFAULT_API_URL.to_owned()
}

fn default_api_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}

fn default_max_event_age_secs() -> u64 {
    DEFAULT_MAX_EVENT_AGE_SECS
}

fn default_timeout_secs() -> u64 {
    10
}

fn invalid(setting: String, reason: impl ToString) -> ChannelError {
    ChannelError::InvalidConfig {
        setting,
        reason: reason.to_string(),
    }
}

impl CloudApiConfig {
    fn build(&self, name: &str) -> Result<WhatsappChannel, ChannelError> {
        let setting = |key: &str| format!("channels.{name}.{key}");
        let phone_number_id = self
            .phone_number_id
            .as_deref()
            .map(|id| {
                let id = id.trim();
                if (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(id.to_owned())
                } else {
                    Err(invalid(
                        setting("phone_number_id"),
                        "must be the phone number's id from WhatsApp Manager (up to 32 \
                         digits), not the phone number",
                    ))
                }
            })
            .transpose()?;
        let api_version = self.api_version.trim();
        if !is_api_version(api_version) {
            return Err(invalid(
                setting("api_version"),
                "must be a Graph API version such as v21.0",
            ));
        }
        let api_url = api_base(&self.api_url).ok_or_else(|| {
            invalid(
                setting("api_url"),
                "must be an http(s) URL without credentials, query or fragment, such as \
                 https://graph.facebook.com",
            )
        })?;
        if !(60..=30 * 24 * 60 * 60).contains(&self.max_event_age_secs) {
            return Err(invalid(
                setting("max_event_age_secs"),
                "must be between 60 and 2592000 (30 days)",
            ));
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err(invalid(
                setting("timeout_secs"),
                "must be between 1 and 120",
            ));
        }
        let access_token = load(
            self.access_token.as_ref(),
            self.access_token_file.as_deref(),
            &setting("access_token"),
            4_096,
            |b| b.is_ascii_graphic(),
        )?;
        let app_secret = load(
            self.app_secret.as_ref(),
            self.app_secret_file.as_deref(),
            &setting("app_secret"),
            256,
            |b| b.is_ascii_graphic(),
        )?;
        let verify_token = load(
            self.verify_token.as_ref(),
            self.verify_token_file.as_deref(),
            &setting("verify_token"),
            256,
            |b| b.is_ascii_graphic() || b == b' ',
        )?;
        if (access_token.is_some() || app_secret.is_some()) && phone_number_id.is_none() {
            return Err(invalid(
                setting("phone_number_id"),
                "is needed with access_token (to send) and app_secret (to receive)",
            ));
        }
        let template = self
            .template
            .as_ref()
            .map(|t| check_template(t, &setting("template")))
            .transpose()?;
        let unknown_sender_reply = self
            .unknown_sender_reply
            .as_deref()
            .map(|reply| check_reply(reply, &setting("unknown_sender_reply")))
            .transpose()?;
        check_reply(&self.keywords.help_text, &setting("keywords.help_text"))?;
        let api = match (&phone_number_id, access_token) {
            (Some(id), Some(token)) => {
                let endpoint = Url::parse(&format!("{api_url}/{api_version}/{id}/messages"))
                    .map_err(|_| invalid(setting("api_url"), "does not make a valid URL"))?;
                Some(
                    CloudApi::new(endpoint, token, Duration::from_secs(self.timeout_secs))
                        .map_err(|e| {
                            invalid(
                                format!("channels.{name}"),
                                format!("the HTTP client could not be built: {e}"),
                            )
                        })?,
                )
            }
            _ => None,
        };
        Ok(WhatsappChannel::new(super::Parts {
            phone_number_id,
            api,
            app_secret: app_secret.as_ref().map(AppSecret::new),
            verify_token: verify_token.as_ref().map(VerifyToken::new),
            template,
            max_event_age: chrono::Duration::seconds(
                i64::try_from(self.max_event_age_secs).expect("checked above"),
            ),
            unknown_sender_reply,
            keywords: self.keywords.clone(),
        }))
    }
}

/// `v` + 1–3 digits + `.` + 1–2 digits.
fn is_api_version(version: &str) -> bool {
    let Some((major, minor)) = version
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
    else {
        return false;
    };
    let digits =
        |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    digits(major, 3) && digits(minor, 2)
}

/// The base URL without a trailing slash, when it is usable.
fn api_base(url: &str) -> Option<String> {
    let parsed = Url::parse(url.trim()).ok()?;
    let usable = matches!(parsed.scheme(), "http" | "https")
        && parsed.has_host()
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.query().is_none()
        && parsed.fragment().is_none();
    usable.then(|| parsed.as_str().trim_end_matches('/').to_owned())
}

fn check_template(template: &TemplateConfig, setting: &str) -> Result<Template, ChannelError> {
    let name_ok = (1..=512).contains(&template.name.len())
        && template
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !name_ok {
        return Err(invalid(
            format!("{setting}.name"),
            "must be the approved template's name: 1 to 512 of a-z, 0-9 and _",
        ));
    }
    let (base, region) = match template.language.split_once('_') {
        Some((base, region)) => (base, Some(region)),
        None => (template.language.as_str(), None),
    };
    let language_ok = (2..=3).contains(&base.len())
        && base.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| {
            (2..=4).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if !language_ok {
        return Err(invalid(
            format!("{setting}.language"),
            "must be the template's language code as WhatsApp Manager shows it, such as en, \
             en_US or pt_BR",
        ));
    }
    Ok(Template {
        name: template.name.clone(),
        language: template.language.clone(),
        body_parameter: template.body_parameter,
    })
}

fn check_reply(reply: &str, setting: &str) -> Result<String, ChannelError> {
    let reply = reply.trim();
    if reply.is_empty() || reply.chars().count() > MAX_REPLY_CHARS {
        return Err(invalid(
            setting.to_owned(),
            "must hold 1 to 4096 characters (one WhatsApp message)",
        ));
    }
    Ok(reply.to_owned())
}

/// A secret from its setting or `<setting>_file` (never both), surrounding whitespace
/// removed; 1 to `max` bytes each passing `allowed`. The texts never echo the value.
fn load(
    value: Option<&SecretString>,
    file: Option<&Path>,
    setting: &str,
    max: usize,
    allowed: fn(u8) -> bool,
) -> Result<Option<SecretString>, ChannelError> {
    let raw = match (value, file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                setting.to_owned(),
                format!("set either {setting} or {setting}_file, not both"),
            ));
        }
        (None, None) => return Ok(None),
        (Some(value), None) => value.expose_secret().trim().to_owned(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| {
                invalid(
                    format!("{setting}_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?
            .trim()
            .to_owned(),
    };
    if raw.is_empty() || raw.len() > max || !raw.bytes().all(allowed) {
        return Err(invalid(
            setting.to_owned(),
            format!("must be 1 to {max} visible ASCII characters"),
        ));
    }
    Ok(Some(SecretString::from(raw)))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use serde_json::json;

    use super::*;
    use crate::{Channel, ChannelConfig};

    fn build(table: Value) -> Result<WhatsappChannel, ChannelError> {
        serde_json::from_value::<WhatsappConfig>(table)
            .unwrap()
            .build_cloud_api("whatsapp")
    }

    fn setting_of(table: Value) -> String {
        match build(table) {
            Ok(_) => panic!("should not build"),
            Err(e) => {
                assert_eq!(e.code(), "invalid_channel_config");
                e.field().unwrap()
            }
        }
    }

    fn full() -> Value {
        json!({
            "phone_number_id": "277321005464405",
            "access_token": "EAAG-token",
            "app_secret": "1222e786b144d0e85b9f365372d93676",
            "verify_token": "meatyhamhock",
            "api_url": "http://127.0.0.1:9/",
            "template": {"name": "case_update", "language": "en_US"},
        })
    }

    #[test]
    fn an_empty_table_builds_receive_only() {
        let channel = build(json!({})).unwrap();
        let caps = channel.capabilities();
        assert!(!caps.delivers);
        assert!(!caps.inbound);
        assert_eq!(caps.max_message_chars, Some(4_096));
        let config: ChannelConfig = serde_json::from_value(json!({"type": "whatsapp"})).unwrap();
        assert!(config.enabled());
        assert_eq!(
            config.build("whatsapp").unwrap().kind().as_str(),
            "whatsapp"
        );
        let off: ChannelConfig =
            serde_json::from_value(json!({"type": "whatsapp", "enabled": false})).unwrap();
        assert!(!off.enabled());
    }

    #[test]
    fn a_full_table_delivers_and_receives() {
        let channel = build(full()).unwrap();
        let caps = channel.capabilities();
        assert!(caps.delivers && caps.inbound && caps.read_receipts);
        assert_eq!(
            channel.api.as_ref().unwrap().endpoint().as_str(),
            "http://127.0.0.1:9/v21.0/277321005464405/messages"
        );
        let mut explicit = full();
        explicit["provider"] = json!("cloud_api");
        explicit["api_url"] = json!("https://graph.example.com/base/");
        explicit["api_version"] = json!("v22.0");
        let channel = build(explicit).unwrap();
        assert_eq!(
            channel.api.as_ref().unwrap().endpoint().as_str(),
            "https://graph.example.com/base/v22.0/277321005464405/messages"
        );
        let template = channel.template.as_ref().unwrap();
        assert!(template.body_parameter);
    }

    #[test]
    fn providers_and_keys_are_checked() {
        let err = serde_json::from_value::<ChannelConfig>(
            json!({"type": "whatsapp", "provider": "carrier_pigeon"}),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown WhatsApp provider `carrier_pigeon`"),
            "{err}"
        );
        let err = serde_json::from_value::<ChannelConfig>(
            json!({"type": "whatsapp", "phone_numer_id": "1"}),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown field `phone_numer_id`"),
            "{err}"
        );
        let err = serde_json::from_value::<ChannelConfig>(
            json!({"type": "whatsapp", "template": {"name": "x", "lang": "en"}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `lang`"), "{err}");
    }

    #[test]
    fn bad_values_name_their_setting() {
        let with = |key: &str, value: Value| {
            let mut table = full();
            table[key] = value;
            table
        };
        for (table, setting) in [
            (
                with("phone_number_id", json!("+15551234567")),
                "phone_number_id",
            ),
            (with("phone_number_id", json!("")), "phone_number_id"),
            (with("api_version", json!("21.0")), "api_version"),
            (with("api_version", json!("v21")), "api_version"),
            (with("api_version", json!("v21.0/../x")), "api_version"),
            (with("api_url", json!("graph.facebook.com")), "api_url"),
            (
                with("api_url", json!("ftp://graph.facebook.com")),
                "api_url",
            ),
            (
                with("api_url", json!("https://u:p@graph.facebook.com")),
                "api_url",
            ),
            (
                with("api_url", json!("https://graph.facebook.com/?x=1")),
                "api_url",
            ),
            (with("access_token", json!("two words")), "access_token"),
            (with("access_token", json!("  ")), "access_token"),
            (with("app_secret", json!("é")), "app_secret"),
            (with("verify_token", json!("tab\there")), "verify_token"),
            (with("max_event_age_secs", json!(10)), "max_event_age_secs"),
            (with("timeout_secs", json!(0)), "timeout_secs"),
            (
                with("unknown_sender_reply", json!(" ")),
                "unknown_sender_reply",
            ),
            (
                with("template", json!({"name": "Case Update", "language": "en"})),
                "template.name",
            ),
            (
                with(
                    "template",
                    json!({"name": "case_update", "language": "english"}),
                ),
                "template.language",
            ),
            (
                with(
                    "template",
                    json!({"name": "case_update", "language": "en-US"}),
                ),
                "template.language",
            ),
            (
                with("keywords", json!({"help_text": ""})),
                "keywords.help_text",
            ),
            (json!({"access_token": "EAAG-token"}), "phone_number_id"),
            (json!({"app_secret": "abc"}), "phone_number_id"),
        ] {
            assert_eq!(
                setting_of(table.clone()),
                format!("channels.whatsapp.{setting}"),
                "{table}"
            );
        }
        for language in ["en", "en_US", "pt_BR", "fil", "zh_HANS"] {
            build(with(
                "template",
                json!({"name": "case_update", "language": language}),
            ))
            .unwrap();
        }
    }

    #[test]
    fn secrets_come_from_files_and_are_never_shown() {
        let path = std::env::temp_dir().join(format!(
            "handoff-whatsapp-token-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        writeln!(std::fs::File::create(&path).unwrap(), "EAAG-from-file").unwrap();
        let mut table = full();
        table.as_object_mut().unwrap().remove("access_token");
        table["access_token_file"] = json!(path.to_str().unwrap());
        assert!(build(table.clone()).unwrap().capabilities().delivers);
        table["access_token"] = json!("EAAG-token");
        let err = build(table).err().unwrap();
        assert!(err.to_string().contains("not both"), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = build(json!({"phone_number_id": "1", "app_secret_file": "/nonexistent/x"}))
            .err()
            .unwrap();
        assert_eq!(
            err.field().as_deref(),
            Some("channels.whatsapp.app_secret_file")
        );
        let config: WhatsappConfig = serde_json::from_value(full()).unwrap();
        let shown = format!(
            "{config:?} {:?}",
            config.build_cloud_api("whatsapp").unwrap()
        );
        for secret in ["EAAG-token", "1222e786", "meatyhamhock"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let err = build(json!({"phone_number_id": "1", "access_token": "tok en"}))
            .err()
            .unwrap();
        assert!(!err.to_string().contains("tok en"), "{err}");
    }
}
