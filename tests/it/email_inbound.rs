//! Customer emails coming back (`POST /channels/email/inbound`): matched to
//! their session and appended to its Case as an internal comment; what
//! matches nothing kept for operators; auto-replies ignored; replays,
//! forgeries and oversized bodies refused without a write.

use std::time::{Duration, Instant};

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use channels::email::{AppendAs, EmailInboundConfig};
use channels::webhook::TimestampedSecret;
use gateway::config::Config;
use gateway::store::{NoteState, email_message, inbound_email, session};
use handoff_tests::{Db, TestApp, both_databases, spawn_app_with};

use crate::support::{escalation, unique};

const SECRET: &str = "inbound-test-secret-0123456789";
const PATH_TOKEN: &str = "p4th-t0ken-0123456789abcdef";
const REPLY_TO: &str = "support+{token}@acme.example";

fn inbound_settings(append_new_conversations: bool) -> impl FnOnce(&mut Config) {
    inbound_settings_as(append_new_conversations, AppendAs::Comment)
}

fn inbound_settings_as(
    append_new_conversations: bool,
    append_as: AppendAs,
) -> impl FnOnce(&mut Config) {
    move |config: &mut Config| {
        config.channels.insert(
            "email".into(),
            channels::ChannelConfig::Email(channels::EmailConfig {
                reply_to: Some(REPLY_TO.into()),
                inbound: EmailInboundConfig {
                    hmac_secret: Some(SECRET.to_owned().into()),
                    path_token: Some(PATH_TOKEN.to_owned().into()),
                    append_new_conversations,
                    append_as,
                    ..EmailInboundConfig::default()
                },
                ..channels::EmailConfig::default()
            }),
        );
    }
}

async fn inbound_app(db: Db) -> TestApp {
    spawn_app_with(db, inbound_settings(true)).await
}

async fn post_signed_with(
    app: &TestApp,
    raw: &[u8],
    timestamp: i64,
    secret: &[u8],
) -> (u16, Value) {
    let signature = TimestampedSecret::new(secret).sign(timestamp, raw);
    let response = app
        .http
        .post(app.url("/channels/email/inbound"))
        .header("content-type", "message/rfc822")
        .header("x-handoff-timestamp", timestamp.to_string())
        .header("x-handoff-signature", signature)
        .body(raw.to_vec())
        .send()
        .await
        .expect("request sent");
    answer(response).await
}

