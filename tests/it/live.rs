//! Live messaging end to end, over real sockets: a chat escalation opens a MIAW
//! conversation in the emulator, a person at the emulator's rep console (the
//! test) accepts it and writes, and the customer's chat webhook gets each rep
//! message exactly once, signed; the customer's answers reach the rep; either
//! side ends it. Fallbacks (office hours, no agents, MIAW down) make a Case.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use handoff_tests::console::{RepConsole, texts_by};
use handoff_tests::receiver::{Receiver, receiver, verify};
use handoff_tests::{Db, TestApp, both_databases, spawn_live_app};
use serde_json::{Value, json};

fn chat(session_id: &str, hook: &str, language: &str) -> Value {
    json!({
        "session_id": session_id,
        "channel": "chat",
        "customer": {"name": "Ana Ruiz", "email": "ana@example.com"},
        "language": language,
        "priority": "medium",
        "summary": "Customer was charged twice for order 1182 and wants a refund.",
        "transcript": [
            {"role": "customer", "text": "I was charged twice for order 1182.", "at": "2026-11-22T10:00:00Z"},
            {"role": "bot", "text": "I see both charges; a colleague can refund one.", "at": "2026-11-22T10:01:00Z"},
        ],
        "attributes": {"_subject": "Double charge", "internal_note": "vip"},
        "reply_to": {"webhook_url": hook},
    })
}

async fn live(db: Db) -> TestApp {
    spawn_live_app(db, sf_emulator::EmulatorConfig::default(), |c| {
        c.miaw.allowed_attributes = vec!["_subject".into()];
    })
    .await
}

fn console(app: &TestApp) -> RepConsole {
    RepConsole::new(&app.emulator.url())
}

