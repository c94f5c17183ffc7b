//! Twilio Programmable Messaging, shared by the SMS channel and Twilio WhatsApp senders:
//! webhook signatures ([`signature`]), form bodies ([`form`]), inbound messages and status
//! callbacks ([`inbound`]), the Messages API ([`api`]) and SMS segments ([`segments`]).
//!
//! [`TwilioMessaging`] puts them together for one account and one sender: a channel adapter
//! wraps it and adds its own rules (keywords, capabilities, templates).

pub mod api;
pub mod form;
pub mod inbound;
pub mod segments;
pub mod signature;

use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub use api::{CreateMessage, MessagesApi};
pub use form::Form;
pub use inbound::AddressPrefix;
pub use segments::{Encoding, segments};

use crate::reply::is_e164;
use crate::{ChannelError, Delivered, DeliveryError, InboundAck, InboundEvent, InboundRequest};

/// Twilio's production API.
pub const DEFAULT_API_URL: &str = "https://api.twilio.com";

/// Who a message is sent from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioSender {
    /// One of our numbers, in E.164 (`from`).
    Number(String),
    /// A Messaging Service (`MG…`) that picks the number from its pool.
    MessagingService(String),
}

/// The settings of one Twilio account and sender, as read from configuration; checked by
/// [`TwilioMessaging::new`].
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// `AC` and 32 hexadecimal digits.
    pub account_sid: String,
    /// Signs webhooks; authenticates API calls unless an API key is given.
    pub auth_token: SecretString,
    /// An API key (`SK…`, secret) to authenticate API calls with instead of the auth token.
    pub api_key: Option<(String, SecretString)>,
    pub sender: TwilioSender,
    /// Our numbers in E.164: a customer's message must be addressed to one of them.
    pub numbers: Vec<String>,
    /// `https://api.twilio.com`, or an emulator's URL.
    pub api_url: String,
    /// How long one API call may take.
    pub timeout: Duration,
    /// How addresses are written: bare for SMS, `whatsapp:` for WhatsApp senders.
    pub prefix: AddressPrefix,
}

/// What one message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content<'a> {
    /// Free text (`Body`).
    Text(&'a str),
    /// An approved Content Template (`ContentSid` `HX…`, with `ContentVariables` as a JSON
    /// object) — the only thing WhatsApp takes outside the 24-hour window.
    Template {
        content_sid: &'a str,
        variables: Option<&'a str>,
    },
}

/// One Twilio account sending from one sender and receiving on its numbers.
#[derive(Debug, Clone)]
pub struct TwilioMessaging {
    account_sid: String,
    auth_token: SecretString,
    sender: TwilioSender,
    numbers: Vec<String>,
    prefix: AddressPrefix,
    api: MessagesApi,
}