async fn post_signed(app: &TestApp, raw: &str) -> (u16, Value) {
    let now = chrono::Utc::now().timestamp();
    post_signed_with(app, raw.as_bytes(), now, SECRET.as_bytes()).await
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn escalated(app: &TestApp, prefix: &str) -> (String, String) {
    let session_id = unique(prefix);
    let (status, body) = app.post_escalation(&escalation(&session_id, 2)).await;
    assert_eq!(status, 202, "{body}");
    let session = app
        .driver()
        .wait_escalated(&session_id, Duration::from_secs(30))
        .await
        .expect("Case created");
    (session_id, session.salesforce_case_id.expect("case id"))
}

/// Records `message_id` as one we sent in the session's thread (what the
/// email adapter does when a reply goes out).
async fn sent_message(app: &TestApp, session_id: &str, message_id: &str) {
    email_message::ActiveModel {
        session_id: Set(session_id.into()),
        message_id: Set(message_id.into()),
        direction: Set("out".into()),
        created_at: Set(gateway::store::now_ms()),
        ..Default::default()
    }
    .insert(app.gateway.state.store.connection())
    .await
    .expect("email_messages row");
}

/// The session's internal comments written from inbound emails, once every
/// note of the session is settled.
async fn inbound_comments(app: &TestApp, session_id: &str, case_id: &str) -> Vec<(String, bool)> {
    let store = &app.gateway.state.store;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let notes = store.case_notes_for_session(session_id).await.unwrap();
        if notes.iter().all(|n| n.state != NoteState::Queued.as_str()) {
            assert!(
                notes.iter().all(|n| n.state == NoteState::Written.as_str()),
                "{notes:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "notes never settled: {notes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.soql(&format!(
        "SELECT CommentBody, IsPublished FROM CaseComment WHERE ParentId = '{case_id}' ORDER BY CreatedDate"
    ))
    .await
    .iter()
    .filter_map(|c| {
        let body = c["CommentBody"].as_str()?.to_string();
        body.contains("Customer replied by email")
            .then(|| (body, c["IsPublished"].as_bool().unwrap()))
    })
    .collect()
}

/// Posts `raw` signed, expects it appended to `session_id`, and returns the
/// session's inbound comments, of which there must be exactly one.
async fn appended_once(
    app: &TestApp,
    raw: &str,
    session_id: &str,
    case_id: &str,
) -> Vec<(String, bool)> {
    let (status, body) = post_signed(app, raw).await;
    assert_eq!(
        (status, body["session_id"].as_str()),
        (202, Some(session_id)),
        "{body}"
    );
    let comments = inbound_comments(app, session_id, case_id).await;
    assert_eq!(comments.len(), 1);
    comments
}

async fn inbound_rows(app: &TestApp) -> u64 {
    inbound_email::Entity::find()
        .count(app.gateway.state.store.connection())
        .await
        .unwrap()
}

fn reply(message_id: &str, extra_headers: &str, text: &str) -> String {
    format!(
        "From: Ann Example <ann.example@example.com>\r\n\
To: Acme Support <support@acme.example>\r\n\
Subject: Re: Parcel is late\r\n\
Date: Wed, 2 Dec 2026 10:15:00 +0000\r\n\
Message-ID: <{message_id}>\r\n\
{extra_headers}\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
{text}\r\n\
\r\n\
On Tue, Dec 1, 2026 at 9:12 AM Acme Support <support@acme.example> wrote:\r\n\
> We are looking into it.\r\n"
    )
}

// A reply to our outbound Message-ID lands on the session's Case as one
// internal comment with the new text only; its own Message-ID joins the
// thread, and the timeline says so without the body.
both_databases!(
    a_reply_to_our_message_is_appended_as_an_internal_comment,
    |db: Db| async move {
        let app = inbound_app(db).await;
        let (session_id, case_id) = escalated(&app, "in-reply").await;
        sent_message(&app, &session_id, "d-1@acme.example").await;
        let id = unique("cust");
        let raw = reply(
            &format!("{id}@mail.example.com"),
            "In-Reply-To: <d-1@acme.example>\r\n",
            "The parcel arrived today, thanks.",
        );
        let (status, body) = post_signed(&app, &raw).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["status"], "appended");
        assert_eq!(body["session_id"], session_id.as_str());

        let comments = inbound_comments(&app, &session_id, &case_id).await;
        assert_eq!(comments.len(), 1, "{comments:?}");
        let (text, published) = &comments[0];
        assert!(!published, "internal, never published");
        assert!(
            text.contains("From: Ann Example <ann.example@example.com>"),
            "{text}"
        );
        assert!(text.contains("Subject: Re: Parcel is late"), "{text}");
        assert!(text.contains("The parcel arrived today, thanks."), "{text}");
        assert!(
            !text.contains("We are looking into it"),
            "quoted history stripped: {text}"
        );

        let thread = email_message::Entity::find()
            .filter(email_message::Column::SessionId.eq(session_id.as_str()))
            .filter(email_message::Column::Direction.eq("in"))
            .all(app.gateway.state.store.connection())
            .await
            .unwrap();
        assert_eq!(thread.len(), 1);
        assert_eq!(thread[0].message_id, format!("{id}@mail.example.com"));
        let events = app.event_kinds(&session_id).await;
        assert!(
            events.contains(&"customer.email_received".to_string()),
            "{events:?}"
        );
        let (_, timeline) = app
            .get(
                &format!("/v1/sessions/{session_id}/events"),
                Some(&app.read_token),
            )
            .await;
        let timeline = timeline.to_string();
        assert!(!timeline.contains("parcel arrived"), "no body in events");
        assert!(!timeline.contains("ann.example@"), "no address in events");
        app.gateway.stop().await;
    }
);

// The Reply-To token in a recipient (Delivered-To here, any case) finds the
// session without any thread header.
both_databases!(a_reply_to_token_finds_its_session, |db: Db| async move {
    let app = inbound_app(db).await;
    let (session_id, case_id) = escalated(&app, "in-token").await;
    let token = "abcdefghijklmnopqrstuvwx27";
    session::Entity::update_many()
        .col_expr(
            session::Column::ReplyToken,
            sea_orm::sea_query::Expr::value(token),
        )
        .filter(session::Column::Id.eq(session_id.as_str()))
        .exec(app.gateway.state.store.connection())
        .await
        .unwrap();
    let raw = reply(
        &unique("tok"),
        "Delivered-To: support+ABCDEFGHIJKLMNOPQRSTUVWX27@acme.example\r\n",
        "Found it by token.",
    );
    let comments = appended_once(&app, &raw, &session_id, &case_id).await;
    assert!(comments[0].0.contains("Found it by token."));
    app.gateway.stop().await;
});

// Only `References` names our message (a client that dropped In-Reply-To).
both_databases!(references_alone_find_the_session, |db: Db| async move {
    let app = inbound_app(db).await;
    let (session_id, case_id) = escalated(&app, "in-refs").await;
    sent_message(&app, &session_id, "d-2@acme.example").await;
    let raw = reply(
        &unique("refs"),
        "References: <older@mail.example.com> <d-2@acme.example>\r\n",
        "Found it by references.",
    );
    appended_once(&app, &raw, &session_id, &case_id).await;
    app.gateway.stop().await;
});

// A Salesforce Ref ID in the subject names the Case (its shortened form).
both_databases!(
    a_salesforce_ref_id_finds_the_session_of_its_case,
    |db: Db| async move {
        let app = inbound_app(db).await;
        let (session_id, case_id) = escalated(&app, "in-ref").await;
        let org = &app.emulator.config().org_id[..15];
        let short = |id: &str| format!("{}{}", &id[..5], id[5..15].trim_start_matches('0'));
        let raw = reply(&unique("ref"), "", "Found it by Ref ID.").replace(
            "Subject: Re: Parcel is late",
            &format!(
                "Subject: Re: Parcel [ ref:_{}._{}:ref ]",
                short(org),
                short(&case_id)
            ),
        );
        appended_once(&app, &raw, &session_id, &case_id).await;
        app.gateway.stop().await;
    }
);

// A new email (no token, no thread) from the customer of an open Case joins
// it; with `append_new_conversations = false` it matches nothing.
both_databases!(
    a_new_email_from_a_contact_with_an_open_case_joins_it,
    |db: Db| async move {
        let app = inbound_app(db).await;
        let (session_id, case_id) = escalated(&app, "in-open").await;
        // The escalation's address is `Ann.Example@Example.com`: the whole address matches
        // ignoring case.
        let raw = reply(&unique("new"), "", "A new question about my parcel.");
        let (status, body) = post_signed(&app, &raw).await;
        assert_eq!(
            (status, body["session_id"].as_str()),
            (202, Some(session_id.as_str())),
            "{body}"
        );
        assert_eq!(inbound_comments(&app, &session_id, &case_id).await.len(), 1);
        app.gateway.stop().await;

        let app = spawn_app_with(db, inbound_settings(false)).await;
        escalated(&app, "in-open-off").await;
        let (status, body) = post_signed(&app, &reply(&unique("new"), "", "Hello again.")).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("unmatched")),
            "{body}"
        );
        app.gateway.stop().await;
    }
);

// An email matching nothing is kept, listed for operators without its raw
// text (newest first, paged), and retrievable whole.
both_databases!(an_unmatched_email_is_kept_and_listed, |db: Db| async move {
    let app = inbound_app(db).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let raw = reply(
            &unique("lost"),
            "In-Reply-To: <nobody@acme.example>\r\n",
            &format!("Lost {n}"),
        )
        .replace(
            "ann.example@example.com",
            &format!("stranger{n}@example.org"),
        );
        let (status, body) = post_signed(&app, &raw).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("unmatched")),
            "{body}"
        );
        assert!(body.get("session_id").is_none());
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let (status, unauthenticated) = app.get("/v1/inbound-emails", None).await;
    assert_eq!(status, 401, "{unauthenticated}");
    let (status, page) = app
        .get(
            "/v1/inbound-emails?state=unmatched&limit=2",
            Some(&app.read_token),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let listed = page["inbound_emails"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|e| e.get("raw").is_none()), "{page}");
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let (_, rest) = app
        .get(
            &format!("/v1/inbound-emails?state=unmatched&limit=2&cursor={cursor}"),
            Some(&app.read_token),
        )
        .await;
    let mut seen: Vec<String> = listed
        .iter()
        .chain(rest["inbound_emails"].as_array().unwrap())
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rest["next_cursor"], Value::Null);
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    // Emails recorded in the same millisecond order by id; compare as sets then.
    seen.sort();
    let mut expected = newest_first.clone();
    expected.sort();
    assert_eq!(seen, expected);

    let (status, one) = app
        .get(
            &format!("/v1/inbound-emails/{}", ids[0]),
            Some(&app.read_token),
        )
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["state"], "unmatched");
    assert_eq!(one["from"], "stranger0@example.org");
    let raw = one["raw"].as_str().expect("raw kept");
    assert!(raw.contains("Lost 0") && raw.contains("> We are looking into it."));
    let (status, _) = app
        .get("/v1/inbound-emails?state=bogus", Some(&app.read_token))
        .await;
    assert_eq!(status, 400);
    app.gateway.stop().await;
});

