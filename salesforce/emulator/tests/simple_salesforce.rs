//! A client we did not write: `simple-salesforce` (Python), unmodified, drives the emulator over
//! HTTPS with the generated CA: SOAP login, OAuth, CRUD, upsert, query and query_all paging,
//! describe, limits, updated/deleted (`tests/clients/simple_salesforce_check.py`).
//!
//! Needs `pip install simple-salesforce`. Without it the test prints why it did not run, and
//! fails when `HANDOFF_REQUIRE_CLIENTS=1` (CI sets that).

mod common;

use sf_emulator::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use sf_emulator::config::{DEFAULT_PASSWORD, DEFAULT_SECURITY_TOKEN, DEFAULT_USERNAME};
use sf_emulator::{EmulatorConfig, TlsConfig};

fn client_available() -> Result<(), String> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import simple_salesforce"])
        .output()
        .map_err(|e| format!("python3 cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "simple_salesforce is not importable ({}); pip install simple-salesforce",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[tokio::test]
async fn simple_salesforce_works_unmodified_over_tls() {
    if let Err(why) = client_available() {
        let required = std::env::var("HANDOFF_REQUIRE_CLIENTS").is_ok_and(|v| v == "1");
        assert!(!required, "HANDOFF_REQUIRE_CLIENTS=1 but {why}");
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    // The listener is bound here and handed to the emulator: nothing re-binds the port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = EmulatorConfig {
        tls: Some(TlsConfig::SelfSigned {
            names: Vec::new(),
            ca_out: Some(ca.clone()),
        }),
        public_url: Some(format!("https://localhost:{port}")),
        ..EmulatorConfig::default()
    };
    let sf = sf_emulator::spawn(config, listener).await.unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/simple_salesforce_check.py"
    );
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .env("SF_URL", sf.url())
        .env("SF_USERNAME", DEFAULT_USERNAME)
        .env("SF_PASSWORD", DEFAULT_PASSWORD)
        .env("SF_SECURITY_TOKEN", DEFAULT_SECURITY_TOKEN)
        .env("SF_CLIENT_ID", DEFAULT_CLIENT_ID)
        .env("SF_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "simple-salesforce check failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    sf.shutdown().await;
}
