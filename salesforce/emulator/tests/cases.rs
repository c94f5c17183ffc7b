//! Rep replies on Cases: the console (`/__emulator/cases/{caseId}/…`), the case webhook it
//! fires (HMAC and JWT as the shipped Apex signs), and the poller's SOQL.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use common::{Client, V, read, spawn};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sf_emulator::{CaseWebhookConfig, CaseWebhookJwt, EmulatorConfig, EmulatorHandle};
use sha2::Sha256;
use tokio::sync::mpsc;

const SECRET: &str = "test-only-webhook-secret";

/// A request the webhook receiver got.
struct Received {
    headers: HeaderMap,
    body: String,
}

/// A webhook receiver on loopback: answers each request with the next status of `answers`
/// (202 once they run out) and hands the request to the test.
struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<Received>,
}

#[derive(Clone)]
struct ReceiverState {
    tx: mpsc::UnboundedSender<Received>,
    answers: Arc<Mutex<Vec<u16>>>,
}

async fn receive(
    State(s): State<ReceiverState>,
    headers: HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    let status = {
        let mut answers = s.answers.lock().unwrap();
        if answers.is_empty() {
            202
        } else {
            answers.remove(0)
        }
    };
    let _ = s.tx.send(Received { headers, body });
    axum::http::StatusCode::from_u16(status).unwrap()
}

async fn receiver(answers: Vec<u16>) -> Receiver {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = ReceiverState {
        tx,
        answers: Arc::new(Mutex::new(answers)),
    };
    let app = axum::Router::new()
        .route("/salesforce/events", axum::routing::post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/salesforce/events",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, rx }
}

impl Receiver {
    /// The next request (a hang guard only: the test fails rather than waits forever).
    async fn next(&mut self) -> Received {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.rx.recv())
            .await
            .expect("the webhook was not called")
            .expect("receiver closed")
    }
}

