//! Customers writing back through provider webhooks, over real sockets: a bridge's signed
//! messages reach the rep of the live session once; a phone channel of the test's own
//! (`textline`, SMS-like: keywords, an answer to unknown senders, a second channel delivering
//! through it) exercises opt-out, opt-in, help, unknown senders, Case notes and provider
//! status reports; what does not verify writes nothing.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use channels::webhook::WebhookSecret;
use channels::{Media, ProviderStatus, ReplyTarget};
use gateway::store::opt_out;
use handoff_tests::console::{RepConsole, texts_by};
use handoff_tests::textline::{
    OPT_IN_REPLY, Sent, TextLine, UNKNOWN_SENDER_REPLY, WireBody, WireMessage, WireStatus, sign,
};
use handoff_tests::{
    Db, TEST_WEBHOOK_SECRET, TestApp, both_databases, spawn_app_with, spawn_live_app_with_channels,
};

/// What the gateway is configured to be reached at (with a trailing slash, which it drops).
const PUBLIC_URL: &str = "https://handoff.example.com/";
/// Another secret, for forgeries.
const OTHER_SECRET: &str = "whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldCB3ZSB1c2U=";

fn bridge_config() -> channels::ChannelConfig {
    channels::ChannelConfig::Bridge(channels::BridgeConfig {
        enabled: true,
        url: "https://bridge.example.com/line".into(),
        secret: Some(TEST_WEBHOOK_SECRET.into()),
        secret_file: None,
        preferred_route: None,
        allow_private_url: false,
    })
}

struct Setup {
    app: TestApp,
    textline: Arc<TextLine>,
}

/// Live messaging for `textline` and the `line` bridge; `callline` (delivering through
/// `textline`) makes Cases.
async fn setup(db: Db) -> Setup {
    let textline = Arc::new(TextLine::new("textline", TEST_WEBHOOK_SECRET));
    let callline = Arc::new(TextLine::delivering_through(
        "callline",
        TEST_WEBHOOK_SECRET,
        "textline",
    ));
    let plugins: Vec<Arc<dyn channels::Channel>> = vec![textline.clone(), callline];
    let app = spawn_live_app_with_channels(db, plugins, |config| {
        config.public_url = Some(PUBLIC_URL.into());
        config.miaw.channels = vec!["textline".into(), "line".into()];
        config.channels.insert("line".into(), bridge_config());
    })
    .await;
    Setup { app, textline }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
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

async fn post(
    app: &TestApp,
    path: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> (u16, String, Value) {
    let mut request = app
        .http
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, content_type, body)
}

/// Standard Webhooks headers over `body` alone (bridges).
fn bridge_headers(whsec: &str, id: &str, timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
    let secret = WebhookSecret::parse(&whsec.to_string().into()).expect("secret");
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), timestamp.to_string()),
        ("webhook-signature".into(), secret.sign(id, timestamp, body)),
    ]
}

async fn post_bridge(app: &TestApp, body: &Value) -> (u16, Value) {
    let bytes = body.to_string().into_bytes();
    let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let headers = bridge_headers(TEST_WEBHOOK_SECRET, &id, Utc::now().timestamp(), &bytes);
    let (status, _, answer) = post(app, "/v1/channels/line/inbound", headers, bytes).await;
    (status, answer)
}

/// Posts a textline webhook to `path` (with its query), signed over the public URL.
async fn post_textline(app: &TestApp, path: &str, body: &WireBody) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).expect("body");
    let url = format!("{}{path}", PUBLIC_URL.trim_end_matches('/'));
    let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let headers = sign(
        TEST_WEBHOOK_SECRET,
        &url,
        &id,
        Utc::now().timestamp(),
        &bytes,
    );
    let (status, _, answer) = post(app, path, headers, bytes).await;
    (status, answer)
}

