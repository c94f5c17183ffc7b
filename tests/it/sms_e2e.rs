//! SMS end to end with the real adapter: the gateway sends through the Twilio emulator
//! (`channel-emulator`, its `api_url`), which posts the customer's texts and its status
//! callbacks back to the gateway signed like Twilio; live sessions run in the Salesforce
//! emulator's MIAW, where the test plays the rep.

use std::collections::BTreeSet;

use channel_emulator::Fault;
use channel_emulator::twilio::signature;
use handoff_tests::console::texts_by;
use handoff_tests::phone::{AUTH_TOKEN, OUR_NUMBER, PhoneApp, eventually, spawn_phone_app};
use handoff_tests::{Db, both_databases};
use serde_json::{Value, json};

/// The customer's phone as the bot wrote it, and in E.164.
const CUSTOMER_AS_WRITTEN: &str = "+1 (415) 555-0100";
const CUSTOMER: &str = "+14155550100";

fn escalation(session_id: &str, phone: &str) -> Value {
    json!({
        "session_id": session_id,
        "channel": "sms",
        "customer": {"name": "Ana Ruiz", "phone": phone},
        "language": "en",
        "priority": "high",
        "summary": "Customer's replacement router has not arrived after ten days.",
        "transcript": [
            {"role": "customer", "text": "My replacement router still has not arrived.", "at": "2026-11-22T10:00:00Z"},
            {"role": "bot", "text": "The tracking shows it stuck at the depot since Monday.", "at": "2026-11-22T10:01:00Z"},
        ],
    })
}

/// The EndUser texts of the conversation now.
async fn customer_texts(s: &PhoneApp, conversation: &str) -> Vec<String> {
    let (status, c) = s.rep.conversation(conversation).await;
    assert_eq!(status, 200, "{c}");
    texts_by(&c, "EndUser")
}

