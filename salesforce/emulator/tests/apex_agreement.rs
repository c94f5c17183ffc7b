//! The shipped Apex (`deploy/salesforce/`) and the emulator's case webhook send the same event:
//! the JSON field names, the event types, the headers and the signing input. The emulator's side
//! is taken from a real fired webhook; the Apex side is read from its source. Renaming a field,
//! a type or a header on either side fails this test.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use axum::http::HeaderMap;
use common::{Client, read, spawn};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sf_emulator::{CaseWebhookConfig, EmulatorConfig};
use sha2::Sha256;
use tokio::sync::mpsc;

const SECRET: &str = "agreement-secret";

fn apex(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/salesforce/force-app/main/default")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Apex string literal starting at `s[start]` (a `'`): its value and the index after it.
fn literal(s: &str, start: usize) -> (String, usize) {
    let bytes = s.as_bytes();
    assert_eq!(bytes[start], b'\'', "not a literal at {start}");
    let mut out = String::new();
    let mut chars = s[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, escaped) = chars.next().expect("escape at the end of the source");
                out.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
            }
            '\'' => return (out, start + 1 + i + 1),
            c => out.push(c),
        }
    }
    panic!("unterminated literal at {start}");
}

/// The first string literal after `needle`.
fn literal_after(s: &str, needle: &str) -> String {
    let at = s
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in the Apex"));
    let quote = at + needle.len() + s[at + needle.len()..].find('\'').unwrap();
    literal(s, quote).0
}

/// Every key path (`author.id`) the Apex `JSONGenerator` calls write, in `eventJson`.
fn apex_key_paths(source: &str) -> BTreeSet<String> {
    let start = source
        .find("static String eventJson(")
        .expect("eventJson in the Apex");
    let end = start
        + source[start..]
            .find("g.getAsString()")
            .expect("end of eventJson");
    let body = &source[start..end];
    let mut paths = BTreeSet::new();
    let mut stack: Vec<String> = Vec::new();
    let mut pending: Option<String> = None;
    let mut rest = 0;
    while let Some(at) = body[rest..].find("g.write") {
        let at = rest + at + "g.write".len();
        let open = at + body[at..].find('(').unwrap();
        let method = &body[at..open];
        let name = body[open + 1..]
            .trim_start()
            .starts_with('\'')
            .then(|| literal(body, open + 1 + body[open + 1..].find('\'').unwrap()).0);
        let prefix = |name: &str, stack: &[String]| {
            stack
                .iter()
                .skip(1)
                .cloned()
                .chain([name.to_string()])
                .collect::<Vec<_>>()
                .join(".")
        };
        match method {
            "StartObject" => stack.push(pending.take().unwrap_or_default()),
            "EndObject" => {
                stack.pop();
            }
            "FieldName" => {
                let name = name.expect("writeFieldName takes a literal");
                paths.insert(prefix(&name, &stack));
                pending = Some(name);
            }
            _ => {
                let name = name.unwrap_or_else(|| panic!("g.write{method} without a literal name"));
                paths.insert(prefix(&name, &stack));
            }
        }
        rest = open;
    }
    assert!(stack.is_empty(), "unbalanced objects in eventJson");
    paths
}

fn json_key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            json_key_paths(child, &path, out);
            out.insert(path);
        }
    }
}

