//! WhatsApp end to end, over real sockets: the real WhatsApp adapter (`[channels.whatsapp]`,
//! Cloud API, and `provider = "twilio"`) against the channel emulators (`channel-emulator`:
//! Meta's Graph API and webhooks, Twilio's Messages API), the gateway's inbound pipeline and
//! outbox, and the Salesforce emulator's MIAW rep console and Case console.
//!
//! The customer writes on WhatsApp, the bot escalates, a rep in the MIAW console answers; each
//! answer reaches the WhatsApp emulator once and in order, its statuses come back signed, the
//! customer's answer reaches the rep. Outside the 24-hour window a reply goes as the template,
//! or the rep is told once (in the conversation, or as a note on the Case). Unsigned, forged and
//! stale webhooks write nothing, a replayed one counts once, rate limits and 5xx are retried in
//! order without a second send, and a reply longer than WhatsApp's 4,096 characters is split.

use std::future::Future;
use std::time::{Duration, Instant};

use channel_emulator::twilio::{self as twilio_emu, TwilioEmulator, TwilioSettings};
use channel_emulator::whatsapp::{self as wa_emu, WhatsappEmulator, WhatsappSettings};
use channel_emulator::{CallbackKind, Fault};
use chrono::{DateTime, SecondsFormat, Utc};
use handoff_tests::console::{RepConsole, texts_by};
use handoff_tests::{Db, TestApp, both_databases, spawn_app_with, spawn_live_app};
use serde_json::{Value, json};

/// The customer's WhatsApp id and phone number.
const WA_ID: &str = "15551234567";
const PHONE: &str = "+15551234567";
/// The approved template of the emulator (and of the channel, where configured).
const TEMPLATE: &str = "case_update";
/// Signs the Salesforce emulator's Case webhook (a rep's public comment).
const CASE_SECRET: &str = "whatsapp-e2e-case-webhook-secret";
/// Our Twilio WhatsApp sender.
const TWILIO_SENDER: &str = "+15550100000";

struct Options {
    /// `[channels.whatsapp] template`.
    template: bool,
    /// MIAW on for WhatsApp (else every session is a Case).
    live: bool,
    max_event_age_secs: u64,
    /// `[channels.whatsapp] unknown_sender_reply`.
    unknown_sender_reply: Option<&'static str>,
    /// `[channels.whatsapp] timeout_secs`: how long one send may take.
    timeout_secs: u64,
}

impl Options {
    fn live() -> Options {
        Options {
            template: false,
            live: true,
            max_event_age_secs: channels::whatsapp::DEFAULT_MAX_EVENT_AGE_SECS,
            unknown_sender_reply: None,
            timeout_secs: 10,
        }
    }
}

struct Stack {
    app: TestApp,
    wa: WhatsappEmulator,
    rep: RepConsole,
}

/// `[channels.whatsapp]` for the emulator: its ids, tokens and URL.
fn whatsapp_table(wa: &WhatsappEmulator, options: &Options) -> channels::ChannelConfig {
    let mut table = json!({
        "type": "whatsapp",
        "phone_number_id": wa.phone_number_id(),
        "access_token": wa_emu::DEMO_ACCESS_TOKEN,
        "app_secret": wa_emu::DEMO_APP_SECRET,
        "verify_token": wa_emu::DEMO_VERIFY_TOKEN,
        "api_url": wa.url(),
        "max_event_age_secs": options.max_event_age_secs,
        "timeout_secs": options.timeout_secs,
    });
    if options.template {
        table["template"] = json!({"name": TEMPLATE, "language": "en_US"});
    }
    if let Some(reply) = options.unknown_sender_reply {
        table["unknown_sender_reply"] = json!(reply);
    }
    serde_json::from_value(table).expect("a [channels.whatsapp] table")
}