// An out-of-office reply threaded to our message is recorded and ignored:
// nothing reaches the Case.
both_databases!(an_auto_reply_is_ignored, |db: Db| async move {
    let app = inbound_app(db).await;
    let (session_id, case_id) = escalated(&app, "in-auto").await;
    sent_message(&app, &session_id, "d-3@acme.example").await;
    let raw = reply(
        &unique("ooo"),
        "In-Reply-To: <d-3@acme.example>\r\nAuto-Submitted: auto-replied\r\n",
        "I am out of the office until Monday.",
    );
    let (status, body) = post_signed(&app, &raw).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("ignored")),
        "{body}"
    );
    let (_, one) = app
        .get(
            &format!("/v1/inbound-emails/{}", body["id"].as_str().unwrap()),
            Some(&app.read_token),
        )
        .await;
    assert_eq!(one["state"], "ignored_auto_reply");
    assert_eq!(one["reason"], "auto_submitted");
    assert!(one.get("raw").is_none());
    let store = &app.gateway.state.store;
    assert!(
        store
            .case_notes_for_session(&session_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        inbound_comments(&app, &session_id, &case_id)
            .await
            .is_empty()
    );
    app.gateway.stop().await;
});

// The same email posted twice (the provider retried) is appended once.
both_databases!(a_replayed_email_is_a_duplicate, |db: Db| async move {
    let app = inbound_app(db).await;
    let (session_id, case_id) = escalated(&app, "in-dup").await;
    sent_message(&app, &session_id, "d-4@acme.example").await;
    let raw = reply(
        &unique("dup"),
        "In-Reply-To: <d-4@acme.example>\r\n",
        "Only once, please.",
    );
    let (first, _) = post_signed(&app, &raw).await;
    let (second, body) = post_signed(&app, &raw).await;
    assert_eq!((first, second), (202, 200));
    assert_eq!(body["status"], "duplicate");
    assert_eq!(inbound_comments(&app, &session_id, &case_id).await.len(), 1);
    assert_eq!(inbound_rows(&app).await, 1);
    app.gateway.stop().await;
});