fn text(id: &str, from: &str, text: &str) -> WireBody {
    WireBody {
        messages: vec![WireMessage {
            id: id.into(),
            from: from.into(),
            to: Some("+15550100000".into()),
            text: text.into(),
            media: vec![],
            at: now(),
        }],
        statuses: vec![],
    }
}

async fn list(app: &TestApp, state: &str) -> Vec<Value> {
    let (status, body) = app
        .get(
            &format!("/v1/inbound-messages?state={state}"),
            Some(&app.read_token),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["inbound_messages"].as_array().expect("list").clone()
}

async fn session(app: &TestApp, id: &str) -> Value {
    let (status, body) = app
        .get(&format!("/v1/sessions/{id}"), Some(&app.read_token))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn wait_session(app: &TestApp, id: &str, what: &str, ready: impl Fn(&Value) -> bool) {
    wait_for(what, || async {
        let s = session(app, id).await;
        ready(&s).then_some(())
    })
    .await;
}

async fn last_message_at(app: &TestApp, id: &str) -> Option<i64> {
    app.gateway
        .state
        .store
        .session(id)
        .await
        .expect("session")
        .expect("exists")
        .customer_last_message_at
}

/// A live escalation on `channel` whose conversation is waiting for a rep; its conversation id.
async fn live_escalation(app: &TestApp, body: Value) -> String {
    let (status, answer) = app.post_escalation(&body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["route"], "messaging", "{answer}");
    let conversation = answer["salesforce_miaw_session_id"]
        .as_str()
        .expect("conversation id")
        .to_string();
    RepConsole::new(&app.emulator.url())
        .wait_for(&conversation, "the conversation", |c| {
            c["status"] == "waiting"
        })
        .await;
    conversation
}

fn escalation(session_id: &str, channel: &str, customer: Value) -> Value {
    json!({
        "session_id": session_id,
        "channel": channel,
        "customer": customer,
        "priority": "medium",
        "summary": "The customer's parcel is late.",
        "transcript": [
            {"role": "customer", "text": "My parcel is late.", "at": "2026-11-22T10:00:00Z"},
            {"role": "bot", "text": "A colleague will look into it.", "at": "2026-11-22T10:01:00Z"},
        ],
    })
}

async fn sent_to(textline: &TextLine, number: &str, n: usize) -> Vec<Sent> {
    wait_for(&format!("{n} messages to the customer"), || async {
        let sent: Vec<Sent> = textline
            .sent()
            .into_iter()
            .filter(|s| {
                s.target
                    == ReplyTarget::Phone {
                        number: number.into(),
                    }
            })
            .collect();
        (sent.len() >= n).then_some(sent)
    })
    .await
}

// A bridge's messages reach the rep of the session they name, or of the session whose reply
// address sent them; a replayed webhook reaches the rep once; the session's last customer
// message time moves.
both_databases!(bridge_messages_reach_the_rep_once, |db: Db| async move {
    let Setup { app, .. } = setup(db).await;
    let rep = RepConsole::new(&app.emulator.url());
    let mut body = escalation("br-1", "line", json!({"name": "Ana Ruiz"}));
    body["reply_to"] = json!({"address": "line:U42"});
    let conversation = live_escalation(&app, body).await;
    let before = last_message_at(&app, "br-1").await;

    let first = json!({"messages": [
        {"id": "m-1", "session_id": "br-1", "text": "Is my refund done?", "at": now()}
    ]});
    let (status, answer) = post_bridge(&app, &first).await;
    assert_eq!((status, &answer), (200, &json!({"received": true})));
    // The same message again (a retried webhook, newly signed): recorded once.
    let (status, _) = post_bridge(&app, &first).await;
    assert_eq!(status, 200);
    let second_at = now();
    let by_address = json!({"messages": [
        {"id": "m-2", "from": "line:U42", "text": "Hello again", "at": second_at}
    ]});
    assert_eq!(post_bridge(&app, &by_address).await.0, 200);

    let conv = rep
        .wait_for(&conversation, "both messages at the rep", |c| {
            texts_by(c, "EndUser").iter().any(|t| t == "Hello again")
        })
        .await;
    let texts = texts_by(&conv, "EndUser");
    assert_eq!(
        texts.iter().filter(|t| *t == "Is my refund done?").count(),
        1,
        "{texts:?}"
    );
    let to_rep = list(&app, "to_rep").await;
    let ids: Vec<&str> = to_rep.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{to_rep:?}");
    assert!(ids.contains(&"line:m-1") && ids.contains(&"line:m-2"));
    assert!(to_rep.iter().all(|m| m["session_id"] == "br-1"));
    let (status, one) = app
        .get("/v1/inbound-messages/line:m-2", Some(&app.read_token))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["text"], "Hello again");
    assert_eq!(one["from"], "line:U42");
    let after = last_message_at(&app, "br-1").await;
    assert_eq!(after, Some(second_at.timestamp_millis()));
    assert!(after > before);
    let kinds = app.event_kinds("br-1").await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "customer.message").count(),
        2,
        "{kinds:?}"
    );
});

