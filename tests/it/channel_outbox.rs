//! The outbound side of phone channels through the real gateway, over real sockets, against
//! the Salesforce emulator (Cases, MIAW and its rep console): a session's messages go through
//! the adapter that delivers for its channel (a voice-like channel through an SMS-like one,
//! split by the SMS-like rules), with the customer's last message time; a reply the customer's
//! side refuses — reply window closed, customer opted out — fails visibly and the rep is told
//! once (a `[Handoff]` message in the live conversation, or an internal note on the Case), even
//! when the delivery job runs again; an opted-out number is never sent to again.
//!
//! The provider is a Rust plugin channel registered with `Application::build_with_channels`
//! (`textline`, SMS-like; `callline`, voice-like, delivering through it): it plays the
//! provider's answers (accepted, 24-hour window closed, opted out).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use channels::{
    Capabilities, Channel, ChannelError, ChannelKind, Conversation, Delivered, DeliveryError,
    EscalationInput, OutboundMessage, ReplyTarget, Route, SplitRule,
};
use gateway::Application;
use gateway::store::{Scope, Store};
use handoff_tests::console::{RepConsole, texts_by};
use handoff_tests::{Db, both_databases, fresh_database, live_settings, test_config};
use salesforce::events::sign;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const CASE_SECRET: &str = "channel-outbox-case-secret";
const REP_USER: &str = "0055g0000000Rep";
const PHONE: &str = "+15550107788";
/// The newest customer turn of every escalation here.
const LAST_CUSTOMER_TURN: &str = "2026-11-22T10:02:00Z";

/// What the provider answers, shared by the test and the plugin.
#[derive(Default)]
struct Provider {
    /// Free-form messages are refused (WhatsApp outside its 24 hours, no template).
    window_closed: AtomicBool,
    /// Numbers the provider knows texted STOP (Twilio answers 21610).
    stopped: Mutex<HashSet<String>>,
    /// Every call the gateway made.
    calls: AtomicUsize,
    /// Every message the provider accepted, with its target.
    accepted: Mutex<Vec<(ReplyTarget, OutboundMessage)>>,
}

impl Provider {
    fn accepted(&self) -> Vec<(ReplyTarget, OutboundMessage)> {
        self.accepted.lock().unwrap().clone()
    }
}

/// An SMS-like or voice-like channel played by the test.
struct PhoneChannel {
    name: &'static str,
    route: Route,
    /// `Some`: delivers itself, cutting texts at this many characters.
    max_chars: Option<usize>,
    /// The channel its messages go through.
    through: Option<&'static str>,
    provider: Arc<Provider>,
}

#[async_trait::async_trait]
impl Channel for PhoneChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Plugin(self.name.into())
    }
    fn preferred_route(&self) -> Route {
        self.route
    }
    fn capabilities(&self) -> Capabilities {
        match self.max_chars {
            Some(max) => Capabilities {
                delivers: true,
                max_message_chars: Some(max),
                split: SplitRule::Words,
                reply_window: Some(Duration::from_secs(24 * 3_600)),
                ..Capabilities::receive_only()
            },
            None => Capabilities::receive_only(),
        }
    }
    fn delivers_through(&self) -> Option<ChannelKind> {
        self.through.map(|t| ChannelKind::Plugin(t.into()))
    }
    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError> {
        Ok(Conversation {
            subject: input.subject,
            customer: input.customer,
            language: input.language,
            turns: input.transcript.ok_or(ChannelError::MissingTranscript)?,
            thread: None,
            voice: None,
        })
    }
    fn reply_target(
        &self,
        _: Option<&Value>,
        conversation: &Conversation,
    ) -> Result<Option<ReplyTarget>, ChannelError> {
        Ok(conversation
            .customer
            .phone
            .clone()
            .filter(|p| channels::is_e164(p))
            .map(|number| ReplyTarget::Phone { number }))
    }
    async fn deliver(
        &self,
        target: &ReplyTarget,
        message: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        self.provider.calls.fetch_add(1, Ordering::SeqCst);
        let ReplyTarget::Phone { number } = target else {
            return Err(DeliveryError::Permanent {
                message: "not a phone number".into(),
            });
        };
        if self.provider.stopped.lock().unwrap().contains(number) {
            return Err(DeliveryError::OptedOut);
        }
        if self.provider.window_closed.load(Ordering::SeqCst) {
            return Err(DeliveryError::WindowClosed {
                message: "provider error 131047".into(),
            });
        }
        let mut accepted = self.provider.accepted.lock().unwrap();
        accepted.push((target.clone(), message.clone()));
        Ok(Delivered {
            provider_id: Some(format!("SM{:032}", accepted.len())),
        })
    }
}