// Unsigned, wrongly signed, stale, and wrong-path requests are 401 with
// nothing written; the right path token is accepted.
both_databases!(
    forged_requests_are_refused_and_write_nothing,
    |db: Db| async move {
        let app = inbound_app(db).await;
        let raw = reply(&unique("forged"), "", "Forged?");
        let now = chrono::Utc::now().timestamp();
        let unsigned = app
            .http
            .post(app.url("/channels/email/inbound"))
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        let (status, body) = answer(unsigned).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid_signature")),
            "{body}"
        );
        let (status, _) =
            post_signed_with(&app, raw.as_bytes(), now, b"not-the-secret-at-all").await;
        assert_eq!(status, 401);
        let (status, _) =
            post_signed_with(&app, raw.as_bytes(), now - 301, SECRET.as_bytes()).await;
        assert_eq!(status, 401, "stale");
        let wrong_path = app
            .http
            .post(app.url("/channels/email/inbound/p4th-t0ken-0123456789abcdeX"))
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_path.status().as_u16(), 401);
        assert_eq!(inbound_rows(&app).await, 0, "nothing written");

        let right_path = app
            .http
            .post(app.url(&format!("/channels/email/inbound/{PATH_TOKEN}")))
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        let (status, body) = answer(right_path).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("unmatched")),
            "{body}"
        );
        assert_eq!(inbound_rows(&app).await, 1);
        app.gateway.stop().await;
    }
);

