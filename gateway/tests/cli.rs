//! The `handoff` binary itself: migrate, tokens, sessions find, and its errors.

use std::process::Command;

use gateway::escalation::request;
use gateway::store::Store;
use serde_json::json;

fn handoff(db_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(args)
        .env("HANDOFF_DATABASE_URL", db_url)
        .env_remove("HANDOFF_CONFIG")
        .output()
        .expect("handoff runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn migrate_tokens_and_find_sessions_by_any_id() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());

    let (ok, stdout, _) = handoff(&url, &["migrate"]);
    assert!(ok);
    assert!(stdout.contains("up to date"));

    let (ok, token, stderr) = handoff(
        &url,
        &["tokens", "create", "--name", "bot", "--scopes", "escalate"],
    );
    assert!(ok, "{stderr}");
    assert!(token.trim().starts_with("hnd_"));
    let (ok, _, stderr) = handoff(
        &url,
        &["tokens", "create", "--name", "bot", "--scopes", "root"],
    );
    assert!(!ok);
    assert!(stderr.contains("unknown scope"), "{stderr}");

    // A session with a Case, written through the store as the worker would.
    let store = Store::open(&url).await.unwrap();
    assert_eq!(
        store
            .token_scopes(token.trim())
            .await
            .unwrap()
            .unwrap()
            .len(),
        1
    );
    let registry = channels::Registry::builtin();
    let body = json!({
        "session_id": "cli-session-1",
        "channel": "email",
        "customer": {"email": "cli@example.com", "phone": "+14155550111"},
        "transcript": [{"role": "customer", "text": "hello", "at": "2026-11-22T09:00:00Z"}],
    });
    let escalation = request::parse(
        &body,
        |kind, input| Ok(registry.get(kind).unwrap().normalize(input).unwrap()),
        |name| Ok(name.parse().unwrap()),
    )
    .unwrap();
    store
        .accept_escalation(&escalation, "case", "create_case", 3, None)
        .await
        .unwrap();
    let case_id = salesforce::SalesforceId::parse("500Hu000020yLuH").unwrap();
    store
        .record_case("cli-session-1", &case_id, Some("00001234"), 1, 1, json!({}))
        .await
        .unwrap();
    drop(store);

    for any in [
        "cli-session-1",
        "500Hu000020yLuHIAU",
        "500Hu000020yLuH",
        "00001234",
        "cli@example.com",
        "+14155550111",
    ] {
        let (ok, stdout, stderr) = handoff(&url, &["sessions", "find", any]);
        assert!(ok, "{stderr}");
        assert!(
            stdout.contains("cli-session-1"),
            "not found by {any}: {stdout}"
        );
        assert!(stdout.contains("500Hu000020yLuHIAU"), "{stdout}");
    }
    let (ok, stdout, _) = handoff(&url, &["sessions", "find", "500Hu000020yLuh"]);
    assert!(ok);
    assert!(
        stdout.contains("No session matches"),
        "15-char ids are case-sensitive: {stdout}"
    );
}

#[test]
fn serve_without_credentials_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let (ok, _, stderr) = handoff(&url, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!ok);
    assert!(
        stderr.contains("salesforce.credentials is not configured"),
        "{stderr}"
    );
    assert!(stderr.contains("--sandbox"), "{stderr}");
}

#[test]
fn a_missing_config_file_is_named() {
    let (ok, _, stderr) = handoff(
        "sqlite::memory:",
        &["--config", "/nonexistent/handoff.toml", "migrate"],
    );
    assert!(!ok);
    assert!(stderr.contains("/nonexistent/handoff.toml"), "{stderr}");
}