// Done when: an SMS escalation opens a live conversation with the routing attributes and the
// transcript; the rep accepts and writes three replies; the Twilio emulator receives every
// message of the session (the gateway's notices and the replies) exactly once, in order, and
// its status callbacks move each delivery to `delivered`; the customer's signed text reaches
// the rep; the rep closes and the session is closed.
both_databases!(
    an_sms_customer_reaches_the_rep_and_back,
    |db: Db| async move {
        let s = spawn_phone_app(db, |_| {}, |_| {}).await;
        let conversation = s
            .live_escalation(&escalation("sms-1", CUSTOMER_AS_WRITTEN))
            .await;
        let (_, conv) = s.rep.conversation(&conversation).await;
        let attrs = &conv["routing_attributes"];
        assert_eq!(attrs["Origin"], "sms", "{attrs}");
        assert_eq!(attrs["OpencxSessionId"], "sms-1");
        assert_eq!(attrs["Priority"], "High");
        let opening = texts_by(&conv, "EndUser").join("\n");
        for part in [
            "replacement router has not arrived after ten days",
            "My replacement router still has not arrived.",
            "stuck at the depot since Monday",
        ] {
            assert!(opening.contains(part), "{part} in {opening}");
        }

        let (status, body) = s.rep.accept(&conversation, "Jane Rep").await;
        assert_eq!(status, 200, "{body}");
        let replies = [
            "Hi Ana, this is Jane.",
            "I found your router: it is on the truck today.",
            "You will have it by 6pm.",
        ];
        for text in replies {
            let (status, body) = s.rep.say(&conversation, text).await;
            assert_eq!(status, 202, "{body}");
        }
        for text in replies {
            s.wait_body(CUSTOMER, text).await;
        }

        // Twilio's status callbacks (signed for the URL with ?delivery=…) reach every delivery.
        let view = s
            .app
            .wait_session("sms-1", "every delivery delivered", |v| {
                v["deliveries"].as_array().is_some_and(|d| {
                    d.len() >= 6 && d.iter().all(|d| d["provider_status"] == "delivered")
                })
            })
            .await;
        for d in view["deliveries"].as_array().unwrap() {
            assert_eq!(d["state"], "sent", "{d}");
            assert_eq!(d["channel"], "sms", "{d}");
            assert_eq!(d["attempts"], 1, "{d}");
            assert!(d["provider_id"].as_str().unwrap().starts_with("SM"), "{d}");
        }
        let texts = s.assert_sent_once_in_order("sms-1", CUSTOMER).await;
        let reply_positions: Vec<usize> = replies
            .iter()
            .map(|r| texts.iter().position(|t| t == r).expect("each reply sent"))
            .collect();
        assert!(reply_positions.windows(2).all(|w| w[0] < w[1]), "{texts:?}");
        let kinds: Vec<String> = s
            .app
            .deliveries("sms-1")
            .await
            .iter()
            .map(|d| d.kind.clone())
            .collect();
        assert!(kinds.contains(&"agent.joined".to_string()), "{kinds:?}");
        assert_eq!(
            s.sent_to(CUSTOMER).len(),
            texts.len(),
            "the emulator got nothing but the session's messages"
        );

        // The customer answers by SMS: the rep sees it once.
        let sid = s.text_from(CUSTOMER, "Great, thank you!").await;
        s.rep
            .wait_for(&conversation, "the customer's answer", |c| {
                texts_by(c, "EndUser")
                    .iter()
                    .any(|t| t == "Great, thank you!")
            })
            .await;
        let to_rep = s.app.inbound_list("to_rep").await;
        assert_eq!(to_rep.len(), 1, "{to_rep:?}");
        assert_eq!(to_rep[0]["id"], format!("sms:{sid}"));
        assert_eq!(to_rep[0]["session_id"], "sms-1");
        assert_eq!(to_rep[0]["from"], CUSTOMER);
        assert_eq!(to_rep[0]["to"], OUR_NUMBER);

        let (status, body) = s.rep.close(&conversation).await;
        assert_eq!(status, 200, "{body}");
        s.app
            .wait_session("sms-1", "closed", |v| v["status"] == "closed")
            .await;
        let rows = s.app.settled_deliveries("sms-1", 7).await;
        assert!(
            rows.iter().any(|d| d.kind == "session.closed"),
            "the customer is told the chat ended"
        );
        s.twilio.settled().await;
        let texts = s.assert_sent_once_in_order("sms-1", CUSTOMER).await;
        assert_eq!(s.sent_to(CUSTOMER).len(), texts.len());
        let status_callbacks: Vec<_> = s
            .twilio
            .callbacks()
            .into_iter()
            .filter(|c| c.kind == channel_emulator::CallbackKind::Status)
            .collect();
        assert_eq!(status_callbacks.len(), 2 * texts.len(), "sent, delivered");
        assert!(
            status_callbacks
                .iter()
                .all(|c| c.response_status == Some(200)),
            "{status_callbacks:?}"
        );
        let (_, conv) = s.rep.conversation(&conversation).await;
        assert_eq!(
            texts_by(&conv, "EndUser")
                .iter()
                .filter(|t| *t == "Great, thank you!")
                .count(),
            1
        );
    }
);

/// Accepts the conversation and waits until everything the gateway sent so far (the opening
/// notices, `agent.joined`) has been accepted by the emulator and its status callbacks ended.
async fn accepted_and_settled(s: &PhoneApp, session_id: &str, conversation: &str) {
    let (status, body) = s.rep.accept(conversation, "Jane Rep").await;
    assert_eq!(status, 200, "{body}");
    eventually("agent.joined queued", || async {
        let rows = s.app.deliveries(session_id).await;
        rows.iter().any(|d| d.kind == "agent.joined").then_some(())
    })
    .await;
    s.app.settled_deliveries(session_id, 3).await;
    s.twilio.settled().await;
}

