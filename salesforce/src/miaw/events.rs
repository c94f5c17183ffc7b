//! Typed MIAW events and the parsing of their envelopes (miaw.md §4.2–4.4).
//!
//! An SSE `data` line is a JSON envelope `{conversationId, conversationEntry: {entryType,
//! entryPayload, sender, senderDisplayName, identifier, relatedRecords, …}}` whose
//! `entryPayload` is itself a JSON **string** (parsed a second time). The REST transcript
//! (`…/entries`) sends `entryPayload` as an object; both are accepted. Unknown event types
//! become [`MiawEvent::Other`]: Salesforce may add types at any time and clients must ignore
//! them. Parsing is `serde_json` over input already bounded by the stream (1 MiB), so it is
//! linear in the input.

use serde_json::Value;

use super::error::MiawError;

/// The role of a conversation participant (`sender.role`, `participant.role`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// The customer (for Handoff: the echo of what the gateway sent).
    EndUser,
    /// A human rep.
    Agent,
    /// An Einstein bot or Agentforce agent.
    Chatbot,
    /// Automatic messages (greetings, auto-responses).
    System,
    /// Omni-Channel routing.
    Router,
    /// A supervisor.
    Supervisor,
    /// Any other role name, as sent.
    Other(String),
}

impl Role {
    /// Reads a role name as Salesforce spells it.
    pub fn parse(name: &str) -> Role {
        match name {
            "EndUser" => Role::EndUser,
            "Agent" => Role::Agent,
            "Chatbot" => Role::Chatbot,
            "System" => Role::System,
            "Router" => Role::Router,
            "Supervisor" => Role::Supervisor,
            other => Role::Other(other.to_owned()),
        }
    }
}

/// A file on a message (`staticContent.attachments[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name.
    pub name: Option<String>,
    /// Where to download it (a Salesforce URL; may need no further auth for a while).
    pub url: Option<String>,
    /// The MIME type.
    pub mime_type: Option<String>,
}

/// One entry of a `CONVERSATION_PARTICIPANT_CHANGED` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantChange {
    /// `operation: "add"` (true) or `"remove"` (false).
    pub added: bool,
    /// The participant's role.
    pub role: Role,
    /// The participant's display name (the rep's name).
    pub display_name: Option<String>,
}

/// A parsed MIAW server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MiawEvent {
    /// Keep-alive (`event: ping`).
    Ping,
    /// `CONVERSATION_MESSAGE`. `role == EndUser` is the echo of a message this client sent.
    Message {
        /// The conversation id (lowercase UUID).
        conversation_id: String,
        /// The entry id (`identifier`); for the end-user echo, the client's `message.id`.
        entry_id: String,
        /// Who sent it.
        role: Role,
        /// `senderDisplayName`.
        sender_name: Option<String>,
        /// The text of a static-content message, if any.
        text: Option<String>,
        /// Files on the message.
        attachments: Vec<Attachment>,
        /// `relatedRecords`: on messages, the MessagingSession id (`0Mw…`).
        related_records: Vec<String>,
        /// `transcriptedTimestamp` (else `clientTimestamp`), epoch milliseconds.
        at_ms: Option<i64>,
    },
    /// `CONVERSATION_PARTICIPANT_CHANGED`: a rep (or bot) joined or left.
    ParticipantChanged {
        /// The conversation id.
        conversation_id: String,
        /// What changed, in order.
        changes: Vec<ParticipantChange>,
    },
    /// `CONVERSATION_ROUTING_RESULT`.
    RoutingResult {
        /// The conversation id.
        conversation_id: String,
        /// `Initial` or `Transfer`.
        routing_type: String,
        /// `None`, `Unknown`, `SubmissionError` or `RoutingError`.
        failure_type: String,
        /// Why routing failed, e.g. `NoAgentsAvailable`.
        failure_reason: Option<String>,
    },
    /// `CONVERSATION_SESSION_STATUS_CHANGED`: the documented end-of-session signal.
    SessionStatusChanged {
        /// The conversation id.
        conversation_id: String,
        /// `sessionStatus`, e.g. `Waiting`, `Active`, `Ended`.
        status: String,
        /// `sessionEndedByRole`, e.g. `Agent` or `EndUser`.
        ended_by_role: Option<String>,
        /// `relatedRecords` of the entry.
        related_records: Vec<String>,
    },
    /// `CONVERSATION_CLOSE_CONVERSATION` (sent when the end user closes the conversation).
    CloseConversation {
        /// The conversation id.
        conversation_id: String,
    },
    /// `CONVERSATION_TYPING_STARTED_INDICATOR` / `…_STOPPED_INDICATOR`.
    Typing {
        /// The conversation id.
        conversation_id: String,
        /// True for started, false for stopped.
        started: bool,
        /// Who is typing.
        role: Role,
    },
    /// Any other event type (ignored by consumers, as Salesforce requires).
    Other {
        /// The SSE `event:` name.
        event_type: String,
        /// The envelope's `conversationId`, when the data was a JSON envelope.
        conversation_id: Option<String>,
    },
}

