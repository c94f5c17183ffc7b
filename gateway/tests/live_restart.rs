//! Live messaging survives SIGKILL (issue 7, "Done when"): a chat escalation is
//! live with a rep at the emulator's console, the gateway process is killed
//! mid-conversation, the rep keeps writing while it is down, and after the
//! restart (one gateway on SQLite) or the takeover (two replicas on PostgreSQL,
//! the stream owner killed) every rep message reaches the customer's webhook
//! exactly once, signed, and nothing sent before the kill arrives again.
//!
//! The emulator and the webhook receiver run in this process; the gateways are
//! child processes of the real `handoff` binary, configured only through the
//! environment, as in `crash.rs`. Every wait is for a condition, with a hang
//! guard; the short stream lease (`HANDOFF_MIAW__STREAM_LEASE_SECS=3`) only
//! makes takeovers quick, it is never a margin the assertions rely on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway::live::messages::{LocalizedMessages, MessageKey};
use gateway::store::Store;
use serde_json::{Value, json};
use sf_emulator::{EmulatorConfig, EmulatorHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

mod common;
use common::{
    Fleet, Harness, create_token, drop_postgres_database, fresh_postgres_database, lock,
    postgres_admin_url,
};

/// The chat channel's webhook secret (the Standard Webhooks specification's example).
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The stream lease: a killed owner's streams are taken over this long after its last renewal.
const STREAM_LEASE_SECS: u64 = 3;
/// Hang guard of every wait.
const HANG_GUARD: Duration = Duration::from_secs(30);
const REP: &str = "Jeanne Dupont";
const LANGUAGE: &str = "fr";

// ---------------------------------------------------------------- tests --

// One gateway on SQLite, killed mid-conversation and restarted on the same
// database while the rep writes twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_gateway_killed_mid_conversation_delivers_every_rep_message_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("handoff.db").display()
    );
    let world = World::new(url, 1, dir).await;
    world.start(0);
    let live = world.open_live_chat("restart-1").await;
    let before = world.converse_before_the_kill(&live).await;

    world.kill(0);
    let while_down = ["Je vois les deux débits.", "Le remboursement est lancé."];
    for text in while_down {
        world.rep_says(&live, text).await;
    }
    world.start(0);
    let messages = world.wait_webhooks("agent.message", 5).await;
    assert_eq!(texts(&messages[3..]), while_down);

    world
        .close_and_check(&live, &before, &while_down, &[])
        .await;
}

// Two replicas on PostgreSQL: the stream owner is killed, the rep writes while
// it is dead, the other replica takes the stream over and delivers; then the
// killed replica comes back and nothing is delivered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stream_owner_killed_the_other_replica_takes_over() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, name) = fresh_postgres_database(&admin, "handoff_live").await;
    let world = World::new(url, 2, dir).await;
    // Replica 0 alone claims the stream, so the owner is known; replica 1
    // joins before the conversation goes on.
    world.start(0);
    let live = world.open_live_chat("takeover-1").await;
    let owner = world.stream_owner(&live.session_id).await;
    world.start(1);
    let before = world.converse_before_the_kill(&live).await;
    assert_eq!(
        world.stream_owner(&live.session_id).await,
        owner,
        "replica 0 still owns the stream"
    );

    world.kill(0);
    let while_down = ["Je vois les deux débits.", "Le remboursement est lancé."];
    for text in while_down {
        world.rep_says(&live, text).await;
    }
    let messages = world.wait_webhooks("agent.message", 5).await;
    assert_eq!(texts(&messages[3..]), while_down);
    let new_owner = world.stream_owner(&live.session_id).await;
    assert_ne!(new_owner, owner, "replica 1 took the stream over");

    // The killed replica comes back: it must not take the stream (the lease
    // is held) nor deliver anything again.
    world.start(0);
    world.wait_gateway_up(0).await;
    let after_return = ["Vous le verrez sous trois jours."];
    world.rep_says(&live, after_return[0]).await;
    world.wait_webhooks("agent.message", 6).await;

    let mut all_rep = while_down.to_vec();
    all_rep.extend(after_return);
    world.close_and_check(&live, &before, &all_rep, &[]).await;
    drop(world);
    drop_postgres_database(&admin, &name).await;
}

