//! What the rep is told when a message of theirs cannot reach the customer for a reason only
//! the customer can change — they opted out (SMS `STOP`), or the channel's reply window is
//! closed (WhatsApp: 24 hours after the customer's last message, without an approved
//! template) — or may not have reached them: its send was cut off (the process died while
//! sending, or the provider's answer was lost) on a channel whose provider cannot dedupe, so
//! it is not sent again. A rep's message (`agent.message`) is answered once per message — in
//! the live conversation while there is one, else as an internal note on the session's Case;
//! the gateway's own messages (`agent.joined`, notices) fail quietly, with their event.

use std::time::Duration;

use channels::{ChannelKind, OutboundKind};

use crate::escalation::mapper::live::message_id;
use crate::store::{
    LiveState, NewLiveMessage, case_note_id, delivery, live_session, message_kind, session,
};

/// The `case_notes.kind` of a reply not delivered because the reply window is closed.
pub const WINDOW_CLOSED_NOTE: &str = "window_closed";
/// The `case_notes.kind` of a reply not delivered because the customer opted out.
pub const OPTED_OUT_NOTE: &str = "opted_out";
/// The `case_notes.kind` of a reply that may or may not have reached the customer.
pub const OUTCOME_UNKNOWN_NOTE: &str = "outcome_unknown";
/// Characters of the undelivered reply quoted to the rep, so they know which one it was.
const EXCERPT_CHARS: usize = 120;

/// Why a rep's reply is failed for good: the customer's side refused it, or its send may or
/// may not have reached the provider and is not repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The reply window is closed and no template is configured; the adapter's explanation.
    WindowClosed { provider_message: String },
    /// The customer opted out of messages on the delivering channel.
    OptedOut,
    /// The send was cut off after the request may have left (a process that died while the
    /// delivery was `sending`, a timeout after sending) and the provider cannot dedupe on the
    /// delivery id: not sent again, to avoid a duplicate. `detail`: the adapter's error.
    OutcomeUnknown { detail: Option<String> },
}

impl Refusal {
    /// The `reason` of the `delivery.failed` event.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::WindowClosed { .. } => WINDOW_CLOSED_NOTE,
            Self::OptedOut => OPTED_OUT_NOTE,
            Self::OutcomeUnknown { .. } => OUTCOME_UNKNOWN_NOTE,
        }
    }

    /// How the rep's notice begins.
    fn headline(&self) -> &'static str {
        match self {
            Self::OutcomeUnknown { .. } => "Your message may not have been delivered",
            Self::WindowClosed { .. } | Self::OptedOut => "Your message was not delivered",
        }
    }

    /// How the note on the Case begins.
    fn note_headline(&self) -> &'static str {
        match self {
            Self::OutcomeUnknown { .. } => {
                "Handoff does not know whether this reply reached the customer"
            }
            Self::WindowClosed { .. } | Self::OptedOut => {
                "Handoff could not deliver this reply to the customer"
            }
        }
    }
}

/// The delivering channel as the rep and the operator read it.
#[derive(Debug, Clone)]
pub struct Deliverer {
    pub kind: ChannelKind,
    /// Its reply window (`Capabilities::reply_window`).
    pub reply_window: Option<Duration>,
}

impl Deliverer {
    /// `SMS`, `WhatsApp`, or the channel's name.
    fn label(&self) -> &str {
        match self.kind {
            ChannelKind::Sms => "SMS",
            ChannelKind::Whatsapp => "WhatsApp",
            _ => self.kind.as_str(),
        }
    }

    /// `within 24 hours of` / `within the reply window after`.
    fn window(&self) -> String {
        match self.reply_window.map(|w| w.as_secs()) {
            Some(secs) if secs >= 3_600 && secs % 3_600 == 0 => {
                format!("within {} hours of", secs / 3_600)
            }
            Some(secs) if secs > 0 => format!("within {} minutes of", secs.div_ceil(60)),
            _ => "within its reply window after".into(),
        }
    }

