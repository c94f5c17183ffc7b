//! Issue 8, "Done when", end to end over real parts: an email escalation becomes a Case; a rep
//! answers in the emulator's console; the customer's mailbox (aiosmtpd) receives the answer
//! threaded under their own email; the customer's reply, posted signed to the inbound route,
//! lands on the Case; a rep's internal comment reaches no one. Once hearing of the rep through
//! the emulator's signed case webhook (what the shipped Apex does), once through the poller.
//!
//! A chat session that fell back to a Case getting the rep's public comment on its callback is
//! `case_replies::the_emulators_signed_webhook_reaches_the_customer`.

use std::time::{Duration, Instant};

use channels::webhook::TimestampedSecret;
use gateway::store::{DeliveryState, delivery};
use handoff_tests::smtp::{SinkMessage, SmtpSink};
use handoff_tests::{Db, TestApp, both_databases, spawn_app_with};
use salesforce::SalesforceId;
use serde_json::{Value, json};

use crate::support::unique;

/// Hang guard of every wait.
const WAIT: Duration = Duration::from_secs(30);
const CASE_WEBHOOK_SECRET: &str = "round-trip-case-webhook-secret";
const INBOUND_SECRET: &str = "round-trip-inbound-secret-0123";
const REP: &str = "Jane Rep";
const FIRST: &str = "Your parcel left the depot this morning.";
const ANSWER: &str = "Thanks, I will watch for it tomorrow.";
const INTERNAL: &str = "Internal: the carrier lost it once already.";
const SECOND: &str = "It is out for delivery now.";

/// How the gateway hears of the rep's comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hearing {
    /// The emulator posts its signed case webhook to `POST /salesforce/events`.
    Push,
    /// The gateway polls open Cases with SOQL every second; no webhook.
    Poll,
}

/// `[channels.email]`: sends through the sink, Reply-To with the session's token, and takes
/// signed customer emails on `POST /channels/email/inbound`.
fn email_channel(port: u16) -> channels::ChannelConfig {
    serde_json::from_value(json!({
        "type": "email",
        "from": "Acme Support <support@acme.example>",
        "reply_to": "support+{token}@acme.example",
        "smtp": {"host": "127.0.0.1", "port": port, "tls": "plain", "timeout_secs": 10},
        "inbound": {"hmac_secret": INBOUND_SECRET},
    }))
    .expect("a valid [channels.email] table")
}

/// The customer's first email, as the bot platform hands it over.
fn original_email(message_id: &str) -> String {
    format!(
        "From: Ann Example <ann@customer.example>\r\n\
To: Acme Support <support@acme.example>\r\n\
Subject: Parcel is late\r\n\
Message-ID: <{message_id}>\r\n\
Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
My parcel is two weeks late. Where is it?\r\n"
    )
}

/// The customer's answer to our reply, as their mail client writes it.
fn customer_answer(message_id: &str, to: &str, thread: &[&str], in_reply_to: &str) -> String {
    let references = thread
        .iter()
        .map(|id| format!("<{id}>"))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "From: Ann Example <ann@customer.example>\r\n\
To: {to}\r\n\
Subject: Re: Parcel is late\r\n\
Date: Wed, 02 Dec 2026 10:15:00 +0000\r\n\
Message-ID: <{message_id}>\r\n\
In-Reply-To: <{in_reply_to}>\r\n\
References: {references}\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
{ANSWER}\r\n\
\r\n\
On Wed, Dec 2, 2026 at 9:00 AM Jane Rep via Acme Support <support@acme.example> wrote:\r\n\
> {FIRST}\r\n"
    )
}

/// A gateway sending through a fresh sink, hearing of reps by `hearing`.
async fn stack(db: Db, hearing: Hearing) -> Option<(TestApp, SmtpSink)> {
    let sink = SmtpSink::start().await?;
    let port = sink.port();
    let app = spawn_app_with(db, |config| {
        config.channels.insert("email".into(), email_channel(port));
        match hearing {
            Hearing::Push => {
                config.case_replies.webhook_secret = Some(CASE_WEBHOOK_SECRET.into());
            }
            Hearing::Poll => {
                config.case_replies.push = false;
                config.case_replies.poll = true;
                config.case_replies.poll_interval_secs = 1;
            }
        }
    })
    .await;
    if hearing == Hearing::Push {
        app.emulator
            .set_case_webhook(Some(sf_emulator::CaseWebhookConfig {
                url: app.url("/salesforce/events"),
                hmac_secret: Some(CASE_WEBHOOK_SECRET.into()),
                jwt: None,
                timeout_secs: 10,
            }))
            .expect("the case webhook is set");
    }
    Some((app, sink))
}