async fn session(app: &TestApp, id: &str) -> Value {
    let (status, body) = app
        .get(&format!("/v1/sessions/{id}"), Some(&app.read_token))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits (hang guard: 30 s) for `ready` on the session view.
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

/// Waits (hang guard: 30 s) until the receiver holds `n` webhooks of `kind`.
async fn wait_webhooks(hook: &Receiver, kind: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let of_kind: Vec<Value> = hook
            .bodies()
            .into_iter()
            .filter(|b| b["type"] == kind)
            .collect();
        if of_kind.len() >= n {
            return of_kind;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} {kind} webhooks; got {:?}",
            hook.bodies()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until every delivery of the session is settled, then checks that the
/// receiver got each delivery id exactly once and every signature verifies.
async fn settled_exactly_once(app: &TestApp, id: &str, hook: &Receiver) -> Vec<Value> {
    let s = wait_session(app, id, "every delivery sent", |s| {
        s["deliveries"]
            .as_array()
            .is_some_and(|d| !d.is_empty() && d.iter().all(|d| d["state"] == "sent"))
    })
    .await;
    let received = hook.received.lock().unwrap().clone();
    for r in &received {
        verify(r);
    }
    let ids: Vec<&str> = received.iter().map(|r| r.id.as_str()).collect();
    let distinct: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        ids.len(),
        distinct.len(),
        "a webhook arrived twice: {ids:?}"
    );
    assert_eq!(
        distinct.len(),
        s["deliveries"].as_array().unwrap().len(),
        "every delivery arrived once: {s}"
    );
    hook.bodies()
}

async fn post_message(app: &TestApp, id: &str, text: &str) -> (u16, Value) {
    app.post_raw(
        &format!("/v1/sessions/{id}/messages"),
        Some(&app.escalate_token),
        "application/json",
        json!({"text": text}).to_string().into_bytes(),
    )
    .await
}

// The whole live path: the conversation carries the routing attributes and the
// transcript; the rep joins (the customer is told in Spanish, with the rep's
// name), writes three messages (each delivered once, signed), the customer
// answers (the rep sees it), the rep closes (the customer is told), and a
// message after that is refused with 409 session_closed.
both_databases!(a_live_chat_goes_to_the_rep_and_back, |db: Db| async move {
    let app = live(db).await;
    let rep = console(&app);
    let hook = receiver(vec![]).await;
    let (status, body) = app
        .post_escalation(&chat("live-1", &hook.url, "es-MX"))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["route"], "messaging");
    let conversation_id = body["salesforce_miaw_session_id"]
        .as_str()
        .expect("conversation id")
        .to_string();
    assert_eq!(
        conversation_id,
        salesforce::miaw::ConversationId::for_session("live-1").to_string()
    );

    let conv = rep
        .wait_for(&conversation_id, "the opening messages", |c| {
            texts_by(c, "EndUser").len() >= 2
        })
        .await;
    let attrs = &conv["routing_attributes"];
    assert_eq!(attrs["OpencxSessionId"], "live-1");
    assert_eq!(attrs["Chat_Consumer_Type"], "Anonymous Visitor");
    assert_eq!(attrs["Origin"], "chat");
    assert_eq!(attrs["Priority"], "Medium");
    assert_eq!(attrs["Chat_language"], "es-MX");
    assert_eq!(attrs["_subject"], "Double charge");
    assert!(
        attrs.get("internal_note").is_none(),
        "not allow-listed: {attrs}"
    );
    let opening = texts_by(&conv, "EndUser").join("\n");
    assert!(
        opening.contains("charged twice for order 1182 and wants a refund"),
        "{opening}"
    );
    assert!(
        opening.contains("I see both charges"),
        "the transcript: {opening}"
    );
    assert!(
        app.event_kinds("live-1")
            .await
            .contains(&"routing.attributes_dropped".to_string())
    );

    // The MessagingSession id arrives on the stream; both MIAW ids find the session.
    let s = wait_session(&app, "live-1", "the MessagingSession id", |s| {
        s["salesforce_messaging_session_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("0Mw"))
    })
    .await;
    for any in [
        conversation_id.clone(),
        s["salesforce_messaging_session_id"]
            .as_str()
            .unwrap()
            .to_string(),
    ] {
        let (status, found) = app
            .get(&format!("/v1/sessions?id={any}"), Some(&app.read_token))
            .await;
        assert_eq!(status, 200);
        assert_eq!(found["sessions"][0]["id"], "live-1", "{found}");
    }

    let (status, body) = rep.accept(&conversation_id, "Jane Rep").await;
    assert_eq!(status, 200, "{body}");
    let joined = wait_webhooks(&hook, "agent.joined", 1).await;
    let joined_text = joined[0]["data"]["text"].as_str().unwrap();
    assert!(joined_text.contains("Jane Rep"), "{joined_text}");
    assert_ne!(
        joined_text,
        gateway::live::messages::LocalizedMessages::new(&Default::default()).text(
            "en",
            gateway::live::messages::MessageKey::AgentJoined,
            Some("Jane Rep"),
            "endagentchat"
        ),
        "the customer is told in Spanish"
    );

    for text in [
        "Hola, soy Jane.",
        "Veo el doble cargo.",
        "Ya está reembolsado.",
    ] {
        let (status, body) = rep.say(&conversation_id, text).await;
        assert_eq!(status, 202, "{body}");
    }
    let messages = wait_webhooks(&hook, "agent.message", 3).await;
    assert_eq!(
        messages
            .iter()
            .map(|m| m["data"]["text"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [
            "Hola, soy Jane.",
            "Veo el doble cargo.",
            "Ya está reembolsado."
        ]
    );
    assert!(
        messages
            .iter()
            .all(|m| m["data"]["sender_name"] == "Jane Rep" && m["session_id"] == "live-1")
    );

    let (status, body) = post_message(&app, "live-1", "¡Gracias!").await;
    assert_eq!(status, 202, "{body}");
    rep.wait_for(&conversation_id, "the customer's answer", |c| {
        texts_by(c, "EndUser").iter().any(|t| t == "¡Gracias!")
    })
    .await;

    let (status, body) = rep.close(&conversation_id).await;
    assert_eq!(status, 200, "{body}");
    wait_webhooks(&hook, "session.closed", 1).await;
    let s = wait_session(&app, "live-1", "closed", |s| s["status"] == "closed").await;
    assert_eq!(s["route"], "messaging");
    let bodies = settled_exactly_once(&app, "live-1", &hook).await;
    assert_eq!(
        bodies
            .iter()
            .filter(|b| b["type"] == "agent.message")
            .count(),
        3
    );
    let (status, body) = post_message(&app, "live-1", "¿Hola?").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "session_closed");
});

// The customer ends the chat with the end keyword (any letter case): the
// conversation is closed in Salesforce and the customer is told.
both_databases!(the_end_keyword_ends_the_live_session, |db: Db| async move {
    let app = live(db).await;
    let rep = console(&app);
    let hook = receiver(vec![]).await;
    let (status, body) = app
        .post_escalation(&chat("live-end", &hook.url, "en"))
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["salesforce_miaw_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    rep.wait_for(&id, "the conversation", |c| c["status"] == "waiting")
        .await;
    wait_webhooks(&hook, "system.message", 2).await;
    let (status, body) = post_message(&app, "live-end", "  EndAgentChat ").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["ended"], true);
    rep.wait_for(&id, "closed in Salesforce", |c| c["status"] == "closed")
        .await;
    wait_webhooks(&hook, "session.closed", 1).await;
    wait_session(&app, "live-end", "closed", |s| s["status"] == "closed").await;
    let bodies = settled_exactly_once(&app, "live-end", &hook).await;
    assert_eq!(
        bodies
            .iter()
            .filter(|b| b["type"] == "session.closed")
            .count(),
        1
    );
    let (status, body) = post_message(&app, "live-end", "hello?").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("session_closed"))
    );
});

