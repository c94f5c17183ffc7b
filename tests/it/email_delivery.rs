//! Email replies over a real SMTP server (aiosmtpd on loopback): the adapter's message as a
//! mail client sees it (threading headers, Reply-To token, both parts, encoded non-ASCII,
//! nothing injected), what each relay failure means for a retry, and the gateway's outbox
//! sending an email session's reply threaded under the customer's own message, recording its
//! Message-ID, and leaving a note on the Case when the relay refuses it for good.

use std::sync::Arc;
use std::time::{Duration, Instant};

use channels::{
    Channel, DeliveryError, EmailAddress, EmailContext, OutboundKind, OutboundMessage, ReplyTarget,
};
use chrono::{TimeZone, Utc};
use gateway::store::{DeliveryState, EmailDirection, NewDelivery, NoteState, delivery};
use handoff_tests::smtp::{SmtpSink, email_channel_config, free_port};
use handoff_tests::{Db, TestApp, both_databases, spawn_app_with};
use serde_json::json;

use crate::support::unique;

const WAIT: Duration = Duration::from_secs(30);

fn email_channel(port: u16) -> Arc<dyn Channel> {
    email_channel_config(port)
        .build("email")
        .expect("the email channel builds")
}

fn target() -> ReplyTarget {
    ReplyTarget::Email {
        address: EmailAddress::parse("ann@customer.example").unwrap(),
    }
}

fn reply(id: &str, text: &str, context: EmailContext) -> OutboundMessage {
    OutboundMessage {
        id: id.into(),
        session_id: "s-mail".into(),
        kind: OutboundKind::AgentMessage,
        text: text.into(),
        sender_name: Some("Rita Rep".into()),
        at: Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap(),
        email: Some(context),
        customer_last_message_at: None,
        status_callback: None,
    }
}

fn thread() -> EmailContext {
    EmailContext {
        subject: Some("Parcel is late".into()),
        in_reply_to: Some("m2@customer.example".into()),
        references: vec!["m0@customer.example".into(), "m1@acme.example".into()],
        reply_token: Some("abcdefghijklmnopqrstuvwxyz".into()),
    }
}

/// The adapter's reply, as the customer's mail server stores it: threaded under their message,
/// answers routed back by the token, text with an HTML alternative.
#[tokio::test]
async fn a_reply_arrives_threaded_with_both_parts() {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let channel = email_channel(sink.port());
    assert!(channel.capabilities().delivers);
    let text = "Hello Ann,\n\nyour parcel left today.\nTracking <42> & more.";
    let delivered = channel
        .deliver(&target(), &reply("dlv_thread1", text, thread()))
        .await
        .expect("delivered");
    assert_eq!(
        delivered.provider_id.as_deref(),
        Some("dlv_thread1@acme.example")
    );
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "the relay answered 250 after storing it");
    let m = &messages[0];
    assert_eq!(m.message_id.as_deref(), Some("dlv_thread1@acme.example"));
    assert_eq!(m.in_reply_to, ["m2@customer.example"]);
    assert_eq!(
        m.references,
        [
            "m0@customer.example",
            "m1@acme.example",
            "m2@customer.example"
        ]
    );
    assert_eq!(m.subject.as_deref(), Some("Re: Parcel is late"));
    assert_eq!(
        m.reply_to.as_deref(),
        Some("support+abcdefghijklmnopqrstuvwxyz@acme.example")
    );
    assert_eq!(m.from_name.as_deref(), Some("Rita Rep via Acme Support"));
    assert_eq!(m.from_address.as_deref(), Some("support@acme.example"));
    assert_eq!(m.to, ["ann@customer.example"]);
    assert_eq!(m.rcpt_to.as_deref(), Some("ann@customer.example"));
    assert_eq!(
        m.text.as_deref().unwrap().replace("\r\n", "\n").trim_end(),
        text
    );
    let html = m.html.as_deref().expect("an HTML part");
    assert!(
        html.contains("<p>Hello Ann,</p>") && html.contains("your parcel left today.<br>"),
        "{html}"
    );
    assert!(html.contains("Tracking &lt;42&gt; &amp; more."), "{html}");
    assert_eq!(m.header_count("Date"), 1);
    assert_eq!(m.header_count("Auto-Submitted"), 0, "a human reply");
}