/// The gateway with the WhatsApp channel against a fresh WhatsApp emulator whose webhook is
/// the gateway's `/channels/whatsapp/inbound`; a rep's public Case comment is posted, signed,
/// to the gateway.
async fn stack(db: Db, options: Options) -> Stack {
    let wa = WhatsappEmulator::spawn(WhatsappSettings {
        templates: vec![TEMPLATE.into()],
        ..WhatsappSettings::default()
    })
    .await;
    let table = whatsapp_table(&wa, &options);
    let live = options.live;
    let adjust = move |c: &mut gateway::config::Config| {
        c.channels.insert("whatsapp".into(), table);
        c.case_replies.webhook_secret = Some(CASE_SECRET.into());
        if live {
            c.miaw.channels = vec!["whatsapp".into()];
        }
    };
    let app = if live {
        spawn_live_app(db, sf_emulator::EmulatorConfig::default(), adjust).await
    } else {
        spawn_app_with(db, adjust).await
    };
    wa.set_webhook(app.url("/channels/whatsapp/inbound"));
    app.emulator
        .set_case_webhook(Some(sf_emulator::CaseWebhookConfig {
            url: app.url("/salesforce/events"),
            hmac_secret: Some(CASE_SECRET.into()),
            jwt: None,
            timeout_secs: 10,
        }))
        .expect("case webhook");
    let rep = RepConsole::new(&app.emulator.url());
    Stack { app, wa, rep }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A WhatsApp escalation whose customer last wrote at `customer_wrote`.
fn escalation(session_id: &str, customer_wrote: DateTime<Utc>) -> Value {
    json!({
        "session_id": session_id,
        "channel": "whatsapp",
        "customer": {"name": "Ana Ruiz", "phone": PHONE},
        "language": "en",
        "priority": "medium",
        "summary": "The customer's parcel 4471 is late.",
        "transcript": [
            {"role": "customer", "text": "My parcel 4471 is late.", "at": rfc3339(customer_wrote)},
            {"role": "bot", "text": "A colleague will look into it.",
             "at": rfc3339(customer_wrote + chrono::Duration::seconds(20))},
        ],
    })
}

/// Waits (hang guard: 30 s) until `ready` answers `Some`.
async fn wait_for<T, F, Fut>(what: &str, mut ready: F) -> T
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

async fn session(app: &TestApp, id: &str) -> Value {
    let (status, body) = app
        .get(&format!("/v1/sessions/{id}"), Some(&app.read_token))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits (hang guard: 30 s) for `ready` on the session view; answers that view.
async fn wait_session(
    app: &TestApp,
    id: &str,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = session(app, id).await;
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

fn deliveries(view: &Value) -> Vec<Value> {
    view["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Every delivery of the session settled as `state` (at least one).
fn all_in(view: &Value, state: &str) -> bool {
    let d = deliveries(view);
    !d.is_empty() && d.iter().all(|d| d["state"] == state)
}

/// A live WhatsApp escalation whose conversation waits for a rep; its conversation id.
async fn live_escalation(s: &Stack, body: Value) -> String {
    let (status, answer) = s.app.post_escalation(&body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["route"], "messaging", "{answer}");
    let conversation = answer["salesforce_miaw_session_id"]
        .as_str()
        .expect("conversation id")
        .to_string();
    s.rep
        .wait_for(&conversation, "the conversation", |c| {
            c["status"] == "waiting"
        })
        .await;
    conversation
}

/// The text the gateway stored for a delivery.
async fn delivery_text(app: &TestApp, id: &str) -> String {
    app.gateway
        .state
        .store
        .delivery(id)
        .await
        .expect("delivery read")
        .expect("delivery exists")
        .text
}

/// Waits until every delivery of the session is `sent`; then checks that the WhatsApp
/// emulator accepted each exactly once (matched by `biz_opaque_callback_data`, our delivery id)
/// with the stored text, and in the order they were written. Answers the emulator's messages
/// in that order.
async fn sent_once_in_order(s: &Stack, id: &str) -> Vec<wa_emu::SentMessage> {
    let view = wait_session(&s.app, id, "every delivery sent", |v| all_in(v, "sent")).await;
    let ids: Vec<String> = deliveries(&view)
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let sent: Vec<wa_emu::SentMessage> =
        s.wa.sent()
            .into_iter()
            .filter(|m| {
                m.biz_opaque_callback_data
                    .as_ref()
                    .is_some_and(|d| ids.contains(d))
            })
            .collect();
    let carried: Vec<String> = sent
        .iter()
        .map(|m| m.biz_opaque_callback_data.clone().unwrap())
        .collect();
    assert_eq!(carried, ids, "each delivery once, in order: {view}");
    for (m, d) in sent.iter().zip(deliveries(&view)) {
        assert_eq!(m.wa_id, WA_ID);
        assert_eq!(d["provider_id"].as_str(), Some(m.id.as_str()), "{d}");
        if m.message_type == "text" {
            let stored = delivery_text(&s.app, d["id"].as_str().unwrap()).await;
            assert_eq!(m.text.as_deref(), Some(stored.as_str()));
        }
    }
    sent
}

/// The rep's messages among the emulator's, by text.
fn texts(sent: &[wa_emu::SentMessage]) -> Vec<String> {
    sent.iter().filter_map(|m| m.text.clone()).collect()
}

async fn inbound_list(app: &TestApp, state: &str) -> Vec<Value> {
    let (status, body) = app
        .get(
            &format!("/v1/inbound-messages?state={state}"),
            Some(&app.read_token),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["inbound_messages"].as_array().expect("list").clone()
}

async fn wait_listed(app: &TestApp, state: &str, id: &str) -> Value {
    wait_for(&format!("{id} listed as {state}"), || async {
        inbound_list(app, state)
            .await
            .into_iter()
            .find(|m| m["id"] == id)
    })
    .await
}

/// The customer writes on WhatsApp before any session exists (opening Meta's 24-hour
/// window in the emulator): the gateway records it as unmatched.
async fn customer_writes_first(s: &Stack) {
    let first =
        s.wa.inbound_text(WA_ID, "Hi, my parcel 4471 is late.")
            .await
            .expect("inbound");
    assert_eq!(first.status, 200, "{}", first.body);
    let listed = wait_listed(&s.app, "unmatched", &format!("whatsapp:{}", first.sid)).await;
    assert_eq!(listed["from"], PHONE, "{listed}");
    assert_eq!(listed["to"], s.wa.phone_number_id(), "{listed}");
}

// The Done-when path: handshake; the customer has written; escalation on WhatsApp → live
// conversation with Origin whatsapp and the transcript → the rep joins and writes three
// messages → the emulator accepts each delivery once, in order → sent/delivered/read come
// back signed and move every delivery's provider_status → the customer's signed answer
// reaches the rep → the rep closes.
both_databases!(
    a_whatsapp_customer_reaches_the_rep_and_back,
    |db: Db| async move {
        let s = stack(db, Options::live()).await;

        // Meta's subscription handshake, as the emulator makes it; a wrong token is refused.
        assert!(s.wa.verify_webhook().await.unwrap(), "the challenge echoed");
        assert!(
            !s.wa
                .verify_webhook_with_token("not-our-verify-token")
                .await
                .unwrap()
        );
        let handshakes: Vec<Option<u16>> =
            s.wa.callbacks()
                .into_iter()
                .filter(|c| c.kind == CallbackKind::Handshake)
                .map(|c| c.response_status)
                .collect();
        assert_eq!(handshakes, [Some(200), Some(403)]);

        customer_writes_first(&s).await;
        let conversation = live_escalation(
            &s,
            escalation("wa-1", Utc::now() - chrono::Duration::minutes(1)),
        )
        .await;
        let conv = s
            .rep
            .wait_for(&conversation, "the transcript at the rep", |c| {
                texts_by(c, "EndUser")
                    .join("\n")
                    .contains("A colleague will look into it.")
            })
            .await;
        assert_eq!(conv["routing_attributes"]["Origin"], "whatsapp", "{conv}");
        assert_eq!(conv["routing_attributes"]["OpencxSessionId"], "wa-1");
        let opening = texts_by(&conv, "EndUser").join("\n");
        assert!(opening.contains("My parcel 4471 is late."), "{opening}");
        assert!(
            opening.contains("parcel 4471 is late"),
            "the summary: {opening}"
        );

        let (status, body) = s.rep.accept(&conversation, "Jane Rep").await;
        assert_eq!(status, 200, "{body}");
        let said = [
            "Hi Ana, I'm Jane.",
            "Your parcel left the depot this morning.",
            "It arrives tomorrow before noon.",
        ];
        for text in said {
            let (status, body) = s.rep.say(&conversation, text).await;
            assert_eq!(status, 202, "{body}");
        }
        wait_for("the rep's three messages at WhatsApp", || async {
            let t = texts(&s.wa.sent());
            said.iter().all(|x| t.iter().any(|y| y == x)).then_some(())
        })
        .await;
        let sent = sent_once_in_order(&s, "wa-1").await;
        assert!(sent.iter().all(|m| m.message_type == "text"), "{sent:?}");
        let all = texts(&sent);
        let rep: Vec<&String> = all.iter().filter(|t| said.contains(&t.as_str())).collect();
        assert_eq!(rep, said.iter().collect::<Vec<_>>(), "in order: {all:?}");
        assert!(
            all.iter().any(|t| t.contains("Jane Rep")),
            "the customer is told who joined: {all:?}"
        );

        // The emulator reports sent → delivered → read for each message, signed: every delivery
        // ends `read`.
        wait_session(&s.app, "wa-1", "every delivery read", |v| {
            let d = deliveries(v);
            !d.is_empty() && d.iter().all(|d| d["provider_status"] == "read")
        })
        .await;
        let statuses: Vec<_> =
            s.wa.callbacks()
                .into_iter()
                .filter(|c| c.kind == CallbackKind::Status)
                .collect();
        assert_eq!(statuses.len(), 3 * sent.len(), "{statuses:?}");
        assert!(
            statuses.iter().all(|c| c.response_status == Some(200)),
            "{statuses:?}"
        );

        // The customer answers on WhatsApp: the rep reads it once.
        let answer =
            s.wa.inbound_text(WA_ID, "Gracias 🙏, ¿a qué hora llega?")
                .await
                .unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        let conv = s
            .rep
            .wait_for(&conversation, "the customer's answer", |c| {
                texts_by(c, "EndUser")
                    .iter()
                    .any(|t| t == "Gracias 🙏, ¿a qué hora llega?")
            })
            .await;
        assert_eq!(
            texts_by(&conv, "EndUser")
                .iter()
                .filter(|t| *t == "Gracias 🙏, ¿a qué hora llega?")
                .count(),
            1
        );
        let listed = wait_listed(&s.app, "to_rep", &format!("whatsapp:{}", answer.sid)).await;
        assert_eq!(listed["session_id"], "wa-1", "{listed}");

        // The rep closes: the customer is told (once, in order after everything else).
        let (status, body) = s.rep.close(&conversation).await;
        assert_eq!(status, 200, "{body}");
        wait_session(&s.app, "wa-1", "closed", |v| v["status"] == "closed").await;
        wait_session(&s.app, "wa-1", "the closing message", |v| {
            deliveries(v).iter().any(|d| d["type"] == "session.closed")
        })
        .await;
        let sent = sent_once_in_order(&s, "wa-1").await;
        let types: Vec<String> = deliveries(&session(&s.app, "wa-1").await)
            .iter()
            .map(|d| d["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types.last().map(String::as_str), Some("session.closed"));
        assert_eq!(sent.len(), types.len());
    }
);

/// The customer last wrote 25 hours ago, on WhatsApp (the emulator's clock moves on) and in
/// the bot's transcript.
async fn customer_wrote_25_hours_ago(s: &Stack) -> DateTime<Utc> {
    customer_writes_first(s).await;
    s.wa.advance_clock(Duration::from_secs(25 * 3_600));
    Utc::now() - chrono::Duration::hours(25)
}

// Outside the 24-hour window with a template configured: every message — the rep's reply
// too — goes as the approved template carrying the text as its parameter (on one line), and
// no free-form message is attempted.
both_databases!(
    outside_the_window_a_reply_goes_as_the_template,
    |db: Db| async move {
        let s = stack(
            db,
            Options {
                template: true,
                ..Options::live()
            },
        )
        .await;
        let wrote = customer_wrote_25_hours_ago(&s).await;
        let conversation = live_escalation(&s, escalation("wa-late", wrote)).await;
        let (status, body) = s.rep.accept(&conversation, "Jane Rep").await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = s
            .rep
            .say(
                &conversation,
                "Your parcel left the depot.\nIt arrives tomorrow.",
            )
            .await;
        assert_eq!(status, 202, "{body}");
        wait_session(&s.app, "wa-late", "the rep's reply", |v| {
            deliveries(v).iter().any(|d| d["type"] == "agent.message")
        })
        .await;
        let sent = sent_once_in_order(&s, "wa-late").await;
        for m in &sent {
            assert_eq!(m.message_type, "template", "{m:?}");
            assert_eq!(m.template.as_deref(), Some(TEMPLATE));
            assert_eq!(m.template_language.as_deref(), Some("en_US"));
        }
        let parameters: Vec<&str> = sent
            .iter()
            .map(|m| {
                m.payload["template"]["components"][0]["parameters"][0]["text"]
                    .as_str()
                    .expect("a body parameter")
            })
            .collect();
        assert!(
            parameters.contains(&"Your parcel left the depot. It arrives tomorrow."),
            "{parameters:?}"
        );
        assert!(
            s.wa.sent().iter().all(|m| m.message_type == "template"),
            "nothing free-form was sent"
        );
        wait_session(&s.app, "wa-late", "the templates read", |v| {
            deliveries(v).iter().all(|d| d["provider_status"] == "read")
        })
        .await;

        // The template invited an answer: the customer writes, the window is open again on both
        // sides, and the rep's next reply is free-form text.
        let answer =
            s.wa.inbound_text(WA_ID, "Thanks! Which time?")
                .await
                .unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        s.rep
            .wait_for(&conversation, "the customer's answer", |c| {
                texts_by(c, "EndUser")
                    .iter()
                    .any(|t| t == "Thanks! Which time?")
            })
            .await;
        let (status, body) = s.rep.say(&conversation, "Before noon.").await;
        assert_eq!(status, 202, "{body}");
        wait_session(&s.app, "wa-late", "the second reply", |v| {
            deliveries(v)
                .iter()
                .filter(|d| d["type"] == "agent.message")
                .count()
                == 2
        })
        .await;
        let sent = sent_once_in_order(&s, "wa-late").await;
        let last = sent.last().unwrap();
        assert_eq!(last.message_type, "text", "{last:?}");
        assert_eq!(last.text.as_deref(), Some("Before noon."));
    }
);

/// The `[Handoff]` messages the rep reads in the conversation.
fn handoff_notices(conversation: &Value) -> Vec<String> {
    texts_by(conversation, "EndUser")
        .into_iter()
        .filter(|t| t.starts_with("[Handoff]"))
        .collect()
}

// Outside the window without a template, on a live session: the rep's reply fails as window
// closed (WhatsApp is not called) and the rep reads one `[Handoff]` message saying the customer
// must write first.
both_databases!(
    outside_the_window_without_a_template_the_rep_is_told_once,
    |db: Db| async move {
        let s = stack(db, Options::live()).await;
        let wrote = customer_wrote_25_hours_ago(&s).await;
        let conversation = live_escalation(&s, escalation("wa-closed", wrote)).await;
        let (status, body) = s.rep.accept(&conversation, "Jane Rep").await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = s
            .rep
            .say(&conversation, "Your refund for order 1182 is on its way.")
            .await;
        assert_eq!(status, 202, "{body}");
        let view = wait_session(&s.app, "wa-closed", "the reply refused", |v| {
            deliveries(v)
                .iter()
                .any(|d| d["type"] == "agent.message" && d["state"] == "failed")
        })
        .await;
        let reply = deliveries(&view)
            .into_iter()
            .find(|d| d["type"] == "agent.message")
            .unwrap();
        let error = reply["last_error"].as_str().unwrap();
        assert!(error.starts_with("reply window closed"), "{error}");
        assert!(error.contains("The customer must write first."), "{error}");
        let conv = s
            .rep
            .wait_for(&conversation, "the rep told", |c| {
                !handoff_notices(c).is_empty()
            })
            .await;
        let told = handoff_notices(&conv);
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            told[0].contains("The customer must write first."),
            "{}",
            told[0]
        );
        assert!(
            told[0].contains("Your refund for order 1182"),
            "{}",
            told[0]
        );
        // Once everything queued to the rep has gone out, still one.
        let store = &s.app.gateway.state.store;
        wait_for("nothing queued to the rep", || async {
            store
                .queued_live_messages("wa-closed", 10)
                .await
                .unwrap()
                .is_empty()
                .then_some(())
        })
        .await;
        let (_, conv) = s.rep.conversation(&conversation).await;
        assert_eq!(handoff_notices(&conv).len(), 1, "{conv}");
        assert!(s.wa.sent().is_empty(), "WhatsApp was never called");

        // The customer writes again: the rep's next reply reaches them.
        let answer = s.wa.inbound_text(WA_ID, "I'm back.").await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        s.rep
            .wait_for(&conversation, "the customer's message", |c| {
                texts_by(c, "EndUser").iter().any(|t| t == "I'm back.")
            })
            .await;
        let (status, body) = s.rep.say(&conversation, "Welcome back, Ana.").await;
        assert_eq!(status, 202, "{body}");
        let sent = wait_for("the reply at WhatsApp", || async {
            let sent = s.wa.sent();
            (!sent.is_empty()).then_some(sent)
        })
        .await;
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].text.as_deref(), Some("Welcome back, Ana."));
        let (_, conv) = s.rep.conversation(&conversation).await;
        assert_eq!(handoff_notices(&conv).len(), 1, "{conv}");
    }
);

// Outside the window without a template, on a Case (no live messaging for WhatsApp here): the
// rep's public comment cannot reach the customer, and one internal CaseComment says so.
both_databases!(
    outside_the_window_a_case_reply_becomes_one_internal_note,
    |db: Db| async move {
        let s = stack(
            db,
            Options {
                live: false,
                ..Options::live()
            },
        )
        .await;
        let wrote = customer_wrote_25_hours_ago(&s).await;
        let (status, answer) = s.app.post_escalation(&escalation("wa-case", wrote)).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["route"], "case", "{answer}");
        let view = wait_session(&s.app, "wa-case", "the Case", |v| {
            v["salesforce_case_id"].is_string()
        })
        .await;
        let case_id = view["salesforce_case_id"].as_str().unwrap().to_string();
        let response = s
            .app
            .http
            .post(format!(
                "{}/__emulator/cases/{case_id}/comments",
                s.app.emulator.url()
            ))
            .json(&json!({"text": "We refunded order 1182.", "public": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let view = wait_session(&s.app, "wa-case", "the reply refused", |v| {
            deliveries(v)
                .iter()
                .any(|d| d["type"] == "agent.message" && d["state"] == "failed")
        })
        .await;
        let reply = deliveries(&view)
            .into_iter()
            .find(|d| d["type"] == "agent.message")
            .unwrap();
        assert!(
            reply["last_error"]
                .as_str()
                .unwrap()
                .starts_with("reply window closed"),
            "{reply}"
        );
        let store = &s.app.gateway.state.store;
        let notes = wait_for("the note written", || async {
            let notes = store.case_notes_for_session("wa-case").await.unwrap();
            (!notes.is_empty() && notes.iter().all(|n| n.state == "written")).then_some(notes)
        })
        .await;
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].kind, "window_closed");
        let handoff_comments = |bodies: Vec<String>| -> Vec<String> {
            bodies
                .into_iter()
                .filter(|b| b.starts_with("Handoff note "))
                .collect()
        };
        let comments = handoff_comments(s.app.comment_bodies(&case_id).await);
        assert_eq!(comments.len(), 1, "{comments:?}");
        assert!(
            comments[0].contains("We refunded order 1182."),
            "{}",
            comments[0]
        );
        assert!(
            comments[0].contains("The customer must write first."),
            "{}",
            comments[0]
        );
        let note_comments: Vec<Value> = s
            .app
            .soql(&format!(
                "SELECT CommentBody, IsPublished FROM CaseComment WHERE ParentId = '{case_id}'"
            ))
            .await
            .into_iter()
            .filter(|c| {
                c["CommentBody"]
                    .as_str()
                    .is_some_and(|b| b.starts_with("Handoff note "))
            })
            .collect();
        assert_eq!(note_comments.len(), 1);
        assert_eq!(note_comments[0]["IsPublished"], false, "an internal note");
        assert!(s.wa.sent().is_empty(), "WhatsApp was never called");

        // The customer writes on WhatsApp: an internal note on their Case, and the window is
        // open again, so the rep's next public comment reaches them.
        let answer = s.wa.inbound_text(WA_ID, "Is it done?").await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        let listed = wait_listed(&s.app, "case_note", &format!("whatsapp:{}", answer.sid)).await;
        assert_eq!(listed["session_id"], "wa-case", "{listed}");
        let customer_note = wait_for("the customer's note on the Case", || async {
            s.app
                .comment_bodies(&case_id)
                .await
                .into_iter()
                .find(|b| b.contains("Is it done?"))
        })
        .await;
        assert!(
            customer_note.starts_with("Handoff note "),
            "{customer_note}"
        );
        let response = s
            .app
            .http
            .post(format!(
                "{}/__emulator/cases/{case_id}/comments",
                s.app.emulator.url()
            ))
            .json(&json!({"text": "Yes, refunded today.", "public": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let sent = wait_for("the reply at WhatsApp", || async {
            let sent = s.wa.sent();
            (!sent.is_empty()).then_some(sent)
        })
        .await;
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].message_type, "text");
        assert!(
            sent[0]
                .text
                .as_deref()
                .is_some_and(|t| t.contains("Yes, refunded today.")),
            "{sent:?}"
        );
    }
);

// Answers outside any session — to a sender without a session, to HELP — go to a customer who
// has just written, so inside the window: as free-form text, without a template.
both_databases!(
    answers_outside_a_session_go_out_as_text,
    |db: Db| async move {
        let s = stack(
            db,
            Options {
                unknown_sender_reply: Some("Hi! Please start a new chat on acme.example."),
                ..Options::live()
            },
        )
        .await;
        let hello = s.wa.inbound_text(WA_ID, "Hello?").await.unwrap();
        assert_eq!(hello.status, 200, "{}", hello.body);
        let help = s.wa.inbound_text(WA_ID, "help").await.unwrap();
        assert_eq!(help.status, 200, "{}", help.body);
        for (id, state) in [(&hello.sid, "unmatched"), (&help.sid, "help")] {
            let id = format!("whatsapp:{id}");
            wait_listed(&s.app, state, &id).await;
            let answered = wait_for(&format!("the answer to {id} settled"), || async {
                let (status, one) = s
                    .app
                    .get(
                        &format!("/v1/inbound-messages/{id}"),
                        Some(&s.app.read_token),
                    )
                    .await;
                assert_eq!(status, 200, "{one}");
                let answers = one["answers"].as_array().cloned().unwrap_or_default();
                (!answers.is_empty()
                    && answers
                        .iter()
                        .all(|a| a["state"] != "queued" && a["state"] != "sending"))
                .then_some(answers)
            })
            .await;
            assert_eq!(answered.len(), 1, "{answered:?}");
            assert_eq!(answered[0]["state"], "sent", "{answered:?}");
        }
        let sent = s.wa.sent();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(
            sent.iter()
                .all(|m| m.message_type == "text" && m.wa_id == WA_ID),
            "{sent:?}"
        );
        // Two answers outside any session: each on its own, in either order.
        let texts = texts(&sent);
        assert!(
            texts
                .iter()
                .any(|t| t == "Hi! Please start a new chat on acme.example."),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("You are talking to our support team.")),
            "the help text: {texts:?}"
        );
    }
);

/// A Cloud API webhook body with one text message from the customer, as Meta sends it.
fn envelope(phone_number_id: &str, wamid: &str, text: &str) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": wa_emu::DEFAULT_WABA_ID,
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": wa_emu::DEFAULT_DISPLAY_PHONE_NUMBER,
                        "phone_number_id": phone_number_id,
                    },
                    "contacts": [{"profile": {"name": "Ana Ruiz"}, "wa_id": WA_ID}],
                    "messages": [{
                        "from": WA_ID,
                        "id": wamid,
                        "timestamp": Utc::now().timestamp().to_string(),
                        "text": {"body": text},
                        "type": "text",
                    }],
                },
                "field": "messages",
            }],
        }],
    })
    .to_string()
    .into_bytes()
}