async fn read_head(stream: &mut TcpStream) -> String {
    let read = async {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.expect("read response head");
            assert!(n == 1, "connection closed mid-head: {head:?}");
            head.push(byte[0]);
        }
        String::from_utf8(head).expect("ASCII head")
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("no answer within 60 s")
}

// A 30 MB message (over the 25 MiB default) is refused with 413 before it is
// read: announced by Content-Length, the 413 comes before `100 Continue`
// (no body byte was wanted); sent chunked, the body is cut off at the limit.
// Nothing is recorded either way.
both_databases!(
    an_oversized_email_is_refused_before_parsing,
    |db: Db| async move {
        let app = inbound_app(db).await;
        let mut stream = TcpStream::connect(app.gateway.addr).await.unwrap();
        let now = chrono::Utc::now().timestamp();
        stream
            .write_all(
                format!(
                    "POST /channels/email/inbound HTTP/1.1\r\nHost: handoff\r\n\
X-Handoff-Timestamp: {now}\r\nX-Handoff-Signature: sha256={}\r\n\
Content-Type: message/rfc822\r\nContent-Length: 30000000\r\nExpect: 100-continue\r\n\r\n",
                    "0".repeat(64)
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
        drop(stream);

        let mut stream = TcpStream::connect(app.gateway.addr).await.unwrap();
        stream
            .write_all(
                format!(
                    "POST /channels/email/inbound/{PATH_TOKEN} HTTP/1.1\r\nHost: handoff\r\n\
Content-Type: message/rfc822\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let head = "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n";
        let line = format!("{}\r\n", "A".repeat(76));
        let chunk = line.repeat(1024 * 1024 / line.len());
        // The limit plus half a MiB: past the limit, but within what the gateway drains
        // after answering, so the answer is read, not reset.
        let mut sent = 0usize;
        let mut parts = vec![head.to_string()];
        while sent < 25 * 1024 * 1024 + 512 * 1024 {
            parts.push(chunk.clone());
            sent += chunk.len();
        }
        for part in parts {
            stream
                .write_all(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes())
                .await
                .unwrap();
        }
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
        assert_eq!(inbound_rows(&app).await, 0, "nothing recorded");
        app.gateway.stop().await;
    }
);

// Line breaks smuggled into the sender's name and the subject (RFC 2047
// encoded CR LF) stay on their line in the note: no forged header lines.
both_databases!(header_injection_changes_nothing, |db: Db| async move {
    let app = inbound_app(db).await;
    let (session_id, case_id) = escalated(&app, "in-inject").await;
    sent_message(&app, &session_id, "d-5@acme.example").await;
    let raw = reply(
        &unique("inject"),
        "In-Reply-To: <d-5@acme.example>\r\n",
        "Hello.",
    )
    .replace(
        "From: Ann Example <",
        "From: =?utf-8?q?Ann=0D=0ASubject:_Refund_approved=0D=0A?= <",
    )
    .replace(
        "Subject: Re: Parcel is late",
        "Subject: =?utf-8?q?Hi=0D=0AFrom:_ceo@acme.example=0A=0AApproved?=",
    );
    let (status, body) = post_signed(&app, &raw).await;
    assert_eq!(status, 202, "{body}");
    let comments = inbound_comments(&app, &session_id, &case_id).await;
    assert_eq!(comments.len(), 1);
    let text = &comments[0].0;
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&"From: Ann Subject: Refund approved <ann.example@example.com>"),
        "{text}"
    );
    assert!(
        lines.contains(&"Subject: Hi From: ceo@acme.example Approved"),
        "{text}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("From: ceo")), "{text}");
    assert!(!lines.contains(&"Approved"), "{text}");
    app.gateway.stop().await;
});

// Message-IDs are case-sensitive: `<A@x>` and `<a@x>` are two emails, and a
// reply to `<a@x>` does not thread under our `<A@x>`.
both_databases!(
    message_ids_differing_in_case_do_not_collide,
    |db: Db| async move {
        let app = inbound_app(db).await;
        let (session_id, _) = escalated(&app, "in-case").await;
        let ours = format!("{}@acme.example", unique("Out-A"));
        sent_message(&app, &session_id, &ours).await;
        let upper = format!("{}@x.example", unique("M-A"));
        let lower = upper.to_lowercase();
        let stranger = |id: &str, in_reply_to: &str| {
            reply(
                id,
                &format!("In-Reply-To: <{in_reply_to}>\r\n"),
                "Case matters.",
            )
            .replace("ann.example@example.com", "someone@example.org")
        };
        let (status, body) = post_signed(&app, &stranger(&upper, &ours.to_lowercase())).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("unmatched")),
            "{body}"
        );
        let (status, body) = post_signed(&app, &stranger(&lower, &ours.to_lowercase())).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("unmatched")),
            "not a duplicate: {body}"
        );
        assert_eq!(inbound_rows(&app).await, 2);
        let (status, body) = post_signed(&app, &stranger(&unique("m"), &ours)).await;
        assert_eq!(
            (status, body["session_id"].as_str()),
            (202, Some(session_id.as_str())),
            "{body}"
        );
        app.gateway.stop().await;
    }
);