/// A non-ASCII subject and rep name travel as RFC 2047 encoded words and read back intact; a
/// message without a reply token has no Reply-To (answers go to From).
#[tokio::test]
async fn non_ascii_subjects_and_names_arrive_decoded() {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let channel = email_channel(sink.port());
    let mut message = reply(
        "dlv_utf8",
        "Grüße aus Köln — 配送は明日です。",
        EmailContext {
            subject: Some("Paket verspätet — 配送".into()),
            reply_token: None,
            ..thread()
        },
    );
    message.sender_name = Some("Zoë Müller".into());
    channel
        .deliver(&target(), &message)
        .await
        .expect("delivered");
    let m = &sink.messages()[0];
    assert!(
        m.raw.is_ascii(),
        "headers are encoded words, the body is transfer-encoded"
    );
    assert_eq!(m.subject.as_deref(), Some("Re: Paket verspätet — 配送"));
    assert_eq!(m.from_name.as_deref(), Some("Zoë Müller via Acme Support"));
    assert_eq!(
        m.text.as_deref().unwrap().trim_end(),
        "Grüße aus Köln — 配送は明日です。"
    );
    assert_eq!(m.reply_to, None);
    assert_eq!(m.header_count("Reply-To"), 0);
}

/// CR/LF in a subject, a rep name or a thread id arrive as text inside one header; no header
/// is added and no recipient either.
#[tokio::test]
async fn header_injection_arrives_as_one_header() {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let channel = email_channel(sink.port());
    let mut message = reply(
        "dlv_inject",
        "Hi",
        EmailContext {
            subject: Some("Refund\r\nBcc: victim@evil.example\r\nX-Injected: subject".into()),
            in_reply_to: Some("m2@customer.example\r\nX-Injected: id".into()),
            references: vec!["m0@customer.example".into(), "bad\nX-Injected: ref".into()],
            reply_token: Some("abc\r\nX-Injected: token".into()),
        },
    );
    message.sender_name = Some("Eve\r\nX-Injected: name\r\nCc: other@evil.example".into());
    channel
        .deliver(&target(), &message)
        .await
        .expect("delivered");
    let m = &sink.messages()[0];
    for header in ["X-Injected", "Bcc", "Cc"] {
        assert_eq!(m.header_count(header), 0, "{header} was injected");
    }
    assert_eq!(m.header_count("Subject"), 1);
    assert_eq!(m.header_count("From"), 1);
    assert_eq!(
        m.subject.as_deref(),
        Some("Re: Refund Bcc: victim@evil.example X-Injected: subject")
    );
    assert_eq!(
        m.from_name.as_deref(),
        Some("Eve X-Injected: name Cc: other@evil.example via Acme Support")
    );
    assert!(m.in_reply_to.is_empty(), "a malformed id is dropped");
    assert_eq!(m.references, ["m0@customer.example"]);
    assert_eq!(m.reply_to, None, "a malformed token is not used");
    assert_eq!(
        m.rcpt_to.as_deref(),
        Some("ann@customer.example"),
        "one recipient"
    );
}

/// A relay that is down refuses the connection: retryable, certainly not sent. Once it is up
/// the retry delivers, and the mailbox holds exactly one message.
#[tokio::test]
async fn a_relay_that_is_down_is_retried_and_delivers_once() {
    let port = free_port();
    let channel = email_channel(port);
    let message = reply("dlv_down", "Your refund is on its way.", thread());
    let err = channel.deliver(&target(), &message).await.unwrap_err();
    let DeliveryError::Retryable {
        sent,
        message: text,
        ..
    } = &err
    else {
        panic!("a refused connection is retryable: {err:?}");
    };
    assert!(!sent, "nothing left: {text}");
    assert!(!text.contains("ann@"), "{text}");
    let Some(sink) = SmtpSink::start_on(port).await else {
        return;
    };
    channel
        .deliver(&target(), &message)
        .await
        .expect("the retry delivers");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].message_id.as_deref(),
        Some("dlv_down@acme.example")
    );
}

