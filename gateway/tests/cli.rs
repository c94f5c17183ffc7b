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
