//! SMS, WhatsApp and voice conversations survive SIGKILL (issue 9, "Done when"): an escalation
//! on a phone channel becomes a live conversation in the Salesforce emulator (routing
//! attributes, the transcript — for voice, a WebVTT call transcript), the rep answers, and the
//! customer's phone — the provider emulator (`channel-emulator`: Twilio's Messages API, Meta's
//! WhatsApp Cloud API) — receives each reply (a caller gets them by SMS); the customer answers
//! through the provider's signed webhook and the rep sees it; the rep closes. The gateway
//! process is SIGKILLed twice on the way:
//!
//! 1. **Right after the rep sent three messages**, while the first is inside its send (the
//!    provider holds the request: `Fault::Slow`) and the other two wait behind it. The rep
//!    writes a fourth while the gateway is down. After the restart the second, third and
//!    fourth reach the customer exactly once, in order. The first was `sending` when the
//!    process died: neither provider dedupes on our id, so it is not sent again
//!    (docs/reliability.md §3a, "outcome unknown"). The delivery says so (`failed`,
//!    "outcome unknown; not resent to avoid a duplicate") and the rep is told in the
//!    conversation, once, that it may not have reached the customer. The customer has it
//!    at most once.
//!
//!    The customer also writes while the gateway is down: the provider's webhook gets no
//!    answer, and after the restart the provider sends the very same signed request again
//!    (`replay_last_inbound`, what Twilio and Meta do with a webhook that got no 200). The rep
//!    sees it once.
//! 2. **While the customer's answer is being handled**: the provider posts the signed webhook,
//!    the gateway records the message and answers 200 — and is killed before that answer
//!    reaches the provider (the front holds it). After the restart the provider sends the same
//!    request again, and once more: the rep sees the message exactly once.
//!
//! Then the rep writes again, and closes: the customer is told, the session ends, and the
//! provider's record is checked whole — every message the gateway says it sent is there once,
//! with the provider id recorded for it, in the order written.
//!
//! One gateway, a child process of the real `handoff` binary configured by a file (the channel
//! tables, `public_url`) and `HANDOFF_*` variables. Providers reach it through a front (a TCP
//! relay to whichever port the running gateway has, as a load balancer would): `public_url` is
//! the front's URL, since providers sign the URL they call, and it stays the same across
//! restarts. The emulators and the front run in this process. On SQLite and PostgreSQL. Every
//! wait is for a condition, with a hang guard.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use channel_emulator::Fault;
use channel_emulator::InboundResult;
use channel_emulator::twilio::{TwilioEmulator, TwilioSettings};
use channel_emulator::whatsapp::{WhatsappEmulator, WhatsappSettings};
use gateway::live::messages::{LocalizedMessages, MessageKey};
use gateway::outbox::deliver::OUTCOME_UNKNOWN;
use gateway::store::{Store, delivery};
use serde_json::{Value, json};
use sf_emulator::{EmulatorConfig, EmulatorHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

mod common;
use common::{
    Fleet, Harness, Urls, create_token, drop_postgres_database, fresh_postgres_database,
    postgres_admin_url,
};

/// Hang guard of every wait.
const HANG_GUARD: Duration = Duration::from_secs(30);
const REP: &str = "Sam Rivera";
const LANGUAGE: &str = "en";
const END_KEYWORD: &str = "endagentchat";
/// The customer's phone.
const CUSTOMER: &str = "+14155550134";
/// Our SMS number.
const OUR_NUMBER: &str = "+15550100000";
/// How long the provider holds the send that is in flight at the first kill: far longer than
/// the test needs to kill the gateway, so the kill lands inside the send.
const HELD_SEND_MS: u64 = 20_000;

// ---------------------------------------------------------------- tests --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sms_conversation_survives_sigkills() {
    let (url, dir) = sqlite();
    conversation_survives_sigkills(Phone::Sms, url, dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sms_conversation_survives_sigkills() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (url, name) = fresh_postgres_database(&admin, "handoff_chrestart").await;
    conversation_survives_sigkills(Phone::Sms, url, tempfile::tempdir().expect("temp dir")).await;
    drop_postgres_database(&admin, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_whatsapp_conversation_survives_sigkills() {
    let (url, dir) = sqlite();
    conversation_survives_sigkills(Phone::Whatsapp, url, dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_whatsapp_conversation_survives_sigkills() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (url, name) = fresh_postgres_database(&admin, "handoff_chrestart").await;
    conversation_survives_sigkills(Phone::Whatsapp, url, tempfile::tempdir().expect("temp dir"))
        .await;
    drop_postgres_database(&admin, &name).await;
}

// A call escalated with its transcript; the rep's answers go to the caller by SMS, and the
// caller's texts find the voice session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_voice_conversation_survives_sigkills() {
    let (url, dir) = sqlite();
    conversation_survives_sigkills(Phone::Voice, url, dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_voice_conversation_survives_sigkills() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (url, name) = fresh_postgres_database(&admin, "handoff_chrestart").await;
    conversation_survives_sigkills(Phone::Voice, url, tempfile::tempdir().expect("temp dir")).await;
    drop_postgres_database(&admin, &name).await;
}

fn sqlite() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("handoff.db").display()
    );
    (url, dir)
}

/// The scenario of the module doc on `kind`'s channel.
async fn conversation_survives_sigkills(kind: Phone, database_url: String, dir: tempfile::TempDir) {
    let world = World::new(kind, database_url, dir).await;
    world.start();
    world.provider.customer_wrote_to_the_bot(&world).await;
    let live = world.open_live_conversation().await;
    let mut expected = vec![
        localized(MessageKey::LookingForAgent, None),
        localized(MessageKey::EndChatFromUserInstruction, None),
    ];
    world.wait_customer_has(&expected).await;
    world.accept(&live).await;
    expected.push(localized(MessageKey::AgentJoined, Some(REP)));
    world.wait_customer_has(&expected).await;
    world.wait_settled(&live).await;

    // Kill 1: the first of three replies inside its send, the others waiting behind it.
    let in_flight = "Hello, I am looking at order 1182 now.";
    let waiting = [
        "I can see both charges of 49.90.",
        "One of them is a duplicate.",
    ];
    world.provider.fault(Fault::Slow {
        count: 1,
        delay_ms: HELD_SEND_MS,
    });
    world.rep_says(&live, in_flight).await;
    for text in waiting {
        world.rep_says(&live, text).await;
    }
    world
        .wait(
            "the first reply held by the provider, the others queued",
            || async {
                let rows = world.rep_deliveries(&live).await;
                let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
                // The provider took the fault: the send is inside it, not just about to leave.
                let held = world.provider.pending_faults(&world.http).await == 0;
                (held && states == ["sending", "queued", "queued"]).then_some(())
            },
        )
        .await;
    world.kill();
    let at_kill = world.rep_deliveries(&live).await;
    assert_eq!(
        at_kill.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(),
        [in_flight, waiting[0], waiting[1]],
        "the replies, in the order the rep wrote them"
    );
    assert_eq!(
        at_kill.iter().map(|r| r.state.as_str()).collect::<Vec<_>>(),
        ["sending", "queued", "queued"],
        "the kill landed with the first reply inside its send: {at_kill:?}"
    );
    assert_eq!(
        world.provider.customer_texts(),
        expected,
        "no reply reached the customer before the kill"
    );

    // The rep writes while the gateway is down, and so does the customer: the provider's
    // webhook gets no answer. The gateway comes back on the same database.
    let while_down = "I am refunding the duplicate now.";
    world.rep_says(&live, while_down).await;
    let unanswered = "Hello? Are you still there?";
    let first_try = world.provider.inbound(unanswered).await;
    assert!(first_try.is_err(), "nobody answers: {first_try:?}");
    world.start();
    world.provider.replay_until_answered().await;
    expected.extend(waiting.iter().map(|t| t.to_string()));
    expected.push(while_down.to_string());
    world.wait_customer_has_without(&expected, in_flight).await;

    // The reply that was inside its send is not sent again: failed visibly, the rep told once.
    let lost = world
        .wait("the in-flight reply settled", || async {
            let rows = world.rep_deliveries(&live).await;
            let row = rows.into_iter().find(|r| r.text == in_flight)?;
            (row.state != "sending" && row.state != "queued").then_some(row)
        })
        .await;
    assert_eq!(lost.state, "failed", "{lost:?}");
    assert!(
        lost.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with(OUTCOME_UNKNOWN)),
        "{lost:?}"
    );
    assert_eq!(lost.attempts, 1, "one send, never a second: {lost:?}");
    let notice = world
        .wait_conversation(&live, "the rep told about the in-flight reply", |c| {
            let told: Vec<String> = texts_by(c, "EndUser")
                .into_iter()
                .filter(|t| t.starts_with("[Handoff]"))
                .collect();
            (!told.is_empty()).then_some(told)
        })
        .await;
    assert_eq!(notice.len(), 1, "told once: {notice:?}");
    assert!(notice[0].contains(in_flight), "{notice:?}");

    world.wait_rep_sees_once(&live, unanswered).await;
    assert_eq!(world.recorded_answers().await, 1, "one inbound message");

    // Kill 2: the customer's answer is recorded, and the gateway's 200 has not reached the
    // provider yet (no status report is on its way, so the front holds only that answer).
    world.provider.settled().await;
    let answer = "Thank you! Will I see it on my card?";
    world.front.hold(true);
    let posting = {
        let provider = world.provider.clone();
        tokio::spawn(async move { provider.inbound(answer).await })
    };
    world.front.wait_held().await;
    world.kill();
    world.front.hold(false);
    let first_try = posting.await.expect("the inbound task");
    assert!(
        first_try.is_err(),
        "no answer reached the provider: {first_try:?}"
    );
    assert_eq!(
        world.recorded_answers().await,
        2,
        "the gateway recorded the answer before answering"
    );
    world.start();
    // The provider sends the same signed request again; and once more, as providers may.
    for attempt in ["retry", "second retry"] {
        let replayed = world
            .provider
            .replay()
            .await
            .expect("the replay is answered");
        assert_eq!(replayed.status, 200, "{attempt}: {replayed:?}");
    }
    world.wait_rep_sees_once(&live, answer).await;
    assert_eq!(
        world.recorded_answers().await,
        2,
        "one inbound message each"
    );

    // The rep answers again, then closes.
    let after = "Yes, within three days.";
    world.rep_says(&live, after).await;
    expected.push(after.to_string());
    world.wait_customer_has_without(&expected, in_flight).await;
    world.close(&live).await;
    expected.push(localized(MessageKey::AgentLeft, Some(REP)));
    expected.push(localized(MessageKey::ConversationClosed, None));
    world.wait_customer_has_without(&expected, in_flight).await;
    world.wait_settled(&live).await;
    let session = world.session(&live.session_id).await;
    assert_eq!(session["status"], "closed", "{session}");
    world.check_the_record(&live, &expected, in_flight).await;
    // The customer's messages would have been seen twice by now, had they been doubled.
    let seen = world
        .conversation(&live)
        .await
        .map(|c| texts_by(&c, "EndUser"))
        .unwrap_or_default();
    for text in [unanswered, answer] {
        assert_eq!(seen.iter().filter(|t| *t == text).count(), 1, "{seen:?}");
    }
    let told = seen.iter().filter(|t| t.starts_with("[Handoff]")).count();
    assert_eq!(
        told, 1,
        "the rep was told once about the in-flight reply: {seen:?}"
    );
    world.harness.fleet().check_alive();
}

// ------------------------------------------------------------ providers --

/// The phone channel under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phone {
    Sms,
    Whatsapp,
    /// Delivers through SMS (`follow_up = "sms"`).
    Voice,
}