/// The session's deliveries of `agent.message`, in order.
async fn agent_messages(s: &PhoneApp, session_id: &str) -> Vec<gateway::store::delivery::Model> {
    s.app
        .deliveries(session_id)
        .await
        .into_iter()
        .filter(|d| d.kind == "agent.message")
        .collect()
}

// Twilio answers 429 with Retry-After, then 503, then slowly: the first reply is sent on its
// third attempt, and every reply still arrives exactly once, in order. A 500 leaves the outcome
// unknown (Twilio cannot dedupe on our id): that reply is failed visibly and never resent, and
// the next one still goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_faults_still_deliver_each_reply_once_in_order() {
    let s = spawn_phone_app(Db::Sqlite, |_| {}, |_| {}).await;
    let conversation = s.live_escalation(&escalation("sms-faults", CUSTOMER)).await;
    accepted_and_settled(&s, "sms-faults", &conversation).await;
    let before = s.sent_to(CUSTOMER).len();

    s.twilio.fault(Fault::RateLimit {
        count: 1,
        retry_after_secs: 1,
    });
    s.twilio.fault(Fault::ServerError {
        count: 1,
        status: 503,
    });
    s.twilio.fault(Fault::Slow {
        count: 1,
        delay_ms: 1_500,
    });
    let replies = ["First, after a rate limit.", "Second.", "Third."];
    s.rep_says(&conversation, &replies).await;
    for text in replies {
        s.wait_body(CUSTOMER, text).await;
    }
    s.app.settled_deliveries("sms-faults", 6).await;
    s.twilio.settled().await;
    let texts = s.assert_sent_once_in_order("sms-faults", CUSTOMER).await;
    assert_eq!(&texts[texts.len() - 3..], replies);
    let bodies: Vec<String> = s.sent_to(CUSTOMER)[before..]
        .iter()
        .map(|m| m.body.clone())
        .collect();
    assert_eq!(bodies, replies, "each once, in order, nothing else");
    let sent = agent_messages(&s, "sms-faults").await;
    assert_eq!(
        sent.iter().map(|d| d.attempts).collect::<Vec<_>>(),
        [3, 1, 1],
        "429, 503, then sent (slowly)"
    );
    let kinds = s.app.event_kinds("sms-faults").await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "delivery.attempt_failed")
            .count(),
        2,
        "{kinds:?}"
    );

    // A 500: Twilio may have taken it; it is not resent.
    s.twilio.fault(Fault::ServerError {
        count: 1,
        status: 500,
    });
    s.rep_says(&conversation, &["Lost in the outage.", "After the outage."])
        .await;
    s.wait_body(CUSTOMER, "After the outage.").await;
    let rows = agent_messages(&s, "sms-faults").await;
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[3].state, "failed", "{:?}", rows[3]);
    assert!(
        rows[3]
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with(gateway::outbox::deliver::OUTCOME_UNKNOWN)),
        "{:?}",
        rows[3].last_error
    );
    assert_eq!(rows[3].attempts, 1, "never resent");
    assert_eq!(rows[4].state, "sent");
    let bodies: Vec<String> = s.sent_to(CUSTOMER)[before..]
        .iter()
        .map(|m| m.body.clone())
        .collect();
    assert_eq!(
        bodies,
        [
            "First, after a rate limit.",
            "Second.",
            "Third.",
            "After the outage."
        ]
    );
}

/// Words of `word` repeated until the text holds at least `chars` characters.
fn long_text(word: &str, chars: usize) -> String {
    let mut text = String::new();
    let mut n = 0;
    while text.chars().count() < chars {
        n += 1;
        text.push_str(&format!("{word}{n} "));
    }
    text.trim_end().to_string()
}

