//! The outbox end to end, over real sockets: a chat escalation whose route fell
//! back to a Case tells the customer, through the chat adapter's signed webhook,
//! that their request went to the support team — exactly once, or visibly failed.

use std::time::{Duration, Instant};

use gateway::Application;
use gateway::store::Scope;
use handoff_tests::receiver::{receiver, verify};
use handoff_tests::{Db, both_databases, fresh_database, spawn_emulator, test_config};
use serde_json::{Value, json};
use tokio::net::TcpListener;

struct Stack {
    app: gateway::RunningApp,
    store: gateway::store::Store,
    emulator: sf_emulator::EmulatorHandle,
    escalate: String,
    read: String,
    _dir: Option<tempfile::TempDir>,
}

/// The gateway as configured for tests: its chat channel signs with [`SECRET`]
/// and may post to a loopback receiver.
async fn stack(db: Db) -> Stack {
    let emulator = spawn_emulator().await;
    let (url, dir) = fresh_database(db).await;
    let config = test_config(&url, &emulator);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build(config, listener).await.unwrap();
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
        escalate,
        read,
        _dir: dir,
    }
}

impl Stack {
    async fn escalate_chat(&self, session_id: &str, webhook_url: &str) {
        let status = reqwest::Client::new()
            .post(format!("{}/v1/escalations", self.app.url()))
            .bearer_auth(&self.escalate)
            .json(&json!({
                "session_id": session_id,
                "channel": "chat",
                "customer": {"name": "Ann"},
                "transcript": [{"role": "customer", "text": "I need a human", "at": "2026-11-22T09:00:00Z"}],
                "reply_to": {"webhook_url": webhook_url},
            }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
    }

    async fn session(&self, id: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}/v1/sessions/{id}", self.app.url()))
            .bearer_auth(&self.read)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until the session's first delivery is `sent` or `failed`.
    async fn settled_delivery(&self, id: &str) -> (Value, Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let session = self.session(id).await;
            if let Some(delivery) = session["deliveries"].get(0)
                && matches!(delivery["state"].as_str(), Some("sent" | "failed"))
            {
                return (session.clone(), delivery.clone());
            }
            assert!(
                Instant::now() < deadline,
                "delivery never settled: {session}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn event_kinds(&self, id: &str) -> Vec<String> {
        let events: Value = reqwest::Client::new()
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
}

// A chat session that fell back to a Case is told so, once: the Case exists in
// Salesforce, one signed `system.message` carrying the CaseNumber reaches the
// product's webhook, and the session view shows the delivery `sent`.
both_databases!(
    a_case_notice_reaches_the_chat_webhook_once,
    |db: Db| async move {
        let s = stack(db).await;
        let hook = receiver(vec![]).await;
        s.escalate_chat("notice-1", &hook.url).await;
        let (session, delivery) = s.settled_delivery("notice-1").await;
        assert_eq!(delivery["state"], "sent", "{delivery}");
        assert_eq!(delivery["channel"], "chat");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["last_error"], Value::Null);
        assert_eq!(s.emulator.records("Case").len(), 1);
        let case_number = session["salesforce_case_number"]
            .as_str()
            .unwrap_or_else(|| panic!("no CaseNumber: {session}"));
        let received = hook.received.lock().unwrap().clone();
        assert_eq!(received.len(), 1, "exactly one webhook");
        verify(&received[0]);
        assert_eq!(received[0].id, delivery["id"].as_str().unwrap());
        let body: Value = serde_json::from_slice(&received[0].body).unwrap();
        assert_eq!(body["type"], "system.message");
        assert_eq!(body["session_id"], "notice-1");
        assert!(
            body["data"]["text"].as_str().unwrap().contains(case_number),
            "{body}"
        );
        let kinds = s.event_kinds("notice-1").await;
        assert!(kinds.contains(&"delivery.queued".to_string()), "{kinds:?}");
        assert!(kinds.contains(&"delivery.sent".to_string()), "{kinds:?}");

        // Retention: once the session's data expires, the outbox row keeps its outcome but
        // no longer the text or the address it was sent to.
        let policy = gateway::config::Config::defaults().retention.policy();
        let later = chrono::Utc::now() + chrono::Duration::days(31);
        s.store.sweep_retention(later, policy).await.unwrap();
        let rows = s.store.deliveries_for_session("notice-1").await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, "sent");
        assert_eq!(rows[0].text, "");
        assert_eq!(rows[0].target, "{}");
        s.app.stop().await;
        s.emulator.shutdown().await;
    }
);

// The receiver fails once (500), then accepts: the delivery is retried with
// the same delivery id (the receiver dedupes on `webhook-id`) and is `sent`
// after two attempts — one message shown to the customer.
both_databases!(
    a_failed_webhook_is_retried_with_the_same_id,
    |db: Db| async move {
        let s = stack(db).await;
        let hook = receiver(vec![500]).await;
        s.escalate_chat("notice-2", &hook.url).await;
        let (_, delivery) = s.settled_delivery("notice-2").await;
        assert_eq!(delivery["state"], "sent", "{delivery}");
        assert_eq!(delivery["attempts"], 2);
        let received = hook.received.lock().unwrap().clone();
        assert_eq!(received.len(), 2);
        assert_eq!(
            received[0].id, received[1].id,
            "one delivery id on every attempt"
        );
        assert_eq!(received[0].body, received[1].body);
        verify(&received[1]);
        let kinds = s.event_kinds("notice-2").await;
        assert_eq!(
            kinds.iter().filter(|k| *k == "delivery.sent").count(),
            1,
            "{kinds:?}"
        );
        assert!(kinds.contains(&"delivery.attempt_failed".to_string()));
        s.app.stop().await;
        s.emulator.shutdown().await;
    }
);

// A receiver that answers 410 Gone refuses for good: no retry, the delivery is
// visibly `failed` with the reason, and the timeline says so.
both_databases!(
    a_refused_webhook_fails_visibly_at_once,
    |db: Db| async move {
        let s = stack(db).await;
        let hook = receiver(vec![410]).await;
        s.escalate_chat("notice-3", &hook.url).await;
        let (_, delivery) = s.settled_delivery("notice-3").await;
        assert_eq!(delivery["state"], "failed", "{delivery}");
        assert_eq!(delivery["attempts"], 1);
        assert!(
            delivery["last_error"].as_str().unwrap().contains("410"),
            "{delivery}"
        );
        assert_eq!(hook.received.lock().unwrap().len(), 1);
        assert!(
            s.event_kinds("notice-3")
                .await
                .contains(&"delivery.failed".to_string())
        );
        s.app.stop().await;
        s.emulator.shutdown().await;
    }
);

// SMS cannot send yet: no delivery is queued, and the timeline says the
// customer was not told, and why.
both_databases!(
    a_channel_that_cannot_deliver_records_that_the_customer_was_not_told,
    |db: Db| async move {
        let s = stack(db).await;
        let status = reqwest::Client::new()
            .post(format!("{}/v1/escalations", s.app.url()))
            .bearer_auth(&s.escalate)
            .json(&json!({
                "session_id": "notice-4",
                "channel": "sms",
                "customer": {"phone": "+15550107788"},
                "transcript": [{"role": "customer", "text": "help", "at": "2026-11-22T09:00:00Z"}],
            }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !s
            .event_kinds("notice-4")
            .await
            .contains(&"customer.not_notified".to_string())
        {
            assert!(Instant::now() < deadline, "no customer.not_notified event");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let session = s.session("notice-4").await;
        assert_eq!(session["deliveries"], json!([]));
        let events: Value = reqwest::Client::new()
            .get(format!("{}/v1/sessions/notice-4/events", s.app.url()))
            .bearer_auth(&s.read)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let notice = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "customer.not_notified")
            .unwrap();
        assert_eq!(
            notice["data"]["reason"],
            "channel `sms` cannot send messages to customers"
        );
        s.app.stop().await;
        s.emulator.shutdown().await;
    }
);

// The outbox of a long conversation is not one unbounded list: the session view carries the
// newest 50 deliveries, and `GET /v1/sessions/{id}/deliveries` pages through all of them in a
// stable order (a bad cursor is a 400).
both_databases!(
    a_sessions_deliveries_page_and_the_view_is_bounded,
    |db: Db| async move {
        let s = stack(db).await;
        let hook = receiver(vec![]).await;
        s.escalate_chat("many-1", &hook.url).await;
        s.settled_delivery("many-1").await;
        for n in 0..54 {
            let new = gateway::store::NewDelivery {
                id: format!("dlv_test_{n:03}"),
                session_id: "many-1".into(),
                channel: "chat".into(),
                kind: channels::OutboundKind::AgentMessage,
                text: format!("message {n}"),
                sender_name: Some("Rep".into()),
                target: channels::ReplyTarget::Webhook {
                    url: hook.url.clone(),
                },
            };
            assert!(s.store.enqueue_delivery(&new, 3).await.unwrap());
        }
        let view = s.session("many-1").await;
        let shown = view["deliveries"].as_array().unwrap();
        assert_eq!(shown.len(), 50, "the view is bounded");
        assert_eq!(shown.last().unwrap()["id"], "dlv_test_053", "newest last");

        let http = reqwest::Client::new();
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/v1/sessions/many-1/deliveries?limit=20", s.app.url());
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: Value = http
                .get(url)
                .bearer_auth(&s.read)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for d in page["deliveries"].as_array().unwrap() {
                ids.push(d["id"].as_str().unwrap().to_string());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(ids.len(), 55, "the notice and 54 messages, each once");
        let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), 55);

        let bad = http
            .get(format!(
                "{}/v1/sessions/many-1/deliveries?cursor=bm9wZQ",
                s.app.url()
            ))
            .bearer_auth(&s.read)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let missing = http
            .get(format!("{}/v1/sessions/nobody/deliveries", s.app.url()))
            .bearer_auth(&s.read)
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        s.app.stop().await;
        s.emulator.shutdown().await;
    }
);