/// The delivery log once it holds `n` attempts (the webhook sees a request before the emulator
/// has logged its answer). Waiting is bounded only as a hang guard.
async fn deliveries(sf: &EmulatorHandle, n: usize) -> Vec<sf_emulator::CaseWebhookDelivery> {
    let wait = async {
        loop {
            let d = sf.case_webhook_deliveries();
            if d.len() >= n {
                return d;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), wait)
        .await
        .expect("the delivery was not logged")
}

fn hmac_hook(url: &str) -> CaseWebhookConfig {
    CaseWebhookConfig {
        url: url.to_string(),
        hmac_secret: Some(SECRET.to_string()),
        jwt: None,
        timeout_secs: 10,
    }
}

async fn org_with_case() -> (EmulatorHandle, Client, String) {
    let sf = spawn(EmulatorConfig::default()).await;
    let client = Client::login(reqwest::Client::new(), &sf.url()).await;
    let case_id = client
        .create(
            "Case",
            json!({"Subject": "Printer broken", "Origin": "Email", "SuppliedEmail": "ann@example.com", "Case_From__c": "opencx"}),
        )
        .await;
    (sf, client, case_id)
}

async fn post(sf: &EmulatorHandle, path: &str, body: Value) -> common::Resp {
    read(
        reqwest::Client::new()
            .post(format!("{}{path}", sf.url()))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn comment(sf: &EmulatorHandle, case_id: &str, text: &str, public: bool) -> String {
    let r = post(
        sf,
        &format!("/__emulator/cases/{case_id}/comments"),
        json!({"text": text, "public": public, "rep_name": "Rita Rep"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
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

/// Checks the HMAC headers against the body as received.
fn assert_hmac(got: &Received) {
    let ts = got.headers["x-handoff-timestamp"].to_str().unwrap();
    assert!(ts.parse::<i64>().is_ok(), "timestamp is unix seconds: {ts}");
    let sig = got.headers["x-handoff-signature"].to_str().unwrap();
    assert_eq!(
        sig,
        format!("sha256={}", hex_hmac(SECRET, &format!("{ts}.{}", got.body)))
    );
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["user-agent"], "SFDC-Callout/66.0");
}

#[tokio::test]
async fn public_comment_is_stored_as_the_rep_and_fires_a_signed_event() {
    let (sf, client, case_id) = org_with_case().await;
    let mut hook = receiver(vec![]).await;
    sf.set_case_webhook(Some(hmac_hook(&hook.url))).unwrap();

    let id = comment(&sf, &case_id, "Your printer ships today.", true).await;
    assert!(id.starts_with("00a") && id.len() == 18, "{id}");

    let r = client
        .query(&format!("SELECT CommentBody, IsPublished, CreatedById, CreatedBy.Name FROM CaseComment WHERE Id = '{id}'"))
        .await;
    let row = &r.body["records"][0];
    assert_eq!(row["CommentBody"], "Your printer ships today.");
    assert_eq!(row["IsPublished"], true);
    assert_eq!(row["CreatedBy"]["Name"], "Rita Rep");
    let rep_id = row["CreatedById"].as_str().unwrap();
    assert!(rep_id.starts_with("005"));
    let integration = client
        .query("SELECT Id FROM User WHERE Username = 'integration@handoff.local'")
        .await;
    let integration_id = integration.body["records"][0]["Id"].as_str().unwrap();
    assert_ne!(rep_id, integration_id);

    let got = hook.next().await;
    assert_hmac(&got);
    assert!(got.headers.get("authorization").is_none());
    let event: Value = serde_json::from_str(&got.body).unwrap();
    let case = client
        .get(&format!("{V}/sobjects/Case/{case_id}"))
        .await
        .body;
    assert_eq!(
        event,
        json!({
            "eventId": id,
            "type": "case_comment.created",
            "orgId": "00D5g000004Hnd0EAC",
            "caseId": case_id,
            "caseNumber": case["CaseNumber"],
            "occurredAt": event["occurredAt"],
            "author": {"id": rep_id, "name": "Rita Rep"},
            "body": {"text": "Your printer ships today.", "html": null},
            "isPublic": true,
        })
    );
    let at = event["occurredAt"].as_str().unwrap();
    assert!(at.ends_with('Z') && at.len() == 24, "{at}");
    let deliveries = deliveries(&sf, 1).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].event_id, id);
    assert_eq!(deliveries[0].status, Some(202));
    assert_eq!(deliveries[0].error, None);
    sf.shutdown().await;
}

#[tokio::test]
async fn outbound_email_is_stored_sent_and_fires_with_html() {
    let (sf, client, case_id) = org_with_case().await;
    let mut hook = receiver(vec![]).await;
    sf.set_case_webhook(Some(hmac_hook(&hook.url))).unwrap();
    // A 15-character case id works too.
    let r = post(
        &sf,
        &format!("/__emulator/cases/{}/emails", &case_id[..15]),
        json!({"text": "Hello Ann", "html": "<p>Hello Ann</p>"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap();
    assert!(id.starts_with("02s"));
    let rows = client
        .query(&format!("SELECT Incoming, Status, ToAddress, ParentId, TextBody, HtmlBody, Subject, CreatedBy.Name FROM EmailMessage WHERE Id = '{id}'"))
        .await;
    let row = &rows.body["records"][0];
    assert_eq!(row["Incoming"], false);
    assert_eq!(row["Status"], "3");
    assert_eq!(row["ToAddress"], "ann@example.com");
    assert_eq!(row["ParentId"], case_id.as_str());
    assert_eq!(row["Subject"], "Re: Printer broken");
    assert_eq!(row["CreatedBy"]["Name"], "Rep");

    let got = hook.next().await;
    assert_hmac(&got);
    let event: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(event["type"], "email_message.sent");
    assert_eq!(event["eventId"], id);
    assert_eq!(
        event["body"],
        json!({"text": "Hello Ann", "html": "<p>Hello Ann</p>"})
    );
    assert_eq!(event["isPublic"], true);
    assert_eq!(event["author"]["name"], "Rep");
    sf.shutdown().await;
}

#[tokio::test]
async fn jwt_webhook_verifies_against_the_served_certificate() {
    let (sf, _client, case_id) = org_with_case().await;
    let mut hook = receiver(vec![]).await;
    let r = read(
        reqwest::Client::new()
            .put(format!("{}/__emulator/case-webhook", sf.url()))
            .json(&json!({"url": hook.url, "jwt": {"issuer": "00D5g000004Hnd0EAC", "audience": "https://gateway.test"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["hmac_secret_set"], false);
    let pem = reqwest::get(format!("{}/__emulator/case-webhook/certificate", sf.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert_eq!(pem, sf.case_webhook_certificate_pem().unwrap());

    let id = comment(&sf, &case_id, "Signed by a Named Credential", true).await;
    let got = hook.next().await;
    assert!(got.headers.get("x-handoff-signature").is_none());
    let token = got.headers["authorization"]
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    let key = sf_emulator::decoding_key(&pem).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&["00D5g000004Hnd0EAC"]);
    validation.set_audience(&["https://gateway.test"]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    let event: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(event["eventId"], id.as_str());
    sf.shutdown().await;
}

#[tokio::test]
async fn internal_and_api_comments_fire_nothing() {
    let (sf, client, case_id) = org_with_case().await;
    let mut hook = receiver(vec![]).await;
    sf.set_case_webhook(Some(hmac_hook(&hook.url))).unwrap();
    // An internal comment from a rep, and a public one the integration user writes via REST.
    let internal = comment(&sf, &case_id, "Customer seems upset", false).await;
    client
        .create(
            "CaseComment",
            json!({"ParentId": case_id, "CommentBody": "Written by Handoff", "IsPublished": true}),
        )
        .await;
    // Events go out in commit order, so the first one the webhook sees is the public rep reply.
    let public = comment(&sf, &case_id, "Public answer", true).await;
    let got = hook.next().await;
    let event: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(event["eventId"], public.as_str());
    let ids: Vec<String> = deliveries(&sf, 1)
        .await
        .into_iter()
        .map(|d| d.event_id)
        .collect();
    assert_eq!(ids, vec![public]);
    let r = client
        .query(&format!(
            "SELECT IsPublished FROM CaseComment WHERE Id = '{internal}'"
        ))
        .await;
    assert_eq!(r.body["records"][0]["IsPublished"], false);
    sf.shutdown().await;
}

#[tokio::test]
async fn no_webhook_configured_posts_nothing_and_records_nothing() {
    let (sf, _client, case_id) = org_with_case().await;
    comment(&sf, &case_id, "Nobody listens", true).await;
    // Configured afterwards: only the later comment is posted (events leave in commit order).
    let mut hook = receiver(vec![]).await;
    sf.set_case_webhook(Some(hmac_hook(&hook.url))).unwrap();
    let later = comment(&sf, &case_id, "Now someone does", true).await;
    let event: Value = serde_json::from_str(&hook.next().await.body).unwrap();
    assert_eq!(event["eventId"], later.as_str());
    let d = deliveries(&sf, 1).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].event_id, later);
    sf.shutdown().await;
}

#[tokio::test]
async fn unknown_case_bad_input_and_too_long_body_are_refused() {
    let (sf, client, case_id) = org_with_case().await;
    let mut hook = receiver(vec![]).await;
    sf.set_case_webhook(Some(hmac_hook(&hook.url))).unwrap();
    for path in ["5005g000000zzzzAAA", "500nothing", "..%2Fx"] {
        let r = post(
            &sf,
            &format!("/__emulator/cases/{path}/comments"),
            json!({"text": "x", "public": true}),
        )
        .await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains("No Case"));
    }
    let r = post(
        &sf,
        "/__emulator/cases/5005g000000zzzzAAA/emails",
        json!({"text": "x"}),
    )
    .await;
    assert_eq!(r.status, 404);

    let path = format!("/__emulator/cases/{case_id}/comments");
    let cases = [
        (json!({"public": true}), "text is required"),
        (json!({"text": "  ", "public": true}), "text is required"),
        (json!({"text": "x"}), "public is required"),
        (json!({"text": "x", "public": "yes"}), "invalid type"),
        (
            json!({"text": "x", "public": true, "is_public": true}),
            "unknown field",
        ),
        (
            json!({"text": "x", "public": true, "rep_name": "a".repeat(122)}),
            "rep_name",
        ),
    ];
    for (body, why) in cases {
        let r = post(&sf, &path, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(
            r.body["message"].as_str().unwrap().contains(why),
            "{body}: {}",
            r.body
        );
    }
    // 4,000 bytes is the limit: 1,334 three-byte characters are 4,002 bytes.
    let r = post(
        &sf,
        &path,
        json!({"text": "€".repeat(1334), "public": true}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.code(), "STRING_TOO_LONG");
    assert!(
        r.message().starts_with("Body: data value too large"),
        "{}",
        r.message()
    );
    let r = post(
        &sf,
        &path,
        json!({"text": "€".repeat(1333), "public": true}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Only the accepted comment exists, and only it fired.
    let rows = client.query("SELECT Id FROM CaseComment").await;
    assert_eq!(rows.body["totalSize"], 1);
    let got = hook.next().await;
    let event: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(event["eventId"], r.body["id"]);
    assert_eq!(deliveries(&sf, 1).await.len(), 1);
    sf.shutdown().await;
}

#[tokio::test]
async fn failed_callout_is_recorded_and_not_retried() {
    let (sf, _client, case_id) = org_with_case().await;
    let mut hook = receiver(vec![500]).await;
    sf.set_case_webhook(Some(hmac_hook(&hook.url))).unwrap();
    let first = comment(&sf, &case_id, "first", true).await;
    let second = comment(&sf, &case_id, "second", true).await;
    let a: Value = serde_json::from_str(&hook.next().await.body).unwrap();
    let b: Value = serde_json::from_str(&hook.next().await.body).unwrap();
    // The failed event is not posted again: the next request is the next event.
    assert_eq!(a["eventId"], first.as_str());
    assert_eq!(b["eventId"], second.as_str());
    let d = deliveries(&sf, 2).await;
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0].status, d[0].error.as_deref()),
        (Some(500), Some("HTTP 500 Internal Server Error"))
    );
    assert_eq!((d[1].status, d[1].error.as_deref()), (Some(202), None));

    // An unreachable webhook: recorded as a transport failure, over HTTP too.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "http://{}/salesforce/events",
        listener.local_addr().unwrap()
    );
    drop(listener);
    sf.set_case_webhook(Some(hmac_hook(&dead))).unwrap();
    let third = comment(&sf, &case_id, "third", true).await;
    // Back to the live receiver: the next request it sees is the fourth event, never the third.
    deliveries(&sf, 3).await;
    let list = reqwest::get(format!("{}/__emulator/case-webhook/deliveries", sf.url()))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let last = &list["deliveries"][2];
    assert_eq!(last["event_id"], third.as_str());
    assert_eq!(last["status"], Value::Null);
    let error = last["error"].as_str().unwrap();
    assert!(error.starts_with("callout failed"), "{last}");
    sf.set_case_webhook(Some(hmac_hook(&hook.url))).unwrap();
    let fourth = comment(&sf, &case_id, "fourth", true).await;
    let c: Value = serde_json::from_str(&hook.next().await.body).unwrap();
    assert_eq!(c["eventId"], fourth.as_str());
    sf.shutdown().await;
}

#[tokio::test]
async fn webhook_config_is_validated_and_can_be_cleared() {
    let sf = spawn(EmulatorConfig::default()).await;
    let http = reqwest::Client::new();
    let put = |body: Value| {
        let http = http.clone();
        let url = format!("{}/__emulator/case-webhook", sf.url());
        async move { read(http.put(url).json(&body).send().await.unwrap()).await }
    };
    for (body, why) in [
        (json!({"url": "ftp://x"}), "must start with http"),
        (
            json!({"url": "http://x", "timeout_secs": 0}),
            "timeout_secs",
        ),
        (
            json!({"url": "http://x", "hmac_secret": ""}),
            "hmac_secret is empty",
        ),
        (
            json!({"url": "http://x", "jwt": {"issuer": "", "audience": "a"}}),
            "issuer",
        ),
        (json!({"hmac_secret": "s"}), "missing field `url`"),
    ] {
        let r = put(body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(
            r.body["message"].as_str().unwrap().contains(why),
            "{body}: {}",
            r.body
        );
    }
    let r = put(json!({"url": "http://127.0.0.1:9/salesforce/events", "hmac_secret": "s"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["hmac_secret_set"], true);
    assert!(
        !r.body.to_string().contains("\"s\""),
        "the secret is never echoed"
    );
    let r = put(Value::Null).await;
    assert_eq!((r.status, r.body.clone()), (200, Value::Null));
    let got = read(
        http.get(format!("{}/__emulator/case-webhook", sf.url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.body, Value::Null);
    let bad = CaseWebhookConfig {
        jwt: Some(CaseWebhookJwt {
            issuer: "i".into(),
            audience: String::new(),
        }),
        ..hmac_hook("http://127.0.0.1:9/")
    };
    assert!(sf.set_case_webhook(Some(bad)).is_err());
    sf.shutdown().await;
}

/// The poller's query, exactly as contract §4 writes it.
fn poll_query(watermark: &str) -> String {
    format!(
        "SELECT Id, CaseNumber, \
         (SELECT Id, CommentBody, IsPublished, CreatedById, CreatedBy.Name, CreatedDate, SystemModstamp \
          FROM CaseComments WHERE IsPublished = true AND SystemModstamp >= {watermark} ORDER BY SystemModstamp), \
         (SELECT Id, TextBody, HtmlBody, Subject, CreatedById, CreatedBy.Name, CreatedDate, SystemModstamp \
          FROM EmailMessages WHERE Incoming = false AND SystemModstamp >= {watermark} ORDER BY SystemModstamp) \
         FROM Case WHERE Case_From__c = 'opencx' AND IsClosed = false"
    )
}

#[tokio::test]
async fn the_poll_query_finds_public_rep_output_on_open_cases() {
    let (sf, client, case_id) = org_with_case().await;
    let other = client
        .create(
            "Case",
            json!({"Subject": "Not ours", "SuppliedEmail": "bob@example.com"}),
        )
        .await;
    let closed = client
        .create(
            "Case",
            json!({"Subject": "Done", "SuppliedEmail": "cy@example.com", "Case_From__c": "opencx"}),
        )
        .await;
    comment(&sf, &closed, "on a closed case", true).await;
    let r = client
        .call(
            "PATCH",
            &format!("{V}/sobjects/Case/{closed}"),
            Some(json!({"Status": "Closed"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    comment(&sf, &other, "on someone else's case", true).await;

    comment(&sf, &case_id, "internal note", false).await;
    let c1 = comment(&sf, &case_id, "first public", true).await;
    let e1 = post(
        &sf,
        &format!("/__emulator/cases/{case_id}/emails"),
        json!({"text": "mail", "rep_name": "Rita Rep"}),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    client
        .create(
            "EmailMessage",
            json!({"ParentId": case_id, "Incoming": true, "TextBody": "from the customer", "Status": "0"}),
        )
        .await;
    let c2 = comment(&sf, &case_id, "second public", true).await;

    let r = client.query(&poll_query("2000-01-01T00:00:00Z")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalSize"], 1, "{}", r.body);
    let case = &r.body["records"][0];
    assert_eq!(case["Id"], case_id.as_str());
    let comments = &case["CaseComments"];
    assert_eq!(comments["totalSize"], 2, "{comments}");
    let ids: Vec<&str> = comments["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![c1.as_str(), c2.as_str()],
        "ordered by SystemModstamp, then insertion"
    );
    let first = &comments["records"][0];
    assert_eq!(first["CreatedBy"]["Name"], "Rita Rep");
    assert_eq!(first["IsPublished"], true);
    assert!(first["SystemModstamp"].as_str().unwrap().ends_with("+0000"));
    let emails = &case["EmailMessages"];
    assert_eq!(emails["totalSize"], 1, "{emails}");
    assert_eq!(emails["records"][0]["Id"], e1.as_str());
    assert_eq!(emails["records"][0]["CreatedBy"]["Name"], "Rita Rep");
    assert_eq!(emails["records"][0]["HtmlBody"], Value::Null);

    // A watermark after the last write: the Case is still listed, with no children.
    let r = client.query(&poll_query("2999-01-01T00:00:00.000Z")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let case = &r.body["records"][0];
    assert_eq!(case["CaseComments"], Value::Null, "{case}");
    assert_eq!(case["EmailMessages"], Value::Null, "{case}");
    sf.shutdown().await;
}

async fn rep_cli(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_sf-emulator"))
            .arg("rep")
            .arg("--url")
            .arg(url)
            .args(args)
            .output(),
    )
    .await
    .expect("hang guard")
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_rep_cli_comments_and_emails_on_a_case() {
    let (sf, client, case_id) = org_with_case().await;
    let url = sf.url();
    let (ok, out, err) = rep_cli(&url, &["comment", &case_id, "Public from the CLI"]).await;
    assert!(ok, "{err}");
    let public = out.trim().strip_prefix("sent ").unwrap().to_string();
    let (ok, out, err) = rep_cli(
        &url,
        &[
            "comment",
            &case_id,
            "Internal note",
            "--internal",
            "--name",
            "Ida",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let internal = out.trim().strip_prefix("sent ").unwrap().to_string();
    let (ok, out, err) = rep_cli(&url, &["email", &case_id, "Mail", "--html", "<b>Mail</b>"]).await;
    assert!(ok, "{err}");
    let email = out.trim().strip_prefix("sent ").unwrap().to_string();

    let r = client
        .query(&format!(
            "SELECT Id, IsPublished, CreatedBy.Name FROM CaseComment WHERE ParentId = '{case_id}' ORDER BY CreatedDate"
        ))
        .await;
    let rows = r.body["records"].as_array().unwrap();
    assert_eq!(rows[0]["Id"], public.as_str());
    assert_eq!(rows[0]["IsPublished"], true);
    assert_eq!(rows[1]["Id"], internal.as_str());
    assert_eq!(rows[1]["IsPublished"], false);
    assert_eq!(rows[1]["CreatedBy"]["Name"], "Ida");
    let r = client
        .query(&format!(
            "SELECT HtmlBody FROM EmailMessage WHERE Id = '{email}'"
        ))
        .await;
    assert_eq!(r.body["records"][0]["HtmlBody"], "<b>Mail</b>");

    // Refusals carry the emulator's message: the console's and Salesforce's.
    let (ok, _, err) = rep_cli(&url, &["comment", "5005g000000zzzzAAA", "x"]).await;
    assert!(!ok);
    assert!(err.contains("404") && err.contains("No Case"), "{err}");
    let long = "x".repeat(4001);
    let (ok, _, err) = rep_cli(&url, &["comment", &case_id, &long]).await;
    assert!(!ok);
    assert!(err.contains("Body: data value too large"), "{err}");
    sf.shutdown().await;
}