// A rep's reply longer than ten SMS segments reaches the customer as several messages of at
// most ten segments each (as the emulator counts them), in order, that concatenate back to the
// reply: GSM-7 text (153 septets a segment) and UCS-2 text (67 code units a segment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_replies_arrive_in_parts_that_make_up_the_text() {
    let s = spawn_phone_app(Db::Sqlite, |_| {}, |_| {}).await;
    let conversation = s.live_escalation(&escalation("sms-long", CUSTOMER)).await;
    accepted_and_settled(&s, "sms-long", &conversation).await;
    let gsm = long_text("Your replacement router, parcel ", 2_000);
    let ucs2 = long_text("Ваш маршрутизатор в пути 📦", 900);
    assert!(channel_emulator::twilio::segments::num_segments(&gsm) > 10);
    assert!(channel_emulator::twilio::segments::num_segments(&ucs2) > 10);

    for (text, encoding) in [(&gsm, "GSM-7"), (&ucs2, "UCS-2")] {
        let before = s.sent_to(CUSTOMER).len();
        s.rep_says(&conversation, &[text]).await;
        let parts = eventually(&format!("the {encoding} reply, whole"), || async {
            let parts: Vec<_> = s.sent_to(CUSTOMER)[before..].to_vec();
            let joined: String = parts.iter().map(|m| m.body.as_str()).collect();
            (joined.len() >= text.len()).then_some(parts)
        })
        .await;
        let joined: String = parts.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(&joined, text, "{encoding}: the parts make up the reply");
        assert!(parts.len() >= 2, "{encoding}: split");
        for part in &parts {
            assert!(
                (1..=10).contains(&part.num_segments),
                "{encoding}: {} segments",
                part.num_segments
            );
        }
        let rows = agent_messages(&s, "sms-long").await;
        let ids: Vec<&str> = rows
            .iter()
            .filter(|d| text.contains(d.text.as_str()))
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(ids.len(), parts.len(), "{encoding}: a row per part");
    }
    s.app.settled_deliveries("sms-long", 7).await;
    s.twilio.settled().await;
    s.assert_sent_once_in_order("sms-long", CUSTOMER).await;
}

