//! Rep replies on a Case reach the customer, over real sockets: signed events posted to
//! `POST /salesforce/events` (HMAC or JWT), and the poller's SOQL against the emulator. A
//! chat session that fell back to a Case gets the rep's public comment on its callback,
//! once; everything that must not reach the customer is recorded and dropped; bad
//! authentication writes nothing.

use std::time::{Duration, Instant};

use gateway::Application;
use gateway::store::{Scope, Store};
use handoff_tests::receiver::{Receiver, receiver, verify};
use handoff_tests::{Db, both_databases, fresh_database, test_config};
use salesforce::SalesforceId;
use salesforce::events::sign;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const SECRET: &str = "case-webhook-test-secret";
const REP_USERNAME: &str = "rita.rep@handoff.local";
const REP_PASSWORD: &str = "rep-password";
const ISSUER: &str = "salesforce-test-org";
const AUDIENCE: &str = "https://handoff.test";
const PRIVATE_KEY: &str = include_str!("../../salesforce/tests/fixtures/test-only-rsa-private.pem");

struct Stack {
    app: gateway::RunningApp,
    store: Store,
    emulator: sf_emulator::EmulatorHandle,
    escalate: String,
    read: String,
    http: reqwest::Client,
    /// A second Salesforce user, the rep, whose comments the poller must find.
    rep: salesforce::Client,
    _dir: Option<tempfile::TempDir>,
}

fn emulator_config() -> sf_emulator::EmulatorConfig {
    let mut config = sf_emulator::EmulatorConfig::default();
    config.users.push(sf_emulator::config::UserConfig {
        name: Some("Rita Rep".into()),
        ..sf_emulator::config::UserConfig::new(REP_USERNAME, REP_PASSWORD)
    });
    config
}

