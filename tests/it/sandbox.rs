//! `handoff serve --sandbox`: the gateway with the emulator in-process.

use std::time::Duration;

use gateway::Application;
use gateway::config::Config;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::{escalation, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_answers_how_to_reach_the_emulator() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build_sandbox(Config::defaults(), listener, true)
        .await
        .unwrap();
    let running = app.spawn().unwrap();
    let http = reqwest::Client::new();
    let info: Value = http
        .get(format!("{}/v1/sandbox", running.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = info["api_token"].as_str().unwrap().to_string();
    // A chat signing secret is handed out too (design §7.1), and it is a usable one.
    let secret = info["webhook_secret"].as_str().expect("webhook_secret");
    channels::webhook::WebhookSecret::parse(&secret.to_owned().into()).expect("a whsec_ secret");

    // Drive the gateway with the token…
    let id = unique("sbx");
    let status = http
        .post(format!("{}/v1/escalations", running.url()))
        .bearer_auth(&token)
        .json(&escalation(&id, 3))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
    let driver = gateway::demo::Driver::new(running.url(), token).unwrap();
    let session = driver
        .wait_escalated(&id, Duration::from_secs(30))
        .await
        .unwrap();

    // …and query the emulator as a connected app would: client credentials, then SOQL.
    let sf_url = info["salesforce_url"].as_str().unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", info["client_id"].as_str().unwrap()),
        ("client_secret", info["client_secret"].as_str().unwrap()),
    ];
    let tok: Value = http
        .post(format!("{sf_url}/services/oauth2/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tok["access_token"].as_str().unwrap();
    let q: Value = http
        .get(format!("{sf_url}/services/data/v66.0/query"))
        .query(&[(
            "q",
            format!("SELECT Id, Case_From__c FROM Case WHERE Handoff_Session_Id__c = '{id}'"),
        )])
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(q["totalSize"], 1, "{q}");
    assert_eq!(
        q["records"][0]["Id"].as_str(),
        session.salesforce_case_id.as_deref()
    );
    running.stop().await;
}

/// The sandbox runs the SMS and WhatsApp provider emulators with the channels pointed at them,
/// and `GET /v1/sandbox` says how to reach them: what it hands out signs webhooks the gateway
/// accepts and authenticates against the emulators' APIs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_runs_and_hands_out_the_sms_and_whatsapp_emulators() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build_sandbox(Config::defaults(), listener, true)
        .await
        .unwrap();
    let running = app.spawn().unwrap();
    let http = reqwest::Client::new();
    let info: Value = http
        .get(format!("{}/v1/sandbox", running.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = info["api_token"].as_str().unwrap();

    // A customer texts the sandbox's number: the emulator signs it for the sandbox's public
    // URL, and the gateway verifies and records it (no session: unmatched).
    let twilio = &info["twilio_emulator"];
    let twilio_url = twilio["url"].as_str().expect("twilio_emulator.url");
    let number = twilio["number"].as_str().unwrap();
    let texted: Value = http
        .post(format!("{twilio_url}/__emulator/twilio/inbound"))
        .json(&json!({"from": "+14155550123", "to": number, "body": "Hello?"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(texted["status"], 200, "{texted}");
    let recorded: Value = http
        .get(format!(
            "{}/v1/inbound-messages/sms:{}",
            running.url(),
            texted["sid"].as_str().unwrap()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recorded["state"], "unmatched", "{recorded}");
    // The handed-out credentials are the API's.
    let account = twilio["account_sid"].as_str().unwrap();
    let sent = http
        .post(format!(
            "{twilio_url}/2010-04-01/Accounts/{account}/Messages.json"
        ))
        .basic_auth(account, twilio["auth_token"].as_str())
        .form(&[("To", "+14155550123"), ("From", number), ("Body", "Hi")])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);

    // WhatsApp: the handshake with the verify token, and a customer's message.
    let whatsapp = &info["whatsapp_emulator"];
    let wa_url = whatsapp["url"].as_str().expect("whatsapp_emulator.url");
    let verified: Value = http
        .post(format!("{wa_url}/__emulator/whatsapp/verify"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verified["echoed"], true, "{verified}");
    let written: Value = http
        .post(format!("{wa_url}/__emulator/whatsapp/inbound"))
        .json(&json!({"from": "14155550123", "text": "Hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(written["status"], 200, "{written}");
    let sent = http
        .post(format!(
            "{wa_url}/v21.0/{}/messages",
            whatsapp["phone_number_id"].as_str().unwrap()
        ))
        .bearer_auth(whatsapp["access_token"].as_str().unwrap())
        .json(&json!({"messaging_product": "whatsapp", "to": "14155550123", "type": "text", "text": {"body": "Hello"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    running.stop().await;
}

/// A `[channels.sms]` that names a Twilio account of its own keeps it: the sandbox starts no
/// Twilio emulator for it (WhatsApp, unconfigured, still gets one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_leaves_a_configured_sms_account_alone() {
    let mut config = Config::defaults();
    let sms: channels::ChannelConfig = serde_json::from_value(json!({
        "type": "sms",
        "account_sid": "AC00000000000000000000000000000001",
        "auth_token": "an-account-of-its-own",
        "from": "+15550109999",
        "api_url": "https://api.twilio.example",
    }))
    .unwrap();
    config.channels.insert("sms".into(), sms);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build_sandbox(config, listener, true)
        .await
        .unwrap();
    let info = app.sandbox().unwrap();
    assert!(info.twilio_emulator.is_none());
    assert!(info.whatsapp_emulator.is_some());
    assert!(app.channel_emulators().twilio.is_none());
    let Some(channels::ChannelConfig::Sms(sms)) = app.state().config.channels.get("sms") else {
        panic!("an sms table");
    };
    assert_eq!(sms.api_url, "https://api.twilio.example");
    assert_eq!(sms.from.as_deref(), Some("+15550109999"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_endpoint_is_absent_outside_sandbox_mode() {
    let app = handoff_tests::spawn_app(handoff_tests::Db::Sqlite).await;
    let (status, body) = app.get("/v1/sandbox", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
}

/// Defect 9. `GET /v1/sandbox` hands an every-scope token to whoever asks,
/// without authentication, and the Docker image listened on 0.0.0.0: a sandbox
/// started there gave admin access to the network. Sandbox mode now refuses a
/// listener that is not loopback unless `sandbox.allow_remote` is set
/// (`--sandbox-allow-remote`), and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_refuses_a_non_loopback_address_unless_allowed() {
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let refused = Application::build_sandbox(Config::defaults(), listener, true).await;
    let message = refused.err().expect("refused").to_string();
    assert!(message.contains("0.0.0.0"), "{message}");
    assert!(message.contains("--sandbox-allow-remote"), "{message}");
    assert!(message.contains("127.0.0.1"), "{message}");

    let mut config = Config::defaults();
    config.sandbox.allow_remote = true;
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let app = Application::build_sandbox(config, listener, true)
        .await
        .expect("allowed explicitly");
    app.spawn().unwrap().stop().await;
}

/// Defect 9, the database. With HANDOFF_DATABASE_URL set, the sandbox minted its
/// every-scope token into that (real) database, where it outlived the sandbox
/// as a working admin credential. The sandbox now only runs on its scratch
/// database; asked for another, it refuses and says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_refuses_to_mint_tokens_into_a_configured_database() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = Application::build_sandbox(Config::defaults(), listener, false).await;
    let message = refused.err().expect("refused").to_string();
    assert!(message.contains("unset HANDOFF_DATABASE_URL"), "{message}");
}
