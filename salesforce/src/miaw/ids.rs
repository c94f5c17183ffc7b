//! [`ConversationId`]: the client-generated MIAW conversation id (a lowercase UUID).

use std::fmt;

use uuid::Uuid;

use super::error::MiawError;

/// Namespace of [`ConversationId::for_session`] (UUIDv5). Fixed forever: changing it would
/// give every existing session a new conversation.
const SESSION_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2c6e_53a4_4e1b_9a7d_3c51_8b0e_4f27);

/// A MIAW conversation id. `Display` is the lowercase hyphenated form MIAW requires.
///
/// Salesforce's sample generates random v4 ids; MIAW checks only the lowercase UUID format
/// (miaw.md §3.4). Handoff derives the id from its session id with UUIDv5 so that creating
/// the conversation is idempotent across retries and restarts: a retry sends the same id,
/// which MIAW answers 201 again without a second conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId(Uuid);

impl ConversationId {
    /// The conversation id of a Handoff session: UUIDv5 of `session_id` in a fixed namespace.
    pub fn for_session(session_id: &str) -> Self {
        ConversationId(Uuid::new_v5(&SESSION_NAMESPACE, session_id.as_bytes()))
    }

    /// Parses a conversation id as MIAW sends it: a hyphenated UUID, lowercase.
    pub fn parse(s: &str) -> Result<Self, MiawError> {
        let rejected = || MiawError::Rejected {
            status: 400,
            message: "conversationId must be a lowercase hyphenated UUID".to_owned(),
        };
        if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(rejected());
        }
        Uuid::try_parse(s)
            .map(ConversationId)
            .map_err(|_| rejected())
    }

    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_session_is_deterministic_and_distinct() {
        let a = ConversationId::for_session("sess_123");
        assert_eq!(a, ConversationId::for_session("sess_123"));
        assert_ne!(a, ConversationId::for_session("sess_124"));
    }

    #[test]
    fn for_session_is_a_lowercase_rfc4122_uuid() {
        let id = ConversationId::for_session("Sess_ABC");
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(id.as_uuid().get_variant(), uuid::Variant::RFC4122);
        assert_eq!(id.as_uuid().get_version_num(), 5);
        // The variant nibble MIAW checks (8, 9, a or b).
        assert!(
            matches!(text.as_bytes()[19], b'8' | b'9' | b'a' | b'b'),
            "{text}"
        );
        assert_eq!(ConversationId::parse(&text).unwrap(), id);
    }

    #[test]
    fn for_session_is_stable_across_releases() {
        // Pinned: a different value means every stored conversation would be orphaned.
        assert_eq!(
            ConversationId::for_session("session-1").to_string(),
            Uuid::new_v5(&SESSION_NAMESPACE, b"session-1")
                .hyphenated()
                .to_string()
        );
        assert_eq!(
            SESSION_NAMESPACE.to_string(),
            "6f1d2c6e-53a4-4e1b-9a7d-3c518b0e4f27"
        );
    }

    #[test]
    fn parse_rejects_uppercase_and_other_forms() {
        let upper = "0DB1B9A6-96BF-46BD-B088-182D05522E90";
        assert_eq!(
            ConversationId::parse(upper).unwrap_err().status(),
            Some(400)
        );
        assert!(ConversationId::parse("0db1b9a696bf46bdb088182d05522e90").is_err());
        assert!(ConversationId::parse("{0db1b9a6-96bf-46bd-b088-182d05522e90}").is_err());
        assert!(ConversationId::parse("not-a-uuid").is_err());
        let ok = ConversationId::parse("0db1b9a6-96bf-46bd-b088-182d05522e90").unwrap();
        assert_eq!(ok.to_string(), "0db1b9a6-96bf-46bd-b088-182d05522e90");
    }
}
