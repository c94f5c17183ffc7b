//! `handoff demo`: the whole Case path on embedded defaults — the built-in
//! Salesforce emulator, a scratch SQLite database, real HTTP on loopback — both
//! ways: a rep's public comment on a Case reaches the customer's mailbox (a
//! loopback SMTP receiver) threaded, and the customer's emailed answer lands
//! back on the Case; then a live chat: a MIAW conversation the demo plays the
//! rep in (through the emulator's rep console), every rep message reaching the
//! customer's chat as a signed webhook; then an SMS and a WhatsApp conversation, live
//! through the sandbox's provider emulators (Twilio, WhatsApp Cloud API): the rep's answers
//! reach the customer's phone, and the customer's texts come back through the signed
//! provider webhooks to the rep.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::app::Application;
use crate::config::Config;
use crate::http::sessions::SessionView;
use crate::mailsink::MailSink;

mod phones;
pub mod remote;

pub use phones::PhoneReport;

/// What `handoff demo` showed beyond its printout, for its test.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The SMS and the WhatsApp conversation, in that order.
    pub phones: Vec<PhoneReport>,
}

/// The secret the demo's inbound-mail service signs customer answers with.
const DEMO_INBOUND_SECRET: &str = "demo-inbound-mail-secret-0123456789";

fn demo_email_config(smtp_port: u16) -> anyhow::Result<channels::EmailConfig> {
    Ok(serde_json::from_value(json!({
        "from": "Shop Support <support@shop.example>",
        "reply_to": "support+{token}@shop.example",
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "tls": "plain"},
        "inbound": {"hmac_secret": DEMO_INBOUND_SECRET},
    }))?)
}

/// One webhook the demo's chat receiver got: whether its Standard Webhooks
/// signature checked out, and its JSON body.
type Received = (bool, Value);

/// Stands in for the AI product's chat backend: a loopback endpoint that takes
/// Handoff's webhooks and checks each signature with the sandbox's secret.
async fn spawn_chat_receiver(
    secret: &str,
) -> anyhow::Result<(String, tokio::sync::mpsc::Receiver<Received>)> {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};

    let secret = channels::webhook::WebhookSecret::parse(&secret.to_owned().into())
        .map_err(|e| anyhow::anyhow!("the sandbox's webhook secret: {e}"))?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let handler = move |headers: HeaderMap, body: Bytes| {
        let (secret, tx) = (secret.clone(), tx.clone());
        async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let verified = secret
                .verify(
                    &header("webhook-id"),
                    &header("webhook-timestamp"),
                    &header("webhook-signature"),
                    &body,
                    chrono::Utc::now(),
                )
                .is_ok();
            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let _ = tx.send((verified, json)).await;
            StatusCode::NO_CONTENT
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/chat-webhook", listener.local_addr()?);
    let router = axum::Router::new().route("/chat-webhook", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((url, rx))
}

/// The next webhook of `kind` (earlier ones of other kinds are skipped), within 30 s.
async fn next_webhook(
    webhooks: &mut tokio::sync::mpsc::Receiver<Received>,
    kind: &str,
) -> anyhow::Result<Received> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let received = tokio::time::timeout(left, webhooks.recv())
            .await
            .with_context(|| format!("no {kind} webhook arrived within 30 s"))?
            .context("the chat receiver stopped")?;
        if received.1["type"] == kind {
            return Ok(received);
        }
    }
}

/// The emulator's rep console (`/__emulator/miaw/…`): the demo plays the rep.
struct RepConsole {
    http: reqwest::Client,
    base: String,
}

impl RepConsole {
    fn new(emulator_url: &str) -> anyhow::Result<RepConsole> {
        Ok(RepConsole {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            base: format!("{emulator_url}/__emulator/miaw/conversations"),
        })
    }