impl Phone {
    /// The session's channel.
    fn name(self) -> &'static str {
        match self {
            Phone::Sms => "sms",
            Phone::Whatsapp => "whatsapp",
            Phone::Voice => "voice",
        }
    }

    /// The channel that carries its messages both ways (deliveries, provider webhooks).
    fn carrier(self) -> &'static str {
        match self {
            Phone::Sms | Phone::Voice => "sms",
            Phone::Whatsapp => "whatsapp",
        }
    }
}

/// The provider emulator of the channel under test.
#[derive(Clone)]
enum Provider {
    Twilio(Arc<TwilioEmulator>),
    Whatsapp(Arc<WhatsappEmulator>),
}

impl Provider {
    async fn spawn(kind: Phone, webhook: String) -> Provider {
        match kind {
            Phone::Sms | Phone::Voice => {
                let twilio = TwilioEmulator::spawn(TwilioSettings {
                    webhook_url: Some(webhook),
                    ..TwilioSettings::default()
                })
                .await;
                twilio.add_number(OUR_NUMBER).expect("our number");
                Provider::Twilio(twilio.into())
            }
            Phone::Whatsapp => Provider::Whatsapp(
                WhatsappEmulator::spawn(WhatsappSettings {
                    webhook_url: Some(webhook),
                    ..WhatsappSettings::default()
                })
                .await
                .into(),
            ),
        }
    }

