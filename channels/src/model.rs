//! The canonical conversation model every channel normalizes into.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::address::EmailAddress;

/// Who said a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The person who needs help.
    Customer,
    /// The AI support product.
    Bot,
    /// A human representative.
    Agent,
    /// Messages produced by a system (notices, status lines).
    System,
}

impl Role {
    /// The wire name (`customer`, `bot`, `agent`, `system`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Bot => "bot",
            Self::Agent => "agent",
            Self::System => "system",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One utterance of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Role,
    pub text: String,
    pub at: DateTime<Utc>,
    /// Where the turn starts in a call recording, in milliseconds from the start of the call
    /// (voice transcripts only; `None` for everything else, and absent from the JSON then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_ms: Option<u64>,
}

/// What is known about the customer. Every part is optional: channels know different things.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<EmailAddress>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// The threading headers of the customer's last email, kept so a rep's reply can be threaded
/// into the customer's mailbox. Ids are stored without angle brackets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailThread {
    /// `Message-ID` of the customer's last message.
    pub message_id: String,
    /// `In-Reply-To` of that message (usually one id).
    #[serde(default)]
    pub in_reply_to: Vec<String>,
    /// `References` of that message, oldest first.
    #[serde(default)]
    pub references: Vec<String>,
}

/// A conversation in the one model shared by every channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub subject: Option<String>,
    pub customer: Customer,
    /// BCP-47 language tag, as given by the caller.
    pub language: String,
    /// Oldest first; never empty.
    pub turns: Vec<Turn>,
    /// Present for email conversations whose last customer message had a `Message-ID`.
    pub thread: Option<EmailThread>,
    /// How a voice call was handed over (voice conversations only; absent from the JSON
    /// otherwise, so conversations stored before it read back unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<crate::voice::VoiceInfo>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn conversation_round_trips_through_json() {
        let conversation = Conversation {
            subject: Some("Refund".into()),
            customer: Customer {
                name: Some("Jane".into()),
                email: Some(EmailAddress::parse("jane@example.com").unwrap()),
                phone: None,
            },
            language: "en".into(),
            turns: vec![Turn {
                role: Role::Customer,
                text: "Where is my refund?".into(),
                at: Utc.with_ymd_and_hms(2026, 11, 16, 9, 5, 31).unwrap(),
                offset_ms: None,
            }],
            thread: Some(EmailThread {
                message_id: "m2@example.com".into(),
                in_reply_to: vec!["m1@acme.example".into()],
                references: vec!["m0@example.com".into(), "m1@acme.example".into()],
            }),
            voice: None,
        };
        let json = serde_json::to_value(&conversation).unwrap();
        assert_eq!(json["turns"][0]["role"], "customer");
        assert_eq!(json["turns"][0]["at"], "2026-11-16T09:05:31Z");
        assert_eq!(json["customer"]["email"], "jane@example.com");
        assert_eq!(json["thread"]["message_id"], "m2@example.com");
        // Optional parts absent: stored conversations and their hashes stay as they were.
        assert!(json["turns"][0].get("offset_ms").is_none());
        assert!(json.get("voice").is_none());
        let back: Conversation = serde_json::from_value(json).unwrap();
        assert_eq!(back, conversation);
    }

    #[test]
    fn unknown_roles_are_refused() {
        let err = serde_json::from_str::<Role>("\"rep\"").unwrap_err();
        assert!(err.to_string().contains("expected one of"), "{err}");
    }
}