    /// Polls the conversation until `ready` holds, up to 30 s.
    async fn wait_for(&self, id: &str, ready: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let response = self.http.get(format!("{}/{id}", self.base)).send().await?;
            if response.status().is_success() {
                let body: Value = response.json().await?;
                if ready(&body) {
                    return Ok(body);
                }
            }
            if Instant::now() > deadline {
                bail!("conversation {id} did not reach the expected state within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn act(&self, id: &str, action: &str, body: Value) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}/{id}/{action}", self.base))
            .json(&body)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "the rep console refused {action}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }
}

/// A chat conversation that goes live; its customer's chat is `webhook_url`.
fn demo_chat(run: &str, webhook_url: &str) -> Value {
    json!({
        "session_id": format!("demo-{run}-chat"),
        "channel": "chat",
        "customer": {"name": "Chidi Okafor", "email": "chidi@example.com"},
        "priority": "medium",
        "summary": "Customer was charged twice for order 1182; the bot cannot issue refunds.",
        "transcript": [
            {"role": "customer", "text": "I was charged twice for order 1182.", "at": "2026-11-22T10:00:00Z"},
            {"role": "bot", "text": "I can see both charges. A colleague can refund one of them.", "at": "2026-11-22T10:01:00Z"},
        ],
        "reply_to": {"webhook_url": webhook_url},
    })
}

/// Talks to a running gateway over HTTP, as an AI product would.
pub struct Driver {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Driver {
    pub fn new(base: String, token: String) -> anyhow::Result<Driver> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build an HTTP client")?;
        Ok(Driver { http, base, token })
    }