// Kills right after the rep's message: once immediately after the console
// accepted it (it may not even be on the gateway's stream yet), once while its
// webhook is in flight (the receiver holds the request). After each restart
// the message arrives exactly once: one delivery id, and an in-flight one is
// retried with the same `webhook-id`, which Standard Webhooks receivers dedupe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_gateway_killed_right_after_a_rep_message_delivers_it_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("handoff.db").display()
    );
    let world = World::new(url, 1, dir).await;
    world.start(0);
    let live = world.open_live_chat("restart-2").await;
    world.accept(&live).await;

    // Killed at once after the console's 202.
    let first = "Bonjour, je regarde votre commande.";
    world.rep_says(&live, first).await;
    world.kill(0);
    world.start(0);
    world.wait_webhooks("agent.message", 1).await;

    // Killed while the webhook is in flight: the receiver holds it unanswered.
    let held = "Le remboursement est fait.";
    world.hook.hold(held);
    world.rep_says(&live, held).await;
    world.hook.wait_held().await;
    world.kill(0);
    world.start(0);
    let messages = world.wait_webhooks("agent.message", 2).await;
    assert_eq!(texts(&messages), [first, held]);

    let before = Before {
        rep_messages: vec![first.to_string()],
    };
    world
        .close_and_check(&live, &before, &[held], &[first, held])
        .await;
    // The held request and its retry carry one webhook-id.
    let ids: Vec<String> = world
        .hook
        .received()
        .into_iter()
        .filter(|r| r.json()["data"]["text"] == held)
        .map(|r| r.id)
        .collect();
    assert!(
        ids.len() >= 2 && ids.iter().all(|id| *id == ids[0]),
        "the in-flight webhook was retried with its webhook-id: {ids:?}"
    );
}

// ---------------------------------------------------------------- world --

/// A live conversation under test.
struct LiveChat {
    session_id: String,
    conversation_id: String,
}

/// What happened before the kill.
struct Before {
    rep_messages: Vec<String>,
}

/// The emulator, the webhook receiver, the gateway processes and the API token.
struct World {
    emulator: EmulatorHandle,
    hook: Receiver,
    harness: Harness,
    http: reqwest::Client,
    token: String,
    database_url: String,
}

