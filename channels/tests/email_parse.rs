//! Parsing escalated email threads (`raw_email`) from fixture messages.

use channels::{
    Channel, ChannelError, ChannelKind, Conversation, Customer, EmailAddress, EmailChannel,
    EmailThread, EscalationInput, RawEmailProblem, Role, Route, Turn,
    email::{ParsedThread, parse_thread},
};
use chrono::{DateTime, TimeZone, Utc};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixtures(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| fixture(name)).collect()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn utc(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn parse(names: &[&str]) -> ParsedThread {
    parse_thread(&fixtures(names), now()).unwrap()
}

fn only_turn(parsed: &ParsedThread) -> &Turn {
    assert_eq!(parsed.turns.len(), 1, "{:#?}", parsed.turns);
    &parsed.turns[0]
}

fn email(address: &str) -> EmailAddress {
    EmailAddress::parse(address).unwrap()
}

fn raw_email_input(raw: Vec<String>) -> EscalationInput {
    EscalationInput {
        subject: None,
        customer: Customer::default(),
        language: "en".into(),
        transcript: None,
        raw_email: Some(raw),
        ..EscalationInput::default()
    }
}

#[test]
fn gmail_reply_prefers_plain_text_and_cuts_the_wrapped_attribution() {
    let parsed = parse(&["gmail_reply.eml"]);
    let turn = only_turn(&parsed);
    assert_eq!(turn.role, Role::Customer);
    assert_eq!(
        turn.text,
        "Hi,\n\nI tried the steps but the refund still hasn\u{2019}t shown up on my card. The\n\
         order number is #4821.\n\nJane"
    );
    assert_eq!(turn.at, utc("2026-11-16T09:05:31Z"));
    assert_eq!(parsed.subject.as_deref(), Some("Refund for order #4821"));
    assert_eq!(parsed.customer.name.as_deref(), Some("Jane Doe"));
    assert_eq!(parsed.customer.email, Some(email("jane.doe@example.com")));
    assert_eq!(
        parsed.thread,
        Some(EmailThread {
            message_id: "CAH7x1aQz2+r=Xk9@mail.gmail.com".into(),
            in_reply_to: vec!["bot-reply-1.4821@acme.example".into()],
            references: vec![
                "CAH7x1aQz1=pW3@mail.gmail.com".into(),
                "bot-reply-1.4821@acme.example".into()
            ],
        })
    );
}

#[test]
fn outlook_reply_cuts_the_header_block_and_decodes_the_sender() {
    let parsed = parse(&["outlook_reply.eml"]);
    let turn = only_turn(&parsed);
    assert_eq!(
        turn.text,
        "Hello,\n\nthe parcel still hasn't arrived. Could someone call me at the number below?\n\n\
         Best regards\nHans M\u{fc}ller\n+49 30 1234567"
    );
    assert_eq!(turn.at, utc("2026-11-17T08:30:00Z"));
    assert_eq!(parsed.subject.as_deref(), Some("Lieferung fehlt"));
    assert_eq!(parsed.customer.name.as_deref(), Some("M\u{fc}ller, Hans"));
    // The domain is lower-cased, the local part kept.
    assert_eq!(
        parsed.customer.email.as_ref().map(EmailAddress::as_str),
        Some("Hans.Mueller@contoso.de")
    );
    let thread = parsed.thread.unwrap();
    assert_eq!(
        thread.message_id,
        "AM0PR07MB1234D1E2F3A4B5C6D7E8F9A0B1C2D3E4@AM0PR07MB1234.eurprd07.prod.outlook.com"
    );
    assert_eq!(thread.in_reply_to, ["bot-reply-7.3310@acme.example"]);
    assert_eq!(thread.references, ["bot-reply-7.3310@acme.example"]);
}

#[test]
fn outlook_html_part_alone_gives_the_same_text() {
    // Drop the text/plain alternative so the HTML converter and Outlook's #appendonsend marker
    // do the work.
    let raw = fixture("outlook_reply.eml");
    let boundary = "--_000_AM0PR07MB1234D1E2F3A4B5C6D7E8F9A0B1C2D3E4AM0PR07MB1234eurp_";
    let mut sections = raw.split(boundary);
    let head = sections.next().unwrap();
    let _plain = sections.next().unwrap();
    let rest: Vec<&str> = sections.collect();
    let html_only = format!("{head}{boundary}{}", rest.join(boundary));
    let parsed = parse_thread(&[html_only], now()).unwrap();
    assert_eq!(
        only_turn(&parsed).text,
        "Hello,\n\nthe parcel still hasn't arrived. Could someone call me at the number below?\n\n\
         Best regards\nHans M\u{fc}ller\n+49 30 1234567"
    );
}

#[test]
fn gmail_html_part_alone_gives_the_same_text() {
    let raw = fixture("gmail_reply.eml");
    let boundary = "--000000000000a1b2c3d4e5f6";
    let parts: Vec<&str> = raw.split(boundary).collect();
    assert_eq!(parts.len(), 4);
    let html_only = [parts[0], parts[2], parts[3]].join(boundary);
    let parsed = parse_thread(&[html_only], now()).unwrap();
    // The HTML has no line break inside the first paragraph.
    assert_eq!(
        only_turn(&parsed).text,
        "Hi,\n\nI tried the steps but the refund still hasn\u{2019}t shown up on my card. The \
         order number is #4821.\n\nJane"
    );
}

#[test]
fn html_only_windows_1252_is_converted_and_the_quote_removed() {
    let parsed = parse(&["html_only_windows1252.eml"]);
    let turn = only_turn(&parsed);
    assert_eq!(
        turn.text,
        "Hi,\n\nI was charged \u{20ac}129.00 twice for the \u{201c}Pro\u{201d} plan & I can\u{2019}t see why.\n\
         Invoice: INV-2026-0042\n\nThanks,\nLi Wei"
    );
    assert_eq!(turn.at, utc("2026-11-16T03:20:00Z"));
    assert_eq!(parsed.subject.as_deref(), Some("Invoice INV-2026-0042"));
    let thread = parsed.thread.unwrap();
    assert_eq!(
        thread.message_id,
        "9C8B7A65-4321-4FED-BCDA-0123456789AB@example.net"
    );
    assert_eq!(
        thread.references,
        [
            "4F1A2B3C-5D6E-7F80-91A2-B3C4D5E6F708@example.net",
            "bot-reply-9.0042@acme.example"
        ]
    );
}

#[test]
fn iso_8859_1_quoted_printable_with_french_attribution_and_signature() {
    let parsed = parse(&["latin1_qp.eml"]);
    let turn = only_turn(&parsed);
    assert_eq!(
        turn.text,
        "Bonjour,\n\nMa commande n\u{b0} 7731 n'est toujours pas arriv\u{e9}e. Pouvez-vous \
         v\u{e9}rifier o\u{f9} elle\nse trouve ?\n\nCordialement,\n\u{c9}lodie"
    );
    // -0500: 18:45:10 local is 23:45:10 UTC.
    assert_eq!(turn.at, utc("2026-11-16T23:45:10Z"));
    assert_eq!(
        parsed.subject.as_deref(),
        Some("Probl\u{e8}me de livraison")
    );
    assert_eq!(parsed.customer.name.as_deref(), Some("\u{c9}lodie Martin"));
    assert_eq!(
        parsed.customer.email,
        Some(email("elodie.martin@example.fr"))
    );
}

#[test]
fn shift_jis_base64_body_and_iso_2022_jp_headers() {
    let parsed = parse(&["shift_jis_base64.eml"]);
    let turn = only_turn(&parsed);
    assert_eq!(
        turn.text,
        "お世話になっております。\n\n先週注文した商品がまだ届いていません。\n\
         注文番号は A-1029 です。確認をお願いします。\n\n山田太郎"
    );
    assert_eq!(turn.at, utc("2026-11-17T00:15:00Z"));
    assert_eq!(parsed.subject.as_deref(), Some("注文について"));
    assert_eq!(parsed.customer.name.as_deref(), Some("山田 太郎"));
    assert_eq!(
        parsed.thread.unwrap().message_id,
        "20261117091500.A1029@mail.example.jp"
    );
}

#[test]
fn euc_jp_base64_with_a_bare_from_address() {
    let parsed = parse(&["euc_jp_base64.eml"]);
    assert_eq!(
        only_turn(&parsed).text,
        "返品の手続きを教えてください。\n佐藤"
    );
    assert_eq!(parsed.subject.as_deref(), Some("返品"));
    assert_eq!(parsed.customer.name, None);
    assert_eq!(parsed.customer.email, Some(email("sato@example.jp")));
}

#[test]
fn utf_16_with_bom() {
    let parsed = parse(&["utf16_base64.eml"]);
    assert_eq!(
        only_turn(&parsed).text,
        "Hello, my order #88 arrived damaged \u{2014} the lid is cracked.\nCan I get a replacement?\n\n\
         Priya शर्मा"
    );
    assert_eq!(only_turn(&parsed).at, utc("2026-11-18T08:30:00Z"));
}

#[test]
fn three_message_thread_assigns_roles_by_sender() {
    let parsed = parse(&[
        "thread_1_customer.eml",
        "thread_2_bot.eml",
        "thread_3_customer.eml",
    ]);
    let summary: Vec<(Role, &str, DateTime<Utc>)> = parsed
        .turns
        .iter()
        .map(|t| (t.role, t.text.as_str(), t.at))
        .collect();
    assert_eq!(
        summary,
        [
            (
                Role::Customer,
                // format=flowed: the soft break after "my " is joined.
                "Hi, I can't log in to my account since this morning. It says my password is \
                 wrong but I reset it twice.\n\nSam",
                utc("2026-11-15T18:40:00Z"),
            ),
            (
                Role::Bot,
                "Hi Sam,\n\nI'm sorry about that. Could you try the sign-in link below? It skips \
                 the\npassword step.\nhttps://acme.example/login/magic\n\nAcme Support Assistant",
                utc("2026-11-15T18:41:05Z"),
            ),
            (
                // Same mailbox in different case; iPhone footer and quote dropped.
                Role::Customer,
                "That link doesn\u{2019}t work either. I need to talk to a person, please.",
                utc("2026-11-15T19:02:44Z"),
            ),
        ]
    );
    assert_eq!(parsed.subject.as_deref(), Some("Can't log in"));
    assert_eq!(parsed.customer.name.as_deref(), Some("Sam Lee"));
    // The thread is the last customer message's, with duplicate references removed.
    assert_eq!(
        parsed.thread,
        Some(EmailThread {
            message_id: "7D1C2B3A-4E5F-4061-9A8B-C7D6E5F40312@example.org".into(),
            in_reply_to: vec!["bot-reply-1.login@acme.example".into()],
            references: vec![
                "0E5A4C3B-2A19-4F08-8E7D-6C5B4A392817@example.org".into(),
                "bot-reply-1.login@acme.example".into(),
            ],
        })
    );
}

#[test]
fn thread_comes_from_the_last_customer_message_not_the_last_message() {
    let parsed = parse(&["thread_1_customer.eml", "thread_2_bot.eml"]);
    assert_eq!(
        parsed.turns.iter().map(|t| t.role).collect::<Vec<_>>(),
        [Role::Customer, Role::Bot]
    );
    let thread = parsed.thread.unwrap();
    assert_eq!(
        thread.message_id,
        "0E5A4C3B-2A19-4F08-8E7D-6C5B4A392817@example.org"
    );
    assert!(thread.in_reply_to.is_empty());
    assert!(thread.references.is_empty());
}

#[test]
fn auto_replies_and_bounces_are_skipped() {
    let parsed = parse(&[
        "thread_1_customer.eml",
        "thread_2_bot.eml",
        "auto_reply.eml",
        "bounce.eml",
        "x_autoreply.eml",
        "thread_3_customer.eml",
    ]);
    assert_eq!(
        parsed.turns.iter().map(|t| t.role).collect::<Vec<_>>(),
        [Role::Customer, Role::Bot, Role::Customer]
    );
    assert!(!parsed.turns.iter().any(|t| t.text.contains("office")
        || t.text.contains("delivered")
        || t.text.contains("away")));
    assert_eq!(
        parsed.thread.unwrap().message_id,
        "7D1C2B3A-4E5F-4061-9A8B-C7D6E5F40312@example.org"
    );
}

#[test]
fn only_automatic_messages_is_an_error() {
    let err = parse_thread(&fixtures(&["auto_reply.eml", "bounce.eml"]), now()).unwrap_err();
    assert_eq!(err, ChannelError::NoCustomerMessage);
    assert_eq!(err.code(), "no_customer_message");
    assert_eq!(err.field().as_deref(), Some("raw_email"));
}

#[test]
fn auto_submitted_no_is_a_person() {
    let raw = fixture("thread_1_customer.eml").replace(
        "To: support@acme.example",
        "To: support@acme.example\nAuto-Submitted: no",
    );
    assert_eq!(parse_thread(&[raw], now()).unwrap().turns.len(), 1);
}

#[test]
fn garbage_fails_with_its_index() {
    let err = parse_thread(&fixtures(&["gmail_reply.eml", "garbage.eml"]), now()).unwrap_err();
    assert_eq!(err.code(), "invalid_raw_email");
    assert_eq!(err.field().as_deref(), Some("raw_email[1]"));
    assert!(matches!(
        err,
        ChannelError::InvalidRawEmail {
            index: 1,
            problem: RawEmailProblem::Unparseable
        }
    ));
}

#[test]
fn messages_without_from_or_body_are_refused() {
    let cases = [
        ("", RawEmailProblem::Unparseable),
        (
            "Subject: hi\r\nDate: Sun, 15 Nov 2026 18:40:00 +0000\r\n\r\nHello",
            RawEmailProblem::MissingFrom,
        ),
        (
            "From: undisclosed-recipients:;\r\n\r\nHello",
            RawEmailProblem::MissingFrom,
        ),
        (
            "From: Jane <jane@localhost>\r\n\r\nHello",
            RawEmailProblem::InvalidFrom,
        ),
        (
            "From: Jane <jane@example.com>\r\nSubject: x\r\n\r\n  \r\n\r\n",
            RawEmailProblem::MissingBody,
        ),
        (
            "From: jane@example.com\r\nContent-Type: text/html\r\n\r\n<html><body><img src=\"cid:x\"></body></html>",
            RawEmailProblem::MissingBody,
        ),
        (
            "From: jane@example.com\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK",
            RawEmailProblem::MissingBody,
        ),
    ];
    for (raw, problem) in cases {
        let err =
            parse_thread(&[fixture("thread_1_customer.eml"), raw.to_owned()], now()).unwrap_err();
        assert_eq!(
            err,
            ChannelError::InvalidRawEmail { index: 1, problem },
            "{raw:?}"
        );
        assert_eq!(err.field().as_deref(), Some("raw_email[1]"));
        // The message text names the index and the problem, never content or addresses.
        assert!(!err.to_string().contains("jane"), "{err}");
    }
}

#[test]
fn missing_dates_fall_back_to_the_previous_turn_then_to_now() {
    let undated = "From: Sam Lee <sam.lee@example.org>\r\nSubject: still there?\r\n\r\nHello?";
    let parsed = parse_thread(
        &[fixture("thread_1_customer.eml"), undated.to_owned()],
        now(),
    )
    .unwrap();
    assert_eq!(parsed.turns[1].at, utc("2026-11-15T18:40:00Z"));
    let parsed = parse_thread(&[undated.to_owned()], now()).unwrap();
    assert_eq!(parsed.turns[0].at, now());
    assert_eq!(parsed.subject.as_deref(), Some("still there?"));
    // No Message-ID: nothing to thread a reply onto.
    assert_eq!(parsed.thread, None);
}

#[test]
fn empty_list_is_refused() {
    let err = parse_thread(&[], now()).unwrap_err();
    assert_eq!(
        (err.code(), err.field().as_deref()),
        ("empty_raw_email", Some("raw_email"))
    );
}

#[test]
fn email_channel_merges_input_over_the_parsed_thread() {
    let channel = EmailChannel::new();
    assert_eq!(channel.kind(), ChannelKind::Email);
    assert_eq!(channel.preferred_route(), Route::Case);

    let input = EscalationInput {
        subject: Some("Login problem (VIP)".into()),
        customer: Customer {
            name: Some("Samuel Lee".into()),
            email: None,
            phone: Some("+15551234567".into()),
        },
        language: "en-US".into(),
        ..raw_email_input(fixtures(&["thread_1_customer.eml", "thread_2_bot.eml"]))
    };
    let conversation: Conversation = channel.normalize_at(input, now()).unwrap();
    assert_eq!(conversation.subject.as_deref(), Some("Login problem (VIP)"));
    assert_eq!(conversation.customer.name.as_deref(), Some("Samuel Lee"));
    assert_eq!(
        conversation.customer.email,
        Some(email("sam.lee@example.org"))
    );
    assert_eq!(conversation.customer.phone.as_deref(), Some("+15551234567"));
    assert_eq!(conversation.language, "en-US");
    assert_eq!(conversation.turns.len(), 2);
    assert!(conversation.thread.is_some());

    // Without input values the thread's own are used.
    let conversation = channel
        .normalize(raw_email_input(fixtures(&["gmail_reply.eml"])))
        .unwrap();
    assert_eq!(
        conversation.subject.as_deref(),
        Some("Refund for order #4821")
    );
    assert_eq!(conversation.customer.name.as_deref(), Some("Jane Doe"));
}

#[test]
fn email_channel_accepts_a_transcript_instead() {
    let turn = Turn {
        role: Role::Customer,
        text: " I need help \n".into(),
        at: now(),
        offset_ms: None,
    };
    let conversation = EmailChannel::new()
        .normalize(EscalationInput {
            transcript: Some(vec![turn]),
            raw_email: None,
            ..raw_email_input(vec![])
        })
        .unwrap();
    assert_eq!(conversation.turns[0].text, "I need help");
    assert_eq!(conversation.thread, None);
}

#[test]
fn email_channel_input_errors_have_codes_and_fields() {
    let channel = EmailChannel::new();
    let turn = Turn {
        role: Role::Customer,
        text: "hello".into(),
        at: now(),
        offset_ms: None,
    };
    let cases: Vec<(EscalationInput, &str, &str)> = vec![
        (
            EscalationInput {
                transcript: Some(vec![turn.clone()]),
                ..raw_email_input(fixtures(&["gmail_reply.eml"]))
            },
            "transcript_and_raw_email",
            "raw_email",
        ),
        (
            EscalationInput {
                raw_email: None,
                ..raw_email_input(vec![])
            },
            "missing_conversation",
            "transcript",
        ),
        (
            EscalationInput {
                transcript: Some(vec![]),
                raw_email: None,
                ..raw_email_input(vec![])
            },
            "empty_transcript",
            "transcript",
        ),
        (
            EscalationInput {
                transcript: Some(vec![
                    turn.clone(),
                    Turn {
                        text: "".into(),
                        ..turn.clone()
                    },
                ]),
                raw_email: None,
                ..raw_email_input(vec![])
            },
            "empty_turn_text",
            "transcript[1].text",
        ),
        (raw_email_input(vec![]), "empty_raw_email", "raw_email"),
        (
            raw_email_input(fixtures(&[
                "gmail_reply.eml",
                "thread_2_bot.eml",
                "garbage.eml",
            ])),
            "invalid_raw_email",
            "raw_email[2]",
        ),
        (
            EscalationInput {
                language: "".into(),
                ..raw_email_input(fixtures(&["gmail_reply.eml"]))
            },
            "invalid_language",
            "language",
        ),
    ];
    for (input, code, field) in cases {
        let err = channel.normalize_at(input, now()).unwrap_err();
        assert_eq!(
            (err.code(), err.field().as_deref()),
            (code, Some(field)),
            "{err}"
        );
    }
}
