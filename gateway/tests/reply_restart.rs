//! A rep's reply survives a SIGKILL between the webhook's 2xx and the SMTP send (issue 8,
//! "Done when"): an email escalation becomes a Case; the rep answers publicly in the emulator's
//! console; the emulator posts its signed case webhook and the gateway answers 202 — but the
//! customer's mail relay is down, so the reply waits in the outbox for its retry. The gateway
//! process is killed there, the relay comes up, the gateway restarts on the same database, and
//! the customer's mailbox receives exactly one reply, threaded under their email. On SQLite and
//! on PostgreSQL.
//!
//! The emulator runs in this process and the mailbox is aiosmtpd (`handoff_tests::smtp`); the
//! gateway is a child process of the real `handoff` binary configured only through `HANDOFF_*`
//! variables, as in `live_restart.rs`. Every wait is for a condition, with a hang guard.
//!
//! Where the kill lands: the relay refuses the connection at once, so an attempt is a few
//! milliseconds of a cycle whose backoff is 2–4 s here (`RETRY_BASE_MS` = `RETRY_MAX_MS` =
//! 4000). The kill follows the first refused attempt and the test checks, after the kill, that
//! it landed between attempts (`queued`, one attempt): a kill inside an attempt leaves the
//! delivery `sending`, which the next attempt fails rather than risk a duplicate — that case
//! is `outbox::deliver`'s `a_delivery_left_sending_by_a_dead_process_is_not_resent`.

use std::time::{Duration, Instant};

use gateway::store::{Store, delivery};
use handoff_tests::smtp::{SmtpSink, free_port};
use serde_json::{Value, json};
use sf_emulator::{EmulatorConfig, EmulatorHandle};
use tokio::net::TcpListener;

mod common;
use common::{
    Fleet, Harness, create_token, drop_postgres_database, fresh_postgres_database,
    postgres_admin_url,
};

/// Hang guard of every wait.
const HANG_GUARD: Duration = Duration::from_secs(30);
const CASE_WEBHOOK_SECRET: &str = "reply-restart-case-webhook-secret";
const REPLY: &str = "Your replacement ships today.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_gateway_killed_before_the_smtp_send_sends_the_reply_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("handoff.db").display()
    );
    killed_before_the_smtp_send(database_url, dir).await;
}

// The same on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gateway_killed_before_the_smtp_send_sends_the_reply_once() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (database_url, name) = fresh_postgres_database(&admin, "handoff_reply").await;
    killed_before_the_smtp_send(database_url, tempfile::tempdir().expect("temp dir")).await;
    drop_postgres_database(&admin, &name).await;
}

