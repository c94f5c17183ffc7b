//! The live-messaging half of the mapping between the channel world and the
//! Salesforce world: what a MIAW conversation is opened with (routing
//! attributes, the opening messages to the rep), and what each event on its
//! stream means for the customer (outbox deliveries) and for the session.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use channels::{Capabilities, OutboundKind, ReplyTarget, SplitRule};
use salesforce::miaw::{MiawEvent, Role as MiawRole};

use super::render_turn;
use crate::escalation::request::EscalationPayload;
use crate::live::config::MiawConfig;
use crate::live::messages::{LocalizedMessages, MessageKey};
use crate::outbox::{delivery_id, split_for};
use crate::store::{Effects, LiveState, NewDelivery, NewLiveMessage, message_kind};

/// Namespace of every UUID Handoff derives for live messaging (conversation ids
/// come from `salesforce::miaw::ConversationId::for_session`).
const MESSAGE_NAMESPACE: Uuid = Uuid::from_u128(0x6f9d_1c0e_52b4_4d71_9a3e_5c1f_0b7e_22d4);

/// A stable MIAW message id for one purpose within a session.
pub fn message_id(session_id: &str, purpose: &str) -> String {
    Uuid::new_v5(
        &MESSAGE_NAMESPACE,
        format!("{session_id}\n{purpose}").as_bytes(),
    )
    .to_string()
}

/// The routing attributes a conversation is created with, and the caller
/// attributes that were dropped (not allow-listed).
pub fn routing_attributes(
    session_id: &str,
    channel: &str,
    payload: &EscalationPayload,
    config: &MiawConfig,
    authenticated: bool,
) -> (BTreeMap<String, String>, Vec<String>) {
    let names = &config.attribute_names;
    let mut out = BTreeMap::new();
    let mut put = |name: &str, value: String| {
        if !name.is_empty() {
            out.insert(name.to_string(), value);
        }
    };
    put(&names.session_id, session_id.to_string());
    put(
        &names.consumer_type,
        if authenticated {
            config.consumer_type.authenticated.clone()
        } else {
            config.consumer_type.anonymous.clone()
        },
    );
    put(
        &names.origin,
        config
            .origin
            .get(channel)
            .cloned()
            .unwrap_or_else(|| channel.to_string()),
    );
    put(
        &names.priority,
        config
            .priority
            .get(payload.priority.as_str())
            .cloned()
            .unwrap_or_else(|| payload.priority.as_str().to_string()),
    );
    put(&names.language, payload.conversation.language.clone());
    if let Some(voice) = payload.conversation.voice {
        put(&names.voice_mode, voice.mode.as_str().to_string());
    }
    let mut dropped = Vec::new();
    for (key, value) in &payload.attributes {
        if config.allowed_attributes.iter().any(|a| a == key) && !out.contains_key(key) {
            out.insert(key.clone(), value.clone());
        } else {
            dropped.push(key.clone());
        }
    }
    (out, dropped)
}

fn rep_text_capabilities(config: &MiawConfig) -> Capabilities {
    Capabilities {
        delivers: true,
        max_message_chars: Some(config.max_message_chars),
        split: SplitRule::Words,
        ..Capabilities::receive_only()
    }
}

/// A customer message cut into messages the rep can receive (`max_message_chars` each).
pub fn customer_message_parts(
    session_id: &str,
    request_id: &str,
    text: &str,
    config: &MiawConfig,
) -> Vec<NewLiveMessage> {
    rep_text_capabilities(config)
        .split_message(text)
        .into_iter()
        .enumerate()
        .map(|(k, part)| NewLiveMessage {
            id: message_id(session_id, &format!("customer/{request_id}/{k}")),
            kind: message_kind::CUSTOMER,
            text: part,
        })
        .collect()
}

/// What the rep sees first: the summary, then the transcript — the newest turns
/// that fit in `transcript_max_messages` messages; when the whole transcript does
/// not fit, it is also attached as a text file (a `file` row holding its text).
pub fn opening_messages(
    session_id: &str,
    payload: &EscalationPayload,
    config: &MiawConfig,
) -> Vec<NewLiveMessage> {
    let caps = rep_text_capabilities(config);
    let mut out = Vec::new();
    let mut push = |kind: &'static str, text: String| {
        let k = out.len();
        out.push(NewLiveMessage {
            id: message_id(session_id, &format!("opening/{k}")),
            kind,
            text,
        });
    };
    let summary = payload
        .summary
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or("(no summary was given)");
    let summary = match super::voice_note(&payload.conversation) {
        Some(note) => format!("{note}\n\nSummary: {summary}"),
        None => format!("Summary: {summary}"),
    };
    for part in caps.split_message(&summary) {
        push(message_kind::OPENING, part);
    }
    let turns = &payload.conversation.turns;
    let rendered: Vec<String> = turns.iter().map(render_turn).collect();
    let (messages, complete) = pack_newest(
        &rendered,
        config.max_message_chars,
        config.transcript_max_messages,
    );
    let total = messages.len();
    for (k, body) in messages.into_iter().enumerate() {
        let header = if complete {
            format!("Transcript {}/{}\n", k + 1, total)
        } else {
            format!("Transcript (latest turns) {}/{}\n", k + 1, total)
        };
        push(message_kind::OPENING, format!("{header}{body}"));
    }
    if !complete {
        push(message_kind::FILE, rendered.concat());
    }
    out
}

