//! `handoff serve --sandbox`: the gateway with the emulator in-process.

use std::time::Duration;

use gateway::Application;
use gateway::config::Config;
use serde_json::Value;
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
