//! SCRATCH (to be deleted): a rate-limited attempt refunds its attempt, so the next
//! attempt has attempt == 1 and skips reconciliation.
use std::time::{Duration, Instant};

use gateway::Application;
use gateway::config::Config;
use gateway::store::Scope;
use serde_json::{Value, json};
use sf_emulator::Faults;
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_after_composite_duplicates_comments() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emulator = sf_emulator::spawn(sf_emulator::EmulatorConfig::default(), l)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.database_url = format!("sqlite://{}?mode=rwc", dir.path().join("h.db").display());
    config.salesforce.login_url = emulator.url();
    let app = emulator.config().connected_apps[0].clone();
    config.salesforce.credentials = Some(salesforce::Credentials::ClientCredentials {
        client_id: app.client_id,
        client_secret: app.client_secret.into(),
    });
    config.worker.retry_base_ms = 50;
    config.worker.retry_max_ms = 500;
    config.worker.poll_interval_ms = 50;
    config.salesforce.rate_limit_pause_secs = 1;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let application = Application::build(config, listener).await.unwrap();
    let store = application.state().store.clone();
    let token = store
        .create_token("t", &[Scope::Escalate])
        .await
        .unwrap()
        .secret;
    let running = application.spawn().unwrap();
    let url = running.url();

    let turns: Vec<Value> = (0..300)
        .map(|i| {
            json!({"role": if i % 2 == 0 {"customer"} else {"bot"},
            "text": format!("turn {i} {}", "word ".repeat(100)), "at": "2026-11-22T09:00:00Z"})
        })
        .collect();
    let body = json!({"session_id": "rl-1", "channel": "chat", "customer": {"name": "A"},
        "summary": "s", "transcript": turns});
    // The composite (first API call) passes; the collections call after it is refused.
    let used = emulator.stats().api_calls;
    emulator.set_faults(Faults {
        daily_limit: Some(used + 1),
        ..Faults::default()
    });
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/v1/escalations"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let kinds: Vec<String> = store
            .events("rl-1")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        if kinds.iter().any(|k| k == "case.attempt_failed") {
            break;
        }
        assert!(Instant::now() < deadline, "{kinds:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    emulator.set_faults(Faults::default());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = store.session("rl-1").await.unwrap().unwrap();
        if s.status == "escalated" {
            break;
        }
        assert!(Instant::now() < deadline, "not escalated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for e in store.events("rl-1").await.unwrap() {
        eprintln!("{} {}", e.kind, e.data);
    }
    let comments = emulator.records("CaseComment");
    let cases = emulator.records("Case");
    eprintln!("cases={} comments={}", cases.len(), comments.len());
    let expected = gateway::escalation::mapper::pack_comments(
        &serde_json::from_value::<Vec<channels::Turn>>(body["transcript"].clone()).unwrap(),
    );
    assert_eq!(
        comments.len(),
        expected.len(),
        "every transcript part exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_dead_job_duplicates_comments() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emulator = sf_emulator::spawn(sf_emulator::EmulatorConfig::default(), l)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.database_url = format!("sqlite://{}?mode=rwc", dir.path().join("h.db").display());
    config.salesforce.login_url = emulator.url();
    let app = emulator.config().connected_apps[0].clone();
    config.salesforce.credentials = Some(salesforce::Credentials::ClientCredentials {
        client_id: app.client_id,
        client_secret: app.client_secret.into(),
    });
    config.worker.retry_base_ms = 50;
    config.worker.retry_max_ms = 500;
    config.worker.poll_interval_ms = 50;
    config.salesforce.rate_limit_pause_secs = 1;
    config.worker.max_attempts = 1;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let application = Application::build(config, listener).await.unwrap();
    let store = application.state().store.clone();
    let token = store
        .create_token("t", &[Scope::Escalate])
        .await
        .unwrap()
        .secret;
    let running = application.spawn().unwrap();
    let url = running.url();

    let turns: Vec<Value> = (0..300)
        .map(|i| {
            json!({"role": if i % 2 == 0 {"customer"} else {"bot"},
            "text": format!("turn {i} {}", "word ".repeat(100)), "at": "2026-11-22T09:00:00Z"})
        })
        .collect();
    let body = json!({"session_id": "rl-1", "channel": "chat", "customer": {"name": "A"},
        "summary": "s", "transcript": turns});
    // The composite (first API call) passes; the collections call after it is refused.
    let used = emulator.stats().api_calls;
    emulator.set_faults(Faults {
        daily_limit: Some(used + 1),
        ..Faults::default()
    });
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/v1/escalations"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let kinds: Vec<String> = store
            .events("rl-1")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        if kinds.iter().any(|k| k == "case.attempt_failed") {
            break;
        }
        assert!(Instant::now() < deadline, "{kinds:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline2 = Instant::now() + Duration::from_secs(20);
    while store.jobs_in_state("dead").await.unwrap().is_empty() {
        if Instant::now() > deadline2 {
            for e in store.events("rl-1").await.unwrap() { eprintln!("{} {}", e.kind, e.data); }
            for st in ["queued","running","done"] { eprintln!("{st}: {:?}", store.jobs_in_state(st).await.unwrap()); }
            panic!("no dead job");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = store.jobs_in_state("dead").await.unwrap();
    eprintln!("dead job attempts={} max={}", dead[0].attempts, dead[0].max_attempts);
    store.retry_dead_job(dead[0].id).await.unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = store.session("rl-1").await.unwrap().unwrap();
        if s.status == "escalated" {
            break;
        }
        assert!(Instant::now() < deadline, "not escalated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for e in store.events("rl-1").await.unwrap() {
        eprintln!("{} {}", e.kind, e.data);
    }
    let comments = emulator.records("CaseComment");
    let cases = emulator.records("Case");
    eprintln!("cases={} comments={}", cases.len(), comments.len());
    let expected = gateway::escalation::mapper::pack_comments(
        &serde_json::from_value::<Vec<channels::Turn>>(body["transcript"].clone()).unwrap(),
    );
    assert_eq!(
        comments.len(),
        expected.len(),
        "every transcript part exactly once"
    );
}
