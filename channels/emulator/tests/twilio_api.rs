//! The Twilio Messages API over real sockets: authentication, Twilio's validation codes, the
//! Message resource, reads, Messaging Services and faults.

mod common;

use channel_emulator::Fault;
use channel_emulator::twilio::{TwilioEmulator, TwilioSettings};
use serde_json::{Value, json};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "secret-token";
const KEY_SID: &str = "SK00000000000000000000000000000001";
const KEY_SECRET: &str = "key-secret";
const FROM: &str = "+15550100000";
const CUSTOMER: &str = "+14155550100";

async fn emulator() -> TwilioEmulator {
    TwilioEmulator::spawn(TwilioSettings {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        api_key: Some((KEY_SID.into(), KEY_SECRET.into())),
        webhook_url: None,
        whatsapp_webhook_url: None,
    })
    .await
}

fn messages_url(emu: &TwilioEmulator, account: &str) -> String {
    format!("{}/2010-04-01/Accounts/{account}/Messages.json", emu.url())
}

async fn send_as(
    emu: &TwilioEmulator,
    user: &str,
    password: &str,
    form: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = common::client()
        .post(messages_url(emu, SID))
        .basic_auth(user, Some(password))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.unwrap();
    (status, body, headers)
}

async fn send(emu: &TwilioEmulator, form: &[(&str, &str)]) -> (u16, Value) {
    let (status, body, _) = send_as(emu, SID, TOKEN, form).await;
    (status, body)
}

fn assert_error(status: u16, body: &Value, http: u16, code: u64) {
    assert_eq!(status, http, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], http, "{body}");
    assert_eq!(
        body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}")
    );
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_20003() {
    let emu = emulator().await;
    let form = [("To", CUSTOMER), ("From", FROM), ("Body", "hi")];
    let resp = common::client()
        .post(messages_url(&emu, SID))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"].to_str().unwrap(),
        "Basic realm=\"Twilio API\""
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"code": 20003, "message": "Authenticate",
               "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
    );
    for (user, password) in [(SID, "wrong"), (KEY_SID, TOKEN), ("ACother", TOKEN)] {
        let (status, body, _) = send_as(&emu, user, password, &form).await;
        assert_error(status, &body, 401, 20003);
    }
    assert!(emu.sent().is_empty());
    // The API key authenticates as well as the auth token.
    let (status, body, _) = send_as(&emu, KEY_SID, KEY_SECRET, &form).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn another_account_in_the_path_is_20404() {
    let emu = emulator().await;
    let other = "AC99999999999999999999999999999999";
    let resp = common::client()
        .post(messages_url(&emu, other))
        .basic_auth(SID, Some(TOKEN))
        .form(&[("To", CUSTOMER), ("From", FROM), ("Body", "hi")])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_error(status, &body, 404, 20404);
    assert_eq!(
        body["message"],
        format!("The requested resource /2010-04-01/Accounts/{other}/Messages.json was not found")
    );
    assert!(emu.sent().is_empty());
}