/// One event of an [`EventStream`](super::EventStream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// The SSE `id`: store it as the `Last-Event-Id` of the next connection. SSE keeps the
    /// last id, so a ping carries the id of the event before it (`None` before any).
    pub id: Option<String>,
    /// The event.
    pub event: MiawEvent,
}

/// One entry of the REST transcript (`GET …/conversation/{id}/entries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationEntry {
    /// The entry id (`identifier`).
    pub id: String,
    /// `entryType`, e.g. `Message`, `ParticipantChanged`.
    pub entry_type: String,
    /// `sender.role`.
    pub role: Option<Role>,
    /// `senderDisplayName`.
    pub sender_name: Option<String>,
    /// The text of a static-content message.
    pub text: Option<String>,
    /// `transcriptedTimestamp` (else `clientTimestamp`), epoch milliseconds.
    pub at_ms: Option<i64>,
}

/// Parses one SSE event. `event_type` is the SSE `event:` field.
///
/// Errors (`Protocol`) only for known types whose data lacks what the type needs; unknown
/// types always parse, to [`MiawEvent::Other`].
pub fn parse_event(event_type: &str, data: &str) -> Result<MiawEvent, MiawError> {
    let known = matches!(
        event_type,
        "CONVERSATION_MESSAGE"
            | "CONVERSATION_PARTICIPANT_CHANGED"
            | "CONVERSATION_ROUTING_RESULT"
            | "CONVERSATION_SESSION_STATUS_CHANGED"
            | "CONVERSATION_CLOSE_CONVERSATION"
            | "CONVERSATION_TYPING_STARTED_INDICATOR"
            | "CONVERSATION_TYPING_STOPPED_INDICATOR"
    );
    if event_type == "ping" {
        return Ok(MiawEvent::Ping);
    }
    if !known {
        let conversation_id = serde_json::from_str::<Value>(data)
            .ok()
            .and_then(|v| str_field(&v, "conversationId"));
        return Ok(MiawEvent::Other {
            event_type: event_type.to_owned(),
            conversation_id,
        });
    }
    let bad = |what: &str| MiawError::Protocol(format!("{event_type} event: {what}"));
    let envelope: Value =
        serde_json::from_str(data).map_err(|_| bad("data is not a JSON object"))?;
    let conversation_id =
        str_field(&envelope, "conversationId").ok_or_else(|| bad("no conversationId"))?;
    if event_type == "CONVERSATION_CLOSE_CONVERSATION" {
        return Ok(MiawEvent::CloseConversation { conversation_id });
    }
    let entry = envelope
        .get("conversationEntry")
        .filter(|e| e.is_object())
        .ok_or_else(|| bad("no conversationEntry"))?;
    let role = sender_role(entry).unwrap_or_else(|| Role::Other(String::new()));
    let event = match event_type {
        "CONVERSATION_TYPING_STARTED_INDICATOR" | "CONVERSATION_TYPING_STOPPED_INDICATOR" => {
            MiawEvent::Typing {
                conversation_id,
                started: event_type == "CONVERSATION_TYPING_STARTED_INDICATOR",
                role,
            }
        }
        _ => {
            let payload = entry_payload(entry).ok_or_else(|| bad("entryPayload is not JSON"))?;
            match event_type {
                "CONVERSATION_MESSAGE" => {
                    let entry_id = str_field(entry, "identifier")
                        .or_else(|| str_field(&payload, "id"))
                        .ok_or_else(|| bad("no entry identifier"))?;
                    let content = payload
                        .get("abstractMessage")
                        .and_then(|m| m.get("staticContent"));
                    MiawEvent::Message {
                        conversation_id,
                        entry_id,
                        role,
                        sender_name: str_field(entry, "senderDisplayName"),
                        text: content.and_then(|c| str_field(c, "text")),
                        attachments: content.map(attachments).unwrap_or_default(),
                        related_records: related_records(entry),
                        at_ms: timestamp(entry),
                    }
                }
                "CONVERSATION_PARTICIPANT_CHANGED" => MiawEvent::ParticipantChanged {
                    conversation_id,
                    changes: participant_changes(&payload),
                },
                "CONVERSATION_ROUTING_RESULT" => MiawEvent::RoutingResult {
                    conversation_id,
                    routing_type: str_field(&payload, "routingType").unwrap_or_default(),
                    failure_type: str_field(&payload, "failureType")
                        .unwrap_or_else(|| "None".to_owned()),
                    failure_reason: str_field(&payload, "failureReason"),
                },
                _ => MiawEvent::SessionStatusChanged {
                    conversation_id,
                    status: str_field(&payload, "sessionStatus")
                        .ok_or_else(|| bad("no sessionStatus"))?,
                    ended_by_role: str_field(&payload, "sessionEndedByRole"),
                    related_records: related_records(entry),
                },
            }
        }
    };
    Ok(event)
}