/// Packs rendered turns into at most `max_messages` bodies of at most `max_chars`
/// characters (a header's room kept), newest turns kept; a turn longer than a
/// message is cut. Answers the bodies (oldest first) and whether every turn is in them.
fn pack_newest(rendered: &[String], max_chars: usize, max_messages: usize) -> (Vec<String>, bool) {
    let room = max_chars.saturating_sub(48).max(1);
    let caps = Capabilities {
        delivers: true,
        max_message_chars: Some(room),
        split: SplitRule::Words,
        ..Capabilities::receive_only()
    };
    // Newest first: pieces of turns that fit a message each.
    let mut bodies: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_len = 0usize;
    let mut complete = true;
    'turns: for turn in rendered.iter().rev() {
        let pieces = caps.split_message(turn);
        for piece in pieces.into_iter().rev() {
            let len = piece.chars().count();
            if current_len + len > room && !current.is_empty() {
                bodies.push(std::mem::take(&mut current));
                current_len = 0;
                if bodies.len() == max_messages {
                    complete = false;
                    break 'turns;
                }
            }
            current.insert_str(0, &piece);
            current_len += len;
        }
    }
    if !current.is_empty() && bodies.len() < max_messages {
        bodies.push(current);
    } else if !current.is_empty() {
        complete = false;
    }
    bodies.reverse();
    (bodies, complete)
}

/// The context an event is mapped in.
pub struct EventContext<'a> {
    /// The stream event's id: stable across replays, so effects derived from it
    /// are written once however often the event is seen.
    pub event_id: &'a str,
    pub session_id: &'a str,
    /// The channel that delivers the session's messages ([`crate::outbox::deliverer`]: the
    /// session's own, or the one it delivers through), written as each delivery's `channel`.
    pub channel: &'a str,
    pub language: &'a str,
    pub state: LiveState,
    pub rep_name: Option<&'a str>,
    pub conversation_id: &'a str,
    /// Where the customer's messages go (`None`: the customer cannot be told).
    pub target: Option<&'a ReplyTarget>,
    /// The delivering channel's rules (whether it delivers, how texts are split).
    pub capabilities: &'a Capabilities,
    pub messages: &'a LocalizedMessages,
    pub end_keyword: &'a str,
}

impl EventContext<'_> {
    fn delivery(
        &self,
        purpose: &str,
        kind: OutboundKind,
        text: String,
        sender: Option<&str>,
    ) -> Vec<NewDelivery> {
        let Some(target) = self.target else {
            return Vec::new();
        };
        if !self.capabilities.delivers {
            return Vec::new();
        }
        split_for(
            self.capabilities,
            NewDelivery {
                id: delivery_id(self.session_id, purpose),
                session_id: self.session_id.to_string(),
                channel: self.channel.to_string(),
                kind,
                text,
                sender_name: sender.map(str::to_string),
                target: target.clone(),
            },
        )
    }

    fn localized(&self, key: MessageKey, agent: Option<&str>) -> String {
        self.messages
            .text(self.language, key, agent, self.end_keyword)
    }

    /// What the customer is told when the conversation has been opened.
    pub fn opened_notices(&self) -> Vec<NewDelivery> {
        let mut out = self.delivery(
            "live/looking_for_agent",
            OutboundKind::SystemMessage,
            self.localized(MessageKey::LookingForAgent, None),
            None,
        );
        out.extend(self.delivery(
            "live/end_instruction",
            OutboundKind::SystemMessage,
            self.localized(MessageKey::EndChatFromUserInstruction, None),
            None,
        ));
        out
    }

    /// What the customer is told when the live session ends (either side).
    pub fn closed_effects(&self, by: &str) -> Effects {
        Effects {
            state: Some(LiveState::Ended),
            rep_name: Some(None),
            deliveries: self.delivery(
                "live/closed",
                OutboundKind::SessionClosed,
                self.localized(MessageKey::ConversationClosed, None),
                None,
            ),
            events: vec![("live.ended", json!({"by": by}))],
            session_status: Some("closed"),
            forget_token: true,
            ..Effects::default()
        }
    }
}