#[tokio::test]
async fn validation_errors_carry_twilios_codes() {
    let emu = emulator().await;
    emu.add_number(FROM).unwrap();
    emu.add_whatsapp_sender("+15550100001").unwrap();
    let service = "MG00000000000000000000000000000001";
    emu.add_messaging_service(service, &[FROM]).unwrap();
    let long = "a".repeat(1601);
    let media: Vec<(&str, &str)> = (0..11)
        .map(|_| ("MediaUrl", "https://example.com/a.jpg"))
        .collect();
    let mut eleven_media = vec![("To", CUSTOMER), ("From", FROM)];
    eleven_media.extend(media);
    let cases: Vec<(Vec<(&str, &str)>, u64)> = vec![
        (vec![("From", FROM), ("Body", "x")], 21604),
        (
            vec![("To", "4155550100"), ("From", FROM), ("Body", "x")],
            21211,
        ),
        (vec![("To", "+0155"), ("From", FROM), ("Body", "x")], 21211),
        (vec![("To", CUSTOMER), ("Body", "x")], 21603),
        (
            vec![("To", CUSTOMER), ("From", "+15559999999"), ("Body", "x")],
            21606,
        ),
        (
            vec![
                ("To", "whatsapp:+14155550100"),
                ("From", "whatsapp:+15559999999"),
                ("Body", "x"),
            ],
            63007,
        ),
        (
            vec![
                ("To", "whatsapp:+14155550100"),
                ("From", FROM),
                ("Body", "x"),
            ],
            21910,
        ),
        (vec![("To", CUSTOMER), ("From", FROM)], 21602),
        (
            vec![("To", CUSTOMER), ("MessagingServiceSid", service)],
            21619,
        ),
        (
            vec![
                ("To", CUSTOMER),
                ("MessagingServiceSid", "MG00000000000000000000000000000009"),
                ("Body", "x"),
            ],
            21705,
        ),
        (
            vec![
                ("To", "whatsapp:+14155550100"),
                ("MessagingServiceSid", service),
                ("Body", "x"),
            ],
            21910,
        ),
        (
            vec![("To", CUSTOMER), ("From", FROM), ("Body", long.as_str())],
            21617,
        ),
        (eleven_media, 21623),
        (
            vec![
                ("To", CUSTOMER),
                ("From", FROM),
                ("MediaUrl", "ftp://example.com/a.jpg"),
            ],
            21620,
        ),
        (
            vec![
                ("To", CUSTOMER),
                ("From", FROM),
                ("Body", "x"),
                ("ContentVariables", "{}"),
            ],
            21654,
        ),
        (
            vec![("To", CUSTOMER), ("From", FROM), ("ContentSid", "HX123")],
            21655,
        ),
        (
            vec![
                ("To", CUSTOMER),
                ("From", FROM),
                ("ContentSid", "HX0123456789abcdef0123456789abcdef"),
                ("ContentVariables", "{\"1\": 5}"),
            ],
            21656,
        ),
        (
            vec![
                ("To", CUSTOMER),
                ("From", FROM),
                ("ContentSid", "HX0123456789abcdef0123456789abcdef"),
                ("ContentVariables", "not json"),
            ],
            21656,
        ),
        (
            vec![
                ("To", CUSTOMER),
                ("From", FROM),
                ("Body", "x"),
                ("StatusCallback", "not a url"),
            ],
            21609,
        ),
        (
            vec![
                ("To", CUSTOMER),
                ("From", FROM),
                ("Body", "x"),
                ("StatusCallback", "https://bad_host.example/cb"),
            ],
            21609,
        ),
    ];
    for (form, code) in cases {
        let (status, body) = send(&emu, &form).await;
        assert_error(status, &body, 400, code);
    }
    assert!(emu.sent().is_empty(), "no refused send is stored");
    // The limits themselves pass: 1,600 characters, 10 media.
    let exact = "é".repeat(1600);
    let (status, body) = send(&emu, &[("To", CUSTOMER), ("From", FROM), ("Body", &exact)]).await;
    assert_eq!(status, 201, "{body}");
    let mut ten = vec![("To", CUSTOMER), ("From", FROM)];
    ten.extend((0..10).map(|_| ("MediaUrl", "https://example.com/a.jpg")));
    let (status, body) = send(&emu, &ten).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["num_media"], "10");
}