async fn stack(db: Db, adjust: impl FnOnce(&mut gateway::Config)) -> Stack {
    let emulator = sf_emulator::spawn(
        emulator_config(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let (url, dir) = fresh_database(db).await;
    let mut config = test_config(&url, &emulator);
    config.case_replies.webhook_secret = Some(SECRET.into());
    adjust(&mut config);
    stack_on(emulator, config, dir).await
}

async fn stack_on(
    emulator: sf_emulator::EmulatorHandle,
    config: gateway::Config,
    dir: Option<tempfile::TempDir>,
) -> Stack {
    let app = Application::build(
        config.clone(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
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
    let connected = emulator.config().connected_apps[0].clone();
    let rep = salesforce::Client::new(salesforce::ClientConfig::new(
        emulator.url(),
        salesforce::Credentials::Password {
            client_id: connected.client_id,
            client_secret: connected.client_secret.into(),
            username: REP_USERNAME.into(),
            password: REP_PASSWORD.to_string().into(),
            security_token: String::new().into(),
        },
    ))
    .unwrap();
    Stack {
        app: app.spawn().unwrap(),
        store,
        emulator,
        escalate,
        read,
        http: reqwest::Client::new(),
        rep,
        _dir: dir,
    }
}

fn org_id(emulator: &sf_emulator::EmulatorHandle) -> String {
    SalesforceId::parse(&emulator.config().org_id)
        .unwrap()
        .into_string()
}

/// An event body as the trigger sends it.
fn event(id: &str, org: &str, case_id: &str, author: &str, public: bool) -> Value {
    json!({
        "eventId": id,
        "type": "case_comment.created",
        "orgId": org,
        "caseId": case_id,
        "caseNumber": "00001001",
        "occurredAt": "2026-12-02T10:00:00.000Z",
        "author": {"id": author, "name": "Rita Rep"},
        "body": {"text": "We have refunded your order.", "html": null},
        "isPublic": public
    })
}

const REP_USER: &str = "0055g0000000Rep";

impl Stack {
    async fn post(&self, body: &[u8], headers: &[(&str, String)]) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/salesforce/events", self.app.url()))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post_signed(&self, event: &Value) -> (u16, Value) {
        let body = event.to_string().into_bytes();
        let now = chrono::Utc::now().timestamp();
        self.post(&body, &signature_headers(SECRET, now, &body))
            .await
    }

    /// A chat escalation that falls back to a Case (no live messaging configured); returns
    /// the Case id once it is written.
    async fn fallback_session(&self, id: &str, hook: &Receiver) -> String {
        let status = self
            .http
            .post(format!("{}/v1/escalations", self.app.url()))
            .bearer_auth(&self.escalate)
            .json(&json!({
                "session_id": id,
                "channel": "chat",
                "customer": {"name": "Ann", "email": "ann@example.com"},
                "transcript": [{"role": "customer", "text": "I need a human", "at": "2026-11-22T09:00:00Z"}],
                "reply_to": {"webhook_url": hook.url},
            }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let session = self.session(id).await;
            if let Some(case_id) = session["salesforce_case_id"].as_str() {
                return case_id.to_string();
            }
            assert!(Instant::now() < deadline, "no Case: {session}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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

    async fn event_kinds(&self, id: &str) -> Vec<String> {
        let events: Value = self
            .http
            .get(format!("{}/v1/sessions/{id}/events", self.app.url()))
            .bearer_auth(&self.read)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    }

    /// Waits until the event's job has decided it; returns the outcome.
    async fn outcome(&self, event_id: &str) -> String {
        let id = SalesforceId::parse(event_id).unwrap().into_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(row) = self.store.case_event(&id).await.unwrap()
                && row.outcome != "queued"
            {
                return row.outcome;
            }
            assert!(Instant::now() < deadline, "event {id} never decided");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Rows written by rep-reply events: (events, sync jobs).
    async fn written(&self) -> (usize, usize) {
        let events = self.store.case_events().await.unwrap().len();
        let jobs = ["queued", "running", "done", "dead"];
        let mut sync_jobs = 0;
        for state in jobs {
            sync_jobs += self
                .store
                .jobs_in_state(state)
                .await
                .unwrap()
                .iter()
                .filter(|j| j.kind == "sync_case_event")
                .count();
        }
        (events, sync_jobs)
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.app.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.app.stop().await;
        self.emulator.shutdown().await;
    }
}

fn signature_headers(secret: &str, at: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("x-handoff-timestamp", at.to_string()),
        ("x-handoff-signature", sign(secret.as_bytes(), at, body)),
    ]
}

/// The webhooks of `type` the receiver got, waiting until there are `n`.
async fn wait_for(hook: &Receiver, kind: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found: Vec<Value> = hook
            .bodies()
            .into_iter()
            .filter(|b| b["type"] == kind)
            .collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{kind} never arrived: {:?}",
            hook.bodies()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// A rep's public comment, pushed by the trigger, reaches the chat customer's callback once,
// signed, with the rep's name; the same event again answers 200 duplicate and sends nothing.
both_databases!(
    a_pushed_public_comment_reaches_the_chat_callback_once,
    |db: Db| async move {
        let s = stack(db, |_| {}).await;
        let hook = receiver(vec![]).await;
        let case_id = s.fallback_session("reply-1", &hook).await;
        wait_for(&hook, "system.message", 1).await;
        let body = event(
            "00a5g0000000001",
            &org_id(&s.emulator),
            &case_id,
            REP_USER,
            true,
        );
        let (status, answer) = s.post_signed(&body).await;
        assert_eq!((status, &answer), (202, &json!({"status": "accepted"})));
        let replies = wait_for(&hook, "agent.message", 1).await;
        assert_eq!(replies[0]["session_id"], "reply-1");
        assert_eq!(replies[0]["data"]["text"], "We have refunded your order.");
        assert_eq!(replies[0]["data"]["sender_name"], "Rita Rep");
        for received in hook.received.lock().unwrap().iter() {
            verify(received);
        }
        assert_eq!(s.outcome("00a5g0000000001").await, "delivered");

        // Replayed (the trigger retried, or the same event signed again later): nothing twice.
        let (status, answer) = s.post_signed(&body).await;
        assert_eq!((status, &answer), (200, &json!({"status": "duplicate"})));
        let (status, _) = s.post_signed(&body).await;
        assert_eq!(status, 200);
        assert_eq!(s.written().await, (1, 1));
        let deliveries = s.store.deliveries_for_session("reply-1").await.unwrap();
        assert_eq!(deliveries.len(), 2, "the Case notice and the reply");
        let kinds = s.event_kinds("reply-1").await;
        assert_eq!(
            kinds.iter().filter(|k| *k == "case_reply.received").count(),
            1,
            "{kinds:?}"
        );
        // The metrics count the decision.
        let metrics = s.metrics().await;
        assert!(
            metrics.contains(
                "handoff_case_reply_events_total{source=\"push\",outcome=\"delivered\"} 1\n"
            ),
            "{metrics}"
        );
        assert_eq!(
            hook.bodies()
                .iter()
                .filter(|b| b["type"] == "agent.message")
                .count(),
            1
        );

        // An outbound email with only an HTML body reaches the chat as text.
        let mut email = event(
            "02s5g0000000001",
            &org_id(&s.emulator),
            &case_id,
            REP_USER,
            true,
        );
        email["type"] = json!("email_message.sent");
        email["body"] = json!({"text": "", "html": "<p>Your <b>refund</b> is done.</p>"});
        let (status, _) = s.post_signed(&email).await;
        assert_eq!(status, 202);
        let replies = wait_for(&hook, "agent.message", 2).await;
        assert_eq!(replies[1]["data"]["text"], "Your refund is done.");
        s.stop().await;
    }
);

// Unsigned, wrongly signed, stale, future-dated, malformed and other-org events are refused
// with 401 `invalid_signature` and write nothing; a body that is not an event is 400 with
// the field named; over 1 MiB is 413.
both_databases!(bad_events_write_nothing, |db: Db| async move {
    let s = stack(db, |c| {
        c.case_replies.org_id = Some("00D5g000004Hnd0".into())
    })
    .await;
    let org = org_id(&s.emulator);
    let body = event("00a5g0000000002", &org, "500Hu000020yLuH", REP_USER, true)
        .to_string()
        .into_bytes();
    let now = chrono::Utc::now().timestamp();
    let good = signature_headers(SECRET, now, &body);
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("unsigned", vec![]),
        (
            "wrong secret",
            signature_headers("another-secret", now, &body),
        ),
        ("stale", signature_headers(SECRET, now - 301, &body)),
        ("future", signature_headers(SECRET, now + 301, &body)),
        (
            "timestamp not the signed one",
            vec![
                ("x-handoff-timestamp", (now - 1).to_string()),
                good[1].clone(),
            ],
        ),
        (
            "malformed hex",
            vec![good[0].clone(), ("x-handoff-signature", "sha256=zz".into())],
        ),
        ("signature without timestamp", vec![good[1].clone()]),
        (
            "a bearer token, no JWT configured",
            vec![("authorization", "Bearer abc".into())],
        ),
    ];
    for (name, headers) in cases {
        let (status, problem) = s.post(&body, &headers).await;
        assert_eq!(status, 401, "{name}: {problem}");
        assert_eq!(problem["code"], "invalid_signature", "{name}");
    }
    // Signed correctly, but for another org.
    let other = event(
        "00a5g0000000002",
        "00D5g000009Othr",
        "500Hu000020yLuH",
        REP_USER,
        true,
    )
    .to_string()
    .into_bytes();
    let (status, problem) = s
        .post(&other, &signature_headers(SECRET, now, &other))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("invalid_signature"))
    );
    // Signed, but not an event.
    let mut bad = event("00a5g0000000002", &org, "500Hu000020yLuH", REP_USER, true);
    bad["caseId"] = json!("001D000000IqhSL");
    let (status, problem) = s.post_signed(&bad).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["code"], "invalid_event");
    assert_eq!(problem["field"], "caseId");
    // Over 1 MiB.
    let mut huge = event("00a5g0000000002", &org, "500Hu000020yLuH", REP_USER, true);
    huge["body"]["text"] = json!("x".repeat(1024 * 1024));
    let (status, problem) = s.post_signed(&huge).await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(s.written().await, (0, 0), "nothing written");
    s.stop().await;
});

// Events that must not reach the customer are accepted, decided and recorded: an unknown
// Case, an internal comment, and a comment by the gateway's own integration user.
both_databases!(ignored_events_are_recorded, |db: Db| async move {
    let s = stack(db, |_| {}).await;
    let hook = receiver(vec![]).await;
    let case_id = s.fallback_session("reply-3", &hook).await;
    wait_for(&hook, "system.message", 1).await;
    let org = org_id(&s.emulator);
    let me = s.app.state.salesforce.identity().await.unwrap().unwrap().1;
    let unknown = event("00a5g0000000031", &org, "500Hu000020yLuH", REP_USER, true);
    let internal = event("00a5g0000000032", &org, &case_id, REP_USER, false);
    let own = event("00a5g0000000033", &org, &case_id, &me, true);
    for body in [&unknown, &internal, &own] {
        let (status, answer) = s.post_signed(body).await;
        assert_eq!(status, 202, "{answer}");
    }
    assert_eq!(s.outcome("00a5g0000000031").await, "ignored_unknown_case");
    assert_eq!(s.outcome("00a5g0000000032").await, "ignored_internal");
    assert_eq!(s.outcome("00a5g0000000033").await, "ignored_own_write");
    let kinds = s.event_kinds("reply-3").await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "case_reply.ignored").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        s.store
            .deliveries_for_session("reply-3")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(hook.bodies().iter().all(|b| b["type"] != "agent.message"));

    // A session on a channel that cannot send to customers (voice): the event is recorded,
    // and the session says the customer was not told.
    let status = s
        .http
        .post(format!("{}/v1/escalations", s.app.url()))
        .bearer_auth(&s.escalate)
        .json(&json!({
            "session_id": "reply-3b",
            "channel": "voice",
            "customer": {"name": "Bo", "phone": "+15550107788"},
            "transcript": [{"role": "customer", "text": "help", "at": "2026-11-22T09:00:00Z"}],
        }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    let case_b = loop {
        if let Some(id) = s.session("reply-3b").await["salesforce_case_id"].as_str() {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "no Case for reply-3b");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, _) = s
        .post_signed(&event("00a5g0000000034", &org, &case_b, REP_USER, true))
        .await;
    assert_eq!(status, 202);
    assert_eq!(s.outcome("00a5g0000000034").await, "ignored_no_target");
    let kinds = s.event_kinds("reply-3b").await;
    assert!(
        kinds.iter().any(|k| k == "customer.not_notified"),
        "{kinds:?}"
    );
    assert!(
        s.store
            .deliveries_for_session("reply-3b")
            .await
            .unwrap()
            .is_empty()
    );
    s.stop().await;
});

// The Named Credential path: an RS256 JWT from the configured certificate authenticates the
// event; the wrong audience, an HS256 token keyed with the certificate, or an expired token do not.
both_databases!(a_jwt_authenticates_an_event, |db: Db| async move {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let cert = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../salesforce/tests/fixtures/test-only-rsa-cert.pem");
    let s = stack(db, |c| {
        c.case_replies.webhook_secret = None;
        c.case_replies.jwt_certificates = vec![cert.clone()];
        c.case_replies.jwt_issuer = Some(ISSUER.into());
        c.case_replies.jwt_audience = Some(AUDIENCE.into());
    })
    .await;
    let body = event(
        "00a5g0000000004",
        &org_id(&s.emulator),
        "500Hu000020yLuH",
        REP_USER,
        true,
    )
    .to_string()
    .into_bytes();
    let now = chrono::Utc::now().timestamp();
    let rs256 = |claims: Value| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let claims =
        |aud: &str, iat: i64, exp: i64| json!({"iss": ISSUER, "aud": aud, "iat": iat, "exp": exp});
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(AUDIENCE, now, now + 120),
        &EncodingKey::from_secret(std::fs::read(&cert).unwrap().as_slice()),
    )
    .unwrap();
    for (name, token) in [
        (
            "wrong audience",
            rs256(claims("https://elsewhere", now, now + 120)),
        ),
        ("expired", rs256(claims(AUDIENCE, now - 400, now - 100))),
        ("HS256 with the certificate", hs256),
    ] {
        let (status, problem) = s
            .post(&body, &[("authorization", format!("Bearer {token}"))])
            .await;
        assert_eq!(status, 401, "{name}: {problem}");
    }
    // HMAC headers are refused when no secret is configured.
    let (status, _) = s.post(&body, &signature_headers(SECRET, now, &body)).await;
    assert_eq!(status, 401);
    assert_eq!(s.written().await, (0, 0));
    let token = rs256(claims(AUDIENCE, now, now + 120));
    let (status, answer) = s
        .post(&body, &[("authorization", format!("Bearer {token}"))])
        .await;
    assert_eq!((status, answer), (202, json!({"status": "accepted"})));
    assert_eq!(s.outcome("00a5g0000000004").await, "ignored_unknown_case");
    s.stop().await;
});

/// Inserts a CaseComment on `case_id` as the rep (a user other than the integration user).
async fn rep_comment(s: &Stack, case_id: &str, text: &str, public: bool) -> String {
    let saved = s
        .rep
        .create(
            "CaseComment",
            &json!({"ParentId": case_id, "CommentBody": text, "IsPublished": public}),
        )
        .await
        .expect("the rep's comment");
    saved.id.expect("comment id").into_string()
}

/// Waits until the poller has made at least `n` SOQL calls (from /metrics).
async fn poll_calls_at_least(s: &Stack, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = s.metrics().await;
        let calls = metrics
            .lines()
            .find_map(|l| l.strip_prefix("handoff_case_reply_poll_calls_total "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        if calls >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the poller made {calls} calls: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn polling(c: &mut gateway::Config) {
    c.case_replies.poll = true;
    c.case_replies.poll_interval_secs = 1;
}

// The poller finds a rep's public comment and delivers it once; later polls re-read the
// overlap and send nothing again; an internal comment is never sent; the same record pushed
// afterwards is a duplicate.
both_databases!(
    the_poller_delivers_a_public_comment_once,
    |db: Db| async move {
        let s = stack(db, polling).await;
        let hook = receiver(vec![]).await;
        let case_id = s.fallback_session("poll-1", &hook).await;
        wait_for(&hook, "system.message", 1).await;
        let internal = rep_comment(&s, &case_id, "Note to self: check the refund.", false).await;
        let public = rep_comment(&s, &case_id, "Your refund is on its way.", true).await;
        let replies = wait_for(&hook, "agent.message", 1).await;
        assert_eq!(replies[0]["data"]["text"], "Your refund is on its way.");
        assert_eq!(replies[0]["data"]["sender_name"], "Rita Rep");
        assert_eq!(s.outcome(&public).await, "delivered");
        let row = s.store.case_event(&public).await.unwrap().unwrap();
        assert_eq!(row.source, "poll");
        // An outbound email the rep sends from the Case is found too.
        let email = s
            .rep
            .create(
                "EmailMessage",
                &json!({"ParentId": case_id, "Incoming": false, "Status": "3",
                        "Subject": "Re: your order", "TextBody": "Sent by email as well.",
                        "ToAddress": "ann@example.com"}),
            )
            .await
            .expect("the rep's email")
            .id
            .expect("email id")
            .into_string();
        let replies = wait_for(&hook, "agent.message", 2).await;
        assert_eq!(replies[1]["data"]["text"], "Sent by email as well.");
        assert_eq!(s.outcome(&email).await, "delivered");
        // Two more polls: nothing new, nothing twice.
        let metrics = s.metrics().await;
        let calls = metrics
            .lines()
            .find_map(|l| l.strip_prefix("handoff_case_reply_poll_calls_total "))
            .unwrap()
            .parse::<f64>()
            .unwrap() as u64;
        poll_calls_at_least(&s, calls + 2).await;
        assert_eq!(
            s.written().await,
            (2, 2),
            "the internal comment is not even queried"
        );
        assert!(s.store.case_event(&internal).await.unwrap().is_none());
        // The trigger's push of the same record, late.
        let mut body = event(&public, &org_id(&s.emulator), &case_id, REP_USER, true);
        body["body"]["text"] = json!("Your refund is on its way.");
        let (status, _) = s.post_signed(&body).await;
        assert_eq!(status, 200);
        assert_eq!(
            hook.bodies()
                .iter()
                .filter(|b| b["type"] == "agent.message")
                .count(),
            2
        );
        let metrics = s.metrics().await;
        assert!(
            metrics.contains("handoff_case_reply_poll_calls_per_day 86400\n"),
            "one call per 1 s poll: {metrics}"
        );
        s.stop().await;
    }
);

// Pushed first, then polled: one event, one message. (The gateway that took the push stops;
// one with polling on takes over the database and polls the same record.)
both_databases!(push_then_poll_is_one_delivery, |db: Db| async move {
    let s = stack(db, |_| {}).await;
    let hook = receiver(vec![]).await;
    let case_id = s.fallback_session("poll-2", &hook).await;
    wait_for(&hook, "system.message", 1).await;
    let public = rep_comment(&s, &case_id, "Pushed, then polled.", true).await;
    let mut body = event(&public, &org_id(&s.emulator), &case_id, REP_USER, true);
    body["body"]["text"] = json!("Pushed, then polled.");
    let (status, _) = s.post_signed(&body).await;
    assert_eq!(status, 202);
    assert_eq!(s.outcome(&public).await, "delivered");
    wait_for(&hook, "agent.message", 1).await;
    let Stack {
        app,
        store,
        emulator,
        _dir,
        ..
    } = s;
    let mut config = app.state.config.as_ref().clone();
    app.stop().await;
    polling(&mut config);
    let second = Application::build(config, TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap()
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while second.state.replies.poll_calls().0 < 2 {
        assert!(Instant::now() < deadline, "the poller never ran twice");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = store.case_events().await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].source, "push");
    assert_eq!(
        hook.bodies()
            .iter()
            .filter(|b| b["type"] == "agent.message")
            .count(),
        1
    );
    second.stop().await;
    emulator.shutdown().await;
});

// Two replicas with polling on, one database: one poller job exists, whichever replica
// holds its lease polls, and a reply goes out once.
both_databases!(two_replicas_share_one_poller, |db: Db| async move {
    let s = stack(db, polling).await;
    let config = s.app.state.config.as_ref().clone();
    let second = Application::build(config, TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap()
        .spawn()
        .unwrap();
    // Starting again (a third replica, or a restart) creates nothing.
    assert!(!s.store.ensure_poller_job(10).await.unwrap());
    assert_eq!(poller_jobs(&s.store).await, 1, "one poller job");
    let hook = receiver(vec![]).await;
    let case_id = s.fallback_session("poll-3", &hook).await;
    wait_for(&hook, "system.message", 1).await;
    rep_comment(&s, &case_id, "One of you will tell them.", true).await;
    wait_for(&hook, "agent.message", 1).await;
    let first_calls = s.app.state.replies.poll_calls().0;
    let second_calls = second.state.replies.poll_calls().0;
    assert!(first_calls + second_calls >= 1);
    assert_eq!(
        hook.bodies()
            .iter()
            .filter(|b| b["type"] == "agent.message")
            .count(),
        1
    );
    assert_eq!(poller_jobs(&s.store).await, 1);
    second.stop().await;
    s.stop().await;
});

/// Poller job rows, whatever their state.
async fn poller_jobs(store: &Store) -> usize {
    let mut n = 0;
    for state in ["queued", "running", "done", "dead"] {
        n += store
            .jobs_in_state(state)
            .await
            .unwrap()
            .iter()
            .filter(|j| j.kind == "poll_case_replies")
            .inspect(|j| assert_eq!(j.session_id, "_poller"))
            .count();
    }
    n
}

// `handoff serve --sandbox` generates a case-webhook secret and hands it out, so the
// emulator (or a script) can sign rep-reply events the sandbox accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_hands_out_its_case_webhook_secret() {
    let app = Application::build_sandbox(
        gateway::Config::defaults(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        true,
    )
    .await
    .unwrap();
    let org = SalesforceId::parse(&app.emulator().unwrap().config().org_id)
        .unwrap()
        .into_string();
    let running = app.spawn().unwrap();
    let http = reqwest::Client::new();
    let info: Value = http
        .get(format!("{}/v1/sandbox", running.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = info["case_webhook_secret"]
        .as_str()
        .expect("case_webhook_secret")
        .to_string();
    assert_eq!(secret.len(), 64, "32 random bytes in hex");
    let body = event("00a5g0000000009", &org, "500Hu000020yLuH", REP_USER, true)
        .to_string()
        .into_bytes();
    let now = chrono::Utc::now().timestamp();
    for (key, expected) in [("not-the-secret", 401), (secret.as_str(), 202)] {
        let mut request = http
            .post(format!("{}/salesforce/events", running.url()))
            .header("content-type", "application/json")
            .body(body.clone());
        for (name, value) in signature_headers(key, now, &body) {
            request = request.header(name, value);
        }
        assert_eq!(request.send().await.unwrap().status().as_u16(), expected);
    }

    // The sandbox's emulator is wired to it: a rep's public comment at the console is
    // posted, signed, to this gateway, which accepts it.
    let token = info["api_token"].as_str().unwrap();
    let driver = gateway::demo::Driver::new(running.url(), token.into()).unwrap();
    driver
        .escalate(&json!({
            "session_id": "sandbox-reply-1",
            "channel": "email",
            "customer": {"name": "Ann", "email": "ann@example.com"},
            "summary": "Parcel late.",
            "transcript": [{"role": "customer", "text": "Where is it?", "at": "2026-12-01T09:00:00Z"}],
        }))
        .await
        .unwrap();
    let session = driver
        .wait_escalated("sandbox-reply-1", Duration::from_secs(30))
        .await
        .unwrap();
    let case_id = session.salesforce_case_id.unwrap();
    let emulator_url = info["salesforce_url"].as_str().unwrap();
    let status = http
        .post(format!(
            "{emulator_url}/__emulator/cases/{case_id}/comments"
        ))
        .json(&json!({"text": "It left the depot.", "public": true}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 201);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events: Value = http
            .get(format!(
                "{}/v1/sessions/sandbox-reply-1/events",
                running.url()
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kinds: Vec<&str> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        // The sandbox has no SMTP relay, so email cannot deliver: the reply is
        // recorded as not told to the customer.
        if events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "customer.not_notified" && e["data"]["notice"] == "case_reply")
        {
            break;
        }
        if Instant::now() > deadline {
            let deliveries = http
                .get(format!("{emulator_url}/__emulator/case-webhook/deliveries"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            panic!("the rep's comment never reached the sandbox: {kinds:?} {deliveries}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
}

/// A rep action in the emulator's console (`/__emulator/cases/{caseId}/comments|emails`).
async fn console(s: &Stack, case_id: &str, what: &str, body: Value) -> String {
    let response = s
        .http
        .post(format!(
            "{}/__emulator/cases/{case_id}/{what}",
            s.emulator.url()
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

// End to end with the emulator playing Salesforce's side, as the shipped Apex does: a rep's
// public comment in the console is posted, HMAC-signed, to the gateway and reaches the chat
// customer once; an internal comment fires nothing and reaches no one.
both_databases!(
    the_emulators_signed_webhook_reaches_the_customer,
    |db: Db| async move {
        let s = stack(db, |_| {}).await;
        s.emulator
            .set_case_webhook(Some(sf_emulator::CaseWebhookConfig {
                url: format!("{}/salesforce/events", s.app.url()),
                hmac_secret: Some(SECRET.into()),
                jwt: None,
                timeout_secs: 10,
            }))
            .unwrap();
        let hook = receiver(vec![]).await;
        let case_id = s.fallback_session("emu-1", &hook).await;
        wait_for(&hook, "system.message", 1).await;
        let internal = console(
            &s,
            &case_id,
            "comments",
            json!({"text": "Internal only.", "public": false}),
        )
        .await;
        let public = console(
            &s,
            &case_id,
            "comments",
            json!({"text": "Your replacement ships today.", "public": true, "rep_name": "Jane Rep"}),
        )
        .await;
        let replies = wait_for(&hook, "agent.message", 1).await;
        assert_eq!(replies[0]["data"]["text"], "Your replacement ships today.");
        assert_eq!(replies[0]["data"]["sender_name"], "Jane Rep");
        assert_eq!(s.outcome(&public).await, "delivered");
        assert!(s.store.case_event(&internal).await.unwrap().is_none());
        let deliveries = s.emulator.case_webhook_deliveries();
        assert_eq!(deliveries.len(), 1, "{deliveries:?}");
        s.stop().await;
    }
);

// The same with the Named Credential's JWT: the gateway trusts the emulator's certificate.
both_databases!(the_emulators_jwt_webhook_is_accepted, |db: Db| async move {
    let emulator = sf_emulator::spawn(
        emulator_config(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let pem = tokio::task::block_in_place(|| emulator.case_webhook_certificate_pem()).unwrap();
    let cert_dir = tempfile::tempdir().unwrap();
    let cert = cert_dir.path().join("emulator.crt");
    std::fs::write(&cert, pem).unwrap();
    let (url, dir) = fresh_database(db).await;
    let mut config = test_config(&url, &emulator);
    config.case_replies.jwt_certificates = vec![cert];
    config.case_replies.jwt_issuer = Some(ISSUER.into());
    config.case_replies.jwt_audience = Some(AUDIENCE.into());
    let s = stack_on(emulator, config, dir).await;
    s.emulator
        .set_case_webhook(Some(sf_emulator::CaseWebhookConfig {
            url: format!("{}/salesforce/events", s.app.url()),
            hmac_secret: None,
            jwt: Some(sf_emulator::CaseWebhookJwt {
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
            }),
            timeout_secs: 10,
        }))
        .unwrap();
    let hook = receiver(vec![]).await;
    let case_id = s.fallback_session("emu-2", &hook).await;
    wait_for(&hook, "system.message", 1).await;
    let email = console(
        &s,
        &case_id,
        "emails",
        json!({"text": "Sent from the Case.", "html": "<p>Sent from the Case.</p>", "rep_name": "Jane Rep"}),
    )
    .await;
    let replies = wait_for(&hook, "agent.message", 1).await;
    assert_eq!(replies[0]["data"]["text"], "Sent from the Case.");
    assert_eq!(s.outcome(&email).await, "delivered");
    s.stop().await;
});