/// The scenario of the module doc, on `database_url`; logs go to `dir`.
async fn killed_before_the_smtp_send(database_url: String, dir: tempfile::TempDir) {
    // Without aiosmtpd the test reports itself skipped (or fails with HANDOFF_REQUIRE_SMTP=1).
    let Some(probe) = SmtpSink::start().await else {
        return;
    };
    drop(probe);
    let emulator = sf_emulator::spawn(
        EmulatorConfig::default(),
        TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind emulator"),
    )
    .await
    .expect("start emulator");
    // Nothing listens here until the gateway has been killed.
    let smtp_port = free_port();
    let env = environment(&database_url, &emulator, smtp_port);
    let token = create_token(&env, "reply-restart");
    let fleet = Fleet::new(env, 1, dir.path().to_path_buf());
    let harness = Harness::new(fleet, dir, "reply restart");
    harness.fleet().start(0);
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client"),
        token,
    };
    emulator
        .set_case_webhook(Some(sf_emulator::CaseWebhookConfig {
            url: format!("{}/salesforce/events", harness.fleet().url(0)),
            hmac_secret: Some(CASE_WEBHOOK_SECRET.into()),
            jwt: None,
            timeout_secs: 10,
        }))
        .expect("the case webhook is set");
    let store = Store::open(&database_url).await.expect("open the database");

    // The customer's email becomes a Case.
    let session_id = format!("restart-{}", uuid::Uuid::new_v4().simple());
    let original_id = format!("{}@customer.example", uuid::Uuid::new_v4().simple());
    let base = harness.fleet().url(0);
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            &base,
            "/v1/escalations",
            Some(json!({
                "session_id": session_id,
                "channel": "email",
                "summary": "Parcel two weeks late.",
                "raw_email": [original_email(&original_id)],
            })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let case_id = wait(&harness, "the Case", || async {
        let (_, session) = api
            .call(
                reqwest::Method::GET,
                &base,
                &format!("/v1/sessions/{session_id}"),
                None,
            )
            .await;
        session["salesforce_case_id"].as_str().map(str::to_string)
    })
    .await;

    // The rep answers; the gateway takes the event (202) and its first send finds the relay
    // down.
    let comment_id = rep_comment(&emulator, &case_id).await;
    let posted = wait(&harness, "the webhook's answer", || async {
        let posted = emulator.case_webhook_deliveries();
        (!posted.is_empty()).then_some(posted)
    })
    .await;
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(
        posted[0].event_id[..15],
        comment_id[..15],
        "the comment's event"
    );
    assert_eq!(posted[0].status, Some(202), "{posted:?}");
    let before = wait(&harness, "a refused first attempt", || async {
        let rows = store.deliveries_for_session(&session_id).await.unwrap();
        rows.into_iter()
            .find(|row| row.state == "queued" && row.attempts >= 1)
    })
    .await;
    let error = before.last_error.clone().expect("the attempt says why");
    assert!(error.contains("could not be reached"), "{error}");

    harness.fleet().kill(0);
    // The kill landed between attempts: the reply is queued for its retry, nothing was sent.
    let at_kill = only_delivery(&store, &session_id).await;
    assert_eq!(
        (at_kill.state.as_str(), at_kill.attempts),
        ("queued", 1),
        "the kill landed inside an attempt: {at_kill:?}"
    );
    assert_eq!(at_kill.id, before.id);
    assert_eq!(
        events(&store, &session_id)
            .await
            .iter()
            .filter(|k| *k == "case_reply.received")
            .count(),
        1,
        "the gateway recorded the rep's reply before the kill"
    );

    let sink = SmtpSink::start_on(smtp_port)
        .await
        .expect("aiosmtpd ran above");
    harness.fleet().start(0);
    sink.wait_for(1, HANG_GUARD).await;
    let sent = wait(&harness, "the reply sent", || async {
        let row = only_delivery(&store, &session_id).await;
        assert_ne!(row.state, "failed", "{:?}", row.last_error);
        (row.state == "sent").then_some(row)
    })
    .await;
    assert_eq!(sent.id, before.id, "the same delivery, not a new one");
    assert_eq!(
        sent.attempts, 2,
        "the refused attempt and the one that sent it"
    );

    // Exactly one reply, threaded, with the session's reply token.
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "exactly one reply");
    let m = &messages[0];
    let token = store
        .session(&session_id)
        .await
        .unwrap()
        .unwrap()
        .reply_token
        .expect("a reply token");
    assert_eq!(m.to, ["ann@customer.example"]);
    assert_eq!(m.subject.as_deref(), Some("Re: Parcel is late"));
    assert_eq!(m.in_reply_to, [original_id.as_str()]);
    assert!(m.references.contains(&original_id), "{:?}", m.references);
    assert_eq!(
        m.reply_to.as_deref(),
        Some(format!("support+{token}@acme.example").as_str())
    );
    assert_eq!(
        m.message_id.as_deref(),
        sent.provider_id.as_deref(),
        "the Message-ID the gateway recorded"
    );
    assert!(
        m.text.as_deref().is_some_and(|t| t.contains(REPLY)),
        "{m:?}"
    );
    assert!(
        m.html.as_deref().is_some_and(|h| h.contains(REPLY)),
        "{m:?}"
    );

    // Nothing twice: one event, one send, one Salesforce callout.
    let kinds = events(&store, &session_id).await;
    let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
    assert_eq!(count("case_reply.received"), 1, "{kinds:?}");
    assert_eq!(count("delivery.attempt_failed"), 1, "{kinds:?}");
    assert_eq!(count("delivery.sent"), 1, "{kinds:?}");
    let recorded = store.case_events().await.unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].outcome, "delivered");
    assert_eq!(emulator.case_webhook_deliveries().len(), 1);
    harness.fleet().check_alive();
    drop(harness);
    drop(store);
    emulator.shutdown().await;
}

