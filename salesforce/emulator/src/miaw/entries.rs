//! Conversation entries: what the end user's stream, the transcript API and the console show.
//! Shapes follow `shared/reference/miaw.md` §4.2–4.4 (envelope) and §3.9 (transcript).

use serde_json::{Value, json};

use super::{Conversation, Rep};

/// One entry of a conversation.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Entry id (`identifier`; for end-user messages the client's `message.id`).
    pub(crate) id: String,
    /// SSE `event:` name.
    pub(crate) event_name: &'static str,
    /// `entryType` (`Message`, `ParticipantChanged`, …).
    pub(crate) entry_type: &'static str,
    pub(crate) role: &'static str,
    app_type: &'static str,
    sender_subject: String,
    pub(crate) sender_name: Option<String>,
    /// Message text (for the console), if any.
    pub(crate) text: Option<String>,
    pub(crate) at_ms: i64,
    /// `entryPayload` as an object.
    payload: Value,
    related: Vec<String>,
    /// An end-user message: `id` is the client's message id (dedupe key).
    from_client: bool,
}

/// The shared `abstractMessage` of a message entry.
fn message_payload(id: &str, static_content: Value, in_reply_to: Option<&str>) -> Value {
    json!({
        "entryType": "Message",
        "id": id,
        "abstractMessage": {
            "messageType": "StaticContentMessage",
            "id": id,
            "inReplyToMessageId": in_reply_to,
            "references": [],
            "staticContent": static_content,
        },
        "messageReason": null,
    })
}