/// Parses the body of `GET …/entries`: `{"conversationEntries": [...]}`.
pub(crate) fn parse_entries(body: &Value) -> Result<Vec<ConversationEntry>, MiawError> {
    let entries = body
        .get("conversationEntries")
        .and_then(Value::as_array)
        .ok_or_else(|| MiawError::Protocol("entries response has no conversationEntries".into()))?;
    entries
        .iter()
        .map(|entry| {
            let payload = entry_payload(entry);
            let id = str_field(entry, "identifier")
                .or_else(|| payload.as_ref().and_then(|p| str_field(p, "id")))
                .ok_or_else(|| {
                    MiawError::Protocol("conversation entry has no identifier".into())
                })?;
            let text = payload.as_ref().and_then(|p| {
                p.get("abstractMessage")
                    .and_then(|m| m.get("staticContent"))
                    .and_then(|c| str_field(c, "text"))
            });
            Ok(ConversationEntry {
                id,
                entry_type: str_field(entry, "entryType").unwrap_or_default(),
                role: sender_role(entry),
                sender_name: str_field(entry, "senderDisplayName"),
                text,
                at_ms: timestamp(entry),
            })
        })
        .collect()
}

/// `entryPayload` as JSON: a string parsed a second time (SSE), or an object (REST).
fn entry_payload(entry: &Value) -> Option<Value> {
    match entry.get("entryPayload")? {
        Value::String(text) => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object),
        object @ Value::Object(_) => Some(object.clone()),
        _ => None,
    }
}