impl World {
    async fn new(database_url: String, replicas: usize, dir: tempfile::TempDir) -> World {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind emulator");
        let emulator = sf_emulator::spawn(EmulatorConfig::default(), listener)
            .await
            .expect("start emulator");
        let app = emulator.config().connected_apps[0].clone();
        let env: Vec<(String, String)> = [
            ("HANDOFF_DATABASE_URL", database_url.clone()),
            ("HANDOFF_SALESFORCE__LOGIN_URL", emulator.url()),
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
            ("HANDOFF_MIAW__URL", emulator.url()),
            ("HANDOFF_MIAW__ORG_ID", emulator.config().org_id.clone()),
            ("HANDOFF_MIAW__DEPLOYMENT", "Handoff_Chat".into()),
            (
                "HANDOFF_MIAW__STREAM_LEASE_SECS",
                STREAM_LEASE_SECS.to_string(),
            ),
            ("HANDOFF_MIAW__SUPERVISOR_INTERVAL_MS", "200".into()),
            (
                "HANDOFF_CHANNELS__CHAT__WEBHOOK_SECRET",
                WEBHOOK_SECRET.into(),
            ),
            (
                "HANDOFF_CHANNELS__CHAT__ALLOW_PRIVATE_WEBHOOK_URLS",
                "true".into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let token = create_token(&env, "live-restart");
        let fleet = Fleet::new(env, replicas, dir.path().to_path_buf());
        World {
            emulator,
            hook: receiver().await,
            harness: Harness::new(fleet, dir, "live restart"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
            token,
            database_url,
        }
    }

    fn start(&self, replica: usize) {
        self.harness.fleet().start(replica);
    }

    /// SIGKILL, then reap.
    fn kill(&self, replica: usize) {
        self.harness.fleet().kill(replica);
    }

    fn url(&self, replica: usize) -> String {
        self.harness.fleet().url(replica)
    }

    /// Any running replica's URL.
    fn any_url(&self) -> String {
        let fleet = self.harness.fleet();
        let replica = (0..fleet.replicas())
            .find(|r| fleet.is_running(*r))
            .expect("a gateway runs");
        fleet.url(replica)
    }

    fn console(&self, path: &str) -> String {
        format!(
            "{}/__emulator/miaw/conversations{path}",
            self.emulator.url()
        )
    }

    /// Escalates a French chat and waits until the rep's console shows the
    /// conversation with its routing attributes and the transcript, and the
    /// customer has been told a rep is being looked for.
    async fn open_live_chat(&self, session_id: &str) -> LiveChat {
        let escalation = json!({
            "session_id": session_id,
            "channel": "chat",
            "customer": {"name": "Chloé Martin", "email": "chloe@example.com"},
            "language": LANGUAGE,
            "priority": "high",
            "summary": "La cliente a été débitée deux fois pour la commande 1182.",
            "transcript": [
                {"role": "customer", "text": "On m'a débitée deux fois pour la commande 1182.", "at": "2026-11-22T10:00:00Z"},
                {"role": "bot", "text": "Je vois les deux débits ; un collègue peut en rembourser un.", "at": "2026-11-22T10:01:00Z"},
            ],
            "reply_to": {"webhook_url": self.hook.url},
        });
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                &self.any_url(),
                "/v1/escalations",
                Some(escalation),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["route"], "messaging", "{body}");
        let conversation_id = body["salesforce_miaw_session_id"]
            .as_str()
            .expect("conversation id")
            .to_string();
        assert_eq!(
            conversation_id,
            salesforce::miaw::ConversationId::for_session(session_id).to_string()
        );
        let conv = self
            .wait_conversation(&conversation_id, "the summary and the transcript", |c| {
                texts_by(c, "EndUser").len() >= 2
            })
            .await;
        let attrs = &conv["routing_attributes"];
        assert_eq!(attrs["OpencxSessionId"], session_id, "{attrs}");
        assert_eq!(attrs["Chat_Consumer_Type"], "Anonymous Visitor", "{attrs}");
        assert_eq!(attrs["Origin"], "chat", "{attrs}");
        assert_eq!(attrs["Priority"], "High", "{attrs}");
        assert_eq!(attrs["Chat_language"], LANGUAGE, "{attrs}");
        let opening = texts_by(&conv, "EndUser").join("\n");
        assert!(
            opening.contains("débitée deux fois pour la commande 1182."),
            "{opening}"
        );
        assert!(opening.contains("Je vois les deux débits"), "{opening}");
        self.wait_webhooks("system.message", 2).await;
        // The stream is claimed and has shown the MessagingSession.
        self.wait_live_row(session_id, "the stream claimed", |row| {
            row["owner"].is_string()
        })
        .await;
        LiveChat {
            session_id: session_id.to_string(),
            conversation_id,
        }
    }

    /// The rep accepts; the customer is told in French, with the rep's name.
    async fn accept(&self, live: &LiveChat) {
        let (status, body) = self
            .post_console(&live.conversation_id, "accept", json!({"rep_name": REP}))
            .await;
        assert_eq!(status, 200, "{body}");
        let joined = self.wait_webhooks("agent.joined", 1).await;
        assert_eq!(
            joined[0]["data"]["text"],
            localized(MessageKey::AgentJoined, Some(REP)),
            "agentJoinedMessage in French with the rep's name"
        );
    }

    /// Accept, three rep messages (each delivered once), the customer's answer
    /// (the rep sees it), and every delivery settled: a quiet point to kill at.
    async fn converse_before_the_kill(&self, live: &LiveChat) -> Before {
        self.accept(live).await;
        let rep_messages = [
            "Bonjour, je suis Jeanne.",
            "Je regarde votre commande.",
            "Pouvez-vous confirmer le montant ?",
        ];
        for text in rep_messages {
            self.rep_says(live, text).await;
        }
        let messages = self.wait_webhooks("agent.message", 3).await;
        assert_eq!(texts(&messages), rep_messages);
        assert!(
            messages
                .iter()
                .all(|m| m["data"]["sender_name"] == REP && m["session_id"] == *live.session_id),
            "{messages:?}"
        );
        self.assert_no_repeats(&[]);

        let (status, body) = self
            .api(
                reqwest::Method::POST,
                &self.any_url(),
                &format!("/v1/sessions/{}/messages", live.session_id),
                Some(json!({"text": "Oui, 49,90 € deux fois."})),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        self.wait_conversation(&live.conversation_id, "the customer's answer", |c| {
            texts_by(c, "EndUser")
                .iter()
                .any(|t| t == "Oui, 49,90 € deux fois.")
        })
        .await;
        self.wait_settled(&live.session_id).await;
        Before {
            rep_messages: rep_messages.iter().map(|t| t.to_string()).collect(),
        }
    }

    async fn rep_says(&self, live: &LiveChat, text: &str) {
        let (status, body) = self
            .post_console(&live.conversation_id, "messages", json!({"text": text}))
            .await;
        assert_eq!(status, 202, "{body}");
    }

    /// The rep closes; the customer is told; then the whole webhook record is
    /// checked: every signature verifies, every delivery arrived, and nothing
    /// arrived twice — by `webhook-id` (except the texts in `redelivered`,
    /// whose request was in flight at a kill and may be retried with the same
    /// id) and by (type, text).
    async fn close_and_check(
        &self,
        live: &LiveChat,
        before: &Before,
        after: &[&str],
        redelivered: &[&str],
    ) {
        let (status, body) = self
            .post_console(&live.conversation_id, "close", json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        let closed = self.wait_webhooks("session.closed", 1).await;
        assert_eq!(
            closed[0]["data"]["text"],
            localized(MessageKey::ConversationClosed, None),
            "conversationClosedMessage in French"
        );
        let deliveries = self.wait_settled(&live.session_id).await;
        let session = self.session(&live.session_id).await;
        assert_eq!(session["status"], "closed", "{session}");

        let received = self.hook.received();
        for r in &received {
            r.verify();
        }
        self.assert_no_repeats(redelivered);
        let distinct: BTreeSet<String> = received.iter().map(|r| r.id.clone()).collect();
        let delivered: BTreeSet<String> = deliveries
            .iter()
            .map(|d| d["id"].as_str().expect("delivery id").to_string())
            .collect();
        assert_eq!(distinct, delivered, "each delivery arrived, and only those");

        // The exact sequence the customer saw, once each.
        let mut first_seen: Vec<(String, String)> = Vec::new();
        let mut seen_ids = BTreeSet::new();
        for r in &received {
            if seen_ids.insert(r.id.clone()) {
                let body = r.json();
                first_seen.push((
                    body["type"].as_str().unwrap_or_default().to_string(),
                    body["data"]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ));
            }
        }
        let mut expected = vec![
            (
                "system.message".to_string(),
                localized(MessageKey::LookingForAgent, None),
            ),
            (
                "system.message".to_string(),
                localized(MessageKey::EndChatFromUserInstruction, None),
            ),
            (
                "agent.joined".to_string(),
                localized(MessageKey::AgentJoined, Some(REP)),
            ),
        ];
        for text in before
            .rep_messages
            .iter()
            .map(String::as_str)
            .chain(after.iter().copied())
        {
            expected.push(("agent.message".to_string(), text.to_string()));
        }
        expected.push((
            "agent.left".to_string(),
            localized(MessageKey::AgentLeft, Some(REP)),
        ));
        expected.push((
            "session.closed".to_string(),
            localized(MessageKey::ConversationClosed, None),
        ));
        assert_eq!(first_seen, expected, "what the customer received, in order");
    }

    /// No `webhook-id` arrived twice (but those of `redelivered` texts), and no
    /// two deliveries carry the same (type, text).
    fn assert_no_repeats(&self, redelivered: &[&str]) {
        let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
        let mut by_text: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for r in self.hook.received() {
            let body = r.json();
            let text = body["data"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let kind = body["type"].as_str().unwrap_or_default().to_string();
            if !redelivered.contains(&text.as_str()) {
                *by_id.entry(r.id.clone()).or_default() += 1;
            }
            by_text.entry((kind, text)).or_default().insert(r.id);
        }
        let twice: Vec<_> = by_id.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "webhook-ids that arrived twice: {twice:?}"
        );
        let minted_twice: Vec<_> = by_text.iter().filter(|(_, ids)| ids.len() > 1).collect();
        assert!(
            minted_twice.is_empty(),
            "the same message delivered under several ids: {minted_twice:?}"
        );
    }

    // ------------------------------------------------------------ waits --

    /// Waits until the receiver has `n` webhooks of `kind` (distinct ids), and answers them.
    async fn wait_webhooks(&self, kind: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let mut ids = BTreeSet::new();
            let of_kind: Vec<Value> = self
                .hook
                .received()
                .into_iter()
                .filter(|r| ids.insert(r.id.clone()))
                .map(|r| r.json())
                .filter(|b| b["type"] == kind)
                .collect();
            if of_kind.len() >= n {
                return of_kind;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} {kind} webhooks; got {:?}\n{}",
                self.hook.bodies(),
                self.harness.fleet().tails()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until every delivery of the session is sent, and answers them.
    async fn wait_settled(&self, session_id: &str) -> Vec<Value> {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let (status, body) = self
                .api(
                    reqwest::Method::GET,
                    &self.any_url(),
                    &format!("/v1/sessions/{session_id}/deliveries?limit=100"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let deliveries = body["deliveries"].as_array().cloned().unwrap_or_default();
            if !deliveries.is_empty() && deliveries.iter().all(|d| d["state"] == "sent") {
                return deliveries;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for every delivery sent: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn wait_conversation(
        &self,
        id: &str,
        what: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let response = self
                .http
                .get(self.console(&format!("/{id}")))
                .send()
                .await
                .expect("console request");
            let ok = response.status().is_success();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if ok && ready(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `ready` holds for the session's `live_sessions` row (as JSON).
    async fn wait_live_row(
        &self,
        session_id: &str,
        what: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let store = Store::open(&self.database_url)
            .await
            .expect("open the database");
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let row = store
                .live_session(session_id)
                .await
                .expect("read live_sessions")
                .map(|row| json!({"owner": row.owner, "state": row.state, "last_event_id": row.last_event_id}))
                .unwrap_or(Value::Null);
            if ready(&row) {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {row}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The replica holding the session's stream (`live_sessions.owner`).
    async fn stream_owner(&self, session_id: &str) -> String {
        let row = self
            .wait_live_row(session_id, "a stream owner", |row| row["owner"].is_string())
            .await;
        row["owner"].as_str().unwrap().to_string()
    }

    /// Waits until the replica answers its health check.
    async fn wait_gateway_up(&self, replica: usize) {
        let url = self.url(replica);
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let (status, _) = self.api(reqwest::Method::GET, &url, "/readyz", None).await;
            if status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replica {replica} never answered"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    // ------------------------------------------------------------- http --

    async fn session(&self, id: &str) -> Value {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &self.any_url(),
                &format!("/v1/sessions/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn api(
        &self,
        method: reqwest::Method,
        base: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        common::api_call(
            &self.http,
            &self.token,
            method,
            &format!("{base}{path}"),
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
    LocalizedMessages::new(&Default::default()).text(LANGUAGE, key, agent, "endagentchat")
}

fn texts(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["data"]["text"].as_str().unwrap_or_default())
        .collect()
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

// ------------------------------------------------------------- receiver --

/// One webhook the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Checks the Standard Webhooks signature with the chat channel's secret.
    fn verify(&self) {
        let secret =
            channels::webhook::WebhookSecret::parse(&secrecy::SecretString::from(WEBHOOK_SECRET))
                .expect("the test secret parses");
        secret
            .verify(
                &self.id,
                &self.timestamp,
                &self.signature,
                &self.body,
                chrono::Utc::now(),
            )
            .expect("a valid Standard Webhooks signature");
    }
}

/// A loopback webhook receiver keeping every request it got (arrival order).
/// It answers 200 at once — but the first request carrying the `hold` text is
/// kept unanswered (its connection open) until the test ends, so a kill lands
/// while that webhook is in flight.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    hold: Arc<Mutex<Option<String>>>,
    held: Arc<Notify>,
}

async fn receiver() -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let received = Arc::new(Mutex::new(Vec::new()));
    let hold: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let held = Arc::new(Notify::new());
    let (kept, holding, notify) = (Arc::clone(&received), Arc::clone(&hold), Arc::clone(&held));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (kept, holding, notify) =
                (Arc::clone(&kept), Arc::clone(&holding), Arc::clone(&notify));
            tokio::spawn(async move {
                let Some(request) = read_request(&mut socket).await else {
                    return;
                };
                let text = request.json()["data"]["text"].as_str().map(str::to_string);
                let hold_this = {
                    let mut hold = lock(&holding);
                    let matches = hold.is_some() && *hold == text;
                    if matches {
                        *hold = None;
                    }
                    matches
                };
                lock(&kept).push(request);
                if hold_this {
                    notify.notify_one();
                    // Never answered: the sender dies with the request in flight.
                    let mut rest = Vec::new();
                    let _ = socket.read_to_end(&mut rest).await;
                    return;
                }
                let reply = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Receiver {
        url,
        received,
        hold,
        held,
    }
}

impl Receiver {
    fn received(&self) -> Vec<Received> {
        lock(&self.received).clone()
    }

    fn bodies(&self) -> Vec<Value> {
        self.received().iter().map(Received::json).collect()
    }

    /// Holds the next request whose text is `text`.
    fn hold(&self, text: &str) {
        *lock(&self.hold) = Some(text.to_string());
    }

    /// Waits (hang guard) until the held request has arrived.
    async fn wait_held(&self) {
        tokio::time::timeout(HANG_GUARD, self.held.notified())
            .await
            .expect("the held webhook never arrived");
    }
}

async fn read_request(socket: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let length: usize = header("content-length").parse().ok()?;
    while buf.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: buf[head_end..head_end + length].to_vec(),
    })
}