    /// The `[channels.<carrier>]` table pointing the adapter at this emulator.
    fn channel_table(&self) -> String {
        match self {
            Provider::Twilio(t) => format!(
                "[channels.sms]\ntype = \"sms\"\naccount_sid = \"{}\"\nauth_token = \"{}\"\n\
                 from = \"{OUR_NUMBER}\"\napi_url = \"{}\"\n",
                t.account_sid(),
                channel_emulator::twilio::DEMO_AUTH_TOKEN,
                t.url()
            ),
            Provider::Whatsapp(w) => format!(
                "[channels.whatsapp]\ntype = \"whatsapp\"\nprovider = \"cloud_api\"\n\
                 phone_number_id = \"{}\"\naccess_token = \"{}\"\napp_secret = \"{}\"\n\
                 verify_token = \"{}\"\napi_url = \"{}\"\n",
                w.phone_number_id(),
                channel_emulator::whatsapp::DEMO_ACCESS_TOKEN,
                channel_emulator::whatsapp::DEMO_APP_SECRET,
                channel_emulator::whatsapp::DEMO_VERIFY_TOKEN,
                w.url()
            ),
        }
    }

    /// WhatsApp: the customer has been talking to the bot on this number, so the 24-hour
    /// window is open (the gateway records the message as from an unknown sender).
    async fn customer_wrote_to_the_bot(&self, world: &World) {
        if let Provider::Whatsapp(w) = self {
            let result = w
                .inbound_text(digits(CUSTOMER), "My order 1182 was charged twice.")
                .await
                .expect("the webhook answers");
            assert_eq!(result.status, 200, "{result:?}\n{}", world.tails());
        }
    }