#[tokio::test]
async fn the_created_message_resource_looks_like_twilios() {
    let emu = emulator().await;
    let body_text = "a".repeat(161);
    let (status, body) = send(
        &emu,
        &[("To", CUSTOMER), ("From", FROM), ("Body", &body_text)],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let sid = body["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert!(sid[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(body["account_sid"], SID);
    assert_eq!(body["api_version"], "2010-04-01");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["direction"], "outbound-api");
    assert_eq!(body["from"], FROM);
    assert_eq!(body["to"], CUSTOMER);
    assert_eq!(body["body"], body_text);
    assert_eq!(body["num_segments"], "2");
    assert_eq!(body["num_media"], "0");
    assert_eq!(body["price"], Value::Null);
    assert_eq!(body["price_unit"], "USD");
    assert_eq!(body["error_code"], Value::Null);
    assert_eq!(body["date_sent"], Value::Null);
    assert_eq!(body["messaging_service_sid"], Value::Null);
    for date in ["date_created", "date_updated"] {
        let d = body[date].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc2822(d).is_ok(),
            "{date}: {d}"
        );
        assert!(d.ends_with("+0000"), "{d}");
    }
    assert_eq!(
        body["uri"],
        format!("/2010-04-01/Accounts/{SID}/Messages/{sid}.json")
    );
    assert_eq!(
        body["subresource_uris"]["media"],
        format!("/2010-04-01/Accounts/{SID}/Messages/{sid}/Media.json")
    );
    // UCS-2: 71 Cyrillic characters are two segments; media makes an MM sid.
    let (_, body) = send(
        &emu,
        &[
            ("To", CUSTOMER),
            ("From", FROM),
            ("Body", &"ж".repeat(71)),
            ("MediaUrl", "https://example.com/a.jpg"),
        ],
    )
    .await;
    assert_eq!(body["num_segments"], "2");
    assert!(body["sid"].as_str().unwrap().starts_with("MM"));
    let sent = emu.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].sid, sid);
    assert_eq!(sent[0].num_segments, 2);
    assert_eq!(sent[1].media_urls, vec!["https://example.com/a.jpg"]);
}

#[tokio::test]
async fn messages_can_be_fetched_and_listed() {
    let emu = emulator().await;
    let other = "+14155550199";
    let (_, first) = send(&emu, &[("To", CUSTOMER), ("From", FROM), ("Body", "one")]).await;
    let (_, second) = send(&emu, &[("To", other), ("From", FROM), ("Body", "two")]).await;
    let (_, third) = send(&emu, &[("To", CUSTOMER), ("From", FROM), ("Body", "three")]).await;
    let client = common::client();
    let sid = first["sid"].as_str().unwrap();
    let base = format!("{}/2010-04-01/Accounts/{SID}/Messages", emu.url());
    let fetched: Value = client
        .get(format!("{base}/{sid}.json"))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["sid"], sid);
    assert_eq!(fetched["body"], "one");
    let missing = client
        .get(format!("{base}/SM00000000000000000000000000000000.json"))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["code"], 20404);
    let unauthenticated = client
        .get(format!("{base}/{sid}.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    let list: Value = client
        .get(format!("{base}.json"))
        .query(&[("To", CUSTOMER)])
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sid"].as_str().unwrap())
        .collect();
    // Newest first, only the filtered recipient.
    assert_eq!(listed, vec![third["sid"].as_str().unwrap(), sid]);
    assert_eq!(list["page"], 0);
    assert_eq!(list["page_size"], 50);
    assert_eq!(list["next_page_uri"], Value::Null);

    let paged: Value = client
        .get(format!("{base}.json"))
        .query(&[("PageSize", "1")])
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(paged["messages"].as_array().unwrap().len(), 1);
    assert_eq!(paged["messages"][0]["sid"], third["sid"]);
    let next = paged["next_page_uri"].as_str().unwrap();
    let page2: Value = client
        .get(format!("{}{next}", emu.url()))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page2["messages"][0]["sid"], second["sid"]);
}