    /// What the channel refused, for the rep.
    fn explain(&self, refusal: &Refusal) -> String {
        let label = self.label();
        match refusal {
            Refusal::WindowClosed { .. } => format!(
                "{label} allows free-form replies only {} the customer's last message and no \
                 approved template is configured. The customer must write first.",
                self.window()
            ),
            Refusal::OptedOut => format!(
                "the customer opted out of {label} messages (STOP). Nothing reaches them on \
                 {label} until they opt in again (START)."
            ),
            Refusal::OutcomeUnknown { .. } => format!(
                "sending it to {label} was cut off (the gateway restarted, or {label}'s answer \
                 was lost), so the customer may or may not have it. It was not sent again, to \
                 avoid a duplicate: send it again if they need it."
            ),
        }
    }

    /// The delivery's `last_error`.
    pub fn last_error(&self, refusal: &Refusal) -> String {
        match refusal {
            Refusal::WindowClosed { provider_message } => format!(
                "reply window closed ({provider_message}): {}",
                self.explain(refusal)
            ),
            Refusal::OptedOut => format!(
                "the customer opted out (STOP) of {} messages; nothing is sent until they opt \
                 in again (START)",
                self.label()
            ),
            Refusal::OutcomeUnknown { detail: None } => super::deliver::OUTCOME_UNKNOWN.into(),
            Refusal::OutcomeUnknown {
                detail: Some(detail),
            } => format!("{} ({detail})", super::deliver::OUTCOME_UNKNOWN),
        }
    }
}

/// What the rep is told about one refused delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepNotice {
    /// A `[Handoff] …` message queued into the live conversation.
    Conversation(NewLiveMessage),
    /// An internal note on the session's Case.
    CaseNote {
        note_id: String,
        kind: &'static str,
        body: String,
    },
    /// Nobody is told, and why (recorded with the `delivery.failed` event).
    NotTold(&'static str),
}

/// Decides what the rep is told about `row`, refused for `refusal` by `deliverer`. `live` is
/// the session's live row, if it has one. Ids derive from the message's delivery id (every
/// part of a split message maps to it), so telling again writes nothing.
pub fn decide(
    refusal: &Refusal,
    deliverer: &Deliverer,
    row: &delivery::Model,
    session: Option<&session::Model>,
    live: Option<&live_session::Model>,
) -> RepNotice {
    if row.kind != OutboundKind::AgentMessage.as_str() {
        return RepNotice::NotTold("not a rep's message");
    }
    let Some(session) = session else {
        return RepNotice::NotTold("the session does not exist");
    };
    let message = super::message_delivery_id(&row.id);
    let purpose = format!("{}:{message}", refusal.reason());
    let excerpt = excerpt(&row.text);
    let live_now = live
        .and_then(|l| LiveState::parse(&l.state))
        .is_some_and(LiveState::accepts_messages);
    if live_now {
        return RepNotice::Conversation(NewLiveMessage {
            id: message_id(&session.id, &format!("undelivered/{purpose}")),
            kind: message_kind::NOTICE,
            text: format!(
                "[Handoff] {}: {}\nYour message began: {excerpt}",
                refusal.headline(),
                deliverer.explain(refusal)
            ),
        });
    }
    if session.route == "case" || session.salesforce_case_id.is_some() {
        return RepNotice::CaseNote {
            note_id: case_note_id(&session.id, &purpose),
            kind: refusal.reason(),
            body: format!(
                "{}: {}\n\
                 The customer has not been told.\n\nThe reply began:\n{excerpt}",
                refusal.note_headline(),
                deliverer.explain(refusal)
            ),
        };
    }
    RepNotice::NotTold("no live conversation and no Case")
}

