//! The demo's SMS and WhatsApp conversations: each escalated live through the sandbox's
//! provider emulators. The demo plays the rep at the MIAW console and the customer's phone
//! at the emulator, which texts back through the gateway's signed inbound webhook.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use channel_emulator::twilio::TwilioEmulator;
use channel_emulator::whatsapp::WhatsappEmulator;
use serde_json::json;

use super::{Driver, RepConsole};
use crate::sandbox_channels::SMS_NUMBER;

/// What one phone conversation of the demo showed.
#[derive(Debug, Clone)]
pub struct PhoneReport {
    /// `sms` or `whatsapp`.
    pub channel: String,
    pub session_id: String,
    /// `messaging` when it went live.
    pub route: String,
    /// The customer's number (E.164).
    pub customer: String,
    /// What the rep wrote at the console, in order.
    pub rep_wrote: Vec<String>,
    /// What the customer texted back (through the signed webhook).
    pub customer_wrote: String,
    /// The webhook's HTTP status.
    pub webhook_status: u16,
    /// Every message the customer's phone received from the provider, in order, with the
    /// provider status Handoff recorded for it from the provider's reports.
    pub phone_received: Vec<(String, Option<String>)>,
    /// The conversation in the rep console: (role, text) of each message entry.
    pub rep_saw: Vec<(String, String)>,
}