// With no agents available the routing fails: the escalation becomes a Case
// with the whole transcript, the customer is told, and the events say why.
both_databases!(no_agents_available_makes_a_case, |db: Db| async move {
    let app = live(db).await;
    let rep = console(&app);
    rep.set_agents_available(false).await;
    let hook = receiver(vec![]).await;
    let (status, body) = app
        .post_escalation(&chat("live-noagents", &hook.url, "en"))
        .await;
    assert_eq!(status, 202, "{body}");
    let s = wait_session(&app, "live-noagents", "the Case", |s| {
        s["salesforce_case_id"].is_string()
    })
    .await;
    assert_eq!(s["route"], "case");
    let comments = app
        .comment_bodies(s["salesforce_case_id"].as_str().unwrap())
        .await
        .join("\n");
    assert!(
        comments.contains("I was charged twice for order 1182.")
            && comments.contains("I see both charges"),
        "{comments}"
    );
    let (_, events) = app
        .get("/v1/sessions/live-noagents/events", Some(&app.read_token))
        .await;
    let fallback = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "route.fallback")
        .cloned()
        .expect("route.fallback");
    assert_eq!(
        fallback["data"]["reason"], "no agents are available",
        "{fallback}"
    );
    // The customer may first hear "looking for an agent" (the conversation was
    // opened before its routing failed); then the CaseNumber.
    let number = s["salesforce_case_number"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !hook.bodies().iter().any(|m| {
        m["type"] == "system.message" && m["data"]["text"].as_str().unwrap().contains(&number)
    }) {
        assert!(
            Instant::now() < deadline,
            "never told the CaseNumber: {:?}",
            hook.bodies()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
});

// Outside office hours the escalation never opens a conversation: it is a Case
// at once, and the timeline says why.
both_databases!(outside_office_hours_makes_a_case, |db: Db| async move {
    let app = spawn_live_app(db, sf_emulator::EmulatorConfig::default(), |c| {
        // Open all week, but today (and the days either side, whatever the
        // hour) is a holiday: closed now, deterministically.
        let today = chrono::Utc::now().date_naive();
        let day = |d: i64| {
            (today + chrono::Days::new(0))
                .checked_add_signed(chrono::Duration::days(d))
                .unwrap()
                .to_string()
        };
        let all_day = json!(["00:00-24:00"]);
        c.miaw.office_hours = serde_json::from_value(json!({
            "enabled": true, "time_zone": "UTC",
            "weekly": {"mon": all_day, "tue": all_day, "wed": all_day, "thu": all_day,
                       "fri": all_day, "sat": all_day, "sun": all_day},
            "holidays": [day(-1), day(0), day(1)],
        }))
        .expect("office hours closed today");
    })
    .await;
    let hook = receiver(vec![]).await;
    let (status, body) = app
        .post_escalation(&chat("live-closed", &hook.url, "en"))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["route"], "case");
    let s = wait_session(&app, "live-closed", "the Case", |s| {
        s["salesforce_case_id"].is_string()
    })
    .await;
    assert!(s["salesforce_miaw_session_id"].is_null());
    let (_, events) = app
        .get("/v1/sessions/live-closed/events", Some(&app.read_token))
        .await;
    assert!(events["events"].as_array().unwrap().iter().any(|e| e["kind"] == "route.fallback" && e["data"]["reason"] == "outside office hours"), "{events}");
    assert!(
        console(&app).conversations().await.is_empty(),
        "no conversation was opened"
    );
});

// MIAW answering 503 past `miaw.open_deadline_secs` makes a Case.
both_databases!(
    miaw_down_past_the_deadline_makes_a_case,
    |db: Db| async move {
        let app = spawn_live_app(db, sf_emulator::EmulatorConfig::default(), |c| {
            c.miaw.open_deadline_secs = 1;
        })
        .await;
        console(&app)
        .set_faults(json!({"fail": [{"operation": "create_conversation", "status": 503, "times": 1000}]}))
        .await;
        let hook = receiver(vec![]).await;
        let (status, _) = app
            .post_escalation(&chat("live-down", &hook.url, "en"))
            .await;
        assert_eq!(status, 202);
        let s = wait_session(&app, "live-down", "the Case", |s| {
            s["salesforce_case_id"].is_string()
        })
        .await;
        assert_eq!(s["route"], "case");
        let kinds = app.event_kinds("live-down").await;
        assert!(kinds.contains(&"live.open_failed".to_string()), "{kinds:?}");
        let (_, events) = app
            .get("/v1/sessions/live-down/events", Some(&app.read_token))
            .await;
        assert!(
            events["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "route.fallback"
                    && e["data"]["reason"]
                        .as_str()
                        .unwrap()
                        .contains("unavailable")),
            "{events}"
        );
    }
);

// Bad input on the live endpoints: unknown session (404), a Case session
// (409 session_not_live), an empty or non-string text (400), an oversized
// message (400 message_too_long) — and a long one within the limit is split
// into parts the rep receives in order.
both_databases!(live_endpoints_refuse_bad_input, |db: Db| async move {
    let app = live(db).await;
    let rep = console(&app);
    let hook = receiver(vec![]).await;
    let (status, body) = post_message(&app, "nobody", "hi").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let mut email = chat("live-email", &hook.url, "en");
    email["channel"] = json!("email");
    email.as_object_mut().unwrap().remove("reply_to");
    assert_eq!(app.post_escalation(&email).await.0, 202);
    let (status, body) = post_message(&app, "live-email", "hi").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("session_not_live")),
        "{body}"
    );
    let (status, body) = app
        .post_raw(
            "/v1/sessions/live-email/close",
            Some(&app.escalate_token),
            "application/json",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("session_not_live")),
        "{body}"
    );

    let (status, body) = app
        .post_escalation(&chat("live-bad", &hook.url, "en"))
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["salesforce_miaw_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    for (payload, code) in [
        (json!({"text": ""}), "invalid_text"),
        (json!({"text": 7}), "invalid_text"),
        (json!({}), "invalid_text"),
        (json!({"text": "hi", "extra": 1}), "unknown_field"),
        (json!({"text": "x".repeat(32_001)}), "message_too_long"),
    ] {
        let (status, body) = app
            .post_raw(
                "/v1/sessions/live-bad/messages",
                Some(&app.escalate_token),
                "application/json",
                payload.to_string().into_bytes(),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some(code)),
            "{payload}: {body}"
        );
        assert!(body["field"].as_str().is_some(), "{body}");
    }
    let long = (0..700)
        .map(|i| format!("w{i:04}"))
        .collect::<Vec<_>>()
        .join(" ");
    let (status, body) = post_message(&app, "live-bad", &long).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["parts"], 2,
        "3,499 characters in parts of 3,000: {body}"
    );
    let conv = rep
        .wait_for(&id, "both parts", |c| {
            texts_by(c, "EndUser").iter().any(|t| t.ends_with("w0699"))
        })
        .await;
    let parts: Vec<String> = texts_by(&conv, "EndUser")
        .into_iter()
        .filter(|t| t.starts_with("w0") || t.contains(" w06"))
        .collect();
    assert_eq!(parts.concat(), long, "the parts, in order, are the message");
    let (status, _) = app
        .post_raw(
            "/v1/sessions/live-bad/messages",
            Some(&app.read_token),
            "application/json",
            b"{\"text\":\"hi\"}".to_vec(),
        )
        .await;
    assert_eq!(status, 403, "a read token cannot write to the rep");
});