fn system(event_name: &'static str, entry_type: &'static str, payload: Value) -> Entry {
    Entry {
        id: payload["id"].as_str().unwrap_or_default().to_string(),
        event_name,
        entry_type,
        role: "System",
        app_type: "conversation",
        sender_subject: String::new(),
        sender_name: None,
        text: None,
        at_ms: super::now_ms(),
        payload,
        related: Vec::new(),
        from_client: false,
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Entry {
    /// The end user's message (its echo on the stream).
    pub(crate) fn end_user_message(
        c: &Conversation,
        id: &str,
        text: Option<&str>,
        attachment: Option<Value>,
        in_reply_to: Option<&str>,
    ) -> Entry {
        let content = match attachment {
            Some(a) => json!({"formatType": "Attachments", "text": text, "attachments": [a]}),
            None => json!({"formatType": "Text", "text": text.unwrap_or_default()}),
        };
        Entry {
            id: id.to_string(),
            event_name: "CONVERSATION_MESSAGE",
            entry_type: "Message",
            role: "EndUser",
            app_type: "iamessage",
            sender_subject: c.subject.clone(),
            sender_name: None,
            text: text.map(str::to_string),
            at_ms: super::now_ms(),
            payload: message_payload(id, content, in_reply_to),
            related: vec![c.session_id.clone()],
            from_client: true,
        }
    }

    /// A rep's message.
    pub(crate) fn agent_message(c: &Conversation, rep: &Rep, text: &str) -> Entry {
        let id = new_id();
        Entry {
            payload: message_payload(&id, json!({"formatType": "Text", "text": text}), None),
            id,
            event_name: "CONVERSATION_MESSAGE",
            entry_type: "Message",
            role: "Agent",
            app_type: "agent",
            sender_subject: rep.user_id.clone(),
            sender_name: Some(rep.name.clone()),
            text: Some(text.to_string()),
            at_ms: super::now_ms(),
            related: vec![c.session_id.clone()],
            from_client: false,
        }
    }

    /// A rep joined (`add`) or left (`remove`).
    pub(crate) fn participant(operation: &str, rep: &Rep) -> Entry {
        let payload = json!({
            "entryType": "ParticipantChanged",
            "id": new_id(),
            "entries": [{
                "operation": operation,
                "displayName": rep.name,
                "participant": {
                    "role": "Agent",
                    "appType": "agent",
                    "subject": rep.user_id,
                    "clientIdentifier": "",
                },
                "menuMetadata": null,
            }],
        });
        let mut e = system(
            "CONVERSATION_PARTICIPANT_CHANGED",
            "ParticipantChanged",
            payload,
        );
        e.sender_name = Some(rep.name.clone());
        e
    }

    /// Omni-Channel's routing outcome.
    pub(crate) fn routing(routing_type: &str, failure_reason: Option<&str>) -> Entry {
        let mut payload = json!({
            "entryType": "RoutingResult",
            "id": new_id(),
            "routingType": routing_type,
            "failureType": if failure_reason.is_some() { "RoutingError" } else { "None" },
            "queueId": "",
        });
        if let Some(reason) = failure_reason {
            payload["failureReason"] = json!(reason);
        }
        system("CONVERSATION_ROUTING_RESULT", "RoutingResult", payload)
    }

    /// The messaging session's status changed (`Active`, `Ended`, …).
    pub(crate) fn session_status(
        c: &Conversation,
        status: &str,
        ended_by_role: Option<&str>,
    ) -> Entry {
        let mut payload = json!({
            "entryType": "SessionStatusChanged",
            "id": new_id(),
            "sessionStatus": status,
        });
        if let Some(role) = ended_by_role {
            payload["sessionEndedByRole"] = json!(role);
        }
        let mut e = system(
            "CONVERSATION_SESSION_STATUS_CHANGED",
            "SessionStatusChanged",
            payload,
        );
        e.related = vec![c.session_id.clone()];
        e
    }

    /// The end user closed the conversation.
    pub(crate) fn close(c: &Conversation) -> Entry {
        let payload = json!({"entryType": "CloseConversation", "id": new_id()});
        let mut e = system(
            "CONVERSATION_CLOSE_CONVERSATION",
            "CloseConversation",
            payload,
        );
        e.role = "EndUser";
        e.app_type = "iamessage";
        e.sender_subject = c.subject.clone();
        e
    }

    /// The client's message id, for end-user messages.
    pub(crate) fn client_message_id(&self) -> Option<&str> {
        self.from_client.then_some(self.id.as_str())
    }

    fn sender(&self) -> Value {
        json!({
            "role": self.role,
            "appType": self.app_type,
            "subject": self.sender_subject,
            "clientIdentifier": "",
        })
    }

    /// The SSE `data` object: `entryPayload` is a JSON **string** here.
    pub(crate) fn envelope(&self, c: &Conversation) -> Value {
        let channel = channel_key(&c.deployment);
        json!({
            "channelPlatformKey": channel,
            "channelType": "embedded_messaging",
            "channelAddressIdentifier": channel,
            "conversationId": c.id,
            "conversationEntry": {
                "senderDisplayName": self.sender_name.as_deref().unwrap_or(""),
                "identifier": self.id,
                "entryType": self.entry_type,
                "entryPayload": self.payload.to_string(),
                "sender": self.sender(),
                "contextParamMap": {},
                "visibilityStrategy": "Default",
                "transcriptedTimestamp": self.at_ms,
                "relatedRecords": self.related,
                "clientTimestamp": self.at_ms,
                "clientDuration": 0,
            },
        })
    }

    /// The transcript shape (`GET …/entries`): `entryPayload` is an object.
    pub(crate) fn transcript(&self) -> Value {
        json!({
            "entryType": self.entry_type,
            "entryPayload": self.payload,
            "transcriptedTimestamp": self.at_ms,
            "clientTimestamp": self.at_ms,
            "identifier": self.id,
            "senderDisplayName": self.sender_name.as_deref().unwrap_or(""),
            "sender": self.sender(),
            "relatedRecords": self.related,
        })
    }

    /// The console shape (snake_case).
    pub(crate) fn console(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.entry_type,
            "role": self.role,
            "sender_name": self.sender_name,
            "text": self.text,
            "at": chrono::DateTime::from_timestamp_millis(self.at_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        })
    }
}

/// The channel's `channelPlatformKey` / `channelAddressIdentifier`: a stable UUID per deployment.
pub(crate) fn channel_key(deployment: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, deployment.as_bytes()).to_string()
}
