//! The webhook envelope every Cloud API notification shares
//! (`object` / `entry[].changes[].value` with `metadata`), serialized in Meta's key order and
//! with non-ASCII characters escaped, and signed.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, header};
use serde::Serialize;
use serde_json::Value;

use crate::poster::SignedRequest;
use crate::whatsapp::ascii::escape_non_ascii;
use crate::whatsapp::signature::{SIGNATURE_HEADER, signature};

#[derive(Serialize)]
struct Envelope<'a> {
    object: &'static str,
    entry: [Entry<'a>; 1],
}

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    changes: [Change<'a>; 1],
}

#[derive(Serialize)]
struct Change<'a> {
    value: ChangeValue<'a>,
    field: &'static str,
}

#[derive(Serialize)]
struct ChangeValue<'a> {
    messaging_product: &'static str,
    metadata: Metadata<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contacts: Option<[Contact<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<[&'a InboundMessage; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statuses: Option<[&'a StatusEntry; 1]>,
}

/// A customer's text message, keys in Meta's order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TextMessage {
    pub(crate) from: String,
    pub(crate) id: String,
    pub(crate) timestamp: String,
    pub(crate) text: TextBody,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
}

/// `text.body`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TextBody {
    pub(crate) body: String,
}

/// A customer's message: a text built by the emulator, or any message JSON given by a test.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum InboundMessage {
    Text(TextMessage),
    Other(Value),
}

/// One `statuses[]` entry, keys in Meta's order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatusEntry {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) timestamp: String,
    pub(crate) recipient_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) conversation: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pricing: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) biz_opaque_callback_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) errors: Option<Value>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    display_phone_number: &'a str,
    phone_number_id: &'a str,
}

#[derive(Serialize)]
struct Contact<'a> {
    profile: Profile<'a>,
    wa_id: &'a str,
}

#[derive(Serialize)]
struct Profile<'a> {
    name: &'a str,
}

/// The business account the notification is about.
pub(crate) struct Business<'a> {
    pub(crate) waba_id: &'a str,
    pub(crate) display_phone_number: &'a str,
    pub(crate) phone_number_id: &'a str,
}

/// What the notification carries.
pub(crate) enum Payload<'a> {
    /// A customer's message, with the sender's profile name and wa_id.
    Message {
        name: &'a str,
        wa_id: &'a str,
        message: &'a InboundMessage,
    },
    /// A status of one of our messages.
    Status(&'a StatusEntry),
}

/// The envelope's body bytes.
pub(crate) fn body(business: &Business<'_>, payload: &Payload<'_>) -> Bytes {
    let (contacts, messages, statuses) = match payload {
        Payload::Message {
            name,
            wa_id,
            message,
        } => (
            Some([Contact {
                profile: Profile { name },
                wa_id,
            }]),
            Some([*message]),
            None,
        ),
        Payload::Status(status) => (None, None, Some([*status])),
    };
    let envelope = Envelope {
        object: "whatsapp_business_account",
        entry: [Entry {
            id: business.waba_id,
            changes: [Change {
                value: ChangeValue {
                    messaging_product: "whatsapp",
                    metadata: Metadata {
                        display_phone_number: business.display_phone_number,
                        phone_number_id: business.phone_number_id,
                    },
                    contacts,
                    messages,
                    statuses,
                },
                field: "messages",
            }],
        }],
    };
    let json = serde_json::to_string(&envelope).expect("the envelope always serializes");
    Bytes::from(escape_non_ascii(&json))
}

/// A signed POST of `body` to `url`.
pub(crate) fn signed_post(
    app_secret: &str,
    url: &str,
    body: Bytes,
    message_id: &str,
) -> SignedRequest {
    let mut headers = vec![(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    if let Ok(value) = HeaderValue::from_str(&signature(app_secret, &body)) {
        headers.push((HeaderName::from_static(SIGNATURE_HEADER), value));
    }
    SignedRequest {
        method: Method::POST,
        url: url.to_string(),
        headers,
        body,
        message_id: message_id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The emulator's envelope for the pywa fixture's message is byte-identical to the body
    /// Meta sent (david-lev/pywa:tests/test_server.py @0bcf2f19, MIT; quoted in
    /// `shared/reference/channels.md` §2.3), so its signature is the published one.
    #[test]
    fn reproduces_the_pywa_vector() {
        let expected = r#"{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}"#;
        let message = InboundMessage::Text(TextMessage {
            from: "972544401243".into(),
            id: "wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA"
                .into(),
            timestamp: "1730231903".into(),
            text: TextBody {
                body: "Hey there! I am using PyWa.".into(),
            },
            kind: "text",
        });
        let business = Business {
            waba_id: "264937493375603",
            display_phone_number: "15550953877",
            phone_number_id: "277321005464405",
        };
        let body = body(
            &business,
            &Payload::Message {
                name: "PyWa Tests",
                wa_id: "972544401243",
                message: &message,
            },
        );
        assert_eq!(std::str::from_utf8(&body).unwrap(), expected);
        assert_eq!(body.len(), 511);
        assert_eq!(
            signature("1222e786b144d0e85b9f365372d93676", &body),
            "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441"
        );
    }
}