    fn fault(&self, fault: Fault) {
        match self {
            Provider::Twilio(t) => t.fault(fault),
            Provider::Whatsapp(w) => w.fault(fault),
        }
    }

    /// A message from the customer through the signed webhook.
    async fn inbound(&self, text: &str) -> channel_emulator::Result<InboundResult> {
        match self {
            Provider::Twilio(t) => t.inbound(CUSTOMER, OUR_NUMBER, text, &[]).await,
            Provider::Whatsapp(w) => w.inbound_text(digits(CUSTOMER), text).await,
        }
    }

    /// The last inbound request again, byte for byte.
    async fn replay(&self) -> channel_emulator::Result<InboundResult> {
        match self {
            Provider::Twilio(t) => t.replay_last_inbound().await,
            Provider::Whatsapp(w) => w.replay_last_inbound().await,
        }
    }

    /// The provider's retries of the last inbound request, until one is answered 200.
    async fn replay_until_answered(&self) {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            match self.replay().await {
                Ok(r) if r.status == 200 => return,
                other => assert!(
                    Instant::now() < deadline,
                    "the webhook is never answered: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many injected faults have not fired yet (the control route `GET …/faults`).
    async fn pending_faults(&self, http: &reqwest::Client) -> usize {
        let url = match self {
            Provider::Twilio(t) => format!("{}/__emulator/twilio/faults", t.url()),
            Provider::Whatsapp(w) => format!("{}/__emulator/whatsapp/faults", w.url()),
        };
        let faults: Vec<Value> = http
            .get(url)
            .send()
            .await
            .expect("the emulator's control route")
            .json()
            .await
            .expect("a list of faults");
        faults.len()
    }

    /// Waits until every status report started so far has been posted.
    async fn settled(&self) {
        match self {
            Provider::Twilio(t) => t.settled().await,
            Provider::Whatsapp(w) => w.settled().await,
        }
    }

    /// Every text message the provider accepted for the customer, oldest first, with its id.
    fn customer_messages(&self) -> Vec<(String, String)> {
        match self {
            Provider::Twilio(t) => t
                .sent()
                .into_iter()
                .filter(|m| m.to == CUSTOMER)
                .inspect(|m| assert_eq!(m.from, OUR_NUMBER, "{m:?}"))
                .map(|m| (m.sid, m.body))
                .collect(),
            Provider::Whatsapp(w) => w
                .sent()
                .into_iter()
                .filter(|m| m.wa_id == digits(CUSTOMER))
                .map(|m| {
                    assert_eq!(m.message_type, "text", "{m:?}");
                    (m.id, m.text.unwrap_or_default())
                })
                .collect(),
        }
    }

    fn customer_texts(&self) -> Vec<String> {
        self.customer_messages()
            .into_iter()
            .map(|(_, text)| text)
            .collect()
    }
}

fn digits(phone: &str) -> &str {
    phone.trim_start_matches('+')
}

// ---------------------------------------------------------------- world --

/// A live conversation under test.
struct LiveConversation {
    session_id: String,
    conversation_id: String,
}

/// The emulators, the gateway process, the API token and the database.
struct World {
    kind: Phone,
    salesforce: EmulatorHandle,
    provider: Provider,
    front: Front,
    harness: Harness,
    http: reqwest::Client,
    token: String,
    store: Store,
}

impl World {
    async fn new(kind: Phone, database_url: String, dir: tempfile::TempDir) -> World {
        let salesforce = sf_emulator::spawn(
            EmulatorConfig::default(),
            TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind emulator"),
        )
        .await
        .expect("start emulator");
        // Providers sign the URL they call: the front's, which outlives the gateway processes.
        let front = front().await;
        let public_url = front.url.clone();
        let provider = Provider::spawn(
            kind,
            format!("{public_url}/channels/{}/inbound", kind.carrier()),
        )
        .await;
        let config = dir.path().join("handoff.toml");
        std::fs::write(
            &config,
            format!(
                "public_url = \"{public_url}\"\n\n{}\n[channels.voice]\ntype = \"voice\"\n\
                 follow_up = \"sms\"\n\n[miaw]\nchannels = [\"chat\", \"sms\", \"whatsapp\", \"voice\"]\n",
                provider.channel_table()
            ),
        )
        .expect("write the config file");
        let app = salesforce.config().connected_apps[0].clone();
        let env: Vec<(String, String)> = [
            ("HANDOFF_CONFIG", config.display().to_string()),
            ("HANDOFF_DATABASE_URL", database_url.clone()),
            ("HANDOFF_SALESFORCE__LOGIN_URL", salesforce.url()),
            (
                "HANDOFF_SALESFORCE__CREDENTIALS__TYPE",
                "client_credentials".into(),
            ),
            ("HANDOFF_SALESFORCE__CREDENTIALS__CLIENT_ID", app.client_id),
            (
                "HANDOFF_SALESFORCE__CREDENTIALS__CLIENT_SECRET",
                app.client_secret.clone(),
            ),
            ("HANDOFF_WORKER__RETRY_BASE_MS", "50".into()),
            ("HANDOFF_WORKER__RETRY_MAX_MS", "500".into()),
            ("HANDOFF_WORKER__POLL_INTERVAL_MS", "50".into()),
            ("HANDOFF_WORKER__LEASE_SECS", "3".into()),
            ("HANDOFF_MIAW__ENABLED", "true".into()),
            ("HANDOFF_MIAW__URL", salesforce.url()),
            ("HANDOFF_MIAW__ORG_ID", salesforce.config().org_id.clone()),
            ("HANDOFF_MIAW__DEPLOYMENT", "Handoff_Chat".into()),
            ("HANDOFF_MIAW__STREAM_LEASE_SECS", "3".into()),
            ("HANDOFF_MIAW__SUPERVISOR_INTERVAL_MS", "200".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let token = create_token(&env, "channels-restart");
        let store = Store::open(&database_url).await.expect("open the database");
        let fleet = Fleet::new(env, 1, dir.path().to_path_buf());
        front.follow(fleet.urls());
        World {
            kind,
            salesforce,
            provider,
            front,
            harness: Harness::new(fleet, dir, "channels restart"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
            token,
            store,
        }
    }

    fn start(&self) {
        self.harness.fleet().start(0);
    }

    /// SIGKILL, then reap.
    fn kill(&self) {
        self.harness.fleet().kill(0);
    }

    fn url(&self) -> String {
        self.harness.fleet().url(0)
    }

    fn tails(&self) -> String {
        self.harness.fleet().tails()
    }

    fn console(&self, path: &str) -> String {
        format!(
            "{}/__emulator/miaw/conversations{path}",
            self.salesforce.url()
        )
    }

    /// Escalates and waits until the rep's console shows the conversation with its routing
    /// attributes and the transcript.
    async fn open_live_conversation(&self) -> LiveConversation {
        let channel = self.kind.name();
        let session_id = format!("{channel}-restart-{}", uuid::Uuid::new_v4().simple());
        // The customer's last turn is recent: WhatsApp's reply window counts from it.
        let now = chrono::Utc::now();
        let at = |ago: i64| (now - chrono::Duration::seconds(ago)).to_rfc3339();
        let mut escalation = json!({
            "session_id": session_id,
            "channel": channel,
            "customer": {"name": "Chloe Martin", "phone": CUSTOMER},
            "language": LANGUAGE,
            "priority": "high",
            "summary": "The customer was charged twice for order 1182.",
        });
        if self.kind == Phone::Voice {
            // The voice platform's WebVTT, its speakers mapped by the request.
            escalation["voice_mode"] = json!("logged");
            escalation["voice_transcript"] = json!({
                "format": "webvtt",
                "content": "WEBVTT\n\n\
                    00:00.520 --> 00:03.350\n<v Acme Assistant>Thanks for calling Acme.\n\n\
                    00:03.840 --> 00:06.950\n<v Caller>My order 1182 was charged twice.\n\n\
                    00:07.100 --> 00:09.800\n<v Acme Assistant>I see both charges; a colleague can refund one.\n\n\
                    00:10.200 --> 00:11.000\n<v Caller>Yes please.\n",
                "started_at": at(60),
            });
            escalation["speakers"] = json!({"Acme Assistant": "bot", "Caller": "customer"});
        } else {
            escalation["transcript"] = json!([
                {"role": "customer", "text": "My order 1182 was charged twice.", "at": at(90)},
                {"role": "bot", "text": "I see both charges; a colleague can refund one.", "at": at(60)},
                {"role": "customer", "text": "Yes please.", "at": at(30)},
            ]);
        }
        let (status, body) = self
            .api(reqwest::Method::POST, "/v1/escalations", Some(escalation))
            .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["route"], "messaging", "{body}");
        let conversation_id = body["salesforce_miaw_session_id"]
            .as_str()
            .expect("conversation id")
            .to_string();
        let live = LiveConversation {
            session_id: session_id.clone(),
            conversation_id,
        };
        let conv = self
            .wait_conversation(&live, "the summary and the transcript", |c| {
                let opening = texts_by(c, "EndUser").join("\n");
                (opening.contains("charged twice") && opening.contains("Yes please."))
                    .then(|| c.clone())
            })
            .await;
        let attrs = &conv["routing_attributes"];
        assert_eq!(attrs["OpencxSessionId"], session_id.as_str(), "{attrs}");
        assert_eq!(attrs["Chat_Consumer_Type"], "Anonymous Visitor", "{attrs}");
        assert_eq!(attrs["Origin"], channel, "{attrs}");
        assert_eq!(attrs["Priority"], "High", "{attrs}");
        assert_eq!(attrs["Chat_language"], LANGUAGE, "{attrs}");
        let opening = texts_by(&conv, "EndUser").join("\n");
        assert!(opening.contains("a colleague can refund one"), "{opening}");
        if self.kind == Phone::Voice {
            assert!(
                opening.contains("Voice call (logged): the AI assistant ended the call"),
                "{opening}"
            );
        }
        live
    }

    async fn accept(&self, live: &LiveConversation) {
        let (status, body) = self
            .post_console(&live.conversation_id, "accept", json!({"rep_name": REP}))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn rep_says(&self, live: &LiveConversation, text: &str) {
        let (status, body) = self
            .post_console(&live.conversation_id, "messages", json!({"text": text}))
            .await;
        assert_eq!(status, 202, "{body}");
    }

    async fn close(&self, live: &LiveConversation) {
        let (status, body) = self
            .post_console(&live.conversation_id, "close", json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// The session's rep messages (`agent.message` deliveries), oldest first.
    async fn rep_deliveries(&self, live: &LiveConversation) -> Vec<delivery::Model> {
        self.store
            .deliveries_for_session(&live.session_id)
            .await
            .expect("read deliveries")
            .into_iter()
            .filter(|d| d.kind == "agent.message")
            .collect()
    }

    /// Waits until the rep's conversation shows `text` from the customer; it must be there once.
    async fn wait_rep_sees_once(&self, live: &LiveConversation, text: &str) {
        let seen = self
            .wait_conversation(live, "the customer's message", |c| {
                let texts = texts_by(c, "EndUser");
                texts.iter().any(|t| t == text).then_some(texts)
            })
            .await;
        assert_eq!(
            seen.iter().filter(|t| *t == text).count(),
            1,
            "the rep sees the customer's message once: {seen:?}"
        );
    }

    /// Customer messages of this channel that reached the rep (`to_rep`).
    async fn recorded_answers(&self) -> usize {
        self.store
            .inbound_messages_page("to_rep", None, 100)
            .await
            .expect("read inbound messages")
            .into_iter()
            .filter(|m| m.channel == self.kind.carrier())
            .count()
    }

    /// The whole record, once the rep closed: every delivery of the session settled; each
    /// `sent` one is at the provider exactly once under the provider id the gateway recorded,
    /// and the provider has nothing else for the customer (but the in-flight reply, at most
    /// once); the customer's texts are `expected` in order.
    async fn check_the_record(
        &self,
        live: &LiveConversation,
        expected: &[String],
        in_flight: &str,
    ) {
        let deliveries = self
            .store
            .deliveries_for_session(&live.session_id)
            .await
            .expect("read deliveries");
        let received = self.provider.customer_messages();
        let mut by_id: BTreeMap<&str, usize> = BTreeMap::new();
        for (id, _) in &received {
            *by_id.entry(id.as_str()).or_default() += 1;
        }
        let mut sent_ids = Vec::new();
        for d in &deliveries {
            assert_eq!(d.channel, self.kind.carrier(), "{d:?}");
            match d.state.as_str() {
                "sent" => {
                    let id = d
                        .provider_id
                        .as_deref()
                        .expect("a sent delivery has its id");
                    assert_eq!(by_id.get(id), Some(&1), "{d:?} at the provider once");
                    sent_ids.push(id);
                }
                "failed" => assert_eq!(d.text, in_flight, "only the in-flight reply fails: {d:?}"),
                other => panic!("unsettled delivery ({other}): {d:?}"),
            }
        }
        let unexpected: Vec<&(String, String)> = received
            .iter()
            .filter(|(id, text)| !sent_ids.contains(&id.as_str()) && text != in_flight)
            .collect();
        assert!(
            unexpected.is_empty(),
            "the provider has messages the gateway did not send: {unexpected:?}"
        );
        let copies = received.iter().filter(|(_, t)| t == in_flight).count();
        assert!(
            copies <= 1,
            "the in-flight reply reached the customer {copies} times"
        );
        let texts: Vec<String> = received
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| t != in_flight)
            .collect();
        assert_eq!(texts, expected, "what the customer received, in order");
    }

    // ------------------------------------------------------------ waits --

    /// Waits until the customer's texts (the in-flight reply left out) are exactly `expected`.
    async fn wait_customer_has_without(&self, expected: &[String], in_flight: &str) {
        self.wait("the customer's texts", || async {
            let texts: Vec<String> = self
                .provider
                .customer_texts()
                .into_iter()
                .filter(|t| t != in_flight)
                .collect();
            assert!(
                texts.len() <= expected.len() && texts[..] == expected[..texts.len()],
                "the customer received {texts:?}, expected {expected:?}"
            );
            (texts.len() == expected.len()).then_some(())
        })
        .await;
    }

    async fn wait_customer_has(&self, expected: &[String]) {
        self.wait_customer_has_without(expected, "\u{0}").await;
    }

    /// Waits until every delivery of the session is settled (`sent` or `failed`).
    async fn wait_settled(&self, live: &LiveConversation) {
        self.wait("every delivery settled", || async {
            let rows = self
                .store
                .deliveries_for_session(&live.session_id)
                .await
                .expect("read deliveries");
            rows.iter()
                .all(|d| d.state == "sent" || d.state == "failed")
                .then_some(())
        })
        .await;
    }

    async fn conversation(&self, live: &LiveConversation) -> Option<Value> {
        let response = self
            .http
            .get(self.console(&format!("/{}", live.conversation_id)))
            .send()
            .await
            .expect("console request");
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    async fn wait_conversation<T>(
        &self,
        live: &LiveConversation,
        what: &str,
        ready: impl Fn(&Value) -> Option<T>,
    ) -> T {
        self.wait(what, || async {
            self.conversation(live).await.as_ref().and_then(&ready)
        })
        .await
    }

    /// Polls `probe` every 25 ms until it yields a value; fails after the hang guard, or
    /// when the gateway exited by itself.
    async fn wait<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            self.harness.fleet().check_alive();
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.tails()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    // ------------------------------------------------------------- http --

    async fn session(&self, id: &str) -> Value {
        let (status, body) = self
            .api(reqwest::Method::GET, &format!("/v1/sessions/{id}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        common::api_call(
            &self.http,
            &self.token,
            method,
            &format!("{}{path}", self.url()),
            body,
        )
        .await
    }

    async fn post_console(&self, id: &str, action: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.console(&format!("/{id}/{action}")))
            .json(&body)
            .send()
            .await
            .expect("console request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn localized(key: MessageKey, agent: Option<&str>) -> String {
    LocalizedMessages::new(&Default::default()).text(LANGUAGE, key, agent, END_KEYWORD)
}

/// The texts of a conversation's message entries written by `role`.
fn texts_by(conversation: &Value, role: &str) -> Vec<String> {
    conversation["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["role"] == role && e["type"] == "Message")
                .filter_map(|e| e["text"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- front --

/// The gateway's public address: a TCP relay to the running gateway, whatever port it got
/// (none while it is down: the connection is closed at once). While `hold` is set, whatever the
/// gateway answers is kept from the caller, so a kill lands after the gateway answered and
/// before the caller knows.
struct Front {
    url: String,
    backend: Arc<std::sync::Mutex<Option<Urls>>>,
    hold: Arc<AtomicBool>,
    held: Arc<Notify>,
}

async fn front() -> Front {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind front");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let backend: Arc<std::sync::Mutex<Option<Urls>>> = Arc::default();
    let hold = Arc::new(AtomicBool::new(false));
    let held = Arc::new(Notify::new());
    let (to, holding, notify) = (backend.clone(), hold.clone(), held.clone());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let target = common::lock(&to)
                .as_ref()
                .map(|urls| common::url_of(urls, 0));
            tokio::spawn(relay(client, target, holding.clone(), notify.clone()));
        }
    });
    Front {
        url,
        backend,
        hold,
        held,
    }
}

impl Front {
    /// Relays to the fleet's replica 0 from now on.
    fn follow(&self, urls: Urls) {
        *common::lock(&self.backend) = Some(urls);
    }

    fn hold(&self, on: bool) {
        self.hold.store(on, Ordering::SeqCst);
    }

    /// Waits (hang guard) until the gateway answered something the front held.
    async fn wait_held(&self) {
        tokio::time::timeout(HANG_GUARD, self.held.notified())
            .await
            .expect("the gateway never answered");
    }
}

/// Copies one connection both ways; the gateway's bytes are dropped while `hold` is set.
async fn relay(
    client: TcpStream,
    target: Option<String>,
    hold: Arc<AtomicBool>,
    held: Arc<Notify>,
) {
    let Some(addr) = target
        .as_deref()
        .and_then(|url| url.strip_prefix("http://"))
        .filter(|addr| !addr.is_empty())
    else {
        return;
    };
    let Ok(server) = TcpStream::connect(addr).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if hold.load(Ordering::SeqCst) {
                held.notify_one();
                continue;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}