/// 5xx answers are permanent (the texts carry the code, never the relay's words or the
/// address); a 4xx answer is retryable and nothing was accepted.
#[tokio::test]
async fn relay_rejections_are_classified() {
    let cases = [
        (
            "RCPT",
            "550 5.1.1 <ann@customer.example>: No such user",
            Some(550),
        ),
        ("DATA", "554 5.7.1 Message rejected as spam", Some(554)),
        ("RCPT", "451 4.3.0 Try again later", None),
    ];
    for (command, answer, permanent) in cases {
        let Some(sink) = SmtpSink::replying(command, answer).await else {
            return;
        };
        let channel = email_channel(sink.port());
        let err = channel
            .deliver(&target(), &reply("dlv_reject", "Hello", thread()))
            .await
            .unwrap_err();
        match (permanent, &err) {
            (Some(code), DeliveryError::Permanent { message }) => {
                assert!(message.contains(&code.to_string()), "{message}");
                assert!(
                    !message.contains("ann@") && !message.contains("spam"),
                    "{message}"
                );
            }
            (None, DeliveryError::Retryable { sent, message, .. }) => {
                assert!(!sent, "{message}");
                assert!(message.contains("451"), "{message}");
            }
            _ => panic!("{command} {answer}: unexpected {err:?}"),
        }
        assert!(sink.messages().is_empty());
    }
}

/// `tls = "starttls"` against a relay that offers no STARTTLS: nothing goes out in the clear;
/// the delivery is retryable and certainly not sent.
#[tokio::test]
async fn starttls_is_required_when_configured() {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let channel = serde_json::from_value::<channels::ChannelConfig>(json!({
        "type": "email", "from": "support@acme.example",
        "smtp": {"host": "127.0.0.1", "port": sink.port(), "tls": "starttls", "timeout_secs": 10},
    }))
    .unwrap()
    .build("email")
    .unwrap();
    let err = channel
        .deliver(&target(), &reply("dlv_tls", "Hello", thread()))
        .await
        .unwrap_err();
    let DeliveryError::Retryable { sent, message, .. } = &err else {
        panic!("retryable expected: {err:?}");
    };
    assert!(!sent);
    assert!(message.contains("STARTTLS"), "{message}");
    assert!(sink.messages().is_empty(), "nothing sent in the clear");
}

// ---- Through the gateway's outbox ----------------------------------------------------------

const CUSTOMER_EMAIL: &str = "From: Ann Example <ann@customer.example>\r\n\
To: Acme Support <support@acme.example>\r\n\
Subject: Re: Parcel is late\r\n\
Message-ID: <m2@customer.example>\r\n\
In-Reply-To: <m1@acme.example>\r\n\
References: <m0@customer.example> <m1@acme.example>\r\n\
Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
It is still not here. Where is my parcel?\r\n";

/// An email escalation (the customer's raw message) on a gateway sending through `port`; its
/// session id once the Case exists.
async fn escalated_email(port: u16, db: Db) -> (TestApp, String) {
    let app = spawn_app_with(db, |config| {
        config
            .channels
            .insert("email".into(), email_channel_config(port));
    })
    .await;
    let session_id = unique("mail");
    let (status, body) = app
        .post_escalation(&json!({
            "session_id": session_id,
            "channel": "email",
            "summary": "Parcel two weeks late.",
            "raw_email": [CUSTOMER_EMAIL],
        }))
        .await;
    assert_eq!(status, 202, "{body}");
    app.driver()
        .wait_escalated(&session_id, WAIT)
        .await
        .expect("Case created");
    (app, session_id)
}

/// Queues a rep's reply to the session's customer, as the case-reply sync does.
async fn queue_reply(app: &TestApp, session_id: &str, purpose: &str, text: &str) -> String {
    queue_reply_with(app, session_id, purpose, text, 5).await
}

async fn queue_reply_with(
    app: &TestApp,
    session_id: &str,
    purpose: &str,
    text: &str,
    max_attempts: u32,
) -> String {
    let id = gateway::outbox::delivery_id(session_id, purpose);
    let queued = app
        .gateway
        .state
        .store
        .enqueue_delivery(
            &NewDelivery {
                id: id.clone(),
                session_id: session_id.into(),
                channel: "email".into(),
                kind: OutboundKind::AgentMessage,
                text: text.into(),
                sender_name: Some("Rita Rep".into()),
                target: target(),
            },
            max_attempts,
        )
        .await
        .unwrap();
    assert!(queued);
    id
}