// Unsigned, forged, stale or tampered webhooks, or ones signed for another URL, are refused
// with 401 and write nothing; names that are not bridges taking webhooks are one 404; an
// oversized body is 413 before it is read; a verified body that does not parse names the field.
both_databases!(unverified_webhooks_write_nothing, |db: Db| async move {
    let Setup { app, textline } = setup(db).await;
    let body = json!({"messages": [
        {"id": "forged-1", "from": "line:U42", "text": "forged", "at": now()}
    ]})
    .to_string()
    .into_bytes();
    let ts = Utc::now().timestamp();
    let path = "/v1/channels/line/inbound";
    let mut attempts = vec![
        Vec::new(),
        bridge_headers(OTHER_SECRET, "evt_1", ts, &body),
        bridge_headers(TEST_WEBHOOK_SECRET, "evt_1", ts - 600, &body),
        bridge_headers(TEST_WEBHOOK_SECRET, "evt_1", ts, b"{\"messages\":[]}"),
    ];
    let mut unsigned_id = bridge_headers(TEST_WEBHOOK_SECRET, "evt_1", ts, &body);
    unsigned_id.retain(|(name, _)| name != "webhook-id");
    attempts.push(unsigned_id);
    for headers in attempts {
        let (status, content_type, answer) = post(&app, path, headers, body.clone()).await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(answer["code"], "invalid_signature");
    }
    // Signed over another URL than the configured public one.
    let wire = text("SMforged", "+15550100123", "forged");
    let bytes = serde_json::to_vec(&wire).unwrap();
    let elsewhere = sign(
        TEST_WEBHOOK_SECRET,
        "https://attacker.example.com/v1/channels/textline/inbound",
        "evt_2",
        ts,
        &bytes,
    );
    let (status, _, answer) = post(&app, "/v1/channels/textline/inbound", elsewhere, bytes).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("invalid_signature"))
    );

    for name in ["nope", "sms", "email", "Line", "callline"] {
        let headers = bridge_headers(TEST_WEBHOOK_SECRET, "evt_3", ts, &body);
        let (status, _, answer) = post(
            &app,
            &format!("/v1/channels/{name}/inbound"),
            headers,
            body.clone(),
        )
        .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (404, Some("not_found")),
            "{name}"
        );
    }
    let huge = vec![b' '; gateway::inbound::provider::MAX_WEBHOOK_BYTES + 1];
    let headers = bridge_headers(TEST_WEBHOOK_SECRET, "evt_4", ts, &huge);
    let (status, _, answer) = post(&app, path, headers, huge).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (413, Some("body_too_large"))
    );
    let empty_id = json!({"messages": [{"id": "", "text": "x", "at": now()}]})
        .to_string()
        .into_bytes();
    let headers = bridge_headers(TEST_WEBHOOK_SECRET, "evt_5", ts, &empty_id);
    let (status, _, answer) = post(&app, path, headers, empty_id).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "invalid_inbound");
    assert_eq!(answer["field"], "messages[0].id");

    for state in gateway::store::InboundMessageState::ALL {
        assert_eq!(list(&app, state).await, Vec::<Value>::new(), "{state}");
    }
    assert!(textline.sent().is_empty());
    let (status, answer) = app
        .get(
            "/v1/inbound-messages?state=everything",
            Some(&app.read_token),
        )
        .await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("state")));
    let (status, _) = app.get("/v1/inbound-messages", None).await;
    assert_eq!(status, 401);
});