    /// `POST /v1/escalations`; expects 202.
    pub async fn escalate(&self, body: &Value) -> anyhow::Result<SessionView> {
        let response = self
            .http
            .post(format!("{}/v1/escalations", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        if status.as_u16() != 202 {
            bail!(
                "escalation answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(response.json().await?)
    }

    pub async fn session(&self, id: &str) -> anyhow::Result<SessionView> {
        let response = self
            .http
            .get(format!("{}/v1/sessions/{id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    pub async fn find(&self, any_id: &str) -> anyhow::Result<Vec<SessionView>> {
        let response: Value = self
            .http
            .get(format!("{}/v1/sessions", self.base))
            .query(&[("id", any_id)])
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(serde_json::from_value(response["sessions"].clone())?)
    }

    /// `POST /v1/sessions/{id}/messages`: the customer writes to the rep; expects 202.
    pub async fn message(&self, id: &str, text: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}/v1/sessions/{id}/messages", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"text": text}))
            .send()
            .await?;
        if response.status().as_u16() != 202 {
            bail!(
                "the message answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Polls until the session has its Case (or failed), up to `timeout`.
    pub async fn wait_escalated(&self, id: &str, timeout: Duration) -> anyhow::Result<SessionView> {
        let deadline = Instant::now() + timeout;
        loop {
            let session = self.session(id).await?;
            match session.status.as_str() {
                "escalated" => return Ok(session),
                "failed" => bail!(
                    "session {id} failed: {}",
                    session.last_error.unwrap_or_default()
                ),
                _ if Instant::now() > deadline => {
                    bail!("session {id} has no Case after {timeout:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// The demo's conversations: short, long, non-English, HTML-only raw email, and
/// a raw multi-message email thread.
pub fn demo_conversations(run: &str) -> Vec<(&'static str, Value)> {
    let t = |minute: u32| format!("2026-11-22T09:{minute:02}:00Z");
    let short = json!({
        "session_id": format!("demo-{run}-short"),
        "channel": "email",
        "customer": {"name": "Ann Example", "email": "ann@example.com"},
        "priority": "high",
        "subject": "Cannot reset my password",
        "summary": "Customer cannot reset her password: the reset email never arrives. Bot checked the address and spam folder; escalating to a human.",
        "transcript": [
            {"role": "customer", "text": "Hi, I asked for a password reset three times and got nothing.", "at": t(0)},
            {"role": "bot", "text": "Sorry about that! Can you confirm the address you use to sign in?", "at": t(1)},
            {"role": "customer", "text": "ann@example.com — and it's not in spam either.", "at": t(2)},
            {"role": "bot", "text": "Thanks. I'm handing this to a colleague who can check the mail logs.", "at": t(3)},
        ]
    });

    let mut long_turns = Vec::new();
    for i in 0..160u32 {
        let (role, text) = if i % 2 == 0 {
            (
                "customer",
                format!(
                    "Order #A-{:04} arrived with item {} missing. I already sent photos of the parcel and the packing slip, and the courier says it was delivered complete. Could you check the warehouse scan for this line?",
                    1000 + i,
                    i / 2 + 1
                ),
            )
        } else {
            (
                "bot",
                format!(
                    "Thanks — I see line {} on the packing slip. Our warehouse scan shows it was picked; I'm recording your photos against the order so the team can open a claim.",
                    i / 2 + 1
                ),
            )
        };
        long_turns.push(json!({"role": role, "text": text, "at": format!("2026-11-22T{:02}:{:02}:00Z", 8 + i / 60, i % 60)}));
    }
    let long = json!({
        "session_id": format!("demo-{run}-long"),
        "channel": "email",
        "customer": {"name": "Bo Builder", "email": "bo@example.org", "phone": "+1 415 555 0100"},
        "subject": "Several items missing from a large order",
        "summary": "Large order delivered with many lines missing; customer sent photos. Needs a warehouse claim across 80 lines.",
        "transcript": long_turns,
    });

    let german = json!({
        "session_id": format!("demo-{run}-de"),
        "channel": "email",
        "language": "de",
        "customer": {"name": "Jürgen Müller", "email": "juergen@example.de"},
        "priority": "medium",
        "subject": "Rückerstattung für doppelte Abbuchung",
        "summary": "Kunde wurde zweimal belastet (2 × 49,90 €) und bittet um Erstattung einer Zahlung.",
        "transcript": [
            {"role": "customer", "text": "Guten Tag, mein Konto wurde zweimal mit 49,90 € belastet.", "at": t(10)},
            {"role": "bot", "text": "Das tut mir leid! Ich sehe zwei Zahlungen vom 21. November.", "at": t(11)},
            {"role": "customer", "text": "Genau. Bitte erstatten Sie eine davon — danke schön!", "at": t(12)},
        ]
    });

    let html_only = format!(
        "From: Chloé Dupont <chloe@example.fr>\r\nTo: support@shop.example\r\nSubject: Colis endommagé\r\nDate: Sun, 22 Nov 2026 09:20:00 +0100\r\nMessage-ID: <m1-{run}@example.fr>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<html><body><p>Bonjour,</p><p>Mon colis est arrivé <b>endommagé</b> et le vase est cassé.</p><p>Pouvez-vous m&#8217;envoyer un remplacement&nbsp;?</p><p>Merci,<br>Chloé</p></body></html>\r\n"
    );
    let html = json!({
        "session_id": format!("demo-{run}-html"),
        "channel": "email",
        "language": "fr",
        "summary": "Le client a reçu un colis endommagé (vase cassé) et demande un remplacement.",
        "raw_email": [html_only],
    });

    let first = format!(
        "From: Dev Patel <dev@example.in>\r\nTo: support@shop.example\r\nSubject: Invoice shows the wrong company name\r\nDate: Sun, 22 Nov 2026 08:00:00 +0000\r\nMessage-ID: <t1-{run}@example.in>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, our invoice INV-2291 shows our old company name. Can you reissue it?\r\n"
    );
    let reply = format!(
        "From: Shop Assistant <support@shop.example>\r\nTo: dev@example.in\r\nSubject: Re: Invoice shows the wrong company name\r\nDate: Sun, 22 Nov 2026 08:01:00 +0000\r\nMessage-ID: <t2-{run}@shop.example>\r\nIn-Reply-To: <t1-{run}@example.in>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nI can help. What is the new legal name?\r\n\r\nOn Sun, 22 Nov 2026 at 08:00, Dev Patel <dev@example.in> wrote:\r\n> Hello, our invoice INV-2291 shows our old company name.\r\n"
    );
    let third = format!(
        "From: Dev Patel <dev@example.in>\r\nTo: support@shop.example\r\nSubject: Re: Invoice shows the wrong company name\r\nDate: Sun, 22 Nov 2026 08:05:00 +0000\r\nMessage-ID: <t3-{run}@example.in>\r\nIn-Reply-To: <t2-{run}@shop.example>\r\nReferences: <t1-{run}@example.in> <t2-{run}@shop.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nIt is Patel Analytics Pvt Ltd. Thanks!\r\n\r\nOn Sun, 22 Nov 2026 at 08:01, Shop Assistant <support@shop.example> wrote:\r\n> I can help. What is the new legal name?\r\n"
    );
    let thread = json!({
        "session_id": format!("demo-{run}-thread"),
        "channel": "email",
        "summary": "Customer needs invoice INV-2291 reissued under the new legal name Patel Analytics Pvt Ltd.",
        "raw_email": [first, reply, third],
    });

    vec![
        ("short transcript", short),
        ("long transcript", long),
        ("non-English", german),
        ("HTML-only email", html),
        ("email thread", thread),
    ]
}

/// `handoff demo`.
pub async fn run() -> anyhow::Result<()> {
    run_with_report().await.map(|_| ())
}

/// `handoff demo`, answering what the phone conversations showed.
pub async fn run_with_report() -> anyhow::Result<DemoReport> {
    crate::telemetry::init("warn");
    let started = Instant::now();
    println!(
        "Starting the built-in Salesforce, SMS and WhatsApp emulators and the gateway on a scratch SQLite database…"
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    // Email goes out through a loopback SMTP receiver standing in for the customer's
    // mailbox; the customer's answers come back signed to /channels/email/inbound.
    let mailbox = MailSink::start().await?;
    let mut config = Config::defaults();
    config.channels.insert(
        "email".into(),
        channels::ChannelConfig::Email(demo_email_config(mailbox.addr().port())?),
    );
    // SMS and WhatsApp escalations go live too (the sandbox points both channels at its
    // provider emulators).
    for channel in ["sms", "whatsapp"] {
        if !config.miaw.channels.iter().any(|c| c == channel) {
            config.miaw.channels.push(channel.into());
        }
    }
    let app = Application::build_sandbox(config, listener, true).await?;
    let info = app.sandbox().cloned().context("sandbox info missing")?;
    let running = app.spawn()?;
    let phones = running.channel_emulators.clone();
    let (Some(twilio), Some(whatsapp)) = (phones.twilio.as_deref(), phones.whatsapp.as_deref())
    else {
        bail!("the sandbox did not start its SMS and WhatsApp emulators");
    };
    println!("  gateway:    {}", running.url());
    println!("  Salesforce: {} (emulator)", info.salesforce_url);
    println!(
        "  SMS:        {} (Twilio emulator, number {})",
        twilio.url(),
        crate::sandbox_channels::SMS_NUMBER
    );
    println!(
        "  WhatsApp:   {} (WhatsApp Cloud API emulator)",
        whatsapp.url()
    );

    let driver = Driver::new(running.url(), info.api_token.clone())?;
    let run_id = uuid::Uuid::now_v7().simple().to_string()[24..].to_string();
    let conversations = demo_conversations(&run_id);
    println!("Escalating {} email conversations…", conversations.len());
    let mut accepted = Vec::new();
    for (label, body) in &conversations {
        let session = driver.escalate(body).await?;
        println!("  202 accepted  {:<18} {}", label, session.id);
        accepted.push((*label, session.id));
    }

    println!("Waiting for each Case in Salesforce…");
    let sf = salesforce::Client::new(salesforce::ClientConfig {
        login_url: info.salesforce_url.clone(),
        api_version: running.state.config.salesforce.api_version.clone(),
        credentials: salesforce::Credentials::ClientCredentials {
            client_id: info.client_id.clone(),
            client_secret: info.client_secret.clone().into(),
        },
        timeout: Duration::from_secs(10),
        max_concurrency: 2,
    })?;
    let mut rows = Vec::new();
    for (label, id) in &accepted {
        let session = driver.wait_escalated(id, Duration::from_secs(60)).await?;
        let case_id = session.salesforce_case_id.clone().context("no Case id")?;
        // Count in Salesforce itself, not in our own bookkeeping.
        let count = sf
            .query(&format!(
                "SELECT COUNT() FROM CaseComment WHERE ParentId = '{case_id}'"
            ))
            .await?
            .total_size;
        println!(
            "  Case {} ready for {}",
            session.salesforce_case_number.as_deref().unwrap_or("?"),
            label
        );
        rows.push((session, count));
    }

    println!();
    println!(
        "{:<24} {:<18} {:<10} {:>8} {:>16}",
        "SESSION", "CASE ID", "CASE #", "COMMENTS", "SALESFORCE CALLS"
    );
    for (session, comments) in &rows {
        println!(
            "{:<24} {:<18} {:<10} {:>8} {:>16}",
            session.id,
            session.salesforce_case_id.as_deref().unwrap_or("-"),
            session.salesforce_case_number.as_deref().unwrap_or("-"),
            comments,
            session.salesforce_calls
        );
    }

    if let Some((session, _)) = rows.iter().find(|(s, _)| s.id.ends_with("-thread")) {
        email_both_ways(&running.url(), &info.salesforce_url, &sf, &mailbox, session).await?;
    }

    // Live messaging: a chat escalation opens a MIAW conversation in the emulator; the demo
    // plays the rep at the emulator's rep console, and the customer's chat (a stand-in
    // receiver) gets every rep message as a signed webhook.
    let secret = info
        .webhook_secret
        .clone()
        .context("the sandbox has no chat webhook secret")?;
    let (webhook_url, mut webhooks) = spawn_chat_receiver(&secret).await?;
    let chat = driver.escalate(&demo_chat(&run_id, &webhook_url)).await?;
    let conversation = chat
        .salesforce_miaw_session_id
        .clone()
        .context("the chat escalation did not go live")?;
    println!();
    println!("Escalating a chat conversation live ({})…", chat.id);
    let rep = RepConsole::new(&info.salesforce_url)?;
    let opened = rep
        .wait_for(&conversation, |c| c["status"] == "waiting")
        .await?;
    println!("  MIAW conversation {conversation} is waiting for a rep; routing attributes:");
    if let Some(attributes) = opened["routing_attributes"].as_object() {
        for (name, value) in attributes {
            println!("    {name} = {}", value.as_str().unwrap_or_default());
        }
    }
    let mut received = Vec::new();
    received.push(next_webhook(&mut webhooks, "system.message").await?);
    received.push(next_webhook(&mut webhooks, "system.message").await?);
    println!("  The rep (at the emulator's console) accepts, writes twice, and closes:");
    rep.act(&conversation, "accept", json!({"rep_name": "Jane Doe"}))
        .await?;
    received.push(next_webhook(&mut webhooks, "agent.joined").await?);
    rep.act(
        &conversation,
        "messages",
        json!({"text": "Hi Chidi, I can see both charges for order 1182."}),
    )
    .await?;
    received.push(next_webhook(&mut webhooks, "agent.message").await?);
    driver
        .message(&chat.id, "Thank you! Can you refund one of them?")
        .await?;
    let answered = rep
        .wait_for(&conversation, |c| {
            c["entries"].as_array().is_some_and(|entries| {
                entries.iter().any(|e| {
                    e["role"] == "EndUser"
                        && e["text"]
                            .as_str()
                            .is_some_and(|t| t.starts_with("Thank you!"))
                })
            })
        })
        .await;
    answered?;
    println!("  The customer answers on their chat; the rep sees it in the console.");
    rep.act(
        &conversation,
        "messages",
        json!({"text": "Done: one charge is refunded. Anything else?"}),
    )
    .await?;
    received.push(next_webhook(&mut webhooks, "agent.message").await?);
    rep.act(&conversation, "close", json!({})).await?;
    received.push(next_webhook(&mut webhooks, "session.closed").await?);
    println!("  What the customer's chat received (each a Standard Webhook):");
    for (verified, body) in &received {
        println!(
            "    {:<15} {:<9} {}{}",
            body["type"].as_str().unwrap_or("?"),
            if *verified { "verified" } else { "BAD SIG" },
            body["data"]["sender_name"]
                .as_str()
                .map(|n| format!("{n}: "))
                .unwrap_or_default(),
            body["data"]["text"].as_str().unwrap_or("")
        );
    }
    if received.iter().any(|(verified, _)| !verified) {
        bail!("a chat webhook's signature did not verify");
    }
    let chat = driver.session(&chat.id).await?;
    println!(
        "  Session {}: route {}, status {}, MessagingSession {}",
        chat.id,
        chat.route,
        chat.status,
        chat.salesforce_messaging_session_id
            .as_deref()
            .unwrap_or("-")
    );

    // SMS and WhatsApp: the same live conversation, the customer on a phone.
    let mut report = DemoReport { phones: Vec::new() };
    for provider in [
        phones::Provider::Sms(twilio),
        phones::Provider::Whatsapp(whatsapp),
    ] {
        report
            .phones
            .push(phones::converse(&driver, &rep, provider, &run_id).await?);
    }

    if let Some((session, _)) = rows.first()
        && let Some(number) = &session.salesforce_case_number
    {
        let found = driver.find(number).await?;
        println!();
        println!(
            "Support ops can find any session by any id: GET /v1/sessions?id={number} → {}",
            found
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "Done in {:.1}s: {} conversations, {} Cases, 1 live chat, 1 live SMS and 1 live WhatsApp conversation with a rep. Try `handoff serve --sandbox` to drive it yourself.",
        started.elapsed().as_secs_f64(),
        rows.len() + 1 + report.phones.len(),
        rows.len()
    );
    running.stop().await;
    Ok(report)
}

/// The rep answers the email thread's Case at the emulator's console; the
/// customer's mailbox gets it threaded; the customer's answer comes back onto
/// the Case; an internal comment stays internal.
async fn email_both_ways(
    gateway: &str,
    emulator: &str,
    sf: &salesforce::Client,
    mailbox: &MailSink,
    session: &SessionView,
) -> anyhow::Result<()> {
    let case_id = session.salesforce_case_id.clone().context("no Case id")?;
    let http = reqwest::Client::new();
    let console = |what: &'static str, body: Value| {
        let http = http.clone();
        let url = format!("{emulator}/__emulator/cases/{case_id}/{what}");
        async move {
            let response = http.post(url).json(&body).send().await?;
            anyhow::ensure!(
                response.status().is_success(),
                "the emulator console refused: {}",
                response.status()
            );
            anyhow::Ok(())
        }
    };
    println!();
    println!(
        "The rep answers Case {} with a public comment (the emulator fires the signed webhook the shipped Apex would)…",
        session.salesforce_case_number.as_deref().unwrap_or("?")
    );
    console(
        "comments",
        json!({"text": "Done: INV-2291 is reissued to Patel Analytics Pvt Ltd. You will find it in your account.", "public": true, "rep_name": "Maya"}),
    )
    .await?;
    let mail = mailbox.wait_for(1, Duration::from_secs(60)).await;
    let Some(reply) = mail.first() else {
        bail!("the rep's reply never reached the customer's mailbox");
    };
    println!("  The customer's mailbox received one email:");
    let header = |name: &str| -> String {
        reply
            .data
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .lines()
            .find(|l| {
                l.len() > name.len()
                    && l[..name.len()].eq_ignore_ascii_case(name)
                    && l.as_bytes()[name.len()] == b':'
            })
            .map(|l| l[name.len() + 1..].trim().to_string())
            .unwrap_or_default()
    };
    for name in [
        "From",
        "To",
        "Subject",
        "In-Reply-To",
        "Reply-To",
        "Message-ID",
    ] {
        println!("    {name:<12} {}", header(name));
    }
    // The customer answers from their mail client: to the Reply-To, in the thread.
    let reply_to = header("Reply-To");
    let address = reply_to
        .rsplit_once('<')
        .map_or(reply_to.as_str(), |(_, a)| a.trim_end_matches('>'));
    let answer = format!(
        "From: Dev Patel <dev@example.in>\r\nTo: {address}\r\nSubject: Re: Invoice shows the wrong company name\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <answer-{}@example.in>\r\nIn-Reply-To: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGot it, thank you Maya!\r\n\r\nOn Sun, 22 Nov 2026, Shop Support wrote:\r\n> Done: INV-2291 is reissued.\r\n",
        uuid::Uuid::new_v4().simple(),
        header("Message-ID"),
    );
    let timestamp = chrono::Utc::now().timestamp();
    let signature = channels::webhook::TimestampedSecret::new(DEMO_INBOUND_SECRET.as_bytes())
        .sign(timestamp, answer.as_bytes());
    let response = http
        .post(format!("{gateway}/channels/email/inbound"))
        .header("content-type", "message/rfc822")
        .header("x-handoff-timestamp", timestamp.to_string())
        .header("x-handoff-signature", signature)
        .body(answer)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    println!(
        "  The customer answers by email → POST /channels/email/inbound: {} {}",
        status.as_u16(),
        body["status"].as_str().unwrap_or("")
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let comments = sf
            .query(&format!(
                "SELECT CommentBody, IsPublished FROM CaseComment WHERE ParentId = '{case_id}'"
            ))
            .await?;
        if let Some(note) = comments.records.iter().find(|c| {
            c["CommentBody"]
                .as_str()
                .is_some_and(|b| b.contains("Got it, thank you Maya!"))
        }) {
            println!(
                "  It is on the Case as an {} comment (quoted history stripped).",
                if note["IsPublished"] == true {
                    "PUBLIC"
                } else {
                    "internal"
                }
            );
            break;
        }
        if Instant::now() > deadline {
            bail!("the customer's answer never reached the Case");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    console(
        "comments",
        json!({"text": "Internal: legal name verified against the registry.", "public": false, "rep_name": "Maya"}),
    )
    .await?;
    println!(
        "  The rep adds an internal comment: it fires no webhook, and the mailbox still holds {} email.",
        mailbox.messages().len()
    );
    Ok(())
}