async fn post_webhook(app: &TestApp, signature: Option<String>, body: Vec<u8>) -> (u16, Value) {
    let mut request = app
        .http
        .post(app.url("/channels/whatsapp/inbound"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(signature) = signature {
        request = request.header(wa_emu::SIGNATURE_HEADER, signature);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

// Unsigned, wrongly signed and tampered webhooks are refused (401) and a stale message
// (older than max_event_age_secs) is dropped: nothing recorded, nothing reaches the rep. A
// webhook delivered twice reaches the rep once. The same body properly signed is taken, so
// the refusals were about the signature.
both_databases!(
    bad_whatsapp_webhooks_write_nothing_and_duplicates_count_once,
    |db: Db| async move {
        let s = stack(
            db,
            Options {
                max_event_age_secs: 3_600,
                ..Options::live()
            },
        )
        .await;
        customer_writes_first(&s).await;
        let conversation = live_escalation(
            &s,
            escalation("wa-bad", Utc::now() - chrono::Duration::minutes(1)),
        )
        .await;
        let id = s.wa.phone_number_id().to_string();

        let unsigned = envelope(&id, "wamid.unsigned", "Not signed at all.");
        let (status, body) = post_webhook(&s.app, None, unsigned).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid_signature")),
            "{body}"
        );
        let forged = envelope(&id, "wamid.forged", "Signed with another secret.");
        let signature = wa_emu::signature("not-the-app-secret", &forged);
        let (status, body) = post_webhook(&s.app, Some(signature), forged).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid_signature")),
            "{body}"
        );
        let signed_for = envelope(&id, "wamid.tampered", "The original text.");
        let signature = wa_emu::signature(wa_emu::DEMO_APP_SECRET, &signed_for);
        let tampered = envelope(&id, "wamid.tampered", "A changed text.");
        let (status, body) = post_webhook(&s.app, Some(signature), tampered).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid_signature")),
            "{body}"
        );

        // Two hours old, with max_event_age_secs = 3600: taken (200) and dropped.
        let stale =
            s.wa.inbound(json!({
                "from": WA_ID,
                "type": "text",
                "text": {"body": "A stale message."},
                "timestamp": (Utc::now() - chrono::Duration::hours(2)).timestamp().to_string(),
            }))
            .await
            .unwrap();
        assert_eq!(stale.status, 200, "{}", stale.body);

        // Meta delivers the same webhook twice.
        let once =
            s.wa.inbound_text(WA_ID, "Only once, please.")
                .await
                .unwrap();
        assert_eq!(once.status, 200, "{}", once.body);
        let replay = s.wa.replay_last_inbound().await.unwrap();
        assert_eq!(replay.status, 200, "{}", replay.body);

        // The refused body, now signed properly.
        let good = envelope(&id, "wamid.signed", "Signed properly.");
        let signature = wa_emu::signature(wa_emu::DEMO_APP_SECRET, &good);
        let (status, body) = post_webhook(&s.app, Some(signature), good).await;
        assert_eq!(status, 200, "{body}");

        // Messages reach the rep in order: once the last is there, the others would be too.
        let conv = s
            .rep
            .wait_for(&conversation, "the signed message", |c| {
                texts_by(c, "EndUser")
                    .iter()
                    .any(|t| t == "Signed properly.")
            })
            .await;
        let seen = texts_by(&conv, "EndUser");
        for refused in [
            "Not signed at all.",
            "Signed with another secret.",
            "The original text.",
            "A changed text.",
            "A stale message.",
        ] {
            assert!(
                !seen.iter().any(|t| t.contains(refused)),
                "{refused}: {seen:?}"
            );
        }
        assert_eq!(
            seen.iter().filter(|t| *t == "Only once, please.").count(),
            1,
            "{seen:?}"
        );
        for missing in [
            "whatsapp:wamid.unsigned".to_string(),
            "whatsapp:wamid.forged".into(),
            "whatsapp:wamid.tampered".into(),
            format!("whatsapp:{}", stale.sid),
        ] {
            let (status, _) = s
                .app
                .get(
                    &format!("/v1/inbound-messages/{missing}"),
                    Some(&s.app.read_token),
                )
                .await;
            assert_eq!(status, 404, "{missing} was recorded");
        }
        let to_rep: Vec<String> = inbound_list(&s.app, "to_rep")
            .await
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            to_rep
                .iter()
                .filter(|i| **i == format!("whatsapp:{}", once.sid))
                .count(),
            1
        );
        assert_eq!(to_rep.len(), 2, "{to_rep:?}");
        let customer_messages = s
            .app
            .event_kinds("wa-bad")
            .await
            .into_iter()
            .filter(|k| k == "customer.message")
            .count();
        assert_eq!(customer_messages, 2);
    }
);

