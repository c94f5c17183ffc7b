//! Messages to customers. Producers put a row in the outbox
//! (`store/outbox.rs`: the row and its `DeliverMessage` job in one transaction);
//! the `DeliverMessage` handler ([`deliver`]) sends it through the channel adapter.
//! The first producer is the "your request is now a Case" notice ([`notices`]);
//! email deliveries carry their thread ([`email`]). A session's messages go
//! through the channel that delivers for its channel ([`deliverer`]: a voice
//! session's follow-ups go by SMS), and a delivery the customer's side refuses
//! (opted out, reply window closed) or whose outcome is unknown is told to the rep
//! ([`rep_notice`]).

pub mod deliver;
pub mod email;
pub mod feed;
pub mod notices;
pub mod rep_notice;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use channels::{Channel, Registry};

use crate::store::NewDelivery;

/// The adapter that carries the messages of a session on channel `session_channel` to the
/// customer ([`Registry::deliverer`]: voice → SMS when voice delivers through it), when it
/// is enabled and delivers; otherwise why the customer cannot be told. Producers write its
/// name as the delivery's `channel` and split by its rules.
pub fn deliverer(registry: &Registry, session_channel: &str) -> Result<Arc<dyn Channel>, String> {
    let kind = registry
        .resolve(session_channel)
        .map_err(|_| "the session's channel is not configured".to_string())?;
    let through = registry.get(&kind).and_then(|c| c.delivers_through());
    let Some(deliverer) = registry.deliverer(&kind) else {
        return Err(match through {
            Some(through) => format!(
                "channel `{session_channel}` sends through `{through}`, which is not enabled"
            ),
            None => "the session's channel is not configured".to_string(),
        });
    };
    if !deliverer.capabilities().delivers {
        let name = deliverer.kind();
        return Err(if name.as_str() == session_channel {
            format!("channel `{session_channel}` cannot send messages to customers")
        } else {
            format!(
                "channel `{session_channel}` sends through `{name}`, which cannot send messages \
                 to customers"
            )
        });
    }
    Ok(deliverer)
}