fn hex_hmac(secret: &str, input: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fires one comment and one email through the emulator; returns what the webhook received.
async fn emulator_events() -> Vec<(HeaderMap, String)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(HeaderMap, String)>();
    let app = axum::Router::new().route(
        "/salesforce/events",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                (axum::http::StatusCode::ACCEPTED, r#"{"status":"accepted"}"#)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/salesforce/events",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sf = spawn(EmulatorConfig {
        case_webhook: Some(CaseWebhookConfig {
            url,
            hmac_secret: Some(SECRET.to_string()),
            jwt: None,
            timeout_secs: 10,
        }),
        ..EmulatorConfig::default()
    })
    .await;
    let client = Client::login(reqwest::Client::new(), &sf.url()).await;
    let case_id = client
        .create(
            "Case",
            json!({"Subject": "S", "SuppliedEmail": "ann@example.com"}),
        )
        .await;
    let http = reqwest::Client::new();
    for (kind, body) in [
        ("comments", json!({"text": "Hi", "public": true})),
        ("emails", json!({"text": "Hi", "html": "<p>Hi</p>"})),
    ] {
        let r = read(
            http.post(format!("{}/__emulator/cases/{case_id}/{kind}", sf.url()))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let mut got = Vec::new();
    for _ in 0..2 {
        let next = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
            .await
            .expect("the webhook was not called")
            .unwrap();
        got.push(next);
    }
    sf.shutdown().await;
    got
}

#[tokio::test]
async fn the_apex_and_the_emulator_send_the_same_event() {
    let job = apex("classes/HandoffReplyJob.cls");
    let events = emulator_events().await;
    let (comment, email): (Value, Value) = (
        serde_json::from_str(&events[0].1).unwrap(),
        serde_json::from_str(&events[1].1).unwrap(),
    );

    // Field names, nested: the same set on both sides, for both kinds of event.
    let apex_paths = apex_key_paths(&job);
    for event in [&comment, &email] {
        let mut emulator_paths = BTreeSet::new();
        json_key_paths(event, "", &mut emulator_paths);
        assert_eq!(
            apex_paths, emulator_paths,
            "field names differ (Apex left, emulator right)"
        );
    }
    let expected: BTreeSet<String> = [
        "eventId",
        "type",
        "orgId",
        "caseId",
        "caseNumber",
        "occurredAt",
        "author",
        "author.id",
        "author.name",
        "body",
        "body.text",
        "body.html",
        "isPublic",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(apex_paths, expected, "the contract's field names (§1)");

    // Event types.
    assert_eq!(
        literal_after(&job, "COMMENT_CREATED ="),
        comment["type"].as_str().unwrap()
    );
    assert_eq!(
        literal_after(&job, "EMAIL_SENT ="),
        email["type"].as_str().unwrap()
    );
    assert_eq!(comment["type"], "case_comment.created");
    assert_eq!(email["type"], "email_message.sent");

    // occurredAt: ISO 8601 UTC with milliseconds and Z on both sides.
    assert!(job.contains(r"formatGmt('yyyy-MM-dd\'T\'HH:mm:ss.SSS\'Z\'')"));
    let at = comment["occurredAt"].as_str().unwrap();
    assert!(
        at.len() == 24 && at.ends_with('Z') && &at[19..20] == ".",
        "{at}"
    );

    // Endpoint and headers.
    assert_eq!(
        literal_after(&job, "ENDPOINT ="),
        "callout:Handoff_Gateway/salesforce/events"
    );
    let mut apex_headers = Vec::new();
    let mut rest = 0;
    while let Some(at) = job[rest..].find("req.setHeader(") {
        let at = rest + at + "req.setHeader(".len();
        let (name, end) = literal(&job, at + job[at..].find('\'').unwrap());
        apex_headers.push(name);
        rest = end;
    }
    assert_eq!(
        apex_headers,
        ["Content-Type", "X-Handoff-Timestamp", "X-Handoff-Signature"]
    );
    for (headers, body) in &events {
        for name in &apex_headers {
            assert!(
                headers.contains_key(name.as_str()),
                "the emulator sends no {name}"
            );
        }
        assert_eq!(
            headers["content-type"],
            literal_after(&job, "req.setHeader('Content-Type',").as_str()
        );
        // Signing input: timestamp + "." + the body as sent; lowercase hex; "sha256=" prefix.
        let ts = headers["x-handoff-timestamp"].to_str().unwrap();
        assert_eq!(
            headers["x-handoff-signature"].to_str().unwrap(),
            format!("sha256={}", hex_hmac(SECRET, &format!("{ts}.{body}")))
        );
    }
    let squashed: String = job.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "Crypto.generateMac('hmacSHA256', Blob.valueOf(ts + '.' + body), Blob.valueOf(secret))",
        "return 'sha256=' + EncodingUtil.convertToHex(mac);",
        "String ts = String.valueOf(Datetime.now().getTime() / 1000);",
        "req.setHeader('X-Handoff-Signature', signature(secret, ts, body));",
        "req.setBodyAsBlob(Blob.valueOf(body));",
    ] {
        assert!(
            squashed.contains(needle),
            "the Apex no longer has: {needle}"
        );
    }
}

#[test]
fn the_apex_signature_test_vector_is_hmac_sha256_hex() {
    let test = apex("classes/HandoffRepliesTest.cls");
    let call = "HandoffReplyJob.signature(";
    let at = test.find(call).expect("the signature test vector");
    let mut args = Vec::new();
    let mut pos = at + call.len();
    for _ in 0..3 {
        let (arg, end) = literal(&test, pos + test[pos..].find('\'').unwrap());
        args.push(arg);
        pos = end;
    }
    let before = &test[..at];
    let expected_at = before.rfind("'sha256=").expect("the expected signature");
    let (expected, _) = literal(&test, expected_at);
    assert_eq!(
        expected,
        format!(
            "sha256={}",
            hex_hmac(&args[0], &format!("{}.{}", args[1], args[2]))
        )
    );
}

#[test]
fn the_case_fields_match_the_emulator_and_the_gateway_defaults() {
    let emulator = sf_emulator::config::default_custom_fields();
    let field = |name: &str| {
        emulator
            .iter()
            .find(|f| f.object == "Case" && f.field.name == name)
            .unwrap_or_else(|| panic!("the emulator has no Case.{name}"))
            .field
            .clone()
    };
    let from = apex("objects/Case/fields/Case_From__c.field-meta.xml");
    let length = field("Case_From__c").length.unwrap();
    assert!(from.contains("<fullName>Case_From__c</fullName>"));
    assert!(
        from.contains(&format!("<length>{length}</length>")),
        "Case_From__c length"
    );
    let ext = apex("objects/Case/fields/Handoff_Session_Id__c.field-meta.xml");
    let emulated = field("Handoff_Session_Id__c");
    assert!(emulated.external_id && emulated.unique);
    for needle in [
        "<fullName>Handoff_Session_Id__c</fullName>".to_string(),
        "<externalId>true</externalId>".to_string(),
        "<unique>true</unique>".to_string(),
        // The emulator's unique check is case-insensitive, as this field is.
        "<caseSensitive>false</caseSensitive>".to_string(),
        format!("<length>{}</length>", emulated.length.unwrap()),
    ] {
        assert!(
            ext.contains(&needle),
            "Handoff_Session_Id__c lacks {needle}"
        );
    }
    // The gateway's defaults name the same fields.
    let defaults = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../gateway/handoff.default.toml"),
    )
    .unwrap();
    assert!(defaults.contains("from_field = \"Case_From__c\""));
    assert!(defaults.contains("external_id_field = \"Handoff_Session_Id__c\""));
}