/// What one stream event means. Events for another conversation (the stream is
/// per end user), pings and unknown types change nothing but the cursor.
pub fn event_effects(event: &MiawEvent, ctx: &EventContext<'_>) -> Effects {
    if let Some(conversation) = conversation_of(event)
        && !conversation.eq_ignore_ascii_case(ctx.conversation_id)
    {
        return Effects::default();
    }
    let over = matches!(ctx.state, LiveState::Ended | LiveState::Fallback);
    match event {
        MiawEvent::Message {
            entry_id,
            role,
            sender_name,
            text,
            attachments,
            related_records,
            ..
        } => {
            let mut effects = Effects {
                messaging_session_id: related_records
                    .iter()
                    .find(|r| r.starts_with("0Mw"))
                    .cloned(),
                ..Effects::default()
            };
            match role {
                // The customer's own message echoed back: sent, never re-sent to them.
                MiawRole::EndUser => effects.echoed.push(entry_id.clone()),
                MiawRole::Agent | MiawRole::Chatbot | MiawRole::System if !over => {
                    let mut body = text.clone().unwrap_or_default();
                    for a in attachments {
                        let name = a.name.as_deref().unwrap_or("attachment");
                        match &a.url {
                            Some(url) => body.push_str(&format!("\n[{name}] {url}")),
                            None => body.push_str(&format!("\n[{name}]")),
                        }
                    }
                    let body = body.trim().to_string();
                    if !body.is_empty() {
                        let (kind, sender) = match role {
                            MiawRole::Agent => (
                                OutboundKind::AgentMessage,
                                sender_name.as_deref().or(ctx.rep_name),
                            ),
                            _ => (OutboundKind::SystemMessage, sender_name.as_deref()),
                        };
                        effects.deliveries =
                            ctx.delivery(&format!("miaw/{entry_id}"), kind, body, sender);
                        effects.events.push((
                            "rep.message",
                            json!({"entry_id": entry_id, "role": role_name(role)}),
                        ));
                    }
                }
                _ => {}
            }
            effects
        }
        MiawEvent::ParticipantChanged { changes, .. } if !over => {
            let mut effects = Effects::default();
            for (k, change) in changes.iter().enumerate() {
                if change.role != MiawRole::Agent {
                    continue;
                }
                let name = change.display_name.as_deref();
                let purpose_key = format!("{}/{k}", ctx.event_id);
                if change.added {
                    effects.state = Some(LiveState::Active);
                    effects.rep_name = Some(name.map(str::to_string));
                    effects.deliveries.extend(ctx.delivery(
                        &format!("live/joined/{purpose_key}"),
                        OutboundKind::AgentJoined,
                        ctx.localized(MessageKey::AgentJoined, name),
                        name,
                    ));
                    effects
                        .events
                        .push(("rep.joined", json!({"rep_name": name})));
                } else {
                    effects.state = Some(LiveState::Waiting);
                    effects.rep_name = Some(None);
                    effects.deliveries.extend(ctx.delivery(
                        &format!("live/left/{purpose_key}"),
                        OutboundKind::AgentLeft,
                        ctx.localized(MessageKey::AgentLeft, name),
                        name,
                    ));
                    effects.events.push(("rep.left", json!({"rep_name": name})));
                }
            }
            effects
        }
        MiawEvent::RoutingResult {
            routing_type,
            failure_type,
            failure_reason,
            ..
        } if !over => {
            let failed = !failure_type.is_empty() && !failure_type.eq_ignore_ascii_case("None");
            if failed && matches!(ctx.state, LiveState::Waiting | LiveState::Opening) {
                let reason = match failure_reason.as_deref() {
                    Some(r) if r.eq_ignore_ascii_case("NoAgentsAvailable") => {
                        "no agents are available".to_string()
                    }
                    Some(r) => format!("live messaging could not route the conversation ({r})"),
                    None => {
                        format!("live messaging could not route the conversation ({failure_type})")
                    }
                };
                return Effects {
                    fallback: true,
                    forget_token: false,
                    events: vec![(
                        "live.routing_failed",
                        json!({"reason": reason, "failure_type": failure_type}),
                    )],
                    ..Effects::default()
                };
            }
            if routing_type.eq_ignore_ascii_case("Transfer") {
                return Effects {
                    deliveries: ctx.delivery(
                        &format!("live/transfer/{}", ctx.event_id),
                        OutboundKind::SystemMessage,
                        ctx.localized(MessageKey::Transferred, ctx.rep_name),
                        None,
                    ),
                    events: vec![("rep.transfer", json!({"from": ctx.rep_name}))],
                    ..Effects::default()
                };
            }
            Effects {
                events: vec![("live.routed", json!({"routing_type": routing_type}))],
                ..Effects::default()
            }
        }
        MiawEvent::SessionStatusChanged {
            status,
            ended_by_role,
            related_records,
            ..
        } if !over => {
            let mut effects = if status.eq_ignore_ascii_case("Ended") {
                ctx.closed_effects(ended_by_role.as_deref().unwrap_or("salesforce"))
            } else {
                Effects::default()
            };
            effects.messaging_session_id = related_records
                .iter()
                .find(|r| r.starts_with("0Mw"))
                .cloned();
            effects
        }
        MiawEvent::CloseConversation { .. } if !over => ctx.closed_effects("end_user"),
        _ => Effects::default(),
    }
}