/// The form a Twilio inbound webhook carries (the fields the adapter reads).
fn inbound_form(sid: &str, from: &str, body: &str) -> Vec<(String, String)> {
    [
        ("ToCountry", "US"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", OUR_NUMBER),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", handoff_tests::phone::ACCOUNT_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// POSTs `form` to `path` with an optional `X-Twilio-Signature`.
async fn post_form(
    s: &PhoneApp,
    path: &str,
    form: &[(String, String)],
    signature: Option<String>,
) -> (u16, String, Value) {
    let mut request = s.app.http.post(s.app.url(path)).form(form);
    if let Some(signature) = signature {
        request = request.header("X-Twilio-Signature", signature);
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

// Unsigned, wrongly signed, tampered, and signed-for-another-URL SMS webhooks are 401 and
// write nothing: no inbound message in any state, nothing for the rep, nothing sent. The same
// form signed for the gateway's URL is taken (the refusals are the signature's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_sms_webhooks_write_nothing() {
    let s = spawn_phone_app(
        Db::Sqlite,
        |sms| sms.unknown_sender_reply = Some("Who is this?".into()),
        |_| {},
    )
    .await;
    let conversation = s.live_escalation(&escalation("sms-forged", CUSTOMER)).await;
    let opening = customer_texts(&s, &conversation).await;
    s.app.settled_deliveries("sms-forged", 2).await;
    let sent_before = s.twilio.sent().len();
    let url = format!("{}/channels/sms/inbound", s.app.public_url());
    let form = inbound_form(
        "SM0123456789abcdef0123456789abcdef",
        CUSTOMER,
        "Forged hello",
    );
    let mut tampered = form.clone();
    tampered[5].1 = "Forged hello, tampered".into();
    let attempts = [
        ("unsigned", form.clone(), None),
        (
            "another token",
            form.clone(),
            Some(signature("not-the-auth-token", &url, &form)),
        ),
        (
            "another URL",
            form.clone(),
            Some(signature(
                AUTH_TOKEN,
                "https://attacker.example.com/channels/sms/inbound",
                &form,
            )),
        ),
        (
            "another path",
            form.clone(),
            Some(signature(
                AUTH_TOKEN,
                &format!("{}/channels/sms/status", s.app.public_url()),
                &form,
            )),
        ),
        (
            "tampered",
            tampered,
            Some(signature(AUTH_TOKEN, &url, &form)),
        ),
        ("garbage", form.clone(), Some("bm90IGEgc2lnbmF0dXJl".into())),
    ];
    for (what, body, sig) in attempts {
        let (status, content_type, answer) =
            post_form(&s, "/channels/sms/inbound", &body, sig).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(content_type, "application/problem+json", "{what}");
        assert_eq!(answer["code"], "invalid_signature", "{what}");
    }
    // A forged status report changes nothing either.
    let (status, _, _) = post_form(
        &s,
        "/channels/sms/status?delivery=dlv_x",
        &[("MessageStatus".into(), "failed".into())],
        None,
    )
    .await;
    assert_eq!(status, 401);

    for state in gateway::store::InboundMessageState::ALL {
        assert_eq!(
            s.app.inbound_list(state).await,
            Vec::<Value>::new(),
            "{state}"
        );
    }
    assert_eq!(
        customer_texts(&s, &conversation).await,
        opening,
        "the rep saw nothing"
    );
    assert_eq!(s.twilio.sent().len(), sent_before, "nothing answered");
    let (status, _, answer) = post_form(
        &s,
        "/channels/sms/inbound",
        &form,
        Some(signature(AUTH_TOKEN, &url, &form)),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    s.rep
        .wait_for(&conversation, "the signed message", |c| {
            texts_by(c, "EndUser").iter().any(|t| t == "Forged hello")
        })
        .await;
}

// A webhook Twilio delivers twice reaches the rep once; a picture message reaches the rep with
// its link; a number without a session is
// recorded unmatched and answered once (not again for its next message); HELP is answered
// with the help text and never reaches the rep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_unknown_senders_and_help() {
    const STRANGER: &str = "+14155550199";
    const UNKNOWN_REPLY: &str =
        "We could not find your conversation. Please start a chat on acme.example.";
    const HELP: &str = "Acme support by SMS. Reply STOP to opt out.";
    let s = spawn_phone_app(
        Db::Sqlite,
        |sms| {
            sms.unknown_sender_reply = Some(UNKNOWN_REPLY.into());
            sms.keywords.help_text = HELP.into();
        },
        |_| {},
    )
    .await;
    let conversation = s.live_escalation(&escalation("sms-dup", CUSTOMER)).await;

    let sid = s.text_from(CUSTOMER, "Is anyone there?").await;
    let replay = s.twilio.replay_last_inbound().await.expect("replayed");
    assert_eq!((replay.status, replay.sid.as_str()), (200, sid.as_str()));
    s.rep
        .wait_for(&conversation, "the message", |c| {
            texts_by(c, "EndUser")
                .iter()
                .any(|t| t == "Is anyone there?")
        })
        .await;
    let to_rep = s.app.inbound_list("to_rep").await;
    assert_eq!(to_rep.len(), 1, "{to_rep:?}");
    assert_eq!(to_rep[0]["id"], format!("sms:{sid}"));
    let kinds = s.app.event_kinds("sms-dup").await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "customer.message").count(),
        1,
        "{kinds:?}"
    );

    // A picture message: the rep gets the attachment's link (Handoff never downloads it).
    let photo = "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/MM1/Media/ME1";
    let r = s
        .twilio
        .inbound(
            CUSTOMER,
            OUR_NUMBER,
            "The box looks like this",
            &[(photo, "image/jpeg")],
        )
        .await
        .expect("posted");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.sid.starts_with("MM"), "{}", r.sid);
    let with_photo = format!("The box looks like this\n[Attachment: image/jpeg {photo}]");
    s.rep
        .wait_for(&conversation, "the picture message", |c| {
            texts_by(c, "EndUser").contains(&with_photo)
        })
        .await;

    let first = s.text_from(STRANGER, "Hello? My order 5521?").await;
    let second = s.text_from(STRANGER, "Hello??").await;
    let unmatched = s.app.inbound_list("unmatched").await;
    let ids: BTreeSet<&str> = unmatched
        .iter()
        .map(|m| m.get("id").and_then(Value::as_str).unwrap())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([
            format!("sms:{first}").as_str(),
            format!("sms:{second}").as_str()
        ])
    );
    assert!(
        unmatched
            .iter()
            .all(|m| m["from"] == STRANGER && m["session_id"].is_null())
    );
    let answer = s.wait_body(STRANGER, UNKNOWN_REPLY).await;
    let pseudo = format!("inbound:sms:{first}");
    let rows = s.app.settled_deliveries(&pseudo, 1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].provider_id.as_deref(), Some(answer.sid.as_str()));
    assert!(
        s.app
            .deliveries(&format!("inbound:sms:{second}"))
            .await
            .is_empty(),
        "answered once a day"
    );
    s.twilio.settled().await;
    assert_eq!(s.sent_to(STRANGER).len(), 1, "one answer");
    let (status, one) = s
        .app
        .get(
            &format!("/v1/inbound-messages/sms:{first}"),
            Some(&s.app.read_token),
        )
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["answers"][0]["state"], "sent", "{one}");
    // The answer's status callbacks arrive too.
    eventually("the answer delivered", || async {
        let (_, one) = s
            .app
            .get(
                &format!("/v1/inbound-messages/sms:{first}"),
                Some(&s.app.read_token),
            )
            .await;
        (one["answers"][0]["provider_status"] == "delivered").then_some(())
    })
    .await;

    let help = s.text_from(CUSTOMER, " Help ").await;
    s.wait_body(CUSTOMER, HELP).await;
    let (_, m) = s
        .app
        .get(
            &format!("/v1/inbound-messages/sms:{help}"),
            Some(&s.app.read_token),
        )
        .await;
    assert_eq!(m["state"], "help", "{m}");
    assert_eq!(m["session_id"], "sms-dup", "{m}");
    s.twilio.settled().await;
    assert_eq!(
        s.sent_to(CUSTOMER)
            .iter()
            .filter(|m| m.body == HELP)
            .count(),
        1
    );
    assert!(
        !customer_texts(&s, &conversation)
            .await
            .iter()
            .any(|t| t.trim().eq_ignore_ascii_case("help")),
        "a keyword never reaches the rep"
    );
}