// With `append_as = "email_message"` the answer becomes an incoming
// EmailMessage on the Case (whole text, thread ids), not a comment.
both_databases!(
    a_reply_can_be_appended_as_an_incoming_email_message,
    |db: Db| async move {
        let app = spawn_app_with(db, inbound_settings_as(true, AppendAs::EmailMessage)).await;
        let (session_id, case_id) = escalated(&app, "in-em").await;
        sent_message(&app, &session_id, "d-6@acme.example").await;
        let id = format!("{}@mail.example.com", unique("em"));
        let raw = reply(
            &id,
            "In-Reply-To: <d-6@acme.example>\r\nReferences: <d-6@acme.example>\r\n",
            "As an email, please.",
        );
        let (status, body) = post_signed(&app, &raw).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (202, Some("appended")),
            "{body}"
        );
        assert!(
            inbound_comments(&app, &session_id, &case_id)
                .await
                .is_empty()
        );
        let emails = app
            .soql(&format!(
                "SELECT Id, Incoming, Status, MessageIdentifier, ThreadIdentifier, TextBody, FromAddress, Subject FROM EmailMessage WHERE ParentId = '{case_id}'"
            ))
            .await;
        assert_eq!(emails.len(), 1, "{emails:?}");
        let email = &emails[0];
        assert_eq!(email["Incoming"], true);
        assert_eq!(email["Status"], "0");
        assert_eq!(email["MessageIdentifier"], format!("<{id}>"));
        assert_eq!(email["ThreadIdentifier"], "<d-6@acme.example>");
        assert_eq!(email["FromAddress"], "ann.example@example.com");
        assert_eq!(email["Subject"], "Re: Parcel is late");
        let text = email["TextBody"].as_str().unwrap();
        assert!(
            text.contains("As an email, please.") && text.contains("> We are looking into it.")
        );
        app.gateway.stop().await;
    }
);

// A reply to an email delivery's Message-ID (its provider id, as the email
// adapter records it) finds the delivery's session.
both_databases!(
    a_reply_to_an_email_delivery_finds_its_session,
    |db: Db| async move {
        let app = inbound_app(db).await;
        let (session_id, case_id) = escalated(&app, "in-dlv").await;
        let provider_id = format!("{}@acme.example", unique("dlv"));
        let t = gateway::store::now_ms();
        gateway::store::delivery::ActiveModel {
            id: Set(unique("dlv")),
            session_id: Set(session_id.clone()),
            channel: Set("email".into()),
            kind: Set("agent.message".into()),
            text: Set("We shipped a replacement.".into()),
            sender_name: Set(None),
            target: Set("{}".into()),
            state: Set("sent".into()),
            attempts: Set(1),
            provider_id: Set(Some(provider_id.clone())),
            last_error: Set(None),
            created_at: Set(t),
            updated_at: Set(t),
            provider_status: Set(None),
            provider_status_at: Set(None),
            provider_error_code: Set(None),
        }
        .insert(app.gateway.state.store.connection())
        .await
        .expect("delivery row");
        let raw = reply(
            &unique("dlv-reply"),
            &format!("In-Reply-To: <{provider_id}>\r\n"),
            "Got the replacement.",
        );
        let (status, body) = post_signed(&app, &raw).await;
        assert_eq!(
            (status, body["session_id"].as_str()),
            (202, Some(session_id.as_str())),
            "{body}"
        );
        assert_eq!(inbound_comments(&app, &session_id, &case_id).await.len(), 1);
        app.gateway.stop().await;
    }
);
