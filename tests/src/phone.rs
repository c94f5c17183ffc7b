//! SMS (and voice follow-ups by SMS) end to end: the gateway with the real SMS adapter, its
//! `api_url` pointing at the Twilio emulator (`channel-emulator`), whose inbound webhook is the
//! gateway's `/channels/sms/inbound` and whose status callbacks come back signed; live sessions
//! go to the Salesforce emulator's MIAW, where the test plays the rep.

use std::future::Future;
use std::time::{Duration, Instant};

use channel_emulator::twilio::{SentMessage, TwilioEmulator, TwilioSettings};
use channels::{ChannelConfig, SmsConfig};
use gateway::config::Config;
use gateway::store::delivery;
use serde_json::Value;

use crate::console::{RepConsole, texts_by};
use crate::{Db, TestApp, spawn_live_app};

/// The emulated Twilio account.
pub const ACCOUNT_SID: &str = channel_emulator::twilio::DEMO_ACCOUNT_SID;
/// The account's auth token: the API's password and the webhooks' signing key.
pub const AUTH_TOKEN: &str = "e2e-twilio-auth-token-4f1c";
/// Our Twilio number.
pub const OUR_NUMBER: &str = "+15550100000";

/// The gateway, the Twilio emulator it sends through and is called by, and the rep console.
pub struct PhoneApp {
    pub app: TestApp,
    pub twilio: TwilioEmulator,
    pub rep: RepConsole,
}

/// `[channels.sms]` for the emulator at `api_url`.
pub fn sms_config(api_url: &str) -> SmsConfig {
    SmsConfig {
        account_sid: Some(ACCOUNT_SID.into()),
        auth_token: Some(AUTH_TOKEN.to_string().into()),
        from: Some(OUR_NUMBER.into()),
        api_url: api_url.into(),
        timeout_secs: 5,
        ..SmsConfig::default()
    }
}

/// Starts the Twilio emulator (with our number), then the gateway with live messaging for
/// chat, SMS and voice and `[channels.sms]` pointing at the emulator (`adjust_sms`, then
/// `adjust` change them last), then points the emulator's inbound webhook at the gateway.
pub async fn spawn_phone_app(
    db: Db,
    adjust_sms: impl FnOnce(&mut SmsConfig),
    adjust: impl FnOnce(&mut Config),
) -> PhoneApp {
    let twilio = TwilioEmulator::spawn(TwilioSettings {
        account_sid: ACCOUNT_SID.into(),
        auth_token: AUTH_TOKEN.into(),
        api_key: None,
        webhook_url: None,
        whatsapp_webhook_url: None,
    })
    .await;
    twilio.add_number(OUR_NUMBER).expect("our number");
    let mut sms = sms_config(&twilio.url());
    adjust_sms(&mut sms);
    let app = spawn_live_app(db, sf_emulator::EmulatorConfig::default(), |config| {
        config.miaw.channels = vec!["chat".into(), "sms".into(), "voice".into()];
        config
            .channels
            .insert("sms".into(), ChannelConfig::Sms(sms));
        adjust(config);
    })
    .await;
    twilio.set_webhook(format!("{}/channels/sms/inbound", app.public_url()));
    let rep = RepConsole::new(&app.emulator.url());
    PhoneApp { app, twilio, rep }
}