// The emulator answers 417 (the messaging session ended), 429 (the
// per-conversation limit) and 503 once each: every customer message still
// reaches the rep, once, in order.
both_databases!(miaw_417_429_and_5xx_are_survived, |db: Db| async move {
    let app = live(db).await;
    let rep = console(&app);
    let hook = receiver(vec![]).await;
    let (status, body) = app
        .post_escalation(&chat("live-faults", &hook.url, "en"))
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["salesforce_miaw_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    rep.wait_for(&id, "the conversation", |c| {
        texts_by(c, "EndUser").len() >= 2
    })
    .await;
    rep.set_faults(json!({"fail": [
        {"operation": "send_message", "status": 417, "times": 1},
        {"operation": "send_message", "status": 429, "times": 1},
        {"operation": "send_message", "status": 503, "times": 1},
    ]}))
    .await;
    for text in ["one", "two", "three"] {
        assert_eq!(post_message(&app, "live-faults", text).await.0, 202);
    }
    let conv = rep
        .wait_for(&id, "all three", |c| {
            texts_by(c, "EndUser").iter().any(|t| t == "three")
        })
        .await;
    let customer: Vec<String> = texts_by(&conv, "EndUser")
        .into_iter()
        .filter(|t| ["one", "two", "three"].contains(&t.as_str()))
        .collect();
    assert_eq!(customer, ["one", "two", "three"]);
    let kinds = app.event_kinds("live-faults").await;
    assert!(
        kinds.iter().filter(|k| *k == "rep.sent").count() >= 3,
        "{kinds:?}"
    );
});