fn conversation_of(event: &MiawEvent) -> Option<&str> {
    match event {
        MiawEvent::Message {
            conversation_id, ..
        }
        | MiawEvent::ParticipantChanged {
            conversation_id, ..
        }
        | MiawEvent::RoutingResult {
            conversation_id, ..
        }
        | MiawEvent::SessionStatusChanged {
            conversation_id, ..
        }
        | MiawEvent::CloseConversation { conversation_id }
        | MiawEvent::Typing {
            conversation_id, ..
        } => Some(conversation_id),
        MiawEvent::Other {
            conversation_id, ..
        } => conversation_id.as_deref(),
        MiawEvent::Ping => None,
    }
}

fn role_name(role: &MiawRole) -> String {
    match role {
        MiawRole::EndUser => "EndUser".into(),
        MiawRole::Agent => "Agent".into(),
        MiawRole::Chatbot => "Chatbot".into(),
        MiawRole::System => "System".into(),
        MiawRole::Router => "Router".into(),
        MiawRole::Supervisor => "Supervisor".into(),
        MiawRole::Other(s) => s.clone(),
    }
}

/// The event data recording dropped attributes (names only, never values).
pub fn dropped_attributes_event(dropped: &[String]) -> Value {
    json!({"attributes": dropped, "reason": "not in miaw.allowed_attributes"})
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use channels::{Conversation, Customer, Role, Turn, VoiceFormat, VoiceInfo, VoiceMode};

    use super::*;
    use crate::escalation::request::Priority;

    fn payload(voice: Option<VoiceInfo>) -> EscalationPayload {
        EscalationPayload {
            conversation: Conversation {
                subject: None,
                customer: Customer::default(),
                language: "en".into(),
                turns: vec![Turn {
                    role: Role::Customer,
                    text: "My card was declined.".into(),
                    at: Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 3).unwrap(),
                    offset_ms: voice.map(|_| 3_840),
                }],
                thread: None,
                voice,
            },
            summary: Some("Card declined twice.".into()),
            priority: Priority::High,
            attributes: BTreeMap::new(),
            reply_to: None,
            verified_subject: None,
        }
    }

    const LIVE_TRANSFER: Option<VoiceInfo> = Some(VoiceInfo {
        mode: VoiceMode::LiveTransfer,
        format: Some(VoiceFormat::AwsTranscribe),
    });

    #[test]
    fn the_voice_mode_is_a_routing_attribute_only_when_named() {
        let mut config = crate::config::Config::defaults().miaw;
        let (attributes, _) =
            routing_attributes("call-1", "voice", &payload(LIVE_TRANSFER), &config, false);
        assert!(
            !attributes.values().any(|v| v == "live_transfer"),
            "{attributes:?}"
        );
        config.attribute_names.voice_mode = "Voice_Mode".into();
        let (attributes, _) =
            routing_attributes("call-1", "voice", &payload(LIVE_TRANSFER), &config, false);
        assert_eq!(attributes["Voice_Mode"], "live_transfer");
        // Not a call: nothing to say.
        let (attributes, _) = routing_attributes("chat-1", "chat", &payload(None), &config, false);
        assert!(!attributes.contains_key("Voice_Mode"));
    }

    #[test]
    fn the_rep_reads_how_the_call_was_handed_over_and_where_in_it_each_turn_is() {
        let config = crate::config::Config::defaults().miaw;
        let messages = opening_messages("call-1", &payload(LIVE_TRANSFER), &config);
        assert_eq!(
            messages[0].text,
            "Voice call (live transfer): the caller is being connected to you by phone.\n\n\
             Summary: Card declined twice."
        );
        assert!(
            messages[1]
                .text
                .contains("[2026-11-22 09:00:03 UTC, call 00:03] Customer: My card was declined."),
            "{}",
            messages[1].text
        );
        let messages = opening_messages("chat-1", &payload(None), &config);
        assert_eq!(messages[0].text, "Summary: Card declined twice.");
    }
}