// A gateway not set up for a provider says what to configure: a channel without inbound
// settings names its table; without public_url, the URL providers sign cannot be rebuilt.
both_databases!(inbound_routes_say_what_to_configure, |db: Db| async move {
    let app = spawn_app_with(db, |config| {
        config.public_url = None;
        config.channels.insert("line".into(), bridge_config());
    })
    .await;
    let (status, answer) = app
        .post_raw(
            "/channels/sms/inbound",
            None,
            "application/x-www-form-urlencoded",
            b"Body=hi".to_vec(),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["code"], "inbound_not_configured");
    assert_eq!(answer["field"], "channels.sms");
    let (status, answer) = app
        .get(
            "/channels/whatsapp/inbound?hub.mode=subscribe&hub.verify_token=x&hub.challenge=42",
            None,
        )
        .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (503, Some("channels.whatsapp"))
    );
    let body = json!({"messages": []}).to_string().into_bytes();
    let headers = bridge_headers(TEST_WEBHOOK_SECRET, "evt_1", Utc::now().timestamp(), &body);
    let (status, _, answer) = post(&app, "/v1/channels/line/inbound", headers, body).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["code"], "public_url_not_configured");
});

// A number with no session is recorded for operators and answered once a day; ids that
// differ only in letter case are two messages; a replay is not; the answer's provider reports
// move its delivery forward only, and a failure fails it.
both_databases!(
    unknown_senders_are_recorded_and_answered_once,
    |db: Db| async move {
        let Setup { app, textline } = setup(db).await;
        let number = "+15550100077";
        let path = "/v1/channels/textline/inbound";
        for (id, words) in [
            ("SMu1", "Hi, is anyone there?"),
            ("SMu1", "Hi, is anyone there?"),
            ("smu1", "Hello?"),
            ("SMu2", "Hello??"),
        ] {
            let (status, answer) = post_textline(&app, path, &text(id, number, words)).await;
            assert_eq!((status, &answer), (200, &json!({"received": true})));
        }
        let unmatched = list(&app, "unmatched").await;
        let ids: Vec<&str> = unmatched
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        for id in ["textline:SMu1", "textline:smu1", "textline:SMu2"] {
            assert!(ids.contains(&id), "{id} in {ids:?}");
        }
        assert!(
            unmatched
                .iter()
                .all(|m| m["from"] == number && m["session_id"].is_null())
        );

        let sent = sent_to(&textline, number, 1).await;
        assert_eq!(sent[0].message.text, UNKNOWN_SENDER_REPLY);
        assert_eq!(sent[0].message.session_id, "inbound:textline:SMu1");
        let store = &app.gateway.state.store;
        for later in ["inbound:textline:smu1", "inbound:textline:SMu2"] {
            assert!(
                store
                    .deliveries_for_session(later)
                    .await
                    .unwrap()
                    .is_empty(),
                "answered once a day, not again for {later}"
            );
        }
        let delivery = wait_for("the answer sent", || async {
            let rows = store
                .deliveries_for_session("inbound:textline:SMu1")
                .await
                .unwrap();
            rows.into_iter().find(|d| d.state == "sent")
        })
        .await;
        assert_eq!(delivery.channel, "textline");
        assert_eq!(
            delivery.provider_id.as_deref(),
            Some(sent[0].provider_id.as_str())
        );

        // Reports arrive at a URL with a query (signed as called).
        let report = |status: ProviderStatus, code: Option<&str>| WireBody {
            messages: vec![],
            statuses: vec![WireStatus {
                id: sent[0].provider_id.clone(),
                delivery_id: Some(delivery.id.clone()),
                status,
                error_code: code.map(str::to_string),
                at: now(),
            }],
        };
        let status_path = format!("{path}?kind=status&delivery={}", delivery.id);
        for (status, code) in [
            (ProviderStatus::Delivered, None),
            (ProviderStatus::Sent, None),
        ] {
            assert_eq!(
                post_textline(&app, &status_path, &report(status, code))
                    .await
                    .0,
                200
            );
        }
        let row = store.delivery(&delivery.id).await.unwrap().unwrap();
        assert_eq!(
            (row.state.as_str(), row.provider_status.as_deref()),
            ("sent", Some("delivered"))
        );
        assert_eq!(
            post_textline(
                &app,
                &status_path,
                &report(ProviderStatus::Failed, Some("30003"))
            )
            .await
            .0,
            200
        );
        let row = store.delivery(&delivery.id).await.unwrap().unwrap();
        assert_eq!(row.state, "failed");
        assert_eq!(
            row.last_error.as_deref(),
            Some("provider reported failed (30003)")
        );
        assert_eq!(row.provider_error_code.as_deref(), Some("30003"));
        let (status, one) = app
            .get("/v1/inbound-messages/textline:SMu1", Some(&app.read_token))
            .await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["text"], "Hi, is anyone there?");
        assert_eq!(one["answers"][0]["id"], delivery.id.as_str());
        assert_eq!(one["answers"][0]["state"], "failed");
        assert_eq!(one["answers"][0]["provider_status"], "failed");
        let (status, one) = app
            .get("/v1/inbound-messages/textline:SMu2", Some(&app.read_token))
            .await;
        assert_eq!(
            (status, one["answers"].as_array().map(Vec::len)),
            (200, Some(0))
        );
    }
);