/// The gateway's settings, as an operator sets them in the environment.
fn environment(
    database_url: &str,
    emulator: &EmulatorHandle,
    smtp_port: u16,
) -> Vec<(String, String)> {
    let app = emulator.config().connected_apps[0].clone();
    [
        ("HANDOFF_DATABASE_URL", database_url.to_string()),
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
        // See the module doc: a quiet 2–4 s between attempts to kill in.
        ("HANDOFF_WORKER__RETRY_BASE_MS", "4000".into()),
        ("HANDOFF_WORKER__RETRY_MAX_MS", "4000".into()),
        ("HANDOFF_WORKER__MAX_ATTEMPTS", "100".into()),
        ("HANDOFF_WORKER__POLL_INTERVAL_MS", "50".into()),
        ("HANDOFF_WORKER__LEASE_SECS", "3".into()),
        (
            "HANDOFF_CASE_REPLIES__WEBHOOK_SECRET",
            CASE_WEBHOOK_SECRET.into(),
        ),
        (
            "HANDOFF_CHANNELS__EMAIL__FROM",
            "Acme Support <support@acme.example>".into(),
        ),
        (
            "HANDOFF_CHANNELS__EMAIL__REPLY_TO",
            "support+{token}@acme.example".into(),
        ),
        ("HANDOFF_CHANNELS__EMAIL__SMTP__HOST", "127.0.0.1".into()),
        ("HANDOFF_CHANNELS__EMAIL__SMTP__PORT", smtp_port.to_string()),
        ("HANDOFF_CHANNELS__EMAIL__SMTP__TLS", "plain".into()),
        ("HANDOFF_CHANNELS__EMAIL__SMTP__TIMEOUT_SECS", "10".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The customer's first email, as the bot platform hands it over.
fn original_email(message_id: &str) -> String {
    format!(
        "From: Ann Example <ann@customer.example>\r\n\
To: Acme Support <support@acme.example>\r\n\
Subject: Parcel is late\r\n\
Message-ID: <{message_id}>\r\n\
Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
My parcel is two weeks late. Where is it?\r\n"
    )
}

/// The rep's public comment in the emulator's console; its id.
async fn rep_comment(emulator: &EmulatorHandle, case_id: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/__emulator/cases/{case_id}/comments",
            emulator.url()
        ))
        .json(&json!({"text": REPLY, "public": true, "rep_name": "Jane Rep"}))
        .send()
        .await
        .expect("console request");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("console answer");
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("comment id").to_string()
}

/// The session's only delivery (an email session gets no other).
async fn only_delivery(store: &Store, session_id: &str) -> delivery::Model {
    let mut rows = store.deliveries_for_session(session_id).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.remove(0)
}

/// The kinds of the session's events, oldest first (read from the database, so also while
/// no gateway runs).
async fn events(store: &Store, session_id: &str) -> Vec<String> {
    store
        .events(session_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// Polls `probe` until it yields a value; fails after the hang guard, or when the gateway
/// exited by itself.
async fn wait<T, F, Fut>(harness: &Harness, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        harness.fleet().check_alive();
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            harness.fleet().tails()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

struct Api {
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn call(
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
}