// The stream drops every second while the rep writes: every rep message is
// delivered exactly once (the cursor is stored with each applied event).
both_databases!(
    a_dropping_stream_loses_and_repeats_nothing,
    |db: Db| async move {
        let app = live(db).await;
        let rep = console(&app);
        let hook = receiver(vec![]).await;
        let (status, body) = app
            .post_escalation(&chat("live-drop", &hook.url, "en"))
            .await;
        assert_eq!(status, 202, "{body}");
        let id = body["salesforce_miaw_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        rep.wait_for(&id, "the conversation", |c| c["status"] == "waiting")
            .await;
        rep.accept(&id, "Sam").await;
        rep.set_faults(json!({"drop_stream_every_secs": 1})).await;
        let sent: Vec<String> = (1..=8).map(|i| format!("message {i}")).collect();
        for text in &sent {
            assert_eq!(rep.say(&id, text).await.0, 202);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let got = wait_webhooks(&hook, "agent.message", sent.len()).await;
        assert_eq!(
            got.iter()
                .map(|m| m["data"]["text"].as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
            sent
        );
        rep.clear_faults().await;
        rep.close(&id).await;
        wait_webhooks(&hook, "session.closed", 1).await;
        let bodies = settled_exactly_once(&app, "live-drop", &hook).await;
        assert_eq!(
            bodies
                .iter()
                .filter(|b| b["type"] == "agent.message")
                .count(),
            sent.len()
        );
    }
);

// The end user's token expires every few seconds: it is renewed (continuation
// token) and the conversation carries on across the expiry.
both_databases!(an_expired_token_is_renewed, |db: Db| async move {
    let mut emulator = sf_emulator::EmulatorConfig::default();
    emulator.miaw.token_ttl_secs = 2;
    let app = spawn_live_app(db, emulator, |_| {}).await;
    let rep = console(&app);
    let hook = receiver(vec![]).await;
    let (status, body) = app
        .post_escalation(&chat("live-ttl", &hook.url, "en"))
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["salesforce_miaw_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    rep.wait_for(&id, "the conversation", |c| c["status"] == "waiting")
        .await;
    rep.accept(&id, "Kim").await;
    // Past two expiries: the stream and the sends need renewed tokens.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(rep.say(&id, "still here").await.0, 202);
    wait_webhooks(&hook, "agent.message", 1).await;
    assert_eq!(post_message(&app, "live-ttl", "me too").await.0, 202);
    rep.wait_for(&id, "the customer's answer", |c| {
        texts_by(c, "EndUser").iter().any(|t| t == "me too")
    })
    .await;
});

// One session's callback keeps failing: its delivery is retried, then visible
// as failed on the session — and another session's messages flow meanwhile.
both_databases!(
    a_failing_callback_never_blocks_other_sessions,
    |db: Db| async move {
        let app = spawn_live_app(db, sf_emulator::EmulatorConfig::default(), |c| {
            c.worker.max_attempts = 3;
        })
        .await;
        let rep = console(&app);
        let broken = receiver(vec![500; 1000]).await;
        let fine = receiver(vec![]).await;
        let (_, a) = app
            .post_escalation(&chat("live-broken", &broken.url, "en"))
            .await;
        let (_, b) = app
            .post_escalation(&chat("live-fine", &fine.url, "en"))
            .await;
        let a = a["salesforce_miaw_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        let b = b["salesforce_miaw_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        for id in [&a, &b] {
            rep.wait_for(id, "the conversation", |c| c["status"] == "waiting")
                .await;
            rep.accept(id, "Lee").await;
            rep.say(id, "hello").await;
        }
        wait_webhooks(&fine, "agent.message", 1).await;
        let s = wait_session(&app, "live-broken", "a failed delivery", |s| {
            s["deliveries"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["state"] == "failed"))
        })
        .await;
        let failed = s["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["state"] == "failed")
            .unwrap();
        assert!(failed["attempts"].as_i64().unwrap() >= 1, "{failed}");
        assert!(failed["last_error"].is_string(), "{failed}");
    }
);

// `GET /v1/sessions/{id}/stream`: the same envelopes as the webhook, as
// Server-Sent Events; `Last-Event-ID` resumes after the given event.
both_databases!(
    the_session_stream_carries_the_same_events_and_resumes,
    |db: Db| async move {
        let app = live(db).await;
        let rep = console(&app);
        let hook = receiver(vec![]).await;
        let (status, body) = app
            .post_escalation(&chat("live-sse", &hook.url, "en"))
            .await;
        assert_eq!(status, 202, "{body}");
        let id = body["salesforce_miaw_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        rep.wait_for(&id, "the conversation", |c| c["status"] == "waiting")
            .await;
        rep.accept(&id, "Mo").await;
        rep.say(&id, "first").await;
        rep.say(&id, "second").await;
        rep.close(&id).await;
        wait_webhooks(&hook, "session.closed", 1).await;
        // The stream ends after session.closed: read it whole.
        let read = |last: Option<String>| {
            let app_url = app.url("/v1/sessions/live-sse/stream");
            let token = app.read_token.clone();
            async move {
                let mut request = reqwest::Client::new().get(app_url).bearer_auth(token);
                if let Some(last) = last {
                    request = request.header("last-event-id", last);
                }
                let response = tokio::time::timeout(Duration::from_secs(30), request.send())
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(response.status(), 200);
                let text = tokio::time::timeout(Duration::from_secs(30), response.text())
                    .await
                    .unwrap()
                    .unwrap();
                parse_sse(&text)
            }
        };
        let all = read(None).await;
        let webhooks = hook.bodies();
        assert_eq!(
            all.iter().map(|(_, data)| data.clone()).collect::<Vec<_>>(),
            webhooks,
            "the stream carries the webhook envelopes, in order"
        );
        let (second_id, _) = &all[1];
        let rest = read(Some(second_id.clone())).await;
        assert_eq!(rest, all[2..].to_vec());
        let (status, body) = app
            .get("/v1/sessions/nobody/stream", Some(&app.read_token))
            .await;
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    }
);

/// `(id, data as JSON)` of each event of an SSE body.
fn parse_sse(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut id = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            Some((id?, serde_json::from_str(&data).ok()?))
        })
        .collect()
}

// Retention covers live chats: once a chat has ended (and its time has come),
// what the customer wrote to the rep and the end user's token are erased; a
// chat still going keeps everything, however old.
both_databases!(
    retention_erases_ended_chats_and_spares_live_ones,
    |db: Db| async move {
        use gateway::store::{live_message, live_session};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let app = live(db).await;
        let rep = console(&app);
        let hook = receiver(vec![]).await;
        let other_hook = receiver(vec![]).await;
        let mut ids = Vec::new();
        for (id, url) in [
            ("live-old-ended", &hook.url),
            ("live-old-going", &other_hook.url),
        ] {
            let (status, body) = app.post_escalation(&chat(id, url, "en")).await;
            assert_eq!(status, 202, "{body}");
            let conversation = body["salesforce_miaw_session_id"]
                .as_str()
                .unwrap()
                .to_string();
            rep.wait_for(&conversation, "the conversation", |c| {
                c["status"] == "waiting"
            })
            .await;
            assert_eq!(post_message(&app, id, "my card ends 4242").await.0, 202);
            rep.wait_for(&conversation, "the message", |c| {
                texts_by(c, "EndUser").iter().any(|t| t.contains("4242"))
            })
            .await;
            ids.push(conversation);
        }
        assert_eq!(rep.accept(&ids[0], "Ada").await.0, 200);
        assert_eq!(rep.close(&ids[0]).await.0, 200);
        wait_session(&app, "live-old-ended", "closed", |s| {
            s["status"] == "closed"
        })
        .await;
        // Every job of the ended chat done (its deliveries sent).
        settled_exactly_once(&app, "live-old-ended", &hook).await;
        let store = &app.gateway.state.store;
        let texts = |id: &'static str| async move {
            live_message::Entity::find()
                .filter(live_message::Column::SessionId.eq(id))
                .all(store.connection())
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.text)
                .collect::<Vec<_>>()
        };
        assert!(
            texts("live-old-ended")
                .await
                .iter()
                .any(|t| t.contains("4242"))
        );
        // Retention waits for every job of a session to be done (a delivery is
        // marked sent a moment before its job is).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut pending = store.jobs_in_state("queued").await.unwrap();
            pending.extend(store.jobs_in_state("running").await.unwrap());
            if !pending.iter().any(|j| j.session_id == "live-old-ended") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the ended chat's jobs never finished"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let policy = app.config.retention.policy();
        store
            .sweep_retention(chrono::Utc::now() + chrono::Duration::days(31), policy)
            .await
            .unwrap();
        assert!(
            texts("live-old-ended").await.iter().all(String::is_empty),
            "the ended chat's messages are erased"
        );
        assert!(
            texts("live-old-going")
                .await
                .iter()
                .any(|t| t.contains("4242")),
            "the live chat keeps its messages"
        );
        let token = |id: &'static str| async move {
            live_session::Entity::find_by_id(id.to_string())
                .one(store.connection())
                .await
                .unwrap()
                .unwrap()
                .token
        };
        assert_eq!(token("live-old-ended").await, None);
        assert!(
            token("live-old-going").await.is_some(),
            "the live chat keeps its token"
        );
        assert_ne!(
            session(&app, "live-old-going").await["customer"]["email"],
            Value::Null
        );
    }
);

// A customer the AI product verified (`identity.verified`) gets Salesforce's
// user-verification token, signed with the configured key: the conversation's
// end user is `…/AUTH/…` and `Chat_Consumer_Type` says authenticated. An
// unverified identity stays anonymous.
both_databases!(
    a_verified_customer_uses_the_identity_token_flow,
    |db: Db| async move {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../salesforce/tests/fixtures");
        let public =
            std::fs::read_to_string(format!("{fixtures}/test-only-rsa-public.pem")).unwrap();
        let mut emulator = sf_emulator::EmulatorConfig::default();
        emulator.miaw.identity_keys = vec![sf_emulator::config::IdentityKey {
            kid: "handoff-test".into(),
            issuer: "https://bot.example.com".into(),
            public_key_pem: public,
        }];
        let app = spawn_live_app(db, emulator, |c| {
            c.miaw.identity = Some(gateway::live::config::IdentityConfig {
                private_key_file: format!("{fixtures}/test-only-rsa-private.pem").into(),
                kid: "handoff-test".into(),
                issuer: "https://bot.example.com".into(),
                audience: "https://example.my.salesforce.com".into(),
                ttl_secs: 300,
            });
        })
        .await;
        let rep = console(&app);
        let hook = receiver(vec![]).await;
        let mut verified = chat("live-verified", &hook.url, "en");
        verified["identity"] = json!({"subject": "customer-8812", "verified": true});
        let mut unverified = chat("live-unverified", &hook.url, "en");
        unverified["identity"] = json!({"subject": "customer-8813", "verified": false});
        for (body, end_user, consumer) in [
            (verified, "/AUTH/", "Authenticated"),
            (unverified, "/ANON/", "Anonymous Visitor"),
        ] {
            let (status, answer) = app.post_escalation(&body).await;
            assert_eq!(status, 202, "{answer}");
            let id = answer["salesforce_miaw_session_id"]
                .as_str()
                .unwrap()
                .to_string();
            let conv = rep
                .wait_for(&id, "the conversation", |c| c["status"] == "waiting")
                .await;
            assert!(
                conv["end_user"].as_str().unwrap().contains(end_user),
                "{conv}"
            );
            assert_eq!(conv["routing_attributes"]["Chat_Consumer_Type"], consumer);
        }
        let conv = rep
            .wait_for(
                &salesforce::miaw::ConversationId::for_session("live-verified").to_string(),
                "",
                |_| true,
            )
            .await;
        assert!(
            conv["end_user"]
                .as_str()
                .unwrap()
                .ends_with("uid:customer-8812"),
            "{conv}"
        );
        let (status, body) = app
            .post_escalation(&json!({"session_id": "bad-identity", "channel": "chat",
            "transcript": [{"role": "customer", "text": "hi", "at": "2026-11-22T10:00:00Z"}],
            "identity": {"verified": true}}))
            .await;
        assert_eq!(
            (status, body["code"].as_str(), body["field"].as_str()),
            (400, Some("invalid_identity"), Some("identity.subject"))
        );
    }
);

// A transfer and a rep leaving reach the customer: the transfer notice, the
// first rep leaving, the second joining; a rep who leaves puts the chat back
// in the queue and the next rep's join is announced.
both_databases!(
    transfers_and_leaving_reps_are_announced,
    |db: Db| async move {
        let app = live(db).await;
        let rep = console(&app);
        let hook = receiver(vec![]).await;
        let (_, body) = app
            .post_escalation(&chat("live-transfer", &hook.url, "en"))
            .await;
        let id = body["salesforce_miaw_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        rep.wait_for(&id, "the conversation", |c| c["status"] == "waiting")
            .await;
        assert_eq!(rep.accept(&id, "Ann").await.0, 200);
        wait_webhooks(&hook, "agent.joined", 1).await;
        assert_eq!(rep.transfer(&id, "Bo").await.0, 200);
        let joined = wait_webhooks(&hook, "agent.joined", 2).await;
        assert_eq!(joined[1]["data"]["sender_name"], "Bo");
        assert!(joined[1]["data"]["text"].as_str().unwrap().contains("Bo"));
        assert_eq!(rep.leave(&id).await.0, 200);
        let left = wait_webhooks(&hook, "agent.left", 2).await;
        assert_eq!(
            left.iter()
                .map(|m| m["data"]["sender_name"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["Ann", "Bo"]
        );
        assert_eq!(rep.accept(&id, "Cy").await.0, 200);
        wait_webhooks(&hook, "agent.joined", 3).await;
        assert_eq!(rep.say(&id, "Cy here").await.0, 202);
        let m = wait_webhooks(&hook, "agent.message", 1).await;
        assert_eq!(m[0]["data"]["sender_name"], "Cy");
        let bodies = settled_exactly_once(&app, "live-transfer", &hook).await;
        let transfer_text = gateway::live::messages::LocalizedMessages::new(&Default::default())
            .text(
                "en",
                gateway::live::messages::MessageKey::Transferred,
                Some("Ann"),
                "endagentchat",
            );
        assert!(
            bodies
                .iter()
                .any(|b| b["type"] == "system.message"
                    && b["data"]["text"] == transfer_text.as_str()),
            "the transfer is announced: {bodies:?}"
        );
        let kinds: Vec<String> = bodies
            .iter()
            .map(|b| b["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|k| k.starts_with("agent."))
                .cloned()
                .collect::<Vec<_>>(),
            [
                "agent.joined",
                "agent.left",
                "agent.joined",
                "agent.left",
                "agent.joined",
                "agent.message"
            ],
            "in order"
        );
    }
);

// A long transcript: the rep gets the summary, the newest turns in at most
// `transcript_max_messages` messages, and the whole transcript as a file.
both_databases!(
    a_long_transcript_is_also_attached_as_a_file,
    |db: Db| async move {
        let app = live(db).await;
        let rep = console(&app);
        let hook = receiver(vec![]).await;
        let mut body = chat("live-long", &hook.url, "en");
        body["transcript"] = (0..60)
            .map(|i| {
                json!({"role": if i % 2 == 0 { "customer" } else { "bot" },
                        "text": format!("turn {i:02} {}", "lorem ipsum ".repeat(25)),
                        "at": format!("2026-11-22T10:{:02}:00Z", i % 60)})
            })
            .collect();
        let (status, answer) = app.post_escalation(&body).await;
        assert_eq!(status, 202, "{answer}");
        let id = answer["salesforce_miaw_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        let conv = rep
            .wait_for(&id, "the transcript file", |c| {
                c["files"].as_array().is_some_and(|f| !f.is_empty())
            })
            .await;
        let file = &conv["files"][0];
        assert_eq!(
            file["content_type"].as_str().unwrap().split(';').next(),
            Some("text/plain")
        );
        assert!(
            file["size"].as_u64().unwrap() > 18_000,
            "the whole transcript: {file}"
        );
        let texts = texts_by(&conv, "EndUser");
        let transcript: Vec<&String> = texts
            .iter()
            .filter(|t| t.starts_with("Transcript (latest turns)"))
            .collect();
        assert_eq!(transcript.len(), 3, "{texts:?}");
        assert!(transcript.iter().all(|t| t.chars().count() <= 3000));
        assert!(transcript[2].contains("turn 59"), "the newest turn is last");
        assert!(
            texts[0].starts_with("Summary: "),
            "the summary comes first: {texts:?}"
        );
    }
);

// Bounds: a session's queue to the rep holds `miaw.max_queued_messages`
// (then 429 with Retry-After, nothing stored); a routing attribute longer than
// `miaw.attribute_max_chars` is refused at accept (Salesforce would refuse the
// conversation later); open session streams are capped by
// `http.max_session_streams` (then 503).
both_databases!(
    live_queues_attributes_and_streams_are_bounded,
    |db: Db| async move {
        let app = spawn_live_app(db, sf_emulator::EmulatorConfig::default(), |c| {
            c.miaw.allowed_attributes = vec!["_subject".into()];
            c.miaw.max_queued_messages = 3;
            c.http.max_session_streams = 1;
        })
        .await;
        let rep = console(&app);
        let hook = receiver(vec![]).await;
        let mut long = chat("live-long-attr", &hook.url, "en");
        long["attributes"]["_subject"] = json!("s".repeat(256));
        let (status, body) = app.post_escalation(&long).await;
        assert_eq!(
            (status, body["code"].as_str(), body["field"].as_str()),
            (400, Some("invalid_attributes"), Some("attributes._subject")),
            "{body}"
        );
        let (status, _) = app
            .get("/v1/sessions/live-long-attr", Some(&app.read_token))
            .await;
        assert_eq!(status, 404, "nothing was stored");

        let (status, body) = app
            .post_escalation(&chat("live-bounded", &hook.url, "en"))
            .await;
        assert_eq!(status, 202, "{body}");
        let id = body["salesforce_miaw_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        rep.wait_for(&id, "the opening messages", |c| {
            texts_by(c, "EndUser").len() >= 2
        })
        .await;
        rep.set_faults(
            json!({"fail": [{"operation": "send_message", "status": 503, "times": 1000}]}),
        )
        .await;
        for text in ["a", "b", "c"] {
            assert_eq!(post_message(&app, "live-bounded", text).await.0, 202);
        }
        let response = reqwest::Client::new()
            .post(app.url("/v1/sessions/live-bounded/messages"))
            .bearer_auth(&app.escalate_token)
            .json(&json!({"text": "d"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "30");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "too_many_queued_messages");
        rep.clear_faults().await;
        rep.wait_for(&id, "the queued messages", |c| {
            texts_by(c, "EndUser").iter().any(|t| t == "c")
        })
        .await;
        assert!(
            !texts_by(&rep.conversation(&id).await.1, "EndUser")
                .iter()
                .any(|t| t == "d"),
            "the refused message was not stored"
        );

        let first = reqwest::Client::new()
            .get(app.url("/v1/sessions/live-bounded/stream"))
            .bearer_auth(&app.read_token)
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), 200);
        let (status, body) = app
            .get("/v1/sessions/live-bounded/stream", Some(&app.read_token))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (503, Some("too_many_streams")),
            "{body}"
        );
        drop(first);
        // The first subscriber's permit comes back when it goes away.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let response = reqwest::Client::new()
                .get(app.url("/v1/sessions/live-bounded/stream"))
                .bearer_auth(&app.read_token)
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the stream permit never came back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
);

// A send whose answer is lost after Salesforce recorded the message (the
// emulator answers 503 after committing) while the echo that would mark it sent
// is still on its way (events held 10 s): the retry finds the message among the
// conversation's entries and does not send it again.
both_databases!(
    a_send_with_a_lost_answer_is_not_sent_again,
    |db: Db| async move {
        let app = live(db).await;
        let rep = console(&app);
        let hook = receiver(vec![]).await;
        let (_, body) = app
            .post_escalation(&chat("live-lost", &hook.url, "en"))
            .await;
        let id = body["salesforce_miaw_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        rep.wait_for(&id, "the opening messages", |c| {
            texts_by(c, "EndUser").len() >= 2
        })
        .await;
        rep.set_faults(json!({"delay_events_ms": 10_000,
        "fail": [{"operation": "send_message", "status": 503, "times": 1, "after_commit": true}]}))
            .await;
        assert_eq!(post_message(&app, "live-lost", "only once").await.0, 202);
        let deadline = Instant::now() + Duration::from_secs(30);
        let (_, events) = loop {
            let (status, events) = app
                .get("/v1/sessions/live-lost/events", Some(&app.read_token))
                .await;
            assert_eq!(status, 200);
            if events["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "rep.sent" && e["data"]["found"] == true)
            {
                break (status, events);
            }
            assert!(
                Instant::now() < deadline,
                "the retry never found the message: {events}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        rep.clear_faults().await;
        let conv = rep.conversation(&id).await.1;
        assert_eq!(
            texts_by(&conv, "EndUser")
                .iter()
                .filter(|t| *t == "only once")
                .count(),
            1
        );
        let sent: Vec<&Value> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "rep.sent")
            .collect();
        assert_eq!(
            sent.iter()
                .filter(|e| e["data"]["kind"] == "customer")
                .count(),
            1,
            "sent once: {sent:?}"
        );
    }
);

// A chat widget without a webhook (no `reply_to`) subscribes to the session
// stream directly: the same messages arrive there, each delivery `sent`.
both_databases!(
    a_chat_without_a_webhook_is_served_on_its_stream,
    |db: Db| async move {
        let app = live(db).await;
        let rep = console(&app);
        let mut body = chat("live-widget", "unused", "en");
        body.as_object_mut().unwrap().remove("reply_to");
        let (status, answer) = app.post_escalation(&body).await;
        assert_eq!(status, 202, "{answer}");
        let id = answer["salesforce_miaw_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        rep.wait_for(&id, "the conversation", |c| c["status"] == "waiting")
            .await;
        rep.accept(&id, "Wu").await;
        rep.say(&id, "hello widget").await;
        rep.close(&id).await;
        let response = reqwest::Client::new()
            .get(app.url("/v1/sessions/live-widget/stream"))
            .bearer_auth(&app.read_token)
            .send()
            .await
            .unwrap();
        let text = tokio::time::timeout(Duration::from_secs(30), response.text())
            .await
            .unwrap()
            .unwrap();
        let events = parse_sse(&text);
        let kinds: Vec<&str> = events
            .iter()
            .map(|(_, e)| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "system.message",
                "system.message",
                "agent.joined",
                "agent.message",
                "agent.left",
                "session.closed"
            ]
        );
        assert_eq!(events[3].1["data"]["text"], "hello widget");
        wait_session(&app, "live-widget", "every delivery sent", |s| {
            s["deliveries"]
                .as_array()
                .is_some_and(|d| d.len() == 6 && d.iter().all(|d| d["state"] == "sent"))
        })
        .await;
    }
);

// A token that expires and cannot be renewed (here: the emulator refuses every
// continuation) can never reach the conversation again: the chat ends, the
// customer is told, and the timeline says why — instead of a stream retrying forever.
both_databases!(
    a_token_lost_for_good_ends_the_chat_visibly,
    |db: Db| async move {
        let mut emulator = sf_emulator::EmulatorConfig::default();
        emulator.miaw.token_ttl_secs = 2;
        let app = spawn_live_app(db, emulator, |_| {}).await;
        let rep = console(&app);
        let hook = receiver(vec![]).await;
        let (status, body) = app
            .post_escalation(&chat("live-lost-token", &hook.url, "en"))
            .await;
        assert_eq!(status, 202, "{body}");
        let id = body["salesforce_miaw_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        rep.wait_for(&id, "the conversation", |c| c["status"] == "waiting")
            .await;
        rep.set_faults(
            json!({"fail": [{"operation": "continuation", "status": 401, "times": 1000}]}),
        )
        .await;
        wait_webhooks(&hook, "session.closed", 1).await;
        let s = wait_session(&app, "live-lost-token", "closed", |s| {
            s["status"] == "closed"
        })
        .await;
        assert_eq!(s["route"], "messaging");
        assert!(
            app.event_kinds("live-lost-token")
                .await
                .contains(&"live.lost".to_string())
        );
        let (status, body) = post_message(&app, "live-lost-token", "hello?").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("session_closed"))
        );
    }
);