/// A stable delivery id for the message `purpose` of a session: the same every
/// time the producer runs, so producing twice enqueues once, and the id the
/// customer's side sees (`webhook-id`) is the same on every retry.
pub fn delivery_id(session_id: &str, purpose: &str) -> String {
    let digest = Sha256::digest(format!("{session_id}\n{purpose}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("dlv_{hex}")
}

/// The delivery id of the message a part belongs to: `{id}_{k:03}` (part k ≥ 2 of a split
/// message, [`split_for`]) → `{id}`; any other id is its own.
pub fn message_delivery_id(id: &str) -> &str {
    match id.rsplit_once('_') {
        Some((base, part))
            if base.starts_with("dlv_")
                && part.len() == 3
                && part.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => id,
    }
}

/// `new` as the messages its channel can carry ([`channels::Capabilities::split_message`]):
/// the first part keeps the delivery id, part k (from 2) gets `{id}_{k:03}` (zero-padded, so ids sort in part order), so every part is its own
/// outbox row with a stable id, and enqueueing them again writes nothing.
pub fn split_for(capabilities: &channels::Capabilities, new: NewDelivery) -> Vec<NewDelivery> {
    let parts = capabilities.split_message(&new.text);
    if parts.len() <= 1 {
        return vec![new];
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(k, text)| NewDelivery {
            id: if k == 0 {
                new.id.clone()
            } else {
                format!("{}_{:03}", new.id, k + 1)
            },
            text,
            ..new.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn delivery_ids_are_stable_and_distinct() {
        let a = super::delivery_id("s-1", "case_created");
        assert_eq!(a, super::delivery_id("s-1", "case_created"));
        assert_eq!(a.len(), 36);
        assert_ne!(a, super::delivery_id("s-2", "case_created"));
        assert_ne!(a, super::delivery_id("s-1", "other"));
    }

    #[test]
    fn a_long_message_becomes_parts_with_stable_distinct_ids() {
        let capabilities = channels::Capabilities {
            delivers: true,
            max_message_chars: Some(20),
            split: channels::SplitRule::Words,
            ..channels::Capabilities::receive_only()
        };
        let text = "Your request has been passed to our support team as case 00001001.";
        let new = super::NewDelivery {
            id: super::delivery_id("s-1", "case_created"),
            session_id: "s-1".into(),
            channel: "sms".into(),
            kind: channels::OutboundKind::SystemMessage,
            text: text.into(),
            sender_name: None,
            target: channels::ReplyTarget::Phone {
                number: "+15550107788".into(),
            },
        };
        let parts = super::split_for(&capabilities, new.clone());
        assert!(parts.len() > 1);
        assert_eq!(parts[0].id, new.id, "the first part keeps the id");
        let ids: std::collections::BTreeSet<&str> = parts.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids.len(), parts.len(), "distinct ids");
        assert_eq!(parts[1].id, format!("{}_002", new.id));
        for part in &parts {
            assert_eq!(super::message_delivery_id(&part.id), new.id, "{}", part.id);
        }
        // Zero-padded: ids sort in part order (the outbox orders by id within a millisecond).
        let mut sorted = parts.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
        sorted.sort();
        assert_eq!(
            sorted,
            parts.iter().map(|p| p.id.clone()).collect::<Vec<_>>()
        );
        assert!(parts.iter().all(|p| p.text.chars().count() <= 20));
        assert_eq!(
            parts.iter().map(|p| p.text.as_str()).collect::<String>(),
            text
        );
        // The same input gives the same parts: producing again enqueues nothing new.
        let again = super::split_for(&capabilities, new);
        assert_eq!(
            again.iter().map(|p| &p.id).collect::<Vec<_>>(),
            parts.iter().map(|p| &p.id).collect::<Vec<_>>()
        );
        // Without a limit, one message.
        let chat = channels::Capabilities::receive_only();
        assert_eq!(super::split_for(&chat, parts[0].clone()).len(), 1);
    }

    /// A plugin that delivers (or not), possibly through another channel.
    struct Plugin {
        name: &'static str,
        delivers: bool,
        through: Option<&'static str>,
    }

    #[async_trait::async_trait]
    impl channels::Channel for Plugin {
        fn kind(&self) -> channels::ChannelKind {
            channels::ChannelKind::Plugin(self.name.into())
        }
        fn preferred_route(&self) -> channels::Route {
            channels::Route::Messaging
        }
        fn capabilities(&self) -> channels::Capabilities {
            channels::Capabilities {
                delivers: self.delivers,
                ..channels::Capabilities::receive_only()
            }
        }
        fn delivers_through(&self) -> Option<channels::ChannelKind> {
            self.through
                .map(|t| channels::ChannelKind::Plugin(t.into()))
        }
        fn normalize(
            &self,
            _: channels::EscalationInput,
        ) -> Result<channels::Conversation, channels::ChannelError> {
            Err(channels::ChannelError::MissingTranscript)
        }
    }

    #[test]
    fn the_deliverer_is_the_channel_a_session_sends_through_or_says_why_not() {
        let mut registry = channels::Registry::builtin();
        for (name, delivers, through) in [
            ("textline", true, None),
            ("callline", false, Some("textline")),
            ("mute", false, None),
            ("viamute", false, Some("mute")),
            ("nowhere", false, Some("gone")),
        ] {
            registry
                .register_plugin(std::sync::Arc::new(Plugin {
                    name,
                    delivers,
                    through,
                }))
                .unwrap();
        }
        let name = |channel: &str| {
            super::deliverer(&registry, channel).map(|c| c.kind().as_str().to_string())
        };
        assert_eq!(name("textline").unwrap(), "textline");
        assert_eq!(name("callline").unwrap(), "textline");
        assert_eq!(
            name("mute").unwrap_err(),
            "channel `mute` cannot send messages to customers"
        );
        assert_eq!(
            name("viamute").unwrap_err(),
            "channel `viamute` sends through `mute`, which cannot send messages to customers"
        );
        assert_eq!(
            name("nowhere").unwrap_err(),
            "channel `nowhere` sends through `gone`, which is not enabled"
        );
        assert_eq!(
            name("fax").unwrap_err(),
            "the session's channel is not configured"
        );
    }

    #[test]
    fn parts_map_to_their_message() {
        let id = super::delivery_id("s-1", "case_reply:x");
        assert_eq!(super::message_delivery_id(&id), id);
        assert_eq!(super::message_delivery_id(&format!("{id}_002")), id);
        assert_eq!(
            super::message_delivery_id(&format!("{id}_12")),
            format!("{id}_12")
        );
        assert_eq!(super::message_delivery_id("inbound_001"), "inbound_001");
    }
}