// STOP ends the live session and nothing more is sent to the number: the gateway's own
// closing notice and, in the customer's next session, the rep's replies are not sent (the
// provider is not even called) and the rep is told in the conversation. START re-enables: the
// rep's next reply arrives.
both_databases!(
    stop_ends_the_session_and_start_reenables,
    |db: Db| async move {
        let s = spawn_phone_app(db, |_| {}, |_| {}).await;
        let conversation = s.live_escalation(&escalation("sms-stop", CUSTOMER)).await;
        accepted_and_settled(&s, "sms-stop", &conversation).await;
        let before_stop = s.sent_to(CUSTOMER).len();
        let stop = s.text_from(CUSTOMER, "STOP").await;
        assert!(s.twilio.is_opted_out(OUR_NUMBER, CUSTOMER));
        s.rep
            .wait_for(&conversation, "closed in Salesforce", |c| {
                c["status"] == "closed"
            })
            .await;
        s.app
            .wait_session("sms-stop", "closed", |v| v["status"] == "closed")
            .await;
        let (_, m) = s
            .app
            .get(
                &format!("/v1/inbound-messages/sms:{stop}"),
                Some(&s.app.read_token),
            )
            .await;
        assert_eq!(
            (m["state"].as_str(), m["session_id"].as_str()),
            (Some("opt_out"), Some("sms-stop"))
        );
        let kinds = s.app.event_kinds("sms-stop").await;
        assert!(
            kinds.contains(&"customer.opted_out".to_string()),
            "{kinds:?}"
        );
        let rows = s.app.settled_deliveries("sms-stop", 4).await;
        let closed = rows
            .iter()
            .find(|d| d.kind == "session.closed")
            .expect("the closing notice");
        assert_eq!(
            (closed.state.as_str(), closed.attempts),
            ("failed", 0),
            "{closed:?}"
        );
        s.twilio.settled().await;
        let sent_before = s.sent_to(CUSTOMER).len();
        assert_eq!(sent_before, before_stop, "nothing sent after STOP");

        // The customer's next session: the rep's reply is not sent, and the rep is told.
        let conversation = s.live_escalation(&escalation("sms-stop-2", CUSTOMER)).await;
        let (status, body) = s.rep.accept(&conversation, "Jane Rep").await;
        assert_eq!(status, 200, "{body}");
        s.rep_says(&conversation, &["Can I help with the router?"])
            .await;
        let notice = s
            .rep
            .wait_for(&conversation, "the rep told", |c| {
                texts_by(c, "EndUser")
                    .iter()
                    .any(|t| t.starts_with("[Handoff]"))
            })
            .await;
        let told: Vec<String> = texts_by(&notice, "EndUser")
            .into_iter()
            .filter(|t| t.starts_with("[Handoff]"))
            .collect();
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].contains("opted out"), "{}", told[0]);
        assert!(
            told[0].contains("Can I help with the router?"),
            "{}",
            told[0]
        );
        let rows = s.app.settled_deliveries("sms-stop-2", 4).await;
        assert!(
            rows.iter().all(|d| d.state == "failed" && d.attempts == 0),
            "{rows:?}"
        );
        assert_eq!(s.sent_to(CUSTOMER).len(), sent_before, "nothing sent");

        // START: the opt-out is gone (no answer: Twilio confirms it), and the rep's next reply arrives.
        let start = s.text_from(CUSTOMER, "START").await;
        let (_, m) = s
            .app
            .get(
                &format!("/v1/inbound-messages/sms:{start}"),
                Some(&s.app.read_token),
            )
            .await;
        assert_eq!(m["state"], "opt_in", "{m}");
        assert!(!s.twilio.is_opted_out(OUR_NUMBER, CUSTOMER));
        s.rep_says(&conversation, &["Welcome back! The router arrives today."])
            .await;
        s.wait_body(CUSTOMER, "Welcome back! The router arrives today.")
            .await;
        s.twilio.settled().await;
        let after: Vec<String> = s.sent_to(CUSTOMER)[sent_before..]
            .iter()
            .map(|m| m.body.clone())
            .collect();
        assert_eq!(after, ["Welcome back! The router arrives today."]);
        let (_, conv) = s.rep.conversation(&conversation).await;
        assert!(
            !texts_by(&conv, "EndUser")
                .iter()
                .any(|t| t == "STOP" || t == "START"),
            "keywords never reach the rep"
        );
    }
);