/// The first [`EXCERPT_CHARS`] characters of a reply, `…` when cut.
fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whatsapp() -> Deliverer {
        Deliverer {
            kind: ChannelKind::Whatsapp,
            reply_window: Some(Duration::from_secs(24 * 3_600)),
        }
    }

    fn sms() -> Deliverer {
        Deliverer {
            kind: ChannelKind::Sms,
            reply_window: None,
        }
    }

    fn window() -> Refusal {
        Refusal::WindowClosed {
            provider_message: "131047".into(),
        }
    }

    fn row(id: &str, kind: OutboundKind) -> delivery::Model {
        delivery::Model {
            id: id.into(),
            session_id: "s-1".into(),
            channel: "whatsapp".into(),
            kind: kind.as_str().into(),
            text: "We refunded order 1182; the money is back in 3 days.".into(),
            sender_name: Some("Rita".into()),
            target: r#"{"type":"phone","number":"+15550107788"}"#.into(),
            state: "sending".into(),
            attempts: 1,
            provider_id: None,
            last_error: None,
            created_at: 0,
            updated_at: 0,
            provider_status: None,
            provider_status_at: None,
            provider_error_code: None,
        }
    }

    fn session(route: &str, case_id: Option<&str>) -> session::Model {
        let at = chrono::Utc::now();
        session::Model {
            id: "s-1".into(),
            channel: "whatsapp".into(),
            route: route.into(),
            status: "live".into(),
            customer_name: None,
            customer_email: None,
            customer_phone: Some("+15550107788".into()),
            language: "en".into(),
            priority: "medium".into(),
            subject: None,
            request_hash: String::new(),
            payload: "{}".into(),
            salesforce_case_id: case_id.map(str::to_string),
            salesforce_case_id15: None,
            salesforce_case_number: None,
            salesforce_miaw_session_id: None,
            salesforce_messaging_session_id: None,
            comments_written: 0,
            salesforce_calls: 0,
            last_error: None,
            created_at: at,
            updated_at: at,
            id_folded: Some("s-1".into()),
            customer_phone_e164: Some("+15550107788".into()),
            reply_token: None,
            joined_session_id: None,
            customer_last_message_at: None,
        }
    }

    fn live(state: LiveState) -> live_session::Model {
        live_session::Model {
            session_id: "s-1".into(),
            conversation_id: "c".into(),
            token: None,
            token_expires_at: None,
            last_event_id: None,
            state: state.as_str().into(),
            rep_name: Some("Rita".into()),
            owner: None,
            lease_until: None,
            deadline_at: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_live_session_gets_one_message_per_reply_whatever_its_parts() {
        let s = session("messaging", None);
        let l = live(LiveState::Active);
        let first = decide(
            &window(),
            &whatsapp(),
            &row(
                "dlv_0123456789abcdef0123456789abcdef",
                OutboundKind::AgentMessage,
            ),
            Some(&s),
            Some(&l),
        );
        let RepNotice::Conversation(message) = &first else {
            panic!("{first:?}");
        };
        assert_eq!(message.kind, message_kind::NOTICE);
        assert!(
            message.text.starts_with(
                "[Handoff] Your message was not delivered: WhatsApp allows free-form replies \
                 only within 24 hours of the customer's last message and no approved template \
                 is configured. The customer must write first."
            ),
            "{}",
            message.text
        );
        assert!(message.text.contains("We refunded order 1182"));
        // The second part of the same reply, and the same delivery again: the same id.
        let part = decide(
            &window(),
            &whatsapp(),
            &row(
                "dlv_0123456789abcdef0123456789abcdef_002",
                OutboundKind::AgentMessage,
            ),
            Some(&s),
            Some(&l),
        );
        assert_eq!(part, first);
        // Another reply: another id.
        let other = decide(
            &window(),
            &whatsapp(),
            &row(
                "dlv_ffff456789abcdef0123456789abcdef",
                OutboundKind::AgentMessage,
            ),
            Some(&s),
            Some(&l),
        );
        let RepNotice::Conversation(other) = other else {
            panic!()
        };
        assert_ne!(other.id, message.id);
        // An opt-out of the same reply is another notice.
        let opted = decide(
            &Refusal::OptedOut,
            &sms(),
            &row(
                "dlv_0123456789abcdef0123456789abcdef",
                OutboundKind::AgentMessage,
            ),
            Some(&s),
            Some(&l),
        );
        let RepNotice::Conversation(opted) = opted else {
            panic!()
        };
        assert_ne!(opted.id, message.id);
        assert!(
            opted.text.contains("opted out of SMS messages (STOP)"),
            "{}",
            opted.text
        );
    }

    #[test]
    fn a_case_session_gets_a_note_and_system_messages_tell_nobody() {
        let id = "dlv_0123456789abcdef0123456789abcdef";
        let over = live(LiveState::Fallback);
        for (s, l) in [
            (session("case", Some("500000000000001AAA")), None),
            (session("case", None), Some(&over)),
        ] {
            let notice = decide(
                &window(),
                &whatsapp(),
                &row(id, OutboundKind::AgentMessage),
                Some(&s),
                l,
            );
            let RepNotice::CaseNote {
                note_id,
                kind,
                body,
            } = notice
            else {
                panic!("{notice:?}");
            };
            assert_eq!(kind, WINDOW_CLOSED_NOTE);
            assert_eq!(note_id, case_note_id("s-1", &format!("window_closed:{id}")));
            assert!(body.contains("The customer must write first."), "{body}");
        }
        let s = session("case", Some("500000000000001AAA"));
        for kind in [
            OutboundKind::AgentJoined,
            OutboundKind::AgentLeft,
            OutboundKind::SystemMessage,
            OutboundKind::SessionClosed,
        ] {
            assert_eq!(
                decide(&Refusal::OptedOut, &sms(), &row(id, kind), Some(&s), None),
                RepNotice::NotTold("not a rep's message")
            );
        }
        // A live session that is over, with no Case: nobody to tell.
        let ended = live(LiveState::Ended);
        assert_eq!(
            decide(
                &window(),
                &whatsapp(),
                &row(id, OutboundKind::AgentMessage),
                Some(&session("messaging", None)),
                Some(&ended)
            ),
            RepNotice::NotTold("no live conversation and no Case")
        );
    }

    #[test]
    fn last_errors_say_what_happened_and_what_the_customer_must_do() {
        let window_error = whatsapp().last_error(&window());
        assert!(
            window_error.starts_with("reply window closed (131047): "),
            "{window_error}"
        );
        assert!(window_error.contains("within 24 hours of the customer's last message"));
        assert!(window_error.ends_with("The customer must write first."));
        let opted = sms().last_error(&Refusal::OptedOut);
        assert!(
            opted.starts_with("the customer opted out (STOP)"),
            "{opted}"
        );
        let plugin = Deliverer {
            kind: ChannelKind::Plugin("textline".into()),
            reply_window: Some(Duration::from_secs(90 * 60)),
        };
        assert!(
            plugin
                .last_error(&window())
                .contains("textline allows free-form replies only within 90 minutes of")
        );
    }

    #[test]
    fn a_reply_whose_outcome_is_unknown_is_told_as_possibly_undelivered() {
        let id = "dlv_0123456789abcdef0123456789abcdef";
        let unknown = Refusal::OutcomeUnknown { detail: None };
        let s = session("messaging", None);
        let notice = decide(
            &unknown,
            &sms(),
            &row(id, OutboundKind::AgentMessage),
            Some(&s),
            Some(&live(LiveState::Active)),
        );
        let RepNotice::Conversation(message) = &notice else {
            panic!("{notice:?}");
        };
        assert!(
            message.text.starts_with(
                "[Handoff] Your message may not have been delivered: sending it to SMS was cut \
                 off (the gateway restarted, or SMS's answer was lost), so the customer may or \
                 may not have it. It was not sent again, to avoid a duplicate: send it again \
                 if they need it.\nYour message began: We refunded order 1182"
            ),
            "{}",
            message.text
        );
        // Its own id: a window or opt-out notice of the same reply is another message.
        let RepNotice::Conversation(window_notice) = decide(
            &window(),
            &sms(),
            &row(id, OutboundKind::AgentMessage),
            Some(&s),
            Some(&live(LiveState::Active)),
        ) else {
            panic!()
        };
        assert_ne!(window_notice.id, message.id);
        // On a Case: a note of its own kind.
        let case = session("case", Some("500000000000001AAA"));
        let RepNotice::CaseNote { kind, body, .. } = decide(
            &unknown,
            &whatsapp(),
            &row(id, OutboundKind::AgentMessage),
            Some(&case),
            None,
        ) else {
            panic!()
        };
        assert_eq!(kind, OUTCOME_UNKNOWN_NOTE);
        assert!(
            body.starts_with("Handoff does not know whether this reply reached the customer: "),
            "{body}"
        );
        // The delivery's last_error keeps the documented words, with the adapter's error.
        assert_eq!(
            sms().last_error(&unknown),
            super::super::deliver::OUTCOME_UNKNOWN
        );
        assert_eq!(
            sms().last_error(&Refusal::OutcomeUnknown {
                detail: Some("timed out".into())
            }),
            format!("{} (timed out)", super::super::deliver::OUTCOME_UNKNOWN)
        );
    }

    #[test]
    fn excerpts_are_bounded_by_characters() {
        assert_eq!(excerpt("short"), "short");
        let long = "ü".repeat(EXCERPT_CHARS + 5);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(
            excerpt(&"ü".repeat(EXCERPT_CHARS)).chars().count(),
            EXCERPT_CHARS
        );
    }
}