fn str_field(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn sender_role(entry: &Value) -> Option<Role> {
    entry
        .get("sender")
        .and_then(|s| s.get("role"))
        .and_then(Value::as_str)
        .map(Role::parse)
}

fn related_records(entry: &Value) -> Vec<String> {
    entry
        .get("relatedRecords")
        .and_then(Value::as_array)
        .map(|records| {
            records
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `transcriptedTimestamp` unless missing or 0 (progress events send 0), else `clientTimestamp`.
fn timestamp(entry: &Value) -> Option<i64> {
    let positive = |key: &str| entry.get(key).and_then(Value::as_i64).filter(|t| *t > 0);
    positive("transcriptedTimestamp").or_else(|| positive("clientTimestamp"))
}

fn attachments(content: &Value) -> Vec<Attachment> {
    content
        .get("attachments")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|a| Attachment {
                    name: str_field(a, "name"),
                    url: str_field(a, "url"),
                    mime_type: str_field(a, "mimeType"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn participant_changes(payload: &Value) -> Vec<ParticipantChange> {
    payload
        .get("entries")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| ParticipantChange {
                    added: e.get("operation").and_then(Value::as_str) == Some("add"),
                    role: e
                        .get("participant")
                        .and_then(|p| p.get("role"))
                        .and_then(Value::as_str)
                        .map_or_else(|| Role::Other(String::new()), Role::parse),
                    display_name: str_field(e, "displayName"),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CONVERSATION: &str = "01c25401-3353-444e-8323-ace07e1b7375";

    /// The rep message frame of miaw.md §4.2, verbatim.
    const AGENT_MESSAGE: &str = r#"{"channelPlatformKey":"ec935ff5-8e16-4299-a9fd-88221a3e94f3","channelType":"embedded_messaging","channelAddressIdentifier":"ec935ff5-8e16-4299-a9fd-88221a3e94f3","conversationId":"01c25401-3353-444e-8323-ace07e1b7375","conversationEntry":{"senderDisplayName":"Jane Rep","identifier":"a7ba79d6-6ee5-402c-936c-d2716682c4ed","entryType":"Message","entryPayload":"{\"entryType\":\"Message\",\"id\":\"a7ba79d6-6ee5-402c-936c-d2716682c4ed\",\"abstractMessage\":{\"messageType\":\"StaticContentMessage\",\"id\":\"a7ba79d6-6ee5-402c-936c-d2716682c4ed\",\"inReplyToMessageId\":null,\"references\":[],\"staticContent\":{\"formatType\":\"Text\",\"text\":\"Hi, I'm Jane. How can I help?\"}},\"messageReason\":null}","sender":{"role":"Agent","appType":"agent","subject":"005xx000001Sv6A","clientIdentifier":""},"contextParamMap":{},"visibilityStrategy":"Default","transcriptedTimestamp":1741299980669,"relatedRecords":["0MwV900000EL6f3"],"clientTimestamp":1741299980500,"clientDuration":0}}"#;

    /// The progress-indicator envelope of miaw.md §4.3, verbatim.
    const PROGRESS: &str = r#"{"channelPlatformKey":"ec935ff5-8e16-4299-a9fd-88221a3e94f3","channelType":"embedded_messaging","channelAddressIdentifier":"ec935ff5-8e16-4299-a9fd-88221a3e94f3","conversationId":"01c25401-3353-444e-8323-ace07e1b7375","conversationEntry":{"senderDisplayName":"Agentforce Service Agent","identifier":"a7ba79d6-6ee5-402c-936c-d2716682c4ed","entryType":"ProgressIndicator","entryPayload":"{\"entryType\":\"ProgressIndicator\",\"id\":\"a7ba79d6-6ee5-402c-936c-d2716682c4ed\",\"progressIndicator\":{\"indicatorType\":\"ProgressUpdateIndicator\",\"progressMessage\":{\"formatType\":\"Text\",\"text\":\"Calling agent action: SvcCopilotTmpl__GetAllCasesForContact\"}}}","sender":{"role":"Chatbot","appType":"chatbot","subject":"0XxSB000000IgTp","clientIdentifier":""},"contextParamMap":{},"visibilityStrategy":"Default","transcriptedTimestamp":0}}"#;

    /// An envelope with `payload` double-encoded, as the SSE stream sends it.
    fn envelope(entry_type: &str, role: &str, payload: Value) -> String {
        json!({
            "conversationId": CONVERSATION,
            "conversationEntry": {
                "senderDisplayName": "Jane Rep",
                "identifier": "e1",
                "entryType": entry_type,
                "entryPayload": payload.to_string(),
                "sender": {"role": role, "appType": "agent", "subject": "005xx000001Sv6A"},
                "relatedRecords": ["0MwV900000EL6f3AAD"],
                "transcriptedTimestamp": 1741299980669i64,
                "clientTimestamp": 1741299980500i64
            }
        })
        .to_string()
    }

    #[test]
    fn agent_message_parses_through_the_double_encoded_payload() {
        let event = parse_event("CONVERSATION_MESSAGE", AGENT_MESSAGE).unwrap();
        assert_eq!(
            event,
            MiawEvent::Message {
                conversation_id: CONVERSATION.into(),
                entry_id: "a7ba79d6-6ee5-402c-936c-d2716682c4ed".into(),
                role: Role::Agent,
                sender_name: Some("Jane Rep".into()),
                text: Some("Hi, I'm Jane. How can I help?".into()),
                attachments: vec![],
                related_records: vec!["0MwV900000EL6f3".into()],
                at_ms: Some(1741299980669),
            }
        );
    }

    #[test]
    fn end_user_echo_keeps_role_and_identifier() {
        let data = envelope(
            "Message",
            "EndUser",
            json!({"entryType": "Message", "id": "e1", "abstractMessage": {
                "messageType": "StaticContentMessage", "id": "e1",
                "staticContent": {"formatType": "Text", "text": "my printer is broken"}}}),
        );
        let MiawEvent::Message {
            role,
            entry_id,
            related_records,
            ..
        } = parse_event("CONVERSATION_MESSAGE", &data).unwrap()
        else {
            panic!("expected a message");
        };
        assert_eq!(role, Role::EndUser);
        assert_eq!(entry_id, "e1");
        assert_eq!(related_records, vec!["0MwV900000EL6f3AAD".to_owned()]);
    }

    #[test]
    fn attachments_are_read() {
        let data = envelope(
            "Message",
            "Agent",
            json!({"entryType": "Message", "id": "e1", "abstractMessage": {
                "messageType": "StaticContentMessage", "id": "e1",
                "staticContent": {"formatType": "Attachments", "text": null, "attachments": [
                    {"name": "label.pdf", "id": "f1", "mimeType": "application/pdf",
                     "url": "https://example.invalid/f1"}]}}}),
        );
        let MiawEvent::Message {
            text, attachments, ..
        } = parse_event("CONVERSATION_MESSAGE", &data).unwrap()
        else {
            panic!("expected a message");
        };
        assert_eq!(text, None);
        assert_eq!(
            attachments,
            vec![Attachment {
                name: Some("label.pdf".into()),
                url: Some("https://example.invalid/f1".into()),
                mime_type: Some("application/pdf".into()),
            }]
        );
    }

    #[test]
    fn unknown_event_types_become_other() {
        let event = parse_event("CONVERSATION_PROGRESS_INDICATOR", PROGRESS).unwrap();
        assert_eq!(
            event,
            MiawEvent::Other {
                event_type: "CONVERSATION_PROGRESS_INDICATOR".into(),
                conversation_id: Some(CONVERSATION.into()),
            }
        );
        let event = parse_event("SOMETHING_NEW", "not json at all").unwrap();
        assert_eq!(
            event,
            MiawEvent::Other {
                event_type: "SOMETHING_NEW".into(),
                conversation_id: None,
            }
        );
    }

    #[test]
    fn ping_is_ping() {
        assert_eq!(parse_event("ping", "0").unwrap(), MiawEvent::Ping);
    }

    #[test]
    fn participant_changes_map_operation_role_and_name() {
        let data = envelope(
            "ParticipantChanged",
            "System",
            json!({"entryType": "ParticipantChanged", "id": "e1", "entries": [
                {"operation": "remove", "displayName": "Old Rep",
                 "participant": {"role": "Agent", "appType": "agent", "subject": "005A"}},
                {"operation": "add", "displayName": "Jane Rep",
                 "participant": {"role": "Agent", "appType": "agent", "subject": "005B"}},
                {"operation": "add", "participant": {"role": "Chatbot"}}]}),
        );
        let event = parse_event("CONVERSATION_PARTICIPANT_CHANGED", &data).unwrap();
        assert_eq!(
            event,
            MiawEvent::ParticipantChanged {
                conversation_id: CONVERSATION.into(),
                changes: vec![
                    ParticipantChange {
                        added: false,
                        role: Role::Agent,
                        display_name: Some("Old Rep".into())
                    },
                    ParticipantChange {
                        added: true,
                        role: Role::Agent,
                        display_name: Some("Jane Rep".into())
                    },
                    ParticipantChange {
                        added: true,
                        role: Role::Chatbot,
                        display_name: None
                    },
                ],
            }
        );
    }

    #[test]
    fn routing_result_and_session_status() {
        let data = envelope(
            "RoutingResult",
            "Router",
            json!({"entryType": "RoutingResult", "routingType": "Initial",
                   "failureType": "RoutingError", "failureReason": "NoAgentsAvailable"}),
        );
        assert_eq!(
            parse_event("CONVERSATION_ROUTING_RESULT", &data).unwrap(),
            MiawEvent::RoutingResult {
                conversation_id: CONVERSATION.into(),
                routing_type: "Initial".into(),
                failure_type: "RoutingError".into(),
                failure_reason: Some("NoAgentsAvailable".into()),
            }
        );
        let data = envelope(
            "SessionStatusChanged",
            "System",
            json!({"entryType": "SessionStatusChanged", "sessionStatus": "Ended",
                   "sessionEndedByRole": "Agent"}),
        );
        assert_eq!(
            parse_event("CONVERSATION_SESSION_STATUS_CHANGED", &data).unwrap(),
            MiawEvent::SessionStatusChanged {
                conversation_id: CONVERSATION.into(),
                status: "Ended".into(),
                ended_by_role: Some("Agent".into()),
                related_records: vec!["0MwV900000EL6f3AAD".into()],
            }
        );
    }

    #[test]
    fn close_and_typing() {
        let close = json!({"conversationId": CONVERSATION}).to_string();
        assert_eq!(
            parse_event("CONVERSATION_CLOSE_CONVERSATION", &close).unwrap(),
            MiawEvent::CloseConversation {
                conversation_id: CONVERSATION.into()
            }
        );
        let data = envelope("TypingStartedIndicator", "Agent", json!({}));
        assert_eq!(
            parse_event("CONVERSATION_TYPING_STARTED_INDICATOR", &data).unwrap(),
            MiawEvent::Typing {
                conversation_id: CONVERSATION.into(),
                started: true,
                role: Role::Agent
            }
        );
        let data = envelope("TypingStoppedIndicator", "Agent", json!({}));
        assert!(matches!(
            parse_event("CONVERSATION_TYPING_STOPPED_INDICATOR", &data).unwrap(),
            MiawEvent::Typing { started: false, .. }
        ));
    }

    #[test]
    fn role_names_map_and_unknown_roles_are_kept() {
        for (name, role) in [
            ("EndUser", Role::EndUser),
            ("Agent", Role::Agent),
            ("Chatbot", Role::Chatbot),
            ("System", Role::System),
            ("Router", Role::Router),
            ("Supervisor", Role::Supervisor),
        ] {
            assert_eq!(Role::parse(name), role);
        }
        assert_eq!(Role::parse("agent"), Role::Other("agent".into()));
    }

    #[test]
    fn malformed_known_events_are_protocol_errors() {
        assert!(matches!(
            parse_event("CONVERSATION_MESSAGE", "{"),
            Err(MiawError::Protocol(_))
        ));
        let no_conversation = json!({"conversationEntry": {}}).to_string();
        assert!(matches!(
            parse_event("CONVERSATION_MESSAGE", &no_conversation),
            Err(MiawError::Protocol(_))
        ));
        let payload_not_json = json!({"conversationId": CONVERSATION, "conversationEntry": {
            "identifier": "e1", "entryPayload": "{not json"}})
        .to_string();
        assert!(matches!(
            parse_event("CONVERSATION_MESSAGE", &payload_not_json),
            Err(MiawError::Protocol(_))
        ));
    }

    #[test]
    fn transcript_entries_accept_object_or_string_payloads() {
        let body = json!({"conversationEntries": [
            {"entryType": "Message", "identifier": "e1", "senderDisplayName": "Jane Rep",
             "sender": {"role": "Agent"}, "transcriptedTimestamp": 5,
             "entryPayload": {"id": "e1", "abstractMessage": {"staticContent": {"text": "hi"}}}},
            {"entryType": "Message", "senderDisplayName": "Ann",
             "sender": {"role": "EndUser"}, "clientTimestamp": 4,
             "entryPayload": "{\"id\":\"e2\",\"abstractMessage\":{\"staticContent\":{\"text\":\"yo\"}}}"},
            {"entryType": "ParticipantChanged", "identifier": "e3", "entryPayload": {}}
        ]});
        let entries = parse_entries(&body).unwrap();
        assert_eq!(
            entries[0],
            ConversationEntry {
                id: "e1".into(),
                entry_type: "Message".into(),
                role: Some(Role::Agent),
                sender_name: Some("Jane Rep".into()),
                text: Some("hi".into()),
                at_ms: Some(5),
            }
        );
        assert_eq!(entries[1].id, "e2");
        assert_eq!(entries[1].text.as_deref(), Some("yo"));
        assert_eq!(entries[1].at_ms, Some(4));
        assert_eq!(entries[2].role, None);
        assert!(parse_entries(&json!({})).is_err());
    }
}