// The Graph API answers 429 (Retry-After), then 503, then 500 — each "nothing was sent" — to
// the first of the rep's messages: it is retried until sent, once; the messages behind it
// wait, so all arrive in order, each once. A reply of 5,000 characters is cut between words
// into two WhatsApp messages of at most 4,096. A send that times out (it may have arrived:
// WhatsApp cannot dedupe) fails visibly and is never sent again; the next one goes on.
both_databases!(
    provider_errors_are_retried_in_order_and_long_replies_split,
    |db: Db| async move {
        let s = stack(
            db,
            Options {
                timeout_secs: 2,
                ..Options::live()
            },
        )
        .await;
        customer_writes_first(&s).await;
        let conversation = live_escalation(
            &s,
            escalation("wa-retry", Utc::now() - chrono::Duration::minutes(1)),
        )
        .await;
        let (status, body) = s.rep.accept(&conversation, "Jane Rep").await;
        assert_eq!(status, 200, "{body}");
        wait_session(&s.app, "wa-retry", "the join told", |v| {
            all_in(v, "sent") && deliveries(v).iter().any(|d| d["type"] == "agent.joined")
        })
        .await;

        s.wa.fault(Fault::RateLimit {
            count: 1,
            retry_after_secs: 1,
        });
        s.wa.fault(Fault::ServerError {
            count: 1,
            status: 503,
        });
        s.wa.fault(Fault::ServerError {
            count: 1,
            status: 500,
        });
        let long: String = (0..1_000)
            .map(|i| format!("w{:03}", i % 1_000))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(long.chars().count() > 4_096);
        for text in ["First, the refund.", long.as_str(), "Last, the voucher."] {
            let (status, body) = s.rep.say(&conversation, text).await;
            assert_eq!(status, 202, "{body}");
        }
        wait_session(&s.app, "wa-retry", "the rep's messages", |v| {
            deliveries(v)
                .iter()
                .filter(|d| d["type"] == "agent.message")
                .count()
                == 4
        })
        .await;
        let sent = sent_once_in_order(&s, "wa-retry").await;
        let view = session(&s.app, "wa-retry").await;
        let rep: Vec<(Value, &wa_emu::SentMessage)> = deliveries(&view)
            .into_iter()
            .zip(&sent)
            .filter(|(d, _)| d["type"] == "agent.message")
            .collect();
        let rep_texts: Vec<&str> = rep
            .iter()
            .map(|(_, m)| m.text.as_deref().unwrap())
            .collect();
        assert_eq!(rep_texts[0], "First, the refund.");
        assert_eq!(rep_texts[3], "Last, the voucher.");
        assert!(rep_texts[1].chars().count() <= 4_096 && rep_texts[2].chars().count() <= 4_096);
        let rejoined = format!("{} {}", rep_texts[1], rep_texts[2]);
        assert_eq!(
            rejoined.split_whitespace().collect::<Vec<_>>(),
            long.split_whitespace().collect::<Vec<_>>(),
            "cut between words, nothing lost"
        );
        // The first took four attempts (429, 503, 500, sent); the others one each.
        let attempts: Vec<i64> = rep
            .iter()
            .map(|(d, _)| d["attempts"].as_i64().unwrap())
            .collect();
        assert_eq!(attempts, [4, 1, 1, 1], "{view}");
        assert!(s.wa.sent().iter().all(|m| m.message_type == "text"));

        // A send that times out may have reached WhatsApp, which cannot dedupe: the delivery
        // fails visibly after one attempt and is never sent again; the next message goes on.
        s.wa.fault(Fault::Slow {
            count: 1,
            delay_ms: 2_500,
        });
        for text in ["Are you there?", "Still here."] {
            let (status, body) = s.rep.say(&conversation, text).await;
            assert_eq!(status, 202, "{body}");
        }
        let view = wait_session(&s.app, "wa-retry", "both settled", |v| {
            let rep: Vec<Value> = deliveries(v)
                .into_iter()
                .filter(|d| d["type"] == "agent.message")
                .collect();
            rep.len() == 6
                && rep
                    .iter()
                    .all(|d| d["state"] == "sent" || d["state"] == "failed")
        })
        .await;
        let rep: Vec<Value> = deliveries(&view)
            .into_iter()
            .filter(|d| d["type"] == "agent.message")
            .collect();
        let unknown = &rep[4];
        assert_eq!(unknown["state"], "failed", "{unknown}");
        assert_eq!(unknown["attempts"], 1, "{unknown}");
        assert!(
            unknown["last_error"]
                .as_str()
                .is_some_and(|e| e.starts_with(gateway::outbox::deliver::OUTCOME_UNKNOWN)),
            "{unknown}"
        );
        assert_eq!(rep[5]["state"], "sent", "{view}");
        let count = |text: &str| {
            s.wa.sent()
                .iter()
                .filter(|m| m.text.as_deref() == Some(text))
                .count()
        };
        assert_eq!(count("Still here."), 1);
        assert!(count("Are you there?") <= 1, "never sent twice");
    }
);

