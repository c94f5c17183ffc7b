//! `handoff demo --gateway URL`: escalates the demo's conversations into a gateway that is
//! already running (a `handoff serve --sandbox`, or a real one with `--token`), then prints
//! every id each session can be found by and its page in the ops console.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{Driver, demo_conversations};
use crate::http::sessions::SessionView;

/// The SMS customer of the remote demo (a number the sandbox's Twilio emulator accepts).
const SMS_CUSTOMER: &str = "+14155550199";

/// Runs the demo against `gateway`; `token` is an `escalate`+`read` API token, fetched from
/// `GET /v1/sandbox` when absent.
pub async fn run(gateway: &str, token: Option<String>) -> anyhow::Result<()> {
    crate::telemetry::init("warn");
    let base = gateway.trim_end_matches('/').to_string();
    let token = match token {
        Some(token) => token,
        None => sandbox_token(&base).await?,
    };
    let driver = Driver::new(base.clone(), token)?;
    let run_id = uuid::Uuid::now_v7().simple().to_string()[24..].to_string();
    let mut bodies = demo_conversations(&run_id);
    bodies.push(("live SMS", sms_conversation(&run_id)));
    println!("Escalating {} conversations into {base}…", bodies.len());
    let mut sessions = Vec::new();
    for (label, body) in &bodies {
        let session = driver.escalate(body).await?;
        println!("  202 accepted  {label:<18} {}", session.id);
        sessions.push((*label, session.id));
    }
    println!("Waiting for Salesforce…");
    let mut done = Vec::new();
    for (label, id) in &sessions {
        let session = settled(&driver, id).await?;
        done.push((*label, session));
    }
    println!();
    println!("Find each one in the console by any of these ids ({base}/console):");
    for (label, session) in &done {
        println!();
        println!("  {label}: {base}/console/sessions/{}", session.id);
        for (kind, value) in ids(session) {
            println!("    {kind:<22} {value}");
        }
    }
    Ok(())
}

async fn sandbox_token(base: &str) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .get(format!("{base}/v1/sandbox"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| {
            format!("cannot reach {base}; start it with `handoff serve --sandbox` first")
        })?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        bail!(
            "{base} is not a sandbox (GET /v1/sandbox answered 404); pass --token with an escalate+read API token"
        );
    }
    let info: Value = response.error_for_status()?.json().await?;
    info["api_token"]
        .as_str()
        .map(str::to_string)
        .context("GET /v1/sandbox gave no api_token")
}

fn sms_conversation(run: &str) -> Value {
    let now = chrono::Utc::now();
    json!({
        "session_id": format!("demo-{run}-sms"),
        "channel": "sms",
        "customer": {"name": "Sam Rivera", "phone": SMS_CUSTOMER},
        "priority": "medium",
        "summary": "Customer's parcel shows delivered but never arrived; the bot cannot open a courier claim.",
        "transcript": [
            {"role": "customer", "text": "My parcel says delivered but it's not here.", "at": (now - chrono::Duration::minutes(2)).to_rfc3339()},
            {"role": "bot", "text": "I'm sorry! A colleague can open a claim with the courier.", "at": (now - chrono::Duration::minutes(1)).to_rfc3339()},
        ],
    })
}

/// Waits until the session has its Case or its live conversation (and, when live, a
/// delivery with a provider id), up to a minute.
async fn settled(driver: &Driver, id: &str) -> anyhow::Result<SessionView> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let session = driver.session(id).await?;
        let ready = match session.route.as_str() {
            "case" => session.status == "escalated",
            _ => {
                session.salesforce_miaw_session_id.is_some()
                    && session.deliveries.iter().any(|d| d.provider_id.is_some())
            }
        };
        if ready || session.status == "failed" {
            return Ok(session);
        }
        if std::time::Instant::now() > deadline {
            bail!("session {id} is still {} after a minute", session.status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every id the session can be found by, labelled.
fn ids(session: &SessionView) -> Vec<(&'static str, String)> {
    let mut out = vec![("session id", session.id.clone())];
    if let Some(id) = &session.salesforce_case_id {
        out.push(("Case id (18)", id.clone()));
        out.push(("Case id (15)", id.chars().take(15).collect()));
    }
    if let Some(n) = &session.salesforce_case_number {
        out.push(("CaseNumber", n.clone()));
    }
    if let Some(id) = &session.salesforce_miaw_session_id {
        out.push(("MIAW conversation", id.clone()));
    }
    if let Some(id) = &session.salesforce_messaging_session_id {
        out.push(("MessagingSession", id.clone()));
    }
    if let Some(email) = &session.customer.email {
        out.push(("customer email", email.clone()));
    }
    if let Some(phone) = &session.customer.phone {
        out.push(("customer phone", phone.clone()));
    }
    if let Some(id) = session
        .deliveries
        .iter()
        .find_map(|d| d.provider_id.clone())
    {
        out.push(("provider message id", id));
    }
    if session.status == "failed" {
        out.push(("failed", session.last_error.clone().unwrap_or_default()));
    }
    out
}