// STOP ends the live session and is stored for the delivering channel; HELP is answered;
// START removes the opt-out and is answered; no keyword reaches the rep.
both_databases!(keywords_opt_out_opt_in_and_help, |db: Db| async move {
    let Setup { app, textline } = setup(db).await;
    let rep = RepConsole::new(&app.emulator.url());
    let number = "+15550100088";
    let conversation = live_escalation(
        &app,
        escalation(
            "tl-keys",
            "textline",
            json!({"name": "Bo", "phone": "+1 555 010 0088"}),
        ),
    )
    .await;
    let path = "/v1/channels/textline/inbound";
    assert_eq!(
        post_textline(&app, path, &text("SMk1", number, "help"))
            .await
            .0,
        200
    );
    let help = sent_to(&textline, number, 1).await;
    assert_eq!(
        help[0].message.text,
        channels::KeywordConfig::default().help_text
    );
    assert_eq!(help[0].message.session_id, "inbound:textline:SMk1");

    assert_eq!(
        post_textline(&app, path, &text("SMk2", number, " Stop! "))
            .await
            .0,
        200
    );
    let opted_out = |app: &TestApp| {
        let db = app.gateway.state.store.connection().clone();
        async move {
            opt_out::Entity::find()
                .filter(opt_out::Column::Channel.eq("textline"))
                .filter(opt_out::Column::Address.eq(number))
                .one(&db)
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(opted_out(&app).await, "the opt-out is stored");
    rep.wait_for(&conversation, "closed in Salesforce", |c| {
        c["status"] == "closed"
    })
    .await;
    wait_session(&app, "tl-keys", "closed", |s| s["status"] == "closed").await;
    let kinds = app.event_kinds("tl-keys").await;
    assert!(
        kinds.contains(&"customer.opted_out".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"live.close_requested".to_string()),
        "{kinds:?}"
    );

    assert_eq!(
        post_textline(&app, path, &text("SMk3", number, "START"))
            .await
            .0,
        200
    );
    assert!(!opted_out(&app).await, "the opt-out is gone");
    let answers = sent_to(&textline, number, 2).await;
    assert_eq!(answers[1].message.text, OPT_IN_REPLY);
    for (id, state) in [("SMk1", "help"), ("SMk2", "opt_out"), ("SMk3", "opt_in")] {
        let (status, m) = app
            .get(
                &format!("/v1/inbound-messages/textline:{id}"),
                Some(&app.read_token),
            )
            .await;
        assert_eq!((status, m["state"].as_str()), (200, Some(state)), "{m}");
    }
    let (_, conv) = rep.conversation(&conversation).await;
    let customer = texts_by(&conv, "EndUser");
    assert!(
        !customer
            .iter()
            .any(|t| ["help", "Stop!", "START"].contains(&t.as_str())),
        "{customer:?}"
    );
});

// A message from the customer of a live session reaches the rep, attachments listed; one from
// the customer of a Case session on a channel delivering through this one becomes an internal
// CaseComment on that Case.
both_databases!(messages_reach_the_rep_and_open_cases, |db: Db| async move {
    let Setup { app, .. } = setup(db).await;
    let rep = RepConsole::new(&app.emulator.url());
    let conversation = live_escalation(
        &app,
        escalation("tl-rep", "textline", json!({"phone": "+15550100099"})),
    )
    .await;
    let path = "/v1/channels/textline/inbound";
    let mut with_photo = text("SMr1", "+15550100099", "Where is my parcel?");
    with_photo.messages[0].media = vec![Media {
        url: "https://media.example.com/p1.jpg".into(),
        content_type: Some("image/jpeg".into()),
        filename: None,
    }];
    assert_eq!(post_textline(&app, path, &with_photo).await.0, 200);
    rep.wait_for(&conversation, "the customer's message", |c| {
        texts_by(c, "EndUser").iter().any(|t| {
            t == "Where is my parcel?\n[Attachment: image/jpeg https://media.example.com/p1.jpg]"
        })
    })
    .await;
    assert_eq!(
        last_message_at(&app, "tl-rep").await,
        Some(with_photo.messages[0].at.timestamp_millis())
    );

    // A Case session of `callline` (not live): its customer's text becomes a Case note.
    let (status, answer) = app
        .post_escalation(&escalation(
            "cl-case",
            "callline",
            json!({"phone": "+15550100111"}),
        ))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["route"], "case");
    let case_id = wait_for("the Case", || async {
        let s = session(&app, "cl-case").await;
        s["salesforce_case_id"].as_str().map(str::to_string)
    })
    .await;
    let before = last_message_at(&app, "cl-case").await;
    let note = text("SMc1", "+15550100111", "I found the tracking number: 42.");
    assert_eq!(post_textline(&app, path, &note).await.0, 200);
    let comment = wait_for("the Case note", || async {
        app.comment_bodies(&case_id)
            .await
            .into_iter()
            .find(|c| c.contains("I found the tracking number: 42."))
    })
    .await;
    assert!(comment.contains("Customer wrote on textline"), "{comment}");
    assert!(comment.contains("From: +15550100111"), "{comment}");
    let published: Vec<Value> = app
        .soql(&format!(
            "SELECT IsPublished FROM CaseComment WHERE ParentId = '{case_id}'"
        ))
        .await;
    assert!(
        published.iter().all(|c| c["IsPublished"] == false),
        "internal notes only"
    );
    let (_, m) = app
        .get("/v1/inbound-messages/textline:SMc1", Some(&app.read_token))
        .await;
    assert_eq!(
        (m["state"].as_str(), m["session_id"].as_str()),
        (Some("case_note"), Some("cl-case"))
    );
    let after = last_message_at(&app, "cl-case").await;
    assert_eq!(after, Some(note.messages[0].at.timestamp_millis()));
    assert!(after > before);
    assert!(
        app.event_kinds("cl-case")
            .await
            .contains(&"inbound.case_note".to_string())
    );
});

// Retention: the text, attachments and number of provider messages go with the payload stage
// (unless their session is still running), the answers' pseudo-sessions with the timeline;
// opt-outs stay: they are the customer's instruction.
both_databases!(retention_covers_provider_messages, |db: Db| async move {
    use gateway::store::{RetentionPolicy, delivery, event, inbound_message, job};
    let Setup { app, textline } = setup(db).await;
    let store = &app.gateway.state.store;
    let conn = store.connection();
    let path = "/v1/channels/textline/inbound";
    live_escalation(
        &app,
        escalation("tl-ret", "textline", json!({"phone": "+15550100222"})),
    )
    .await;
    for (id, from, words) in [
        ("SMold", "+15550100333", "Anyone?"),
        ("SMstop", "+15550100444", "STOP"),
        ("SMlive", "+15550100222", "Still there?"),
    ] {
        assert_eq!(
            post_textline(&app, path, &text(id, from, words)).await.0,
            200
        );
    }
    sent_to(&textline, "+15550100333", 1).await;
    let pseudo = "inbound:textline:SMold";
    wait_for("the answer's job done", || async {
        let jobs = job::Entity::find()
            .filter(job::Column::SessionId.eq(pseudo))
            .all(conn)
            .await
            .unwrap();
        (!jobs.is_empty() && jobs.iter().all(|j| j.state == "done")).then_some(())
    })
    .await;
    let message = |id: &'static str| async move {
        inbound_message::Entity::find_by_id(format!("textline:{id}"))
            .one(conn)
            .await
            .unwrap()
    };
    let answers = || async {
        delivery::Entity::find()
            .filter(delivery::Column::SessionId.eq(pseudo))
            .all(conn)
            .await
            .unwrap()
    };
    let policy = RetentionPolicy {
        erase_payload_after: chrono::Duration::days(30),
        erase_event_data_after: chrono::Duration::days(90),
        delete_timeline_after: Some(chrono::Duration::days(365)),
    };
    let now = Utc::now();
    let sweep = |days: i64| store.sweep_retention(now + chrono::Duration::days(days), policy);

    sweep(29).await.unwrap();
    assert_eq!(
        message("SMold").await.unwrap().text.as_deref(),
        Some("Anyone?")
    );
    sweep(31).await.unwrap();
    let old = message("SMold").await.unwrap();
    assert_eq!((old.text, old.media, old.from_address), (None, None, None));
    assert!(
        answers()
            .await
            .iter()
            .all(|d| d.text.is_empty() && d.target == "{}")
    );
    let live = message("SMlive").await.unwrap();
    assert_eq!(
        live.text.as_deref(),
        Some("Still there?"),
        "its session still runs"
    );
    sweep(91).await.unwrap();
    let events = event::Entity::find()
        .filter(event::Column::SessionId.eq(pseudo))
        .all(conn)
        .await
        .unwrap();
    assert!(!events.is_empty() && events.iter().all(|e| e.data == "{}"));
    sweep(366).await.unwrap();
    assert!(message("SMold").await.is_none());
    assert!(message("SMstop").await.is_none());
    assert!(message("SMlive").await.is_some(), "its session still runs");
    assert!(answers().await.is_empty());
    for rows in [
        event::Entity::find()
            .filter(event::Column::SessionId.eq(pseudo))
            .all(conn)
            .await
            .unwrap()
            .len(),
        job::Entity::find()
            .filter(job::Column::SessionId.eq(pseudo))
            .all(conn)
            .await
            .unwrap()
            .len(),
    ] {
        assert_eq!(rows, 0);
    }
    let opt_outs = opt_out::Entity::find().all(conn).await.unwrap();
    assert_eq!(opt_outs.len(), 1, "the opt-out stays");
    assert_eq!(opt_outs[0].address, "+15550100444");
});
