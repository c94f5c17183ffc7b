//! What a verified Twilio messaging webhook says: a customer's message (the number's incoming
//! message webhook) or a report on a message we sent (the `StatusCallback` we gave, recognised
//! by its `MessageStatus`). The same parser serves SMS and Twilio WhatsApp senders, whose
//! addresses carry a `whatsapp:` prefix.

use chrono::{DateTime, Utc};

use super::form::{Form, query_param};
use crate::reply::is_e164;
use crate::{ChannelError, InboundEvent, InboundMessage, Media, ProviderStatus, StatusUpdate};

/// Twilio sends at most ten media items with one message.
pub const MAX_MEDIA: usize = 10;
/// The longest media URL we pass on.
pub const MAX_MEDIA_URL_CHARS: usize = 2_048;
/// The longest sender display name we keep (longer ones are cut).
pub const MAX_NAME_CHARS: usize = 256;
/// The longest id (message sid, delivery id, error code) we accept.
pub const MAX_ID_CHARS: usize = 64;
/// The longest delivery id carried back in a status callback URL.
pub const MAX_DELIVERY_ID_CHARS: usize = 256;

/// How a channel writes phone numbers in Twilio's `From` and `To`: bare E.164 for SMS,
/// `whatsapp:+E.164` for WhatsApp senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPrefix {
    /// `+14155550100`.
    Bare,
    /// `whatsapp:+14155550100`.
    Whatsapp,
}

impl AddressPrefix {
    /// The prefix itself (`""` or `"whatsapp:"`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bare => "",
            Self::Whatsapp => "whatsapp:",
        }
    }

    /// `number` as Twilio expects it for this channel.
    #[must_use]
    pub fn apply(self, number: &str) -> String {
        format!("{}{number}", self.as_str())
    }

    /// The E.164 number in a Twilio address of this channel, or `None` when the address has
    /// another prefix (or none where one is needed) or is not an E.164 number.
    #[must_use]
    pub fn strip(self, address: &str) -> Option<&str> {
        address
            .strip_prefix(self.as_str())
            .filter(|number| is_e164(number))
    }
}

/// What a webhook must match to be ours: our account and the numbers customers write to.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub account_sid: &'a str,
    /// Our numbers in E.164.
    pub numbers: &'a [String],
    pub prefix: AddressPrefix,
}

fn invalid(field: impl Into<String>, reason: &str) -> ChannelError {
    ChannelError::InvalidInbound {
        field: field.into(),
        reason: reason.to_owned(),
    }
}

/// The event a verified webhook carries: `None` for a status report Handoff does not track
/// (see [`map_status`]).
///
/// # Errors
/// [`ChannelError::InvalidInbound`] naming the parameter that is missing, malformed or not
/// ours. The reasons never echo values.
pub fn parse(
    form: &Form,
    url: &str,
    received_at: DateTime<Utc>,
    expected: Expected<'_>,
) -> Result<Option<InboundEvent>, ChannelError> {
    let account = form
        .get("AccountSid")
        .ok_or_else(|| invalid("AccountSid", "is missing"))?;
    if !account.eq_ignore_ascii_case(expected.account_sid) {
        return Err(invalid(
            "AccountSid",
            "is not the account this channel is configured with",
        ));
    }
    let sid = message_sid(form)?;
    match form.get("MessageStatus") {
        Some(status) => status_update(form, url, sid, status, received_at),
        None => message(form, sid, received_at, expected).map(Some),
    }
}

fn message_sid(form: &Form) -> Result<String, ChannelError> {
    let sid = form
        .get("MessageSid")
        .ok_or_else(|| invalid("MessageSid", "is missing"))?;
    if !is_id(sid) {
        return Err(invalid(
            "MessageSid",
            "must be 2 to 64 ASCII letters and digits",
        ));
    }
    Ok(sid.to_owned())
}