async fn settled(app: &TestApp, id: &str) -> delivery::Model {
    let deadline = Instant::now() + WAIT;
    loop {
        let row = app.gateway.state.store.delivery(id).await.unwrap().unwrap();
        if matches!(
            DeliveryState::parse(&row.state),
            Some(DeliveryState::Sent | DeliveryState::Failed)
        ) {
            return row;
        }
        assert!(Instant::now() < deadline, "delivery still {}", row.state);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// A rep's reply on an email session reaches the customer threaded under their own message,
// with the session's reply token; its Message-ID joins the session's thread, and the next
// reply threads under both.
both_databases!(
    an_email_reply_reaches_the_customer_threaded,
    |db: Db| async move {
        let Some(sink) = SmtpSink::start().await else {
            return;
        };
        let (app, session_id) = escalated_email(sink.port(), db).await;
        let store = &app.gateway.state.store;
        let first = queue_reply(&app, &session_id, "reply:1", "It left the depot today.").await;
        let row = settled(&app, &first).await;
        assert_eq!(row.state, "sent", "{:?}", row.last_error);
        let message_id = format!("{first}@acme.example");
        assert_eq!(row.provider_id.as_deref(), Some(message_id.as_str()));

        let session = store.session(&session_id).await.unwrap().unwrap();
        let token = session.reply_token.expect("a reply token was stored");
        assert_eq!(token.len(), 26);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        );
        // A racing delivery offering another token gets the stored one.
        assert_eq!(
            store
                .ensure_reply_token(&session_id, "another2token3another4tok")
                .await
                .unwrap(),
            Some(token.clone())
        );

        let messages = sink.wait_for(1, WAIT).await;
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(m.message_id.as_deref(), Some(message_id.as_str()));
        assert_eq!(m.in_reply_to, ["m2@customer.example"]);
        assert_eq!(
            m.references,
            [
                "m0@customer.example",
                "m1@acme.example",
                "m2@customer.example"
            ]
        );
        assert_eq!(m.subject.as_deref(), Some("Re: Parcel is late"));
        assert_eq!(
            m.reply_to.as_deref(),
            Some(format!("support+{token}@acme.example").as_str())
        );
        assert_eq!(m.to, ["ann@customer.example"]);
        assert_eq!(m.from_name.as_deref(), Some("Rita Rep via Acme Support"));

        let thread = store.email_thread(&session_id).await.unwrap();
        assert_eq!(
            thread
                .iter()
                .map(|t| (t.message_id.as_str(), t.direction.as_str()))
                .collect::<Vec<_>>(),
            [(message_id.as_str(), "out")]
        );

        // The customer answers (as the inbound route records it); the next reply answers
        // that message, keeps the token and lists the whole thread in References.
        assert!(
            store
                .record_email_message(&session_id, "m3@customer.example", EmailDirection::In)
                .await
                .unwrap()
        );
        let second = queue_reply(&app, &session_id, "reply:2", "It arrives tomorrow.").await;
        assert_eq!(settled(&app, &second).await.state, "sent");
        let messages = sink.wait_for(2, WAIT).await;
        assert_eq!(messages.len(), 2);
        let m = &messages[1];
        assert_eq!(m.in_reply_to, ["m3@customer.example"]);
        assert_eq!(
            m.references,
            [
                "m0@customer.example",
                "m1@acme.example",
                "m2@customer.example",
                message_id.as_str(),
                "m3@customer.example"
            ]
        );
        assert_eq!(
            m.reply_to.as_deref(),
            Some(format!("support+{token}@acme.example").as_str())
        );
        assert!(
            app.event_kinds(&session_id)
                .await
                .iter()
                .filter(|k| *k == "delivery.sent")
                .count()
                == 2
        );
    }
);

// The relay refuses the reply for good: the delivery fails once (no retry), the session's
// timeline says so, and the rep finds an internal note on the Case.
both_databases!(
    a_rejected_email_reply_leaves_a_note_on_the_case,
    |db: Db| async move {
        let Some(sink) = SmtpSink::replying("RCPT", "550 5.1.1 No such user").await else {
            return;
        };
        let (app, session_id) = escalated_email(sink.port(), db).await;
        let store = &app.gateway.state.store;
        let id = queue_reply(&app, &session_id, "reply:1", "It left the depot today.").await;
        let row = settled(&app, &id).await;
        assert_eq!(row.state, "failed");
        assert_eq!(row.attempts, 1, "a permanent refusal is not retried");
        let error = row.last_error.expect("why");
        assert!(error.contains("550"), "{error}");
        assert!(!error.contains("ann@"), "{error}");
        assert!(
            app.event_kinds(&session_id)
                .await
                .contains(&"delivery.failed".to_string())
        );

        let notes = store.case_notes_for_session(&session_id).await.unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].kind, "delivery_failed");
        assert!(notes[0].body.contains("550"), "{}", notes[0].body);
        assert!(notes[0].body.contains("It left the depot today."));

        // The note becomes an internal comment on the Case.
        let case_id = store
            .session(&session_id)
            .await
            .unwrap()
            .unwrap()
            .salesforce_case_id
            .expect("case id");
        let deadline = Instant::now() + WAIT;
        loop {
            let note = store.case_note(&notes[0].id).await.unwrap().unwrap();
            if note.state == NoteState::Written.as_str() {
                break;
            }
            assert!(Instant::now() < deadline, "note still {}", note.state);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let comments = app
            .soql(&format!(
                "SELECT CommentBody, IsPublished FROM CaseComment WHERE ParentId = '{case_id}'"
            ))
            .await;
        let noted: Vec<_> = comments
            .iter()
            .filter(|c| {
                c["CommentBody"]
                    .as_str()
                    .is_some_and(|b| b.contains("could not deliver this reply"))
            })
            .collect();
        assert_eq!(noted.len(), 1, "{comments:?}");
        assert_eq!(
            noted[0]["IsPublished"], false,
            "internal, never shown to the customer"
        );
    }
);