// The opening notice tells an SMS customer the word that ends the chat: texting it ends the
// live session (the conversation is closed in Salesforce, the customer is told), and the word
// is not passed to the rep as a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_keyword_by_sms_ends_the_chat() {
    let s = spawn_phone_app(Db::Sqlite, |_| {}, |_| {}).await;
    let conversation = s.live_escalation(&escalation("sms-end", CUSTOMER)).await;
    accepted_and_settled(&s, "sms-end", &conversation).await;
    let keyword = s.app.config.miaw.end_keyword.clone();
    let told = s.sent_to(CUSTOMER);
    assert!(
        told.iter().any(|m| m.body.contains(&keyword)),
        "the customer was told the word: {told:?}"
    );
    let sid = s
        .text_from(CUSTOMER, &format!("  {} ", keyword.to_uppercase()))
        .await;
    s.rep
        .wait_for(&conversation, "closed in Salesforce", |c| {
            c["status"] == "closed"
        })
        .await;
    s.app
        .wait_session("sms-end", "closed", |v| v["status"] == "closed")
        .await;
    let rows = s.app.settled_deliveries("sms-end", 4).await;
    let closed = rows
        .iter()
        .find(|d| d.kind == "session.closed")
        .expect("the closing notice");
    assert_eq!(closed.state, "sent");
    let (_, conv) = s.rep.conversation(&conversation).await;
    assert!(
        !texts_by(&conv, "EndUser")
            .iter()
            .any(|t| t.trim().eq_ignore_ascii_case(&keyword)),
        "the word is not a message to the rep"
    );
    let (_, m) = s
        .app
        .get(
            &format!("/v1/inbound-messages/sms:{sid}"),
            Some(&s.app.read_token),
        )
        .await;
    assert_eq!(
        (m["state"].as_str(), m["session_id"].as_str()),
        (Some("end_chat"), Some("sms-end")),
        "{m}"
    );
    let kinds = s.app.event_kinds("sms-end").await;
    assert!(
        kinds.contains(&"live.close_requested".to_string()),
        "{kinds:?}"
    );
}

