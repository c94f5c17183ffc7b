//! `reply_to` shapes shared by several channels: `{"phone": "+E.164"}` and `{"email": …}`.

use serde::Deserialize;
use serde_json::Value;

use crate::{ChannelError, Conversation, EmailAddress, ReplyTarget};

fn invalid(field: &str, reason: impl Into<String>) -> ChannelError {
    ChannelError::InvalidReplyTo {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// An E.164 number: `+`, a non-zero digit, 8 to 15 digits in all.
#[must_use]
pub fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneReplyTo {
    phone: String,
}

/// `{"phone": "+E.164"}`, or when absent the customer's phone if it is an E.164 number.
pub(crate) fn phone(
    channel: &str,
    reply_to: Option<&Value>,
    conversation: &Conversation,
) -> Result<Option<ReplyTarget>, ChannelError> {
    let Some(value) = reply_to else {
        return Ok(conversation
            .customer
            .phone
            .as_deref()
            .filter(|number| is_e164(number))
            .map(|number| ReplyTarget::Phone {
                number: number.to_owned(),
            }));
    };
    let reply = PhoneReplyTo::deserialize(value).map_err(|_| {
        invalid(
            "reply_to",
            format!("reply_to for {channel} must be {{\"phone\": \"+E.164\"}} and nothing else"),
        )
    })?;
    if !is_e164(&reply.phone) {
        return Err(invalid(
            "reply_to.phone",
            "must be an E.164 number such as +14155550100",
        ));
    }
    Ok(Some(ReplyTarget::Phone {
        number: reply.phone,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailReplyTo {
    email: String,
}

/// `{"email": …}`, or when absent the customer's address.
pub(crate) fn email(
    reply_to: Option<&Value>,
    conversation: &Conversation,
) -> Result<Option<ReplyTarget>, ChannelError> {
    let Some(value) = reply_to else {
        return Ok(conversation
            .customer
            .email
            .clone()
            .map(|address| ReplyTarget::Email { address }));
    };
    let reply = EmailReplyTo::deserialize(value).map_err(|_| {
        invalid(
            "reply_to",
            "reply_to for email must be {\"email\": \"…\"} and nothing else",
        )
    })?;
    let address = EmailAddress::parse(&reply.email)
        .map_err(|_| invalid("reply_to.email", "is not a valid email address"))?;
    Ok(Some(ReplyTarget::Email { address }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Customer;

    fn conversation(email: Option<&str>, phone: Option<&str>) -> Conversation {
        Conversation {
            subject: None,
            customer: Customer {
                name: None,
                email: email.map(|e| EmailAddress::parse(e).unwrap()),
                phone: phone.map(str::to_owned),
            },
            language: "en".into(),
            turns: vec![],
            thread: None,
            voice: None,
        }
    }

    #[test]
    fn phone_targets_default_to_the_customer() {
        let with_phone = conversation(None, Some("+15550107788"));
        assert_eq!(
            phone("sms", None, &with_phone).unwrap(),
            Some(ReplyTarget::Phone {
                number: "+15550107788".into()
            })
        );
        assert_eq!(phone("sms", None, &conversation(None, None)).unwrap(), None);
        assert_eq!(
            phone("sms", None, &conversation(None, Some("5550107788"))).unwrap(),
            None
        );
        assert_eq!(
            phone("sms", Some(&json!({"phone": "+442071838750"})), &with_phone).unwrap(),
            Some(ReplyTarget::Phone {
                number: "+442071838750".into()
            })
        );
        for (value, field) in [
            (json!({"phone": "0207 183 8750"}), "reply_to.phone"),
            (json!({"phone": "+0123456789"}), "reply_to.phone"),
            (json!({"phone": "+1234567890123456"}), "reply_to.phone"),
            (json!({"phone": "+15550107788", "name": "x"}), "reply_to"),
            (json!({"number": "+15550107788"}), "reply_to"),
            (json!("+15550107788"), "reply_to"),
        ] {
            let err = phone("sms", Some(&value), &with_phone).unwrap_err();
            assert_eq!(
                (err.code(), err.field().as_deref()),
                ("invalid_reply_to", Some(field)),
                "{value}"
            );
        }
    }

    #[test]
    fn email_targets_default_to_the_customer() {
        let ann = conversation(Some("ann@example.com"), None);
        let Some(ReplyTarget::Email { address }) = email(None, &ann).unwrap() else {
            panic!("default to the customer");
        };
        assert_eq!(address.as_str(), "ann@example.com");
        assert_eq!(email(None, &conversation(None, None)).unwrap(), None);
        let Some(ReplyTarget::Email { address }) =
            email(Some(&json!({"email": "billing@example.org"})), &ann).unwrap()
        else {
            panic!("explicit address");
        };
        assert_eq!(address.as_str(), "billing@example.org");
        let err = email(Some(&json!({"email": "not an address"})), &ann).unwrap_err();
        assert_eq!(err.field().as_deref(), Some("reply_to.email"));
        let err = email(Some(&json!({"email": "a@b.example", "cc": "x"})), &ann).unwrap_err();
        assert_eq!(err.field().as_deref(), Some("reply_to"));
    }
}
