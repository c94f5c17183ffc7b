//! An attempt that is not counted against `max_attempts` (postponed by a rate
//! limit, or a dead job retried by an operator) must still make the next attempt
//! reconcile with what it wrote: the worker skips reconciliation only on
//! attempt 1, so a job's attempt number may never go back down. Both tests
//! failed with 66 comments for a 43-part transcript when it did.

use std::time::{Duration, Instant};

use gateway::Application;
use gateway::config::Config;
use gateway::escalation::mapper;
use gateway::store::{Scope, Store};
use serde_json::{Value, json};
use sf_emulator::{EmulatorHandle, Faults};
use tokio::net::TcpListener;

struct Setup {
    emulator: EmulatorHandle,
    store: Store,
    url: String,
    token: String,
    _gateway: gateway::RunningApp,
    _dir: tempfile::TempDir,
}

async fn setup(max_attempts: u32) -> Setup {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emulator = sf_emulator::spawn(sf_emulator::EmulatorConfig::default(), listener)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("handoff.db").display()
    );
    config.salesforce.login_url = emulator.url();
    let app = emulator.config().connected_apps[0].clone();
    config.salesforce.credentials = Some(salesforce::Credentials::ClientCredentials {
        client_id: app.client_id,
        client_secret: app.client_secret.into(),
    });
    config.worker.retry_base_ms = 50;
    config.worker.retry_max_ms = 500;
    config.worker.poll_interval_ms = 50;
    config.worker.max_attempts = max_attempts;
    config.salesforce.rate_limit_pause_secs = 1;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let application = Application::build(config, listener).await.unwrap();
    let store = application.state().store.clone();
    let token = store
        .create_token("test", &[Scope::Escalate])
        .await
        .unwrap()
        .secret;
    let gateway = application.spawn().unwrap();
    Setup {
        emulator,
        store,
        url: gateway.url(),
        token,
        _gateway: gateway,
        _dir: dir,
    }
}

/// 300 long turns: 43 comments, so the composite call carries 23 and an sObject
/// Collections call the other 20.
fn long_escalation(id: &str) -> Value {
    let turns: Vec<Value> = (0..300)
        .map(|i| {
            json!({
                "role": if i % 2 == 0 { "customer" } else { "bot" },
                "text": format!("turn {i} {}", "word ".repeat(100).trim_end()),
                "at": "2026-11-22T09:00:00Z",
            })
        })
        .collect();
    json!({"session_id": id, "channel": "chat", "customer": {"name": "Ann"},
           "summary": "Needs a human.", "transcript": turns})
}

async fn post(s: &Setup, body: &Value) {
    let status = reqwest::Client::new()
        .post(format!("{}/v1/escalations", s.url))
        .bearer_auth(&s.token)
        .json(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
}

async fn poll<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn has_event(store: &Store, id: &str, kind: &str) -> bool {
    store
        .events(id)
        .await
        .unwrap()
        .iter()
        .any(|e| e.kind == kind)
}

/// Waits for the session to be escalated, then checks its Case holds every
/// transcript part exactly once.
async fn assert_transcript_once(s: &Setup, id: &str, body: &Value) {
    poll("escalated", || async {
        s.store.session(id).await.unwrap().unwrap().status == "escalated"
    })
    .await;
    let turns: Vec<channels::Turn> = serde_json::from_value(body["transcript"].clone()).unwrap();
    let expected = mapper::pack_comments(&turns);
    assert!(expected.len() > 23, "the transcript needs two calls");
    assert_eq!(s.emulator.records("Case").len(), 1);
    let mut bodies: Vec<String> = s
        .emulator
        .records("CaseComment")
        .iter()
        .map(|c| c["CommentBody"].as_str().unwrap().to_string())
        .collect();
    bodies.sort_by_key(|b| mapper::parse_comment_header(b).unwrap().0);
    assert_eq!(
        bodies.len(),
        expected.len(),
        "every transcript part exactly once"
    );
    assert_eq!(bodies, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postponed_attempt_that_wrote_is_reconciled() {
    let s = setup(10).await;
    let body = long_escalation("postponed-1");
    // The composite call (the first API call) commits; the Collections call after
    // it meets the daily limit, so the attempt is postponed, not counted.
    let used = s.emulator.stats().api_calls;
    s.emulator.set_faults(Faults {
        daily_limit: Some(used + 1),
        ..Faults::default()
    });
    post(&s, &body).await;
    poll("the rate-limited attempt", || {
        has_event(&s.store, "postponed-1", "case.attempt_failed")
    })
    .await;
    s.emulator.set_faults(Faults::default());
    assert_transcript_once(&s, "postponed-1", &body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_dead_job_reconciles_with_what_it_wrote() {
    let s = setup(1).await;
    let body = long_escalation("replayed-1");
    // The composite commits but its response is lost; with one attempt allowed
    // the job dies, with the Case and 23 comments already in Salesforce.
    s.emulator.set_faults(Faults {
        drop_next: 1,
        ..Faults::default()
    });
    post(&s, &body).await;
    poll("the dead job", || async {
        !s.store.jobs_in_state("dead").await.unwrap().is_empty()
    })
    .await;
    let dead = s.store.jobs_in_state("dead").await.unwrap();
    s.store.retry_dead_job(dead[0].id).await.unwrap().unwrap();
    assert_transcript_once(&s, "replayed-1", &body).await;
}