/// `prefix` followed by exactly `digits` hexadecimal digits (either case, as Twilio's own
/// schema allows).
fn is_sid(value: &str, prefix: &str) -> bool {
    value
        .strip_prefix(prefix)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A secret that can be sent in a header: 1 to 256 visible ASCII characters.
fn is_token(secret: &SecretString) -> bool {
    let s = secret.expose_secret();
    (1..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

impl TwilioMessaging {
    /// Checks `settings` and builds the client. Errors name `channels.<channel>.<key>` with
    /// the keys of the SMS configuration (`account_sid`, `auth_token`, `api_key_sid`,
    /// `api_key_secret`, `from`, `messaging_service_sid`, `numbers`, `api_url`,
    /// `timeout_secs`) and say what to do.
    ///
    /// # Errors
    /// [`ChannelError::InvalidConfig`].
    pub fn new(channel: &str, settings: TwilioSettings) -> Result<Self, ChannelError> {
        let invalid = |key: &str, reason: &str| ChannelError::InvalidConfig {
            setting: format!("channels.{channel}.{key}"),
            reason: reason.to_owned(),
        };
        if !is_sid(&settings.account_sid, "AC") {
            return Err(invalid(
                "account_sid",
                "must be AC followed by 32 hexadecimal digits, as shown in the Twilio console",
            ));
        }
        if !is_token(&settings.auth_token) {
            return Err(invalid(
                "auth_token",
                "must be the account's auth token from the Twilio console (visible ASCII, no \
                 spaces)",
            ));
        }
        let (username, password) = match settings.api_key {
            Some((sid, secret)) => {
                if !is_sid(&sid, "SK") {
                    return Err(invalid(
                        "api_key_sid",
                        "must be SK followed by 32 hexadecimal digits (an API key's sid)",
                    ));
                }
                if !is_token(&secret) {
                    return Err(invalid(
                        "api_key_secret",
                        "must be the API key's secret (visible ASCII, no spaces)",
                    ));
                }
                (sid, secret)
            }
            None => (settings.account_sid.clone(), settings.auth_token.clone()),
        };
        match &settings.sender {
            TwilioSender::Number(number) if !is_e164(number) => {
                return Err(invalid(
                    "from",
                    "must be an E.164 number such as +14155550100 (one of the account's numbers)",
                ));
            }
            TwilioSender::MessagingService(sid) if !is_sid(sid, "MG") => {
                return Err(invalid(
                    "messaging_service_sid",
                    "must be MG followed by 32 hexadecimal digits",
                ));
            }
            _ => {}
        }
        check_numbers(&settings.numbers, &settings.sender).map_err(|r| invalid("numbers", r))?;
        let api_url = check_api_url(&settings.api_url).map_err(|r| invalid("api_url", &r))?;
        if !(1..=120).contains(&settings.timeout.as_secs()) {
            return Err(invalid("timeout_secs", "must be between 1 and 120 seconds"));
        }
        let api = MessagesApi::new(
            &api_url,
            &settings.account_sid,
            username,
            password,
            settings.timeout,
        )
        .map_err(|r| invalid("api_url", &r))?;
        Ok(Self {
            account_sid: settings.account_sid,
            auth_token: settings.auth_token,
            sender: settings.sender,
            numbers: settings.numbers,
            prefix: settings.prefix,
            api,
        })
    }

    /// Our numbers in E.164.
    #[must_use]
    pub fn numbers(&self) -> &[String] {
        &self.numbers
    }

    /// Who messages are sent from.
    #[must_use]
    pub fn sender(&self) -> &TwilioSender {
        &self.sender
    }

    /// The account sid.
    #[must_use]
    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    /// Verifies a webhook's `X-Twilio-Signature` over `request.url` and its form body, then
    /// parses it: a customer's message, a status report, or nothing (a status Handoff does not
    /// track).
    ///
    /// # Errors
    /// [`ChannelError::WebhookNotVerified`] for a missing or wrong signature (nothing else is
    /// looked at first), [`ChannelError::InvalidInbound`] for a body that is not ours.
    pub fn inbound(&self, request: &InboundRequest) -> Result<Vec<InboundEvent>, ChannelError> {
        let form = Form::parse(&request.body).map_err(|e| ChannelError::InvalidInbound {
            field: "body".into(),
            reason: e.to_string(),
        })?;
        signature::verify(
            &self.auth_token,
            &request.url,
            &form,
            request.header(signature::SIGNATURE_HEADER),
        )
        .map_err(ChannelError::WebhookNotVerified)?;
        let event = inbound::parse(
            &form,
            &request.url,
            request.received_at,
            inbound::Expected {
                account_sid: &self.account_sid,
                numbers: &self.numbers,
                prefix: self.prefix,
            },
        )?;
        Ok(event.into_iter().collect())
    }

    /// The answer to a webhook: empty TwiML, meaning "no automatic reply".
    #[must_use]
    pub fn ack() -> InboundAck {
        InboundAck {
            content_type: "text/xml",
            body: r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#.to_owned(),
        }
    }

    /// Sends `content` to `to` (E.164; the channel's prefix is added). `delivery_id` is added to
    /// `status_callback` (the gateway's status URL) as `delivery`, so Twilio's reports find
    /// the outbox row.
    ///
    /// # Errors
    /// [`DeliveryError`] as [`api::classify`] says; [`DeliveryError::Permanent`] for a target
    /// that is not E.164 or empty content, before anything is sent.
    pub async fn send(
        &self,
        to: &str,
        content: Content<'_>,
        delivery_id: &str,
        status_callback: Option<&str>,
    ) -> Result<Delivered, DeliveryError> {
        if !is_e164(to) {
            return Err(DeliveryError::Permanent {
                message: "the reply target is not an E.164 phone number".into(),
            });
        }
        let to = self.prefix.apply(to);
        let from = match &self.sender {
            TwilioSender::Number(number) => Some(self.prefix.apply(number)),
            TwilioSender::MessagingService(_) => None,
        };
        let callback = status_callback.map(|url| with_delivery_id(url, delivery_id));
        let mut message = CreateMessage {
            to: &to,
            from: from.as_deref(),
            messaging_service_sid: match &self.sender {
                TwilioSender::MessagingService(sid) => Some(sid),
                TwilioSender::Number(_) => None,
            },
            status_callback: callback.as_deref(),
            ..CreateMessage::default()
        };
        match content {
            Content::Text(text) if text.trim().is_empty() => {
                return Err(DeliveryError::Permanent {
                    message: "an empty message cannot be sent".into(),
                });
            }
            Content::Text(text) => message.body = Some(text),
            Content::Template {
                content_sid,
                variables,
            } => {
                message.content_sid = Some(content_sid);
                message.content_variables = variables;
            }
        }
        self.api.create(&message, delivery_id).await
    }
}

/// `status_callback` with `delivery=<percent-encoded id>` added to its query.
#[must_use]
pub fn with_delivery_id(status_callback: &str, delivery_id: &str) -> String {
    let url = status_callback
        .split_once('#')
        .map_or(status_callback, |(url, _)| url);
    let separator = if url.contains('?') { '&' } else { '?' };
    let encoded: String = form_urlencoded::byte_serialize(delivery_id.as_bytes()).collect();
    format!("{url}{separator}delivery={encoded}")
}

/// Each number E.164 and listed once, at least one, and the sending number among them.
fn check_numbers(numbers: &[String], sender: &TwilioSender) -> Result<(), &'static str> {
    if numbers.is_empty() {
        return Err("list the numbers customers write to (E.164), e.g. [\"+14155550100\"]");
    }
    if !numbers.iter().all(|n| is_e164(n)) {
        return Err("each number must be an E.164 number such as +14155550100");
    }
    for (i, number) in numbers.iter().enumerate() {
        if numbers[..i].contains(number) {
            return Err("a number is listed twice");
        }
    }
    if let TwilioSender::Number(from) = sender
        && !numbers.contains(from)
    {
        return Err("must include `from`: customers answer to it");
    }
    Ok(())
}

/// An `http(s)` URL with a host and nothing after the path (no query, fragment or user).
fn check_api_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        format!("is not a URL ({e}); use https://api.twilio.com or the emulator's URL")
    })?;
    if !matches!(url.scheme(), "https" | "http") || !url.has_host() {
        return Err("must be an http(s) URL such as https://api.twilio.com".into());
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(
            "must not carry a query, fragment or credentials; credentials go in account_sid \
             and auth_token"
                .into(),
        );
    }
    Ok(url)
}