// WhatsApp over a Twilio WhatsApp sender (`provider = "twilio"`), against the Twilio emulator:
// the customer writes (`whatsapp:` addresses), the rep's reply reaches them from our sender
// with a status callback whose reports come back signed, and the customer's answer reaches
// the rep.
both_databases!(
    whatsapp_over_twilio_reaches_the_rep_and_back,
    |db: Db| async move {
        let tw = TwilioEmulator::spawn(TwilioSettings::default()).await;
        let table: channels::ChannelConfig = serde_json::from_value(json!({
            "type": "whatsapp",
            "provider": "twilio",
            "account_sid": twilio_emu::DEMO_ACCOUNT_SID,
            "auth_token": twilio_emu::DEMO_AUTH_TOKEN,
            "from": TWILIO_SENDER,
            "api_url": tw.url(),
        }))
        .expect("a twilio whatsapp table");
        let app = spawn_live_app(db, sf_emulator::EmulatorConfig::default(), move |c| {
            c.channels.insert("whatsapp".into(), table);
            c.miaw.channels = vec!["whatsapp".into()];
        })
        .await;
        tw.set_whatsapp_webhook(app.url("/channels/whatsapp/inbound"));
        let rep = RepConsole::new(&app.emulator.url());
        let customer = format!("whatsapp:{PHONE}");
        let ours = format!("whatsapp:{TWILIO_SENDER}");

        let first = tw
            .inbound(&customer, &ours, "Hi, my parcel 4471 is late.", &[])
            .await
            .unwrap();
        assert_eq!(first.status, 200, "{}", first.body);
        let (status, answer) = app
            .post_escalation(&escalation(
                "wa-twilio",
                Utc::now() - chrono::Duration::minutes(1),
            ))
            .await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["route"], "messaging", "{answer}");
        let conversation = answer["salesforce_miaw_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        rep.wait_for(&conversation, "the conversation", |c| {
            c["status"] == "waiting"
        })
        .await;
        let (status, body) = rep.accept(&conversation, "Jane Rep").await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = rep.say(&conversation, "Hello Ana, it ships today.").await;
        assert_eq!(status, 202, "{body}");

        let reply = wait_for("the reply at Twilio", || async {
            tw.sent()
                .into_iter()
                .find(|m| m.body == "Hello Ana, it ships today.")
        })
        .await;
        assert_eq!(reply.to, customer);
        assert_eq!(reply.from, ours);
        let public = app.config.public_url.clone().unwrap();
        assert!(
            reply.status_callback.as_deref().is_some_and(
                |u| u.starts_with(&format!("{public}/channels/whatsapp/status?delivery="))
            ),
            "{reply:?}"
        );
        let view = wait_session(&app, "wa-twilio", "every delivery read", |v| {
            let d = deliveries(v);
            !d.is_empty()
                && d.iter()
                    .all(|d| d["state"] == "sent" && d["provider_status"] == "read")
        })
        .await;
        // Each delivery reached Twilio once.
        let sids: Vec<String> = deliveries(&view)
            .iter()
            .map(|d| d["provider_id"].as_str().unwrap().to_string())
            .collect();
        let at_twilio: Vec<String> = tw
            .sent()
            .into_iter()
            .filter(|m| m.to == customer)
            .map(|m| m.sid)
            .collect();
        assert_eq!(sids, at_twilio, "{view}");
        assert_eq!(tw.sent().iter().filter(|m| m.body == reply.body).count(), 1);

        let answer = tw
            .inbound(&customer, &ours, "Great, thank you!", &[])
            .await
            .unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        rep.wait_for(&conversation, "the customer's answer", |c| {
            texts_by(c, "EndUser")
                .iter()
                .any(|t| t == "Great, thank you!")
        })
        .await;
        let listed = wait_listed(&app, "to_rep", &format!("whatsapp:{}", answer.sid)).await;
        assert_eq!(listed["session_id"], "wa-twilio");
        assert_eq!(listed["from"], PHONE);
    }
);