// The relay is down when the reply is due: the attempt is recorded and retried (nothing was
// sent), and once the relay is up the retry delivers it — exactly one message in the mailbox.
both_databases!(
    a_reply_waits_for_a_relay_that_is_down,
    |db: Db| async move {
        let port = free_port();
        let (app, session_id) = escalated_email(port, db).await;
        let store = &app.gateway.state.store;
        // Enough attempts for the relay to start while the retries back off (≤ 500 ms each).
        let id = queue_reply_with(
            &app,
            &session_id,
            "reply:1",
            "It left the depot today.",
            200,
        )
        .await;
        let deadline = Instant::now() + WAIT;
        loop {
            let row = store.delivery(&id).await.unwrap().unwrap();
            if row.attempts >= 1 && row.state == "queued" {
                let error = row.last_error.expect("the failed attempt says why");
                assert!(error.contains("could not be reached"), "{error}");
                break;
            }
            assert_ne!(row.state, "sent");
            assert_ne!(row.state, "failed", "{:?}", row.last_error);
            assert!(
                Instant::now() < deadline,
                "no failed attempt recorded: {row:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let Some(sink) = SmtpSink::start_on(port).await else {
            return;
        };
        let row = settled(&app, &id).await;
        assert_eq!(row.state, "sent", "{:?}", row.last_error);
        assert!(row.attempts >= 2);
        let messages = sink.wait_for(1, WAIT).await;
        assert_eq!(messages.len(), 1, "exactly one message");
        assert_eq!(
            messages[0].message_id.as_deref(),
            Some(format!("{id}@acme.example").as_str())
        );
        let kinds = app.event_kinds(&session_id).await;
        assert!(
            kinds.contains(&"delivery.attempt_failed".to_string()),
            "{kinds:?}"
        );
        assert_eq!(kinds.iter().filter(|k| *k == "delivery.sent").count(), 1);
        assert!(
            store
                .case_notes_for_session(&session_id)
                .await
                .unwrap()
                .is_empty()
        );
    }
);