/// Waits (hang guard: 30 s) until `ready` answers `Some`.
pub async fn eventually<T, F, Fut>(what: &str, mut ready: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = ready().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

impl TestApp {
    /// The URL providers call the gateway at (`public_url`, no trailing slash).
    pub fn public_url(&self) -> String {
        self.config
            .public_url
            .as_deref()
            .expect("public_url is set by the harness")
            .trim_end_matches('/')
            .to_string()
    }

    /// `GET /v1/sessions/{id}`.
    pub async fn session_view(&self, id: &str) -> Value {
        let (status, body) = self
            .get(&format!("/v1/sessions/{id}"), Some(&self.read_token))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits (hang guard: 30 s) for `ready` on the session view.
    pub async fn wait_session(
        &self,
        id: &str,
        what: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(what, || async {
            let s = self.session_view(id).await;
            ready(&s).then_some(s)
        })
        .await
    }

    /// Every outbox row of a session (with its text), in sending order.
    pub async fn deliveries(&self, session_id: &str) -> Vec<delivery::Model> {
        self.gateway
            .state
            .store
            .deliveries_for_session(session_id)
            .await
            .expect("deliveries")
    }

    /// `GET /v1/inbound-messages?state=…`.
    pub async fn inbound_list(&self, state: &str) -> Vec<Value> {
        let (status, body) = self
            .get(
                &format!("/v1/inbound-messages?state={state}"),
                Some(&self.read_token),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["inbound_messages"].as_array().expect("list").clone()
    }

    /// Waits until every delivery of the session has left the queue (sent or failed) — at
    /// least `min` of them.
    pub async fn settled_deliveries(&self, session_id: &str, min: usize) -> Vec<delivery::Model> {
        eventually(
            &format!("{min} settled deliveries of {session_id}"),
            || async {
                let rows = self.deliveries(session_id).await;
                (rows.len() >= min
                    && rows
                        .iter()
                        .all(|d| d.state == "sent" || d.state == "failed"))
                .then_some(rows)
            },
        )
        .await
    }
}

impl PhoneApp {
    /// What the emulator accepted for `number`, oldest first.
    pub fn sent_to(&self, number: &str) -> Vec<SentMessage> {
        self.twilio
            .sent()
            .into_iter()
            .filter(|m| m.to == number)
            .collect()
    }

    /// Waits until the emulator accepted at least `n` messages for `number`.
    pub async fn wait_sent_to(&self, number: &str, n: usize) -> Vec<SentMessage> {
        eventually(&format!("{n} messages to the customer"), || async {
            let sent = self.sent_to(number);
            (sent.len() >= n).then_some(sent)
        })
        .await
    }

    /// Waits until the emulator accepted a message for `number` with exactly `body`.
    pub async fn wait_body(&self, number: &str, body: &str) -> SentMessage {
        eventually(&format!("the message {body:?}"), || async {
            self.sent_to(number).into_iter().find(|m| m.body == body)
        })
        .await
    }

    /// Checks the session's `sent` deliveries against what the emulator accepted: each one
    /// exactly once (its provider id is one accepted message with its text, from our number to
    /// `number`), in the session's order, with a status callback naming it. Returns the texts
    /// in order.
    pub async fn assert_sent_once_in_order(&self, session_id: &str, number: &str) -> Vec<String> {
        let rows = self.app.deliveries(session_id).await;
        let sent = self.twilio.sent();
        let mut order = Vec::new();
        for row in rows.iter().filter(|d| d.state == "sent") {
            let sid = row
                .provider_id
                .as_deref()
                .expect("a sent delivery has a sid");
            let matching: Vec<(usize, &SentMessage)> = sent
                .iter()
                .enumerate()
                .filter(|(_, m)| m.sid == sid)
                .collect();
            assert_eq!(matching.len(), 1, "{} accepted once: {sent:?}", row.id);
            let (position, message) = matching[0];
            assert_eq!(message.body, row.text, "{}", row.id);
            assert_eq!(message.to, number, "{}", row.id);
            assert_eq!(message.from, OUR_NUMBER, "{}", row.id);
            assert_eq!(row.channel, "sms", "{}", row.id);
            let callback = message.status_callback.as_deref().unwrap_or("");
            assert_eq!(
                callback,
                format!(
                    "{}/channels/sms/status?delivery={}",
                    self.app.public_url(),
                    row.id
                ),
                "{}",
                row.id
            );
            order.push(position);
        }
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "accepted in the session's order: {order:?}"
        );
        rows.iter()
            .filter(|d| d.state == "sent")
            .map(|d| d.text.clone())
            .collect()
    }

    /// Escalates `body` and waits until its live conversation waits for a rep with the opening
    /// messages (summary, transcript); the conversation id.
    pub async fn live_escalation(&self, body: &Value) -> String {
        let (status, answer) = self.app.post_escalation(body).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["route"], "messaging", "{answer}");
        let conversation = answer["salesforce_miaw_session_id"]
            .as_str()
            .expect("conversation id")
            .to_string();
        self.rep
            .wait_for(&conversation, "the conversation waiting", |c| {
                c["status"] == "waiting" && texts_by(c, "EndUser").len() >= 2
            })
            .await;
        conversation
    }

    /// The rep writes each text into the conversation, one after the other.
    pub async fn rep_says(&self, conversation: &str, texts: &[&str]) {
        for text in texts {
            let (status, body) = self.rep.say(conversation, text).await;
            assert_eq!(status, 202, "{body}");
        }
    }

    /// A customer's text to our number through the emulator (signed like Twilio); the gateway
    /// must answer Twilio's empty TwiML. The message's sid.
    pub async fn text_from(&self, from: &str, body: &str) -> String {
        let r = self
            .twilio
            .inbound(from, OUR_NUMBER, body, &[])
            .await
            .expect("the emulator posts the message");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.content_type.as_deref(), Some("text/xml"));
        assert_eq!(
            r.body,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#
        );
        r.sid
    }
}