/// The value of `setting`, or the contents of the file `setting_file` names (surrounding
/// whitespace dropped); never both.
///
/// # Errors
/// [`ChannelError::InvalidConfig`] for both set, or a file that cannot be read.
pub fn read_secret(
    value: Option<&SecretString>,
    file: Option<&Path>,
    setting: &str,
) -> Result<Option<SecretString>, ChannelError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(ChannelError::InvalidConfig {
            setting: setting.to_owned(),
            reason: format!("set either {setting} or {setting}_file, not both"),
        }),
        (None, None) => Ok(None),
        (Some(value), None) => Ok(Some(SecretString::from(value.expose_secret().trim()))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| ChannelError::InvalidConfig {
                setting: format!("{setting}_file"),
                reason: format!("cannot read {}: {e}", path.display()),
            })?;
            Ok(Some(SecretString::from(text.trim())))
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "feedfacefeedfacefeedfacefeedface";

    fn settings() -> TwilioSettings {
        TwilioSettings {
            account_sid: ACCOUNT.into(),
            auth_token: SecretString::from(TOKEN),
            api_key: None,
            sender: TwilioSender::Number("+15550100000".into()),
            numbers: vec!["+15550100000".into()],
            api_url: DEFAULT_API_URL.into(),
            timeout: Duration::from_secs(10),
            prefix: AddressPrefix::Bare,
        }
    }

    fn setting_of(settings: TwilioSettings) -> String {
        TwilioMessaging::new("sms", settings)
            .unwrap_err()
            .field()
            .unwrap()
    }

    #[test]
    fn settings_are_checked_and_named() {
        assert!(TwilioMessaging::new("sms", settings()).is_ok());
        let cases: Vec<(TwilioSettings, &str)> = vec![
            (
                TwilioSettings {
                    account_sid: "AC123".into(),
                    ..settings()
                },
                "channels.sms.account_sid",
            ),
            (
                TwilioSettings {
                    account_sid: format!("SK{}", &ACCOUNT[2..]),
                    ..settings()
                },
                "channels.sms.account_sid",
            ),
            (
                TwilioSettings {
                    auth_token: SecretString::from("has space"),
                    ..settings()
                },
                "channels.sms.auth_token",
            ),
            (
                TwilioSettings {
                    api_key: Some((ACCOUNT.into(), SecretString::from("s"))),
                    ..settings()
                },
                "channels.sms.api_key_sid",
            ),
            (
                TwilioSettings {
                    api_key: Some((format!("SK{}", &ACCOUNT[2..]), SecretString::from(""))),
                    ..settings()
                },
                "channels.sms.api_key_secret",
            ),
            (
                TwilioSettings {
                    sender: TwilioSender::Number("15550100000".into()),
                    ..settings()
                },
                "channels.sms.from",
            ),
            (
                TwilioSettings {
                    sender: TwilioSender::MessagingService("MG1".into()),
                    ..settings()
                },
                "channels.sms.messaging_service_sid",
            ),
            (
                TwilioSettings {
                    numbers: vec![],
                    ..settings()
                },
                "channels.sms.numbers",
            ),
            (
                TwilioSettings {
                    numbers: vec!["+15550100000".into(), "+15550100000".into()],
                    ..settings()
                },
                "channels.sms.numbers",
            ),
            (
                TwilioSettings {
                    numbers: vec!["+15550100001".into()],
                    ..settings()
                },
                "channels.sms.numbers",
            ),
            (
                TwilioSettings {
                    api_url: "ftp://api.twilio.com".into(),
                    ..settings()
                },
                "channels.sms.api_url",
            ),
            (
                TwilioSettings {
                    api_url: "https://user:pw@api.twilio.com".into(),
                    ..settings()
                },
                "channels.sms.api_url",
            ),
            (
                TwilioSettings {
                    timeout: Duration::ZERO,
                    ..settings()
                },
                "channels.sms.timeout_secs",
            ),
        ];
        for (settings, setting) in cases {
            assert_eq!(setting_of(settings), setting);
        }
        let service = TwilioSettings {
            sender: TwilioSender::MessagingService(format!("MG{}", &ACCOUNT[2..])),
            numbers: vec!["+15550100001".into()],
            ..settings()
        };
        assert!(TwilioMessaging::new("sms", service).is_ok());
    }

    #[test]
    fn errors_never_show_secrets() {
        let err = TwilioMessaging::new(
            "sms",
            TwilioSettings {
                auth_token: SecretString::from("hunter2 hunter2"),
                ..settings()
            },
        )
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let shown = format!("{:?}", TwilioMessaging::new("sms", settings()).unwrap());
        assert!(!shown.contains(TOKEN), "{shown}");
    }

    #[test]
    fn the_delivery_id_is_added_to_the_status_callback() {
        assert_eq!(
            with_delivery_id("https://h.example.com/channels/sms/status", "dlv_1/002 x"),
            "https://h.example.com/channels/sms/status?delivery=dlv_1%2F002+x"
        );
        assert_eq!(
            with_delivery_id("https://h.example.com/status?a=1#f", "d&1"),
            "https://h.example.com/status?a=1&delivery=d%261"
        );
        // What is added reads back as the same id.
        let url = with_delivery_id("https://h/s?x=%2B", "dlv_ä+&=?#");
        assert_eq!(
            form::query_param(&url, "delivery").as_deref(),
            Some("dlv_ä+&=?#")
        );
    }

    #[test]
    fn webhooks_are_verified_before_anything_is_read() {
        let twilio = TwilioMessaging::new("sms", settings()).unwrap();
        let url = "https://h.example.com/channels/sms/inbound";
        let form = Form::from_pairs([
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("AccountSid", ACCOUNT),
            ("From", "+15551234567"),
            ("To", "+15550100000"),
            ("Body", "hello"),
        ]);
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.pairs())
            .finish();
        let signature = signature::sign(&SecretString::from(TOKEN), url, &form);
        let request = |signature: &str| InboundRequest {
            url: url.into(),
            headers: vec![("x-twilio-signature".into(), signature.into())],
            body: body.clone().into_bytes(),
            received_at: Utc::now(),
        };
        let events = twilio.inbound(&request(&signature)).unwrap();
        assert_eq!(events.len(), 1);
        let err = twilio.inbound(&request("bm9wZQ==")).unwrap_err();
        assert_eq!(err.code(), "invalid_signature");
        assert!(err.to_string().contains("X-Twilio-Signature"), "{err}");
        let mut unsigned = request(&signature);
        unsigned.headers.clear();
        assert_eq!(
            twilio.inbound(&unsigned).unwrap_err().code(),
            "invalid_signature"
        );
        // A signed body that is not for our numbers is refused after verification.
        let other = TwilioMessaging::new(
            "sms",
            TwilioSettings {
                numbers: vec!["+15550100009".into()],
                sender: TwilioSender::Number("+15550100009".into()),
                ..settings()
            },
        )
        .unwrap();
        let err = other.inbound(&request(&signature)).unwrap_err();
        assert_eq!(
            (err.code(), err.field().as_deref()),
            ("invalid_inbound", Some("To"))
        );
    }

    #[test]
    fn secrets_are_read_from_values_or_files() {
        let path =
            std::env::temp_dir().join(format!("handoff-twilio-token-{}", std::process::id()));
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        let read = read_secret(None, Some(&path), "channels.sms.auth_token")
            .unwrap()
            .unwrap();
        assert_eq!(read.expose_secret(), TOKEN);
        let err = read_secret(
            Some(&SecretString::from(TOKEN)),
            Some(&path),
            "channels.sms.auth_token",
        )
        .unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = read_secret(None, Some(&path), "channels.sms.auth_token").unwrap_err();
        assert_eq!(err.field().as_deref(), Some("channels.sms.auth_token_file"));
        assert!(read_secret(None, None, "x").unwrap().is_none());
    }
}
