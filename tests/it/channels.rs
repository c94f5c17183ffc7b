//! Channels built from configuration, reached over HTTP: a configured bridge is a channel
//! `POST /v1/escalations` accepts, and `reply_to` is checked per channel at accept time and
//! stored, typed, with the session for the delivery job.

use std::time::Duration;

use handoff_tests::{Db, TestApp, both_databases, spawn_app, spawn_app_with};
use serde_json::{Value, json};

use crate::support::{escalation, unique};

const BRIDGE_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn on(channel: &str, session_id: &str) -> Value {
    let mut body = escalation(session_id, 3);
    body["channel"] = json!(channel);
    body
}

fn with_reply_to(mut body: Value, reply_to: Value) -> Value {
    body["reply_to"] = reply_to;
    body
}

/// The `reply_to` stored with the session, as the delivery job reads it.
async fn stored_reply_to(app: &TestApp, session_id: &str) -> Value {
    let session = app
        .gateway
        .state
        .store
        .session(session_id)
        .await
        .unwrap()
        .expect("session stored");
    let payload: Value = serde_json::from_str(&session.payload).unwrap();
    payload["reply_to"].clone()
}

fn add_bridge(config: &mut gateway::config::Config) {
    let table: ::channels::ChannelConfig = serde_json::from_value(json!({
        "type": "bridge",
        "url": "https://line-bridge.example.com/handoff",
        "secret": BRIDGE_SECRET,
        "preferred_route": "messaging",
    }))
    .unwrap();
    config.channels.insert("line".into(), table);
}

both_databases!(
    a_configured_bridge_is_accepted_over_http_and_becomes_a_case,
    |db: Db| async move {
        let app = spawn_app_with(db, add_bridge).await;
        let session_id = unique("bridge");
        let body = with_reply_to(on("line", &session_id), json!({"address": "line:U42"}));
        let (status, accepted) = app.post_escalation(&body).await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(accepted["channel"], "line");
        assert_eq!(accepted["route"], "case");
        assert_eq!(
            stored_reply_to(&app, &session_id).await,
            json!({"type": "bridge", "address": "line:U42"})
        );

        let session = app
            .driver()
            .wait_escalated(&session_id, Duration::from_secs(30))
            .await
            .expect("Case created");
        let case_id = session.salesforce_case_id.expect("case id");
        let cases = app
            .soql(&format!(
                "SELECT Id, Handoff_Session_Id__c FROM Case WHERE Id = '{case_id}'"
            ))
            .await;
        assert_eq!(cases.len(), 1);
        // The bridge prefers messaging, so the fallback is recorded as before.
        assert!(
            app.event_kinds(&session_id)
                .await
                .contains(&"route.fallback".to_owned())
        );

        // A name nobody configured is refused, listing the ones that exist.
        let (status, problem) = app.post_escalation(&on("telegram", &unique("tg"))).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["code"], "unknown_channel");
        assert_eq!(problem["field"], "channel");
        assert!(
            problem["detail"].as_str().unwrap().contains("line"),
            "{problem}"
        );
    }
);

both_databases!(
    a_disabled_built_in_channel_is_refused_by_name,
    |db: Db| async move {
        let app = spawn_app_with(db, |config| {
            config.channels.insert(
                "sms".into(),
                serde_json::from_value(json!({"type": "sms", "enabled": false})).unwrap(),
            );
        })
        .await;
        let session_id = unique("sms-off");
        let (status, problem) = app.post_escalation(&on("sms", &session_id)).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["code"], "channel_disabled");
        assert_eq!(problem["field"], "channel");
        let (status, _) = app
            .get(&format!("/v1/sessions/{session_id}"), Some(&app.read_token))
            .await;
        assert_eq!(status, 404);
    }
);