fn is_id(s: &str) -> bool {
    (2..=MAX_ID_CHARS).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Twilio's `MessageStatus` in Handoff's terms. `canceled` (a scheduled message withdrawn)
/// never reaches the customer, so it is a failure. `receiving` and `received` describe inbound
/// messages, `partially_delivered` a message to several recipients (Handoff sends to one), and
/// any status Twilio adds later is not guessed at: those give `None` and the report is ignored.
#[must_use]
pub fn map_status(status: &str) -> Option<ProviderStatus> {
    Some(match status {
        "queued" | "accepted" | "scheduled" | "sending" => ProviderStatus::Queued,
        "sent" => ProviderStatus::Sent,
        "delivered" => ProviderStatus::Delivered,
        "read" => ProviderStatus::Read,
        "undelivered" => ProviderStatus::Undelivered,
        "failed" | "canceled" => ProviderStatus::Failed,
        _ => return None,
    })
}

fn status_update(
    form: &Form,
    url: &str,
    provider_message_id: String,
    status: &str,
    at: DateTime<Utc>,
) -> Result<Option<InboundEvent>, ChannelError> {
    let Some(mapped) = map_status(status) else {
        let known =
            status.len() <= 32 && status.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        tracing::debug!(
            status = if known { status } else { "(unrecognised)" },
            "Twilio status not tracked; ignored."
        );
        return Ok(None);
    };
    let error_code = match form.get("ErrorCode").map(str::trim) {
        None | Some("") => None,
        Some(code) if code.len() <= 16 && code.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Some(code.to_owned())
        }
        Some(_) => return Err(invalid("ErrorCode", "must be a Twilio error code")),
    };
    let delivery_id = match query_param(url, "delivery") {
        None => None,
        Some(id)
            if !id.is_empty()
                && id.chars().count() <= MAX_DELIVERY_ID_CHARS
                && !id.chars().any(char::is_control) =>
        {
            Some(id)
        }
        Some(_) => {
            return Err(invalid(
                "delivery",
                "the status callback URL's delivery id must be 1 to 256 printable characters",
            ));
        }
    };
    Ok(Some(InboundEvent::Status(StatusUpdate {
        provider_message_id,
        delivery_id,
        status: mapped,
        error_code,
        at,
    })))
}

fn message(
    form: &Form,
    provider_message_id: String,
    at: DateTime<Utc>,
    expected: Expected<'_>,
) -> Result<InboundEvent, ChannelError> {
    let address = |name: &str| -> Result<String, ChannelError> {
        let value = form.get(name).ok_or_else(|| invalid(name, "is missing"))?;
        expected
            .prefix
            .strip(value)
            .map(str::to_owned)
            .ok_or_else(|| {
                invalid(
                    name,
                    match expected.prefix {
                        AddressPrefix::Bare => "must be an E.164 number such as +14155550100",
                        AddressPrefix::Whatsapp => {
                            "must be whatsapp: followed by an E.164 number such as +14155550100"
                        }
                    },
                )
            })
    };
    let from = address("From")?;
    let to = address("To")?;
    if !expected.numbers.contains(&to) {
        return Err(invalid("To", "is not one of this channel's numbers"));
    }
    let media = media(form)?;
    let body = form.get("Body").unwrap_or("").trim();
    let text = if !body.is_empty() {
        body.to_owned()
    } else if let Some(location) = location(form) {
        location
    } else if !media.is_empty() {
        media
            .iter()
            .map(|m| match &m.content_type {
                Some(kind) => format!("[{kind} attachment]"),
                None => "[attachment]".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        "[empty message]".to_owned()
    };
    let sender_name = form.get("ProfileName").and_then(display_name);
    Ok(InboundEvent::Message(InboundMessage {
        provider_message_id,
        session_id: None,
        from: Some(from),
        to: Some(to),
        sender_name,
        text,
        media,
        at,
    }))
}

/// `MediaUrl{N}` / `MediaContentType{N}` for N below `NumMedia` (at most ten).
fn media(form: &Form) -> Result<Vec<Media>, ChannelError> {
    let count = match form.get("NumMedia").map(str::trim) {
        None | Some("") => 0,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= MAX_MEDIA)
            .ok_or_else(|| invalid("NumMedia", "must be a number from 0 to 10"))?,
    };
    (0..count)
        .map(|i| {
            let field = format!("MediaUrl{i}");
            let url = form
                .get(&field)
                .ok_or_else(|| invalid(field.clone(), "is missing"))?;
            let ok = url.len() <= MAX_MEDIA_URL_CHARS
                && url::Url::parse(url)
                    .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.has_host());
            if !ok {
                return Err(invalid(
                    field,
                    "must be an http(s) URL of at most 2048 characters",
                ));
            }
            let content_type = form
                .get(&format!("MediaContentType{i}"))
                .map(str::trim)
                .filter(|t| is_media_type(t))
                .map(str::to_owned);
            Ok(Media {
                url: url.to_owned(),
                content_type,
                filename: None,
            })
        })
        .collect()
}

