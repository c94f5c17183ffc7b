//! What a voice escalation records when it is accepted: how the rep's written answers will
//! reach the caller (`voice.follow_up`: `via` the delivering channel or `none`, and why), so
//! the timeline says it before any answer is written.

use serde_json::{Value, json};

use channels::Registry;

use crate::escalation::request::Escalation;

/// The `voice.follow_up` event of a voice conversation (`None` for every other conversation).
pub fn follow_up_event(
    registry: &Registry,
    escalation: &Escalation,
) -> Option<(&'static str, Value)> {
    let voice = escalation.payload.conversation.voice?;
    let channel = registry.get(&escalation.channel)?;
    let (via, reason) = match channel.delivers_through() {
        None => (
            "none".to_owned(),
            format!(
                "follow-ups are off (channels.{}.follow_up = \"none\"); answers stay in Salesforce",
                escalation.channel
            ),
        ),
        Some(through) => match registry.deliverer(&escalation.channel) {
            Some(deliverer) if deliverer.kind() != through => (
                "none".to_owned(),
                format!("the {through} channel is disabled; answers stay in Salesforce"),
            ),
            Some(deliverer) if !deliverer.capabilities().delivers => (
                "none".to_owned(),
                format!(
                    "the {through} channel is not configured to deliver (channels.{through}); \
                     answers stay in Salesforce"
                ),
            ),
            None => (
                "none".to_owned(),
                format!("the {through} channel is disabled; answers stay in Salesforce"),
            ),
            Some(_) if escalation.payload.reply_to.is_none() => (
                "none".to_owned(),
                "no phone number in E.164 is known for the caller (customer.phone or \
                 reply_to.phone); answers stay in Salesforce"
                    .to_owned(),
            ),
            Some(_) => (
                through.to_string(),
                format!("the rep's written answers go to the caller by {through}"),
            ),
        },
    };
    Some((
        "voice.follow_up",
        json!({"via": via, "reason": reason, "mode": voice.mode.as_str()}),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::escalation::request;

    fn registry(tables: Value) -> Registry {
        let configs: BTreeMap<String, channels::ChannelConfig> =
            serde_json::from_value(tables).unwrap();
        Registry::from_config(&configs).unwrap()
    }

    fn escalation(registry: &Registry, body: Value) -> Escalation {
        request::parse_with_reply_to(
            &body,
            |kind, input, reply_to| {
                let channel = registry.get(kind).unwrap();
                let conversation = channel.normalize(input).unwrap();
                let target = channel.reply_target(reply_to, &conversation).unwrap();
                Ok((conversation, target))
            },
            |name| Ok(registry.resolve(name).unwrap()),
        )
        .unwrap()
    }

    fn call(phone: Option<&str>) -> Value {
        json!({
            "session_id": "call-1",
            "channel": "voice",
            "customer": {"phone": phone},
            "voice_mode": "live_transfer",
            "transcript": [{"role": "customer", "text": "hi"}],
        })
    }

    #[test]
    fn says_why_answers_do_or_do_not_reach_the_caller() {
        // SMS without settings does not deliver (yet): the answers stay in Salesforce.
        let builtin = Registry::builtin();
        let (kind, data) =
            follow_up_event(&builtin, &escalation(&builtin, call(Some("+14155550100")))).unwrap();
        assert_eq!(kind, "voice.follow_up");
        assert_eq!(data["via"], "none");
        assert_eq!(data["mode"], "live_transfer");
        assert!(
            data["reason"]
                .as_str()
                .unwrap()
                .contains("not configured to deliver"),
            "{data}"
        );

        let off = registry(json!({"voice": {"type": "voice", "follow_up": "none"}}));
        let (_, data) =
            follow_up_event(&off, &escalation(&off, call(Some("+14155550100")))).unwrap();
        assert_eq!(data["via"], "none");
        assert!(
            data["reason"]
                .as_str()
                .unwrap()
                .contains("follow_up = \"none\""),
            "{data}"
        );

        let no_sms = registry(json!({"sms": {"type": "sms", "enabled": false}}));
        let (_, data) = follow_up_event(&no_sms, &escalation(&no_sms, call(None))).unwrap();
        assert!(
            data["reason"]
                .as_str()
                .unwrap()
                .contains("sms channel is disabled"),
            "{data}"
        );

        // SMS configured: the answers go by SMS, to a caller with a phone in E.164.
        let sms = registry(json!({"sms": {
            "type": "sms",
            "account_sid": "AC0123456789abcdef0123456789abcdef",
            "auth_token": "0123456789abcdef0123456789abcdef",
            "from": "+15550100000",
        }}));
        let (_, data) =
            follow_up_event(&sms, &escalation(&sms, call(Some("+14155550100")))).unwrap();
        assert_eq!(data["via"], "sms", "{data}");
        let (_, data) =
            follow_up_event(&sms, &escalation(&sms, call(Some("+1 (415) 555-0100")))).unwrap();
        assert_eq!(data["via"], "none", "{data}");
        assert!(
            data["reason"].as_str().unwrap().contains("no phone number"),
            "{data}"
        );

        // Not a voice conversation: nothing to say.
        let mut chat = call(None);
        chat["channel"] = json!("chat");
        chat.as_object_mut().unwrap().remove("voice_mode");
        assert!(follow_up_event(&builtin, &escalation(&builtin, chat)).is_none());
    }
}