both_databases!(
    reply_to_is_typed_per_channel_and_stored_with_the_session,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let cases = [
            (
                with_reply_to(
                    on("chat", &unique("chat")),
                    json!({"webhook_url": "http://127.0.0.1:9/hook"}),
                ),
                json!({"type": "webhook", "url": "http://127.0.0.1:9/hook"}),
            ),
            (
                on("email", &unique("mail")),
                json!({"type": "email", "address": "Ann.Example@example.com"}),
            ),
            (
                with_reply_to(
                    on("email", &unique("mail")),
                    json!({"email": "billing@example.org"}),
                ),
                json!({"type": "email", "address": "billing@example.org"}),
            ),
            (
                on("sms", &unique("sms")),
                json!({"type": "phone", "number": "+14155550100"}),
            ),
            (
                with_reply_to(
                    on("whatsapp", &unique("wa")),
                    json!({"phone": "+442071838750"}),
                ),
                json!({"type": "phone", "number": "+442071838750"}),
            ),
            // A chat without a webhook is served on its session stream.
            (on("chat", &unique("chat")), json!({"type": "stream"})),
        ];
        for (body, want) in cases {
            let (status, accepted) = app.post_escalation(&body).await;
            assert_eq!(status, 202, "{accepted}");
            let id = body["session_id"].as_str().unwrap();
            assert_eq!(stored_reply_to(&app, id).await, want, "{body}");
        }
    }
);

both_databases!(
    bad_reply_to_is_refused_at_accept_and_writes_nothing,
    |db: Db| async move {
        // Production settings: the SSRF guard is on.
        let app = spawn_app_with(db, |config| {
            if let Some(::channels::ChannelConfig::Chat(chat)) = config.channels.get_mut("chat") {
                chat.allow_private_webhook_urls = false;
            }
        })
        .await;
        let long_url = format!("https://bot.example.com/{}", "a".repeat(2_048));
        let cases: Vec<(&str, Value, &str)> = vec![
            ("chat", json!("https://bot.example.com/h"), "reply_to"),
            (
                "chat",
                json!({"webhook_url": "https://bot.example.com/h", "x": 1}),
                "reply_to",
            ),
            (
                "chat",
                json!({"url": "https://bot.example.com/h"}),
                "reply_to",
            ),
            (
                "chat",
                json!({"webhook_url": "http://bot.example.com/h"}),
                "reply_to.webhook_url",
            ),
            (
                "chat",
                json!({"webhook_url": "https://u:p@bot.example.com/h"}),
                "reply_to.webhook_url",
            ),
            (
                "chat",
                json!({"webhook_url": "https://127.0.0.1/h"}),
                "reply_to.webhook_url",
            ),
            (
                "chat",
                json!({"webhook_url": "https://localhost/h"}),
                "reply_to.webhook_url",
            ),
            (
                "chat",
                json!({"webhook_url": "https://169.254.169.254/latest"}),
                "reply_to.webhook_url",
            ),
            (
                "chat",
                json!({"webhook_url": "https://[::1]/h"}),
                "reply_to.webhook_url",
            ),
            (
                "chat",
                json!({"webhook_url": long_url}),
                "reply_to.webhook_url",
            ),
            ("email", json!({"email": "nobody"}), "reply_to.email"),
            (
                "email",
                json!({"email": "a@example.com", "cc": "b@example.com"}),
                "reply_to",
            ),
            ("sms", json!({"phone": "555-0100"}), "reply_to.phone"),
            (
                "voice",
                json!({"phone": "+14155550100", "ext": "12"}),
                "reply_to",
            ),
        ];
        for (channel, reply_to, field) in cases {
            let id = unique("bad-reply");
            let body = with_reply_to(on(channel, &id), reply_to.clone());
            let (status, problem) = app.post_escalation(&body).await;
            assert_eq!(status, 400, "{channel} {reply_to}: {problem}");
            assert_eq!(problem["code"], "invalid_reply_to", "{problem}");
            assert_eq!(problem["field"], field, "{channel} {reply_to}: {problem}");
            let (status, _) = app
                .get(&format!("/v1/sessions/{id}"), Some(&app.read_token))
                .await;
            assert_eq!(status, 404, "{channel} {reply_to} left a session");
        }
        // A public https URL passes.
        let id = unique("good-reply");
        let body = with_reply_to(
            on("chat", &id),
            json!({"webhook_url": "https://bot.example.com/handoff"}),
        );
        let (status, accepted) = app.post_escalation(&body).await;
        assert_eq!(status, 202, "{accepted}");
    }
);

both_databases!(
    chat_without_a_webhook_secret_refuses_reply_to,
    |db: Db| async move {
        let app = spawn_app_with(db, |config| {
            config.channels.remove("chat");
        })
        .await;
        let body = with_reply_to(
            on("chat", &unique("nosecret")),
            json!({"webhook_url": "https://bot.example.com/h"}),
        );
        let (status, problem) = app.post_escalation(&body).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["field"], "reply_to");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("channels.chat.webhook_secret"),
            "{problem}"
        );
    }
);