// No rep available: the SMS escalation becomes a Case, the customer gets its CaseNumber by SMS
// (once, reported delivered), and their texted answer becomes an internal note on the Case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_fallback_is_told_by_sms_and_the_answer_becomes_a_case_note() {
    let s = spawn_phone_app(Db::Sqlite, |_| {}, |_| {}).await;
    s.rep.set_agents_available(false).await;
    let (status, answer) = s
        .app
        .post_escalation(&escalation("sms-case", CUSTOMER))
        .await;
    assert_eq!(status, 202, "{answer}");
    let view = s
        .app
        .wait_session("sms-case", "the Case", |v| {
            v["salesforce_case_number"].is_string()
        })
        .await;
    assert_eq!(view["route"], "case");
    let case_id = view["salesforce_case_id"].as_str().unwrap().to_string();
    let number = view["salesforce_case_number"].as_str().unwrap().to_string();
    let told = eventually("the CaseNumber by SMS", || async {
        s.sent_to(CUSTOMER)
            .into_iter()
            .find(|m| m.body.contains(&number))
    })
    .await;
    s.app
        .wait_session("sms-case", "the notice delivered", |v| {
            v["deliveries"]
                .as_array()
                .is_some_and(|d| d.iter().all(|d| d["provider_status"] == "delivered"))
        })
        .await;
    s.twilio.settled().await;
    s.assert_sent_once_in_order("sms-case", CUSTOMER).await;
    assert_eq!(
        s.sent_to(CUSTOMER)
            .iter()
            .filter(|m| m.body == told.body)
            .count(),
        1
    );

    let sid = s
        .text_from(CUSTOMER, "I found the receipt: order 5521.")
        .await;
    let note = eventually("the Case note", || async {
        s.app
            .comment_bodies(&case_id)
            .await
            .into_iter()
            .find(|c| c.contains("I found the receipt: order 5521."))
    })
    .await;
    assert!(note.contains("Customer wrote on sms"), "{note}");
    assert!(note.contains(&format!("From: {CUSTOMER}")), "{note}");
    let (_, m) = s
        .app
        .get(
            &format!("/v1/inbound-messages/sms:{sid}"),
            Some(&s.app.read_token),
        )
        .await;
    assert_eq!(
        (m["state"].as_str(), m["session_id"].as_str()),
        (Some("case_note"), Some("sms-case")),
        "{m}"
    );
}