struct Stack {
    app: gateway::RunningApp,
    store: Store,
    emulator: sf_emulator::EmulatorHandle,
    provider: Arc<Provider>,
    escalate: String,
    read: String,
    http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

/// The gateway with `textline` (SMS-like, preferring `route`, 40 characters a message) and
/// `callline` (voice-like: prefers live messaging, delivers through `textline`); `live`
/// turns MIAW on for `textline`.
async fn stack(db: Db, route: Route, live: bool) -> Stack {
    let emulator = sf_emulator::spawn(
        sf_emulator::EmulatorConfig::default(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let (url, dir) = fresh_database(db).await;
    let mut config = test_config(&url, &emulator);
    config.case_replies.webhook_secret = Some(CASE_SECRET.into());
    config.public_url = Some("https://handoff.example.com".into());
    if live {
        live_settings(&emulator)(&mut config);
        config.miaw.channels = vec!["textline".into()];
    }
    let provider = Arc::new(Provider::default());
    let plugins: Vec<Arc<dyn Channel>> = vec![
        Arc::new(PhoneChannel {
            name: "textline",
            route,
            max_chars: Some(40),
            through: None,
            provider: Arc::clone(&provider),
        }),
        Arc::new(PhoneChannel {
            name: "callline",
            route: Route::Messaging,
            max_chars: None,
            through: Some("textline"),
            provider: Arc::clone(&provider),
        }),
    ];
    let app = Application::build_with_channels(
        config,
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        plugins,
    )
    .await
    .unwrap();
    let store = app.state().store.clone();
    let escalate = store
        .create_token("e", &[Scope::Escalate])
        .await
        .unwrap()
        .secret;
    let read = store
        .create_token("r", &[Scope::Read])
        .await
        .unwrap()
        .secret;
    Stack {
        app: app.spawn().unwrap(),
        store,
        emulator,
        provider,
        escalate,
        read,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Stack {
    async fn escalate(&self, id: &str, channel: &str) -> Value {
        let response = self
            .http
            .post(format!("{}/v1/escalations", self.app.url()))
            .bearer_auth(&self.escalate)
            .json(&json!({
                "session_id": id,
                "channel": channel,
                "customer": {"name": "Ann Example", "phone": PHONE},
                "summary": "Refund for order 1182.",
                "transcript": [
                    {"role": "customer", "text": "I was charged twice.", "at": "2026-11-22T10:00:00Z"},
                    {"role": "bot", "text": "A colleague will refund one charge.", "at": "2026-11-22T10:01:00Z"},
                    {"role": "customer", "text": "Thanks.", "at": LAST_CUSTOMER_TURN},
                ],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.json().await.unwrap()
    }

    async fn session(&self, id: &str) -> Value {
        self.http
            .get(format!("{}/v1/sessions/{id}", self.app.url()))
            .bearer_auth(&self.read)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits (hang guard: 30 s) for `ready` on the session view.
    async fn wait(&self, id: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.session(id).await;
            if ready(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn case_id(&self, id: &str) -> String {
        let s = self
            .wait(id, "the Case", |s| s["salesforce_case_id"].is_string())
            .await;
        s["salesforce_case_id"].as_str().unwrap().to_string()
    }

    /// A rep's public comment on the Case, as the shipped Apex posts it (signed).
    async fn rep_comment(&self, event_id: &str, case_id: &str, text: &str) {
        let org = salesforce::SalesforceId::parse(&self.emulator.config().org_id)
            .unwrap()
            .into_string();
        let body = json!({
            "eventId": event_id,
            "type": "case_comment.created",
            "orgId": org,
            "caseId": case_id,
            "caseNumber": "00001001",
            "occurredAt": "2026-12-02T10:00:00.000Z",
            "author": {"id": REP_USER, "name": "Rita Rep"},
            "body": {"text": text, "html": null},
            "isPublic": true
        })
        .to_string()
        .into_bytes();
        let at = chrono::Utc::now().timestamp();
        let response = self
            .http
            .post(format!("{}/salesforce/events", self.app.url()))
            .header("content-type", "application/json")
            .header("x-handoff-timestamp", at.to_string())
            .header(
                "x-handoff-signature",
                sign(CASE_SECRET.as_bytes(), at, &body),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }

    /// The session's `agent.message` deliveries, once there are `n` and all are settled.
    async fn settled_rep_messages(&self, id: &str, n: usize) -> Vec<Value> {
        let s = self
            .wait(id, "the rep's messages settled", |s| {
                let rep: Vec<&Value> = s["deliveries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|d| d["type"] == "agent.message")
                    .collect();
                rep.len() == n
                    && rep
                        .iter()
                        .all(|d| d["state"] == "sent" || d["state"] == "failed")
            })
            .await;
        s["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["type"] == "agent.message")
            .cloned()
            .collect()
    }

    /// Runs a delivery's job again, as a replica that took over an expired lease would
    /// after the attempt had committed; waits until that attempt is recorded too.
    async fn run_delivery_again(&self, session_id: &str, delivery_id: &str) {
        use gateway::store::{delivery, job};
        let before = self
            .store
            .delivery(delivery_id)
            .await
            .unwrap()
            .unwrap()
            .attempts;
        // The id quoted: a first part's id is a prefix of its later parts' ids.
        let quoted = format!("\"{delivery_id}\"");
        let requeued = job::Entity::update_many()
            .col_expr(job::Column::State, Expr::value("queued"))
            .col_expr(job::Column::RunAt, Expr::value(0i64))
            .col_expr(job::Column::LeaseUntil, Expr::value(Option::<i64>::None))
            .filter(job::Column::Kind.eq("deliver_message"))
            .filter(job::Column::SessionId.eq(session_id))
            .filter(job::Column::Payload.contains(&quoted))
            .exec(self.store.connection())
            .await
            .unwrap()
            .rows_affected;
        assert_eq!(requeued, 1);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let row: delivery::Model = self.store.delivery(delivery_id).await.unwrap().unwrap();
            let done = self
                .store
                .jobs_in_state("done")
                .await
                .unwrap()
                .iter()
                .any(|j| {
                    j.kind == "deliver_message"
                        && j.payload.as_deref().is_some_and(|p| p.contains(&quoted))
                });
            if row.attempts > before && row.state == "failed" && done {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the delivery never ran again: {row:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The `delivery.failed` events of a delivery, oldest first.
    async fn failures(&self, session_id: &str, delivery_id: &str) -> Vec<Value> {
        self.store
            .events(session_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "delivery.failed")
            .map(|e| serde_json::from_str::<Value>(&e.data).unwrap())
            .filter(|d| d["delivery_id"] == delivery_id)
            .collect()
    }

    /// The bodies of the Case's comments that are Handoff notes.
    async fn note_comments(&self, case_id: &str) -> Vec<String> {
        let client = salesforce::Client::new(salesforce::ClientConfig::new(
            self.emulator.url(),
            salesforce::Credentials::ClientCredentials {
                client_id: self.emulator.config().connected_apps[0].client_id.clone(),
                client_secret: self.emulator.config().connected_apps[0]
                    .client_secret
                    .clone()
                    .into(),
            },
        ))
        .unwrap();
        client
            .query_all_pages(&format!(
                "SELECT CommentBody FROM CaseComment WHERE ParentId = '{case_id}' ORDER BY CreatedDate"
            ))
            .await
            .unwrap()
            .iter()
            .filter_map(|c| c["CommentBody"].as_str())
            .filter(|b| b.starts_with("Handoff note "))
            .map(str::to_string)
            .collect()
    }

    /// Waits until the session's notes are all written to the Case; returns them.
    async fn written_notes(
        &self,
        session_id: &str,
        n: usize,
    ) -> Vec<gateway::store::case_note::Model> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let notes = self.store.case_notes_for_session(session_id).await.unwrap();
            if notes.len() >= n && notes.iter().all(|n| n.state == "written") {
                return notes;
            }
            assert!(Instant::now() < deadline, "notes never written: {notes:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn stop(self) {
        self.app.stop().await;
        self.emulator.shutdown().await;
    }
}

// A voice-like session that fell back to a Case is told its CaseNumber through the channel it
// delivers through: the rows name that channel, are cut by its length rule, and carry the
// customer's last message time; a plugin sender gets no Twilio status callback, and the
// session view shows the provider status fields.
both_databases!(
    a_voice_like_session_is_told_through_its_deliverer,
    |db: Db| async move {
        let s = stack(db, Route::Case, false).await;
        let accepted = s.escalate("via-1", "callline").await;
        assert_eq!(accepted["route"], "case");
        let view = s
            .wait("via-1", "the notice sent", |v| {
                v["deliveries"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty() && d.iter().all(|d| d["state"] == "sent"))
            })
            .await;
        let deliveries = view["deliveries"].as_array().unwrap();
        assert!(
            deliveries.len() > 1,
            "cut by textline's 40 characters: {view}"
        );
        for d in deliveries {
            assert_eq!(d["channel"], "textline", "{d}");
            assert_eq!(d["type"], "system.message");
            assert!(d["provider_id"].as_str().unwrap().starts_with("SM"));
            let keys = d.as_object().unwrap();
            assert!(keys.contains_key("provider_status"), "{d}");
            assert!(keys.contains_key("provider_error_code"), "{d}");
            assert_eq!(d["provider_status"], Value::Null);
        }
        let sent = s.provider.accepted();
        assert_eq!(sent.len(), deliveries.len());
        let text: String = sent.iter().map(|(_, m)| m.text.as_str()).collect();
        let case_number = view["salesforce_case_number"].as_str().unwrap();
        assert!(text.contains(case_number), "{text}");
        for (target, message) in &sent {
            assert_eq!(
                target,
                &ReplyTarget::Phone {
                    number: PHONE.into()
                }
            );
            assert!(message.text.chars().count() <= 40);
            assert_eq!(
                message.customer_last_message_at,
                Some(LAST_CUSTOMER_TURN.parse().unwrap()),
                "the newest customer turn of the escalation"
            );
            assert_eq!(message.status_callback, None);
        }
        s.stop().await;
    }
);

// The reply window is closed: a rep's reply on a live conversation fails (saying why and what
// the customer must do), and the rep reads one `[Handoff]` message in the conversation — one
// for the reply's two parts, and still one after the delivery's job ran again. The gateway's own messages fail quietly.
both_databases!(
    a_closed_window_on_a_live_session_tells_the_rep_once,
    |db: Db| async move {
        let s = stack(db, Route::Messaging, true).await;
        s.provider.window_closed.store(true, Ordering::SeqCst);
        let accepted = s.escalate("window-live", "textline").await;
        assert_eq!(accepted["route"], "messaging", "{accepted}");
        let conversation = accepted["salesforce_miaw_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        let rep = RepConsole::new(&s.emulator.url());
        rep.wait_for(&conversation, "the opening messages", |c| {
            !texts_by(c, "EndUser").is_empty()
        })
        .await;
        let (status, body) = rep.accept(&conversation, "Rita Rep").await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = rep
            .say(&conversation, "Your refund for order 1182 is on its way.")
            .await;
        assert_eq!(status, 202, "{body}");

        // 41 characters: two parts on textline (40 a message), both refused, one notice.
        let failed = s.settled_rep_messages("window-live", 2).await;
        let first = &failed[0];
        assert_eq!(failed[1]["state"], "failed");
        assert_eq!(first["state"], "failed", "{first}");
        let error = first["last_error"].as_str().unwrap();
        assert!(error.starts_with("reply window closed"), "{error}");
        assert!(
            error.contains("within 24 hours of the customer's last message"),
            "{error}"
        );
        assert!(error.contains("The customer must write first."), "{error}");
        let handoff = |c: &Value| {
            texts_by(c, "EndUser")
                .into_iter()
                .filter(|t| t.starts_with("[Handoff]"))
                .collect::<Vec<_>>()
        };
        let conv = rep
            .wait_for(&conversation, "the rep told", |c| !handoff(c).is_empty())
            .await;
        let told = handoff(&conv);
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            told[0].starts_with(
                "[Handoff] Your message was not delivered: textline allows free-form replies only \
             within 24 hours of the customer's last message and no approved template is \
             configured. The customer must write first."
            ),
            "{}",
            told[0]
        );
        assert!(
            told[0].contains("Your refund for order 1182"),
            "{}",
            told[0]
        );

        let second = s
            .failures("window-live", failed[1]["id"].as_str().unwrap())
            .await;
        assert_eq!(
            second[0]["rep_told"], "already",
            "the second part: {second:?}"
        );

        // The job runs again (a lease taken over after the attempt committed): the provider
        // refuses again, the delivery stays failed, and the rep is not told twice.
        let id = first["id"].as_str().unwrap();
        s.run_delivery_again("window-live", id).await;
        let failures = s.failures("window-live", id).await;
        assert_eq!(failures.len(), 2);
        assert_eq!(failures[0]["rep_told"], "conversation");
        assert_eq!(failures[1]["rep_told"], "already");
        assert_eq!(failures[0]["reason"], "window_closed");
        // Wait for anything still queued to the rep, then count again.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !s
            .store
            .queued_live_messages("window-live", 10)
            .await
            .unwrap()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "messages to the rep never sent");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let (_, conv) = rep.conversation(&conversation).await;
        assert_eq!(handoff(&conv).len(), 1, "{conv}");

        // The gateway's own messages (looking for an agent, the rep joined) failed quietly.
        let view = s.session("window-live").await;
        let quiet: Vec<&Value> = view["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["type"] != "agent.message")
            .collect();
        assert!(!quiet.is_empty(), "{view}");
        for d in quiet {
            assert_eq!(d["state"], "failed", "{d}");
            let events = s.failures("window-live", d["id"].as_str().unwrap()).await;
            assert_eq!(events[0]["rep_told"], "no", "{events:?}");
            assert_eq!(events[0]["rep_not_told"], "not a rep's message");
        }
        assert!(s.provider.accepted().is_empty());
        s.stop().await;
    }
);

// The reply window is closed on a Case session: the rep's reply fails and one internal note
// `window_closed` is written on the Case — once, even when the job runs again.
both_databases!(
    a_closed_window_on_a_case_writes_one_note,
    |db: Db| async move {
        let s = stack(db, Route::Case, false).await;
        s.escalate("window-case", "textline").await;
        let case_id = s.case_id("window-case").await;
        s.provider.window_closed.store(true, Ordering::SeqCst);
        s.rep_comment("00a5g0000000001", &case_id, "We refunded order 1182.")
            .await;
        let failed = s.settled_rep_messages("window-case", 1).await;
        assert_eq!(failed[0]["state"], "failed");
        let id = failed[0]["id"].as_str().unwrap().to_string();
        let notes = s.written_notes("window-case", 1).await;
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].kind, "window_closed");
        assert!(
            notes[0].body.contains("The customer must write first."),
            "{}",
            notes[0].body
        );
        assert!(notes[0].body.contains("We refunded order 1182."));

        s.run_delivery_again("window-case", &id).await;
        let failures = s.failures("window-case", &id).await;
        assert_eq!(
            failures
                .iter()
                .map(|f| f["rep_told"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["case_note", "already"]
        );
        let notes = s.written_notes("window-case", 1).await;
        assert_eq!(notes.len(), 1, "{notes:?}");
        let comments = s.note_comments(&case_id).await;
        assert_eq!(comments.len(), 1, "{comments:?}");
        assert!(comments[0].contains(&notes[0].id));
        s.stop().await;
    }
);

// The provider says the customer opted out (Twilio 21610): the reply fails, the opt-out is
// remembered and the rep gets a note; the next reply is not sent at all (the provider is not
// called) and fails the same way, with its own note.
both_databases!(
    an_opted_out_customer_is_not_sent_to_and_the_rep_is_told,
    |db: Db| async move {
        let s = stack(db, Route::Case, false).await;
        s.escalate("stop-1", "textline").await;
        let case_id = s.case_id("stop-1").await;
        assert!(!s.store.opted_out("textline", PHONE).await.unwrap());
        s.provider.stopped.lock().unwrap().insert(PHONE.into());
        s.rep_comment("00a5g0000000001", &case_id, "We refunded order 1182.")
            .await;
        let first = s.settled_rep_messages("stop-1", 1).await;
        assert_eq!(first[0]["state"], "failed");
        assert!(
            first[0]["last_error"]
                .as_str()
                .unwrap()
                .starts_with("the customer opted out (STOP)"),
            "{first:?}"
        );
        assert!(s.store.opted_out("textline", PHONE).await.unwrap());
        let calls = s.provider.calls.load(Ordering::SeqCst);

        s.rep_comment("00a5g0000000002", &case_id, "Anything else?")
            .await;
        let both = s.settled_rep_messages("stop-1", 2).await;
        assert_eq!(both[1]["state"], "failed");
        assert_eq!(both[1]["attempts"], 0, "never sent: {both:?}");
        assert!(
            both[1]["last_error"]
                .as_str()
                .unwrap()
                .starts_with("the customer opted out (STOP)")
        );
        assert_eq!(
            s.provider.calls.load(Ordering::SeqCst),
            calls,
            "the provider was not called"
        );
        let notes = s.written_notes("stop-1", 2).await;
        assert_eq!(notes.len(), 2);
        assert!(notes.iter().all(|n| n.kind == "opted_out"), "{notes:?}");
        assert!(notes[1].body.contains("Anything else?"));
        assert_eq!(s.note_comments(&case_id).await.len(), 2);
        assert!(
            s.provider
                .accepted()
                .iter()
                .all(|(_, m)| m.kind != channels::OutboundKind::AgentMessage)
        );
        s.stop().await;
    }
);