/// SIGTERM: stop claiming, finish the job in hand, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_job_in_hand_then_exits() {
    use std::time::{Duration, Instant};

    let emulator = sf_emulator::spawn(
        sf_emulator::EmulatorConfig::default(),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let app = emulator.config().connected_apps[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("term.db").display());
    let (ok, token, _) = handoff(
        &url,
        &["tokens", "create", "--name", "t", "--scopes", "escalate"],
    );
    assert!(ok);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("HANDOFF_DATABASE_URL", &url)
        .env("HANDOFF_SALESFORCE__LOGIN_URL", emulator.url())
        .env(
            "HANDOFF_SALESFORCE__CREDENTIALS__TYPE",
            "client_credentials",
        )
        .env("HANDOFF_SALESFORCE__CREDENTIALS__CLIENT_ID", &app.client_id)
        .env(
            "HANDOFF_SALESFORCE__CREDENTIALS__CLIENT_SECRET",
            &app.client_secret,
        )
        .env_remove("HANDOFF_CONFIG")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Salesforce is slow, so the job is mid-call when SIGTERM arrives.
    emulator.set_faults(sf_emulator::Faults {
        latency_ms: 1_500,
        ..Default::default()
    });
    let http = reqwest::Client::new();
    let body = json!({
        "session_id": "term-1",
        "channel": "email",
        "transcript": [{"role": "customer", "text": "hello", "at": "2026-11-22T09:00:00Z"}],
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sent = http
            .post(format!("http://127.0.0.1:{port}/v1/escalations"))
            .bearer_auth(token.trim())
            .json(&body)
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().as_u16() == 202) {
            break;
        }
        assert!(Instant::now() < deadline, "the gateway never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Wait until the worker is inside the Salesforce call.
    let deadline = Instant::now() + Duration::from_secs(10);
    while emulator.stats().token_requests == 0 {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    // The job in hand finished before the exit: one Case, the session escalated.
    assert_eq!(emulator.records("Case").len(), 1);
    let store = Store::open(&url).await.unwrap();
    assert_eq!(
        store.session("term-1").await.unwrap().unwrap().status,
        "escalated"
    );
    assert_eq!(store.jobs_in_state("done").await.unwrap().len(), 1);
}

#[tokio::test]
async fn jobs_list_and_retry_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("jobs.db").display());
    let store = Store::open(&url).await.unwrap();
    let registry = channels::Registry::builtin();
    let body = json!({
        "session_id": "cli-dead-1",
        "channel": "email",
        "transcript": [{"role": "customer", "text": "hello", "at": "2026-11-22T09:00:00Z"}],
    });
    let escalation = request::parse(
        &body,
        |kind, input| Ok(registry.get(kind).unwrap().normalize(input).unwrap()),
        |name| Ok(name.parse().unwrap()),
    )
    .unwrap();
    store
        .accept_escalation(&escalation, "case", "create_case", 1, None)
        .await
        .unwrap();
    let job = store
        .claim_jobs("cli-worker", 60_000, gateway::jobs::JobClass::Salesforce, 1)
        .await
        .unwrap()
        .remove(0);
    assert!(
        store
            .bury_job(&job, "cli-worker", "INVALID_FIELD [Order_Id__c]")
            .await
            .unwrap()
    );
    drop(store);

    let (ok, stdout, stderr) = handoff(&url, &["jobs", "list"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("cli-dead-1") && stdout.contains("INVALID_FIELD"),
        "{stdout}"
    );
    let (ok, _, stderr) = handoff(&url, &["jobs", "list", "--state", "stuck"]);
    assert!(!ok);
    assert!(stderr.contains("unknown state"), "{stderr}");

    let id = job.id.to_string();
    let (ok, stdout, stderr) = handoff(&url, &["jobs", "retry", &id]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("queued again"), "{stdout}");
    let (ok, stdout, _) = handoff(&url, &["jobs", "list", "--state", "queued"]);
    assert!(ok);
    assert!(stdout.contains("cli-dead-1"), "{stdout}");
    let (ok, _, stderr) = handoff(&url, &["jobs", "retry", &id]);
    assert!(!ok);
    assert!(stderr.contains("only dead jobs can be retried"), "{stderr}");
    let (ok, _, stderr) = handoff(&url, &["jobs", "retry", "424242"]);
    assert!(!ok);
    assert!(stderr.contains("no job 424242"), "{stderr}");
}