/// `type/subtype` (parameters allowed) in printable ASCII, at most 127 characters.
fn is_media_type(t: &str) -> bool {
    t.len() <= 127
        && t.split(';').next().is_some_and(|essence| {
            essence
                .split_once('/')
                .is_some_and(|(a, b)| !a.is_empty() && !b.trim().is_empty())
        })
        && t.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// A WhatsApp location (`Latitude`, `Longitude`, optional `Label` or `Address`) described as
/// `[location 52.52, 13.40 "Label"]`.
fn location(form: &Form) -> Option<String> {
    let coordinate = |name: &str, limit: f64| {
        let text = form.get(name)?.trim();
        let value: f64 = text.parse().ok()?;
        (text.len() <= 32 && value.is_finite() && value.abs() <= limit).then_some(text)
    };
    let (lat, lon) = (
        coordinate("Latitude", 90.0)?,
        coordinate("Longitude", 180.0)?,
    );
    let label = form
        .get("Label")
        .and_then(display_name)
        .or_else(|| form.get("Address").and_then(display_name));
    Some(match label {
        Some(label) => format!("[location {lat}, {lon} \"{label}\"]"),
        None => format!("[location {lat}, {lon}]"),
    })
}

/// A name shown to the rep: trimmed, control characters dropped, at most 256 characters;
/// `None` when nothing is left.
fn display_name(raw: &str) -> Option<String> {
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const OURS: &str = "+15550100000";

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap()
    }

    fn numbers() -> Vec<String> {
        vec!["+15550100999".into(), OURS.into()]
    }

    fn parse_with(
        pairs: &[(&str, &str)],
        url: &str,
        prefix: AddressPrefix,
    ) -> Result<Option<InboundEvent>, ChannelError> {
        let numbers = numbers();
        parse(
            &Form::from_pairs(pairs.iter().copied()),
            url,
            at(),
            Expected {
                account_sid: ACCOUNT,
                numbers: &numbers,
                prefix,
            },
        )
    }

    fn sms(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut pairs = vec![
            ("ToCountry", "US"),
            ("SmsMessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("NumMedia", "0"),
            ("SmsStatus", "received"),
            ("Body", "  My card was declined \n"),
            ("To", OURS),
            ("NumSegments", "1"),
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("AccountSid", ACCOUNT),
            ("From", "+15551234567"),
            ("ApiVersion", "2010-04-01"),
        ];
        for (name, value) in extra {
            pairs.retain(|(n, _)| n != name);
            pairs.push((name, value));
        }
        pairs
    }

    fn message_of(pairs: &[(&str, &str)], prefix: AddressPrefix) -> InboundMessage {
        match parse_with(pairs, "https://h.example.com/channels/sms/inbound", prefix) {
            Ok(Some(InboundEvent::Message(m))) => m,
            other => panic!("not a message: {other:?}"),
        }
    }

    fn error_of(pairs: &[(&str, &str)]) -> (String, String) {
        let err = parse_with(pairs, "https://h.example.com/x", AddressPrefix::Bare).unwrap_err();
        assert_eq!(err.code(), "invalid_inbound");
        (err.field().unwrap(), err.to_string())
    }

    #[test]
    fn an_sms_becomes_a_message() {
        let m = message_of(&sms(&[]), AddressPrefix::Bare);
        assert_eq!(
            m,
            InboundMessage {
                provider_message_id: "SM0123456789abcdef0123456789abcdef".into(),
                session_id: None,
                from: Some("+15551234567".into()),
                to: Some(OURS.into()),
                sender_name: None,
                text: "My card was declined".into(),
                media: vec![],
                at: at(),
            }
        );
    }

    #[test]
    fn media_are_listed_and_described_when_there_is_no_text() {
        let pairs = sms(&[
            ("Body", ""),
            ("NumMedia", "2"),
            (
                "MediaUrl0",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
            ),
            ("MediaContentType0", "image/jpeg"),
            (
                "MediaUrl1",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2",
            ),
            ("MediaContentType1", "not a type"),
        ]);
        let m = message_of(&pairs, AddressPrefix::Bare);
        assert_eq!(m.text, "[image/jpeg attachment] [attachment]");
        assert_eq!(m.media.len(), 2);
        assert_eq!(m.media[0].content_type.as_deref(), Some("image/jpeg"));
        assert!(m.media[1].url.ends_with("/ME2"));
        assert_eq!(m.media[1].content_type, None);
        // With text, the text stays and the media are still listed.
        let pairs = sms(&[
            ("NumMedia", "1"),
            ("MediaUrl0", "https://media.example.com/1"),
            ("MediaContentType0", "application/pdf"),
        ]);
        let m = message_of(&pairs, AddressPrefix::Bare);
        assert_eq!(m.text, "My card was declined");
        assert_eq!(m.media.len(), 1);
        // Nothing at all still says something.
        let m = message_of(&sms(&[("Body", " ")]), AddressPrefix::Bare);
        assert_eq!(m.text, "[empty message]");
    }

    #[test]
    fn media_are_bounded_and_checked() {
        assert_eq!(error_of(&sms(&[("NumMedia", "11")])).0, "NumMedia");
        assert_eq!(error_of(&sms(&[("NumMedia", "-1")])).0, "NumMedia");
        assert_eq!(error_of(&sms(&[("NumMedia", "1")])).0, "MediaUrl0");
        assert_eq!(
            error_of(&sms(&[
                ("NumMedia", "1"),
                ("MediaUrl0", "javascript:alert(1)")
            ]))
            .0,
            "MediaUrl0"
        );
        let long = format!("https://m.example.com/{}", "a".repeat(MAX_MEDIA_URL_CHARS));
        let pairs: Vec<(&str, &str)> = sms(&[("NumMedia", "1")])
            .into_iter()
            .chain([("MediaUrl0", long.as_str())])
            .collect();
        assert_eq!(error_of(&pairs).0, "MediaUrl0");
    }

    #[test]
    fn whatsapp_addresses_need_and_lose_their_prefix() {
        let pairs = sms(&[
            ("From", "whatsapp:+15551234567"),
            ("To", "whatsapp:+15550100000"),
            ("ProfileName", " Ann\u{7} Example "),
            ("WaId", "15551234567"),
        ]);
        let m = message_of(&pairs, AddressPrefix::Whatsapp);
        assert_eq!(m.from.as_deref(), Some("+15551234567"));
        assert_eq!(m.to.as_deref(), Some(OURS));
        assert_eq!(m.sender_name.as_deref(), Some("Ann Example"));
        // A bare number on a WhatsApp channel, or a WhatsApp address on SMS, is refused.
        let err = parse_with(&sms(&[]), "https://h/x", AddressPrefix::Whatsapp).unwrap_err();
        assert_eq!(err.field().as_deref(), Some("From"));
        assert!(err.to_string().contains("whatsapp:"), "{err}");
        assert_eq!(error_of(&pairs).0, "From");
    }

    #[test]
    fn a_whatsapp_location_is_described() {
        let pairs = sms(&[
            ("From", "whatsapp:+15551234567"),
            ("To", "whatsapp:+15550100000"),
            ("Body", ""),
            ("Latitude", "52.52"),
            ("Longitude", "13.40"),
            ("Label", "Office"),
        ]);
        let m = message_of(&pairs, AddressPrefix::Whatsapp);
        assert_eq!(m.text, "[location 52.52, 13.40 \"Office\"]");
        let mut pairs = pairs;
        pairs.retain(|(n, _)| *n != "Label");
        assert_eq!(
            message_of(&pairs, AddressPrefix::Whatsapp).text,
            "[location 52.52, 13.40]"
        );
        // A latitude out of range is no location.
        pairs.retain(|(n, _)| *n != "Latitude");
        pairs.push(("Latitude", "95"));
        assert_eq!(
            message_of(&pairs, AddressPrefix::Whatsapp).text,
            "[empty message]"
        );
    }

    #[test]
    fn messages_must_be_for_our_account_and_numbers() {
        let (field, text) = error_of(&sms(&[(
            "AccountSid",
            "AC99999999999999999999999999999999",
        )]));
        assert_eq!(field, "AccountSid");
        assert!(!text.contains("AC9999"), "{text}");
        assert_eq!(error_of(&sms(&[("To", "+15550100001")])).0, "To");
        let (field, text) = error_of(&sms(&[("From", "12345")]));
        assert_eq!(field, "From");
        assert!(!text.contains("12345"), "{text}");
        assert_eq!(error_of(&sms(&[("MessageSid", "SM-1")])).0, "MessageSid");
        let mut missing = sms(&[]);
        missing.retain(|(n, _)| *n != "MessageSid");
        assert_eq!(error_of(&missing).0, "MessageSid");
        missing.retain(|(n, _)| *n != "AccountSid");
        assert_eq!(error_of(&missing).0, "AccountSid");
        // Our account sid in capitals is still ours.
        let upper = ACCOUNT.to_ascii_uppercase();
        let pairs: Vec<(&str, &str)> = sms(&[])
            .into_iter()
            .map(|(n, v)| {
                if n == "AccountSid" {
                    (n, upper.as_str())
                } else {
                    (n, v)
                }
            })
            .collect();
        assert!(parse_with(&pairs, "https://h/x", AddressPrefix::Bare).is_ok());
    }

    fn status(
        status: &'static str,
        extra: &[(&'static str, &'static str)],
        url: &str,
    ) -> Result<Option<InboundEvent>, ChannelError> {
        let mut pairs = vec![
            ("SmsSid", "SM0123456789abcdef0123456789abcdef"),
            ("SmsStatus", status),
            ("MessageStatus", status),
            ("To", "+15551234567"),
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("AccountSid", ACCOUNT),
            ("From", OURS),
            ("ApiVersion", "2010-04-01"),
        ];
        pairs.extend_from_slice(extra);
        parse_with(&pairs, url, AddressPrefix::Bare)
    }

    #[test]
    fn status_callbacks_become_status_updates() {
        let url = "https://h.example.com/channels/sms/status?delivery=dlv_0123%2F002";
        let event = status("undelivered", &[("ErrorCode", "30003")], url).unwrap();
        assert_eq!(
            event,
            Some(InboundEvent::Status(StatusUpdate {
                provider_message_id: "SM0123456789abcdef0123456789abcdef".into(),
                delivery_id: Some("dlv_0123/002".into()),
                status: ProviderStatus::Undelivered,
                error_code: Some("30003".into()),
                at: at(),
            }))
        );
        let Some(InboundEvent::Status(update)) =
            status("delivered", &[("ErrorCode", "")], "https://h/status").unwrap()
        else {
            panic!("a status");
        };
        assert_eq!(update.delivery_id, None);
        assert_eq!(update.error_code, None);
        assert_eq!(update.status, ProviderStatus::Delivered);
    }

    #[test]
    fn every_twilio_status_is_mapped_or_ignored() {
        for (twilio, ours) in [
            ("queued", Some(ProviderStatus::Queued)),
            ("accepted", Some(ProviderStatus::Queued)),
            ("scheduled", Some(ProviderStatus::Queued)),
            ("sending", Some(ProviderStatus::Queued)),
            ("sent", Some(ProviderStatus::Sent)),
            ("delivered", Some(ProviderStatus::Delivered)),
            ("read", Some(ProviderStatus::Read)),
            ("undelivered", Some(ProviderStatus::Undelivered)),
            ("failed", Some(ProviderStatus::Failed)),
            ("canceled", Some(ProviderStatus::Failed)),
            ("partially_delivered", None),
            ("receiving", None),
            ("received", None),
            ("teleported", None),
        ] {
            assert_eq!(map_status(twilio), ours, "{twilio}");
            let event = status(twilio, &[], "https://h/status").unwrap();
            assert_eq!(event.is_some(), ours.is_some(), "{twilio}");
        }
    }

    #[test]
    fn status_callbacks_are_checked() {
        let err = status("failed", &[("ErrorCode", "30003<script>")], "https://h/s").unwrap_err();
        assert_eq!(err.field().as_deref(), Some("ErrorCode"));
        let long = format!(
            "https://h/s?delivery={}",
            "d".repeat(MAX_DELIVERY_ID_CHARS + 1)
        );
        let err = status("sent", &[], &long).unwrap_err();
        assert_eq!(err.field().as_deref(), Some("delivery"));
        let err = status("sent", &[], "https://h/s?delivery=a%0Ab").unwrap_err();
        assert_eq!(err.field().as_deref(), Some("delivery"));
        let mut pairs = vec![
            ("MessageStatus", "sent"),
            ("MessageSid", "SM1"),
            ("AccountSid", "AC99999999999999999999999999999999"),
        ];
        let err = parse_with(&pairs, "https://h/s", AddressPrefix::Bare).unwrap_err();
        assert_eq!(err.field().as_deref(), Some("AccountSid"));
        pairs[2].1 = ACCOUNT;
        assert!(parse_with(&pairs, "https://h/s", AddressPrefix::Bare).is_ok());
    }
}