/// The provider side of the customer's phone.
#[derive(Clone, Copy)]
pub(super) enum Provider<'a> {
    Sms(&'a TwilioEmulator),
    Whatsapp(&'a WhatsappEmulator),
}

impl Provider<'_> {
    fn channel(self) -> &'static str {
        match self {
            Provider::Sms(_) => "sms",
            Provider::Whatsapp(_) => "whatsapp",
        }
    }

    fn article(self) -> &'static str {
        match self {
            Provider::Sms(_) => "an",
            Provider::Whatsapp(_) => "a",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Provider::Sms(_) => "SMS",
            Provider::Whatsapp(_) => "WhatsApp",
        }
    }

    /// What `customer` (E.164) has received, oldest first: (the provider's message id, text).
    fn received(self, customer: &str) -> Vec<(String, String)> {
        match self {
            Provider::Sms(twilio) => twilio
                .sent()
                .into_iter()
                .filter(|m| m.to == customer)
                .map(|m| (m.sid, m.body))
                .collect(),
            Provider::Whatsapp(wa) => {
                let wa_id = customer.trim_start_matches('+');
                wa.sent()
                    .into_iter()
                    .filter(|m| m.wa_id == wa_id)
                    .map(|m| {
                        let text = match (m.text, m.template) {
                            (Some(text), _) => text,
                            (None, Some(template)) => format!("[template {template}]"),
                            (None, None) => format!("[{}]", m.message_type),
                        };
                        (m.id, text)
                    })
                    .collect()
            }
        }
    }

    /// The customer texts `text`: the emulator posts it, signed, to the gateway.
    async fn customer_writes(self, customer: &str, text: &str) -> anyhow::Result<u16> {
        let result = match self {
            Provider::Sms(twilio) => twilio.inbound(customer, SMS_NUMBER, text, &[]).await,
            Provider::Whatsapp(wa) => {
                wa.inbound_text(customer.trim_start_matches('+'), text)
                    .await
            }
        };
        Ok(result
            .with_context(|| format!("the {} emulator could not post", self.label()))?
            .status)
    }

    /// Waits until `customer` has received a message containing `text`.
    async fn wait_received(self, customer: &str, text: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .received(customer)
            .iter()
            .any(|(_, m)| m.contains(text))
        {
            if Instant::now() > deadline {
                bail!(
                    "the customer's {} phone did not receive the rep's message within 30 s",
                    self.label()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

/// One phone customer of the demo.
struct Customer {
    name: &'static str,
    number: &'static str,
    summary: &'static str,
    turns: [(&'static str, &'static str); 2],
    rep: [&'static str; 2],
    reply: &'static str,
}

fn customer(provider: Provider<'_>) -> Customer {
    match provider {
        Provider::Sms(_) => Customer {
            name: "Sam Rivera",
            number: "+14155550142",
            summary: "Customer's parcel shows delivered but never arrived; the bot cannot open a courier claim.",
            turns: [
                ("customer", "My parcel says delivered but it's not here."),
                (
                    "bot",
                    "I'm sorry! A colleague can open a claim with the courier.",
                ),
            ],
            rep: [
                "Hi Sam, I've opened a claim with the courier for order 2207. Shall I send a replacement meanwhile?",
                "Done: the replacement ships today. Thanks for your patience!",
            ],
            reply: "Yes please, a replacement would be great.",
        },
        Provider::Whatsapp(_) => Customer {
            name: "Lena Vogel",
            number: "+4915123456789",
            summary: "Customer wants to change the delivery address of order 3310 after dispatch.",
            turns: [
                (
                    "customer",
                    "Can I still change the delivery address for order 3310?",
                ),
                (
                    "bot",
                    "It has already left the warehouse; let me get a colleague.",
                ),
            ],
            rep: [
                "Hi Lena, the courier can redirect it. Which address should it go to?",
                "Redirected to Hauptstraße 5, Berlin. You'll get the new tracking link by email.",
            ],
            reply: "Hauptstraße 5, 10827 Berlin, please.",
        },
    }
}

/// Escalates one phone conversation live and plays it through: the rep answers at the
/// console, the customer texts back by signed webhook, the rep answers again and closes.
pub(super) async fn converse(
    driver: &Driver,
    rep: &RepConsole,
    provider: Provider<'_>,
    run: &str,
) -> anyhow::Result<PhoneReport> {
    let c = customer(provider);
    let channel = provider.channel();
    let label = provider.label();
    println!();
    if let Provider::Whatsapp(_) = provider {
        // WhatsApp lets a business write free-form only within 24 hours of the customer's
        // last message: the customer's message to the bot is that one. No session exists
        // yet, so Handoff records it as unmatched.
        let status = provider.customer_writes(c.number, c.turns[0].1).await?;
        if status != 200 {
            bail!("the WhatsApp webhook answered {status} to the customer's first message");
        }
        println!(
            "The customer writes to the shop's WhatsApp number ({status}: no session yet, so Handoff records it unmatched; it opens WhatsApp's 24-hour window)."
        );
    }
    let now = chrono::Utc::now();
    let at = |minutes: i64| (now - chrono::Duration::minutes(minutes)).to_rfc3339();
    let body = json!({
        "session_id": format!("demo-{run}-{channel}"),
        "channel": channel,
        "customer": {"name": c.name, "phone": c.number},
        "priority": "medium",
        "summary": c.summary,
        "transcript": [
            {"role": c.turns[0].0, "text": c.turns[0].1, "at": at(2)},
            {"role": c.turns[1].0, "text": c.turns[1].1, "at": at(1)},
        ],
    });
    let session = driver.escalate(&body).await?;
    let conversation = session
        .salesforce_miaw_session_id
        .clone()
        .with_context(|| format!("the {label} escalation did not go live"))?;
    println!(
        "Escalating {} {label} conversation live ({}, customer {})…",
        provider.article(),
        session.id,
        c.number
    );
    // The rep opens the conversation once the summary and the transcript are in it.
    rep.wait_for(&conversation, |v| {
        v["status"] == "waiting"
            && v["entries"].as_array().is_some_and(|entries| {
                let starts = |prefix: &str| {
                    entries
                        .iter()
                        .any(|e| e["text"].as_str().is_some_and(|t| t.starts_with(prefix)))
                };
                starts("Summary:") && starts("Transcript")
            })
    })
    .await?;
    println!("  The rep accepts and answers; the customer's phone gets it through the provider:");
    rep.act(&conversation, "accept", json!({"rep_name": "Priya Shah"}))
        .await?;
    rep.act(&conversation, "messages", json!({"text": c.rep[0]}))
        .await?;
    provider.wait_received(c.number, c.rep[0]).await?;
    let webhook_status = provider.customer_writes(c.number, c.reply).await?;
    println!(
        "  The customer texts back → POST /channels/{channel}/inbound (signed by the emulator): {webhook_status}"
    );
    rep.wait_for(&conversation, |v| {
        v["entries"].as_array().is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e["role"] == "EndUser" && e["text"] == c.reply)
        })
    })
    .await?;
    rep.act(&conversation, "messages", json!({"text": c.rep[1]}))
        .await?;
    provider.wait_received(c.number, c.rep[1]).await?;
    rep.act(&conversation, "close", json!({})).await?;
    let session = settled(driver, &session.id).await?;

    let phone_received: Vec<(String, Option<String>)> = provider
        .received(c.number)
        .into_iter()
        .map(|(id, text)| {
            let status = session
                .deliveries
                .iter()
                .find(|d| d.provider_id.as_deref() == Some(id.as_str()))
                .and_then(|d| d.provider_status.clone());
            (text, status)
        })
        .collect();
    let console = rep.wait_for(&conversation, |_| true).await?;
    let rep_saw: Vec<(String, String)> = console["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["type"] == "Message")
                .map(|e| {
                    (
                        e["role"].as_str().unwrap_or("?").to_owned(),
                        e["text"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    println!(
        "  What the customer's phone received ({label}, from the emulator's record of API calls):"
    );
    for (text, status) in &phone_received {
        println!(
            "    {:<10} {}",
            status.as_deref().unwrap_or("-"),
            one_line(text)
        );
    }
    println!("  What the rep saw in the console:");
    for (role, text) in &rep_saw {
        println!("    {role:<8} {}", one_line(text));
    }
    println!(
        "  Session {}: route {}, status {}, MessagingSession {}",
        session.id,
        session.route,
        session.status,
        session
            .salesforce_messaging_session_id
            .as_deref()
            .unwrap_or("-")
    );
    Ok(PhoneReport {
        channel: channel.to_owned(),
        session_id: session.id,
        route: session.route,
        customer: c.number.to_owned(),
        rep_wrote: c.rep.iter().map(|s| (*s).to_owned()).collect(),
        customer_wrote: c.reply.to_owned(),
        webhook_status,
        phone_received,
        rep_saw,
    })
}

/// The session once every delivery is sent and the provider has reported on each (the
/// emulator reports `delivered`, `read` on WhatsApp, shortly after each send).
async fn settled(driver: &Driver, id: &str) -> anyhow::Result<crate::http::sessions::SessionView> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let session = driver.session(id).await?;
        let done = session.status == "closed"
            && !session.deliveries.is_empty()
            && session.deliveries.iter().all(|d| {
                d.state == "failed"
                    || matches!(d.provider_status.as_deref(), Some("delivered" | "read"))
            });
        if done {
            return Ok(session);
        }
        if Instant::now() > deadline {
            bail!(
                "session {id} did not close with every message reported delivered within 30 s (status {})",
                session.status
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A message on one line, shortened for the terminal.
fn one_line(text: &str) -> String {
    let flat = text.replace('\n', " ⏎ ");
    if flat.chars().count() > 100 {
        format!("{}…", flat.chars().take(99).collect::<String>())
    } else {
        flat
    }
}