#[tokio::test]
async fn senders_are_open_until_numbers_are_configured() {
    let emu = emulator().await;
    let (status, _) = send(
        &emu,
        &[("To", CUSTOMER), ("From", "+15557777777"), ("Body", "x")],
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = send(
        &emu,
        &[("To", CUSTOMER), ("From", "Handoff"), ("Body", "x")],
    )
    .await;
    assert_error(status, &body, 400, 21606);
    emu.add_number("Handoff").unwrap();
    let (status, body) = send(
        &emu,
        &[("To", CUSTOMER), ("From", "Handoff"), ("Body", "x")],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = send(
        &emu,
        &[("To", CUSTOMER), ("From", "+15557777777"), ("Body", "x")],
    )
    .await;
    assert_error(status, &body, 400, 21606);
    assert!(emu.add_number("+0123").is_err());
    assert!(emu.add_number("twelve chars").is_err());
}

#[tokio::test]
async fn a_messaging_service_picks_its_sender() {
    let emu = emulator().await;
    let service = "MG00000000000000000000000000000001";
    emu.add_messaging_service(service, &["whatsapp:+15550100001", FROM])
        .unwrap();
    let (status, body) = send(
        &emu,
        &[
            ("To", CUSTOMER),
            ("MessagingServiceSid", service),
            ("Body", "x"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["from"], Value::Null, "the sender is picked later");
    assert_eq!(body["messaging_service_sid"], service);
    emu.settled().await;
    let sent = emu.sent();
    assert_eq!(sent[0].from, FROM);
    assert_eq!(sent[0].status, "delivered");
    let fetched: Value = common::client()
        .get(format!(
            "{}/2010-04-01/Accounts/{SID}/Messages/{}.json",
            emu.url(),
            sent[0].sid
        ))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["from"], FROM);
    assert_eq!(fetched["status"], "delivered");
    assert!(fetched["date_sent"].is_string());
}

#[tokio::test]
async fn faults_answer_429_and_5xx_then_recover() {
    let emu = emulator().await;
    let form = [("To", CUSTOMER), ("From", FROM), ("Body", "hi")];
    emu.fault(Fault::RateLimit {
        count: 2,
        retry_after_secs: 7,
    });
    emu.fault(Fault::ServerError {
        count: 1,
        status: 503,
    });
    emu.fault(Fault::Slow {
        count: 1,
        delay_ms: 20,
    });
    for _ in 0..2 {
        let (status, body, headers) = send_as(&emu, SID, TOKEN, &form).await;
        assert_error(status, &body, 429, 20429);
        assert_eq!(headers["retry-after"], "7");
    }
    let (status, body, _) = send_as(&emu, SID, TOKEN, &form).await;
    assert_error(status, &body, 503, 20503);
    assert!(emu.sent().is_empty(), "faulted sends store nothing");
    let (status, _) = send(&emu, &form).await;
    assert_eq!(status, 201, "a slow send still succeeds");
    let (status, _) = send(&emu, &form).await;
    assert_eq!(status, 201);
    assert_eq!(emu.sent().len(), 2);
}

#[tokio::test]
async fn faults_can_be_set_over_http() {
    let emu = emulator().await;
    let client = common::client();
    let url = format!("{}/__emulator/twilio/faults", emu.url());
    let resp = client
        .post(&url)
        .json(&json!({"type": "server_error", "count": 1, "status": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let pending: Value = resp.json().await.unwrap();
    assert_eq!(
        pending,
        json!([{"type": "server_error", "count": 1, "status": 500}])
    );
    let bad = client
        .post(&url)
        .json(&json!({"type": "server_error", "count": 1, "status": 404}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let error: Value = bad.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("status"));
    let (status, body) = send(&emu, &[("To", CUSTOMER), ("From", FROM), ("Body", "x")]).await;
    assert_error(status, &body, 500, 20500);
    let pending: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(pending, json!([]));
    let listed: Value = client
        .get(format!("{}/__emulator/twilio/messages", emu.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn unknown_routes_answer_twilios_404() {
    let emu = emulator().await;
    let resp = common::client()
        .get(format!(
            "{}/2010-04-01/Accounts/{SID}/Calls.json",
            emu.url()
        ))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 20404);
}
