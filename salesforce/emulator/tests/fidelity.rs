//! Fidelity the gateway's own fixes rely on: email addresses Salesforce refuses, external-id
//! values that are dot segments, and case-insensitive external-id matching.

mod common;

use common::{Client, V, spawn};
use serde_json::json;
use sf_emulator::EmulatorConfig;

/// The gateway refuses at accept time what Salesforce would refuse later, so the emulator must
/// refuse the same addresses: over the field's 80 characters, or a non-ASCII local part (an org
/// without Email Address Internationalization). Both are INVALID_EMAIL_ADDRESS on the field,
/// with nothing written. Before, an 81-character address got STRING_TOO_LONG instead.
#[tokio::test]
async fn email_fields_refuse_long_and_non_ascii_addresses() {
    let sf = spawn(EmulatorConfig::default()).await;
    let c = Client::login(reqwest::Client::new(), &sf.url()).await;
    let at_limit = format!("{}@{}.com", "a".repeat(40), "b".repeat(80 - 41 - 4));
    assert_eq!(at_limit.len(), 80);
    c.create("Case", json!({"Subject": "ok", "SuppliedEmail": at_limit}))
        .await;
    let too_long = format!("b{at_limit}");
    for bad in [
        too_long.as_str(),
        "jos\u{e9}@example.com",
        "\u{4f60}\u{597d}@example.cn",
    ] {
        let r = c
            .call(
                "POST",
                &format!("{V}/sobjects/Case"),
                Some(json!({"Subject": "bad", "SuppliedEmail": bad})),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(
            r.body,
            json!([{"message": format!("Web Email: invalid email address: {bad}"),
                    "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["SuppliedEmail"]}])
        );
    }
    assert_eq!(sf.records("Case").len(), 1, "a refused Case was written");
    sf.shutdown().await;
}

/// A session id of `.` or `..` used to be accepted by the emulator as an external-id value
/// (`PATCH …/Handoff_Session_Id__c/.` created a Case), while such a URL never reaches a record on
/// Salesforce. A dot segment, literal or percent-encoded, now answers 404 NOT_FOUND and writes
/// nothing, so the gateway's test of its own refusal has a faithful counterpart.
#[tokio::test]
async fn external_id_dot_segments_do_not_resolve() {
    let sf = spawn(EmulatorConfig::default()).await;
    let c = Client::login(reqwest::Client::new(), &sf.url()).await;
    for value in [".", "..", "%2E", "%2e%2E"] {
        let path = format!("{V}/sobjects/Case/Handoff_Session_Id__c/{value}");
        let (status, body) = common::raw(
            sf.local_addr(),
            "PATCH",
            &path,
            &c.token,
            r#"{"Subject":"x"}"#,
        )
        .await;
        assert_eq!(status, 404, "{value}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body[0]["errorCode"], "NOT_FOUND", "{value}");
    }
    assert!(
        sf.records("Case").is_empty(),
        "a dot segment created a Case"
    );
    sf.shutdown().await;
}

/// Salesforce matches a text external id that is not case-sensitive without regard to case, so
/// `Mix-A` and `mix-a` name the same Case. The gateway must avoid that collision on its side;
/// the emulator must keep behaving like Salesforce so the gateway's test can see it.
#[tokio::test]
async fn external_id_matching_ignores_case() {
    let sf = spawn(EmulatorConfig::default()).await;
    let c = Client::login(reqwest::Client::new(), &sf.url()).await;
    let first = c
        .call(
            "PATCH",
            &format!("{V}/sobjects/Case/Handoff_Session_Id__c/Mix-A"),
            Some(json!({"Subject": "first"})),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let second = c
        .call(
            "PATCH",
            &format!("{V}/sobjects/Case/Handoff_Session_Id__c/mix-a"),
            Some(json!({"Subject": "second"})),
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["created"], false);
    assert_eq!(second.body["id"], first.body["id"]);
    let cases = sf.records("Case");
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["Subject"], "second");
    assert_eq!(cases[0]["Handoff_Session_Id__c"], "Mix-A");
    sf.shutdown().await;
}