/// A rep's action in the emulator's console; the new record's id (18 characters).
async fn console(app: &TestApp, case_id: &str, what: &str, body: Value) -> String {
    let response = app
        .http
        .post(format!(
            "{}/__emulator/cases/{case_id}/{what}",
            app.emulator.url()
        ))
        .json(&body)
        .send()
        .await
        .expect("console request");
    let status = response.status().as_u16();
    let answer: Value = response.json().await.expect("console answer");
    assert_eq!(status, 201, "{answer}");
    let id = answer["id"].as_str().expect("record id");
    SalesforceId::parse(id)
        .expect("a Salesforce id")
        .into_string()
}

/// Waits until the session's delivery of `text` is sent and no other delivery is still on its
/// way; fails on any failed delivery. A session's messages go out in the order they were
/// written, so by then everything queued before `text` has been sent too.
async fn sent_through(app: &TestApp, session_id: &str, text: &str) -> Vec<delivery::Model> {
    let store = &app.gateway.state.store;
    let deadline = Instant::now() + WAIT;
    loop {
        let rows = store.deliveries_for_session(session_id).await.unwrap();
        for row in &rows {
            assert_ne!(
                row.state,
                DeliveryState::Failed.as_str(),
                "{:?}",
                row.last_error
            );
        }
        let sent = DeliveryState::Sent.as_str();
        if rows.iter().any(|r| r.text == text && r.state == sent)
            && rows.iter().all(|r| r.state == sent)
        {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{text:?} was never sent: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the Case holds an internal comment containing `text`.
async fn wait_internal_comment(app: &TestApp, case_id: &str, text: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let comments = app
            .soql(&format!(
                "SELECT CommentBody, IsPublished FROM CaseComment WHERE ParentId = '{case_id}' ORDER BY CreatedDate"
            ))
            .await;
        let found: Vec<&Value> = comments
            .iter()
            .filter(|c| c["CommentBody"].as_str().is_some_and(|b| b.contains(text)))
            .collect();
        if let [comment] = found.as_slice() {
            assert_eq!(comment["IsPublished"], false, "internal, never published");
            return comment["CommentBody"].as_str().unwrap().to_string();
        }
        assert!(found.len() < 2, "appended twice: {found:?}");
        assert!(
            Instant::now() < deadline,
            "the answer never reached the Case: {comments:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts a raw email to the inbound route, signed as an inbound-mail service does.
async fn post_inbound(app: &TestApp, raw: &str) -> (u16, Value) {
    let now = chrono::Utc::now().timestamp();
    let signature = TimestampedSecret::new(INBOUND_SECRET.as_bytes()).sign(now, raw.as_bytes());
    let response = app
        .http
        .post(app.url("/channels/email/inbound"))
        .header("content-type", "message/rfc822")
        .header("x-handoff-timestamp", now.to_string())
        .header("x-handoff-signature", signature)
        .body(raw.to_string())
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The text and HTML parts of a message, both present, each containing `text`.
fn assert_both_parts(m: &SinkMessage, text: &str) {
    let plain = m.text.as_deref().expect("a text part");
    assert!(plain.contains(text), "{plain}");
    let html = m.html.as_deref().expect("an HTML part");
    assert!(html.contains(text), "{html}");
}

fn mentions(m: &SinkMessage, text: &str) -> bool {
    m.text.as_deref().is_some_and(|t| t.contains(text))
        || m.html.as_deref().is_some_and(|h| h.contains(text))
        || String::from_utf8_lossy(&m.raw).contains(text)
}

/// The whole round trip; see the module doc.
async fn round_trip(db: Db, hearing: Hearing) {
    let Some((app, sink)) = stack(db, hearing).await else {
        return;
    };
    let store = &app.gateway.state.store;

    // The customer's email becomes a Case.
    let session_id = unique("trip");
    let original_id = format!("{}@customer.example", unique("orig"));
    let (status, body) = app
        .post_escalation(&json!({
            "session_id": session_id,
            "channel": "email",
            "summary": "Parcel two weeks late.",
            "raw_email": [original_email(&original_id)],
        }))
        .await;
    assert_eq!(status, 202, "{body}");
    let case_id = app
        .driver()
        .wait_escalated(&session_id, WAIT)
        .await
        .expect("Case created")
        .salesforce_case_id
        .expect("case id");

    // The rep answers publicly: exactly one reply, threaded under the customer's email.
    let public1 = console(
        &app,
        &case_id,
        "comments",
        json!({"text": FIRST, "public": true, "rep_name": REP}),
    )
    .await;
    sent_through(&app, &session_id, FIRST).await;
    let messages = sink.wait_for(1, WAIT).await;
    assert_eq!(messages.len(), 1, "exactly one reply");
    let first = &messages[0];
    let token = store
        .session(&session_id)
        .await
        .unwrap()
        .unwrap()
        .reply_token
        .expect("the reply gave the session a token");
    let reply_to = format!("support+{token}@acme.example");
    assert_eq!(first.to, ["ann@customer.example"]);
    assert_eq!(first.rcpt_to.as_deref(), Some("ann@customer.example"));
    assert_eq!(first.subject.as_deref(), Some("Re: Parcel is late"));
    assert_eq!(first.in_reply_to, [original_id.as_str()]);
    assert!(
        first.references.contains(&original_id),
        "{:?}",
        first.references
    );
    assert_eq!(first.reply_to.as_deref(), Some(reply_to.as_str()));
    assert_eq!(
        first.from_name.as_deref(),
        Some("Jane Rep via Acme Support")
    );
    assert_eq!(first.from_address.as_deref(), Some("support@acme.example"));
    assert_both_parts(first, FIRST);
    let ours = first.message_id.clone().expect("our Message-ID");
    let event = store.case_event(&public1).await.unwrap().expect("recorded");
    assert_eq!(event.outcome, "delivered");
    let source = match hearing {
        Hearing::Push => "push",
        Hearing::Poll => "poll",
    };
    assert_eq!(event.source, source);

    // The customer answers our reply: it lands on the Case as an internal comment.
    let answer_id = format!("{}@customer.example", unique("answer"));
    let raw = customer_answer(&answer_id, &reply_to, &[&original_id, &ours], &ours);
    let (status, answer) = post_inbound(&app, &raw).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "appended", "{answer}");
    assert_eq!(answer["session_id"], session_id.as_str(), "{answer}");
    let comment = wait_internal_comment(&app, &case_id, ANSWER).await;
    assert!(
        !comment.contains(FIRST),
        "quoted history stripped: {comment}"
    );

    // An internal comment, then a public one: only the public one is sent, threaded under the
    // customer's answer. The second mail arriving is the point by which the internal one would
    // have been sent (it came first).
    let internal = console(
        &app,
        &case_id,
        "comments",
        json!({"text": INTERNAL, "public": false, "rep_name": REP}),
    )
    .await;
    let public2 = console(
        &app,
        &case_id,
        "comments",
        json!({"text": SECOND, "public": true, "rep_name": REP}),
    )
    .await;
    let deliveries = sent_through(&app, &session_id, SECOND).await;
    let messages = sink.messages();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    assert_eq!(messages.len(), 2, "the internal comment sent nothing");
    assert!(
        messages.iter().all(|m| !mentions(m, INTERNAL)),
        "the internal text reached the customer"
    );
    let second = &messages[1];
    assert_both_parts(second, SECOND);
    assert_eq!(second.in_reply_to, [answer_id.as_str()]);
    for id in [&original_id, &ours, &answer_id] {
        assert!(second.references.contains(id), "{:?}", second.references);
    }
    assert_eq!(second.reply_to.as_deref(), Some(reply_to.as_str()));
    assert_eq!(second.subject.as_deref(), Some("Re: Parcel is late"));
    assert_eq!(
        store.case_event(&public2).await.unwrap().unwrap().outcome,
        "delivered"
    );
    assert!(
        store.case_event(&internal).await.unwrap().is_none(),
        "the internal comment was never even recorded"
    );
    let kinds = app.event_kinds(&session_id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "case_reply.received").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "delivery.sent").count(),
        2,
        "{kinds:?}"
    );

    // What Salesforce posted: one signed event per public comment, each accepted.
    let posted = app.emulator.case_webhook_deliveries();
    match hearing {
        Hearing::Push => {
            let ids: Vec<String> = posted
                .iter()
                .map(|d| {
                    SalesforceId::parse(&d.event_id)
                        .expect("an id")
                        .into_string()
                })
                .collect();
            assert_eq!(ids, [public1, public2], "{posted:?}");
            assert!(posted.iter().all(|d| d.status == Some(202)), "{posted:?}");
        }
        Hearing::Poll => assert!(posted.is_empty(), "{posted:?}"),
    }
    app.gateway.stop().await;
}

both_databases!(an_email_case_round_trip_by_push, |db: Db| async move {
    round_trip(db, Hearing::Push).await
});

both_databases!(an_email_case_round_trip_by_poll, |db: Db| async move {
    round_trip(db, Hearing::Poll).await
});
