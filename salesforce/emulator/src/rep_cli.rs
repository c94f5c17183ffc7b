//! `sf-emulator rep …`: a rep at the console of a running emulator, over HTTP
//! (`/__emulator/miaw/…` for chats, `/__emulator/cases/…` for replies on Cases).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

/// Act as a rep on a running emulator: MIAW conversations and replies on Cases.
#[derive(Debug, clap::Args)]
pub(crate) struct RepArgs {
    /// The emulator's URL.
    #[arg(long, env = "SF_EMULATOR_URL", default_value = "http://127.0.0.1:7070")]
    url: String,
    /// A CA certificate (PEM) to trust, for an emulator serving HTTPS with its generated CA.
    #[arg(long)]
    ca: Option<PathBuf>,
    #[command(subcommand)]
    action: RepAction,
}

#[derive(Debug, Subcommand)]
enum RepAction {
    /// List the conversations.
    List,
    /// Show one conversation with its entries and files (JSON).
    Show { id: String },
    /// Accept a waiting conversation as the named rep.
    Accept {
        id: String,
        #[arg(long)]
        name: String,
    },
    /// Send a message as the conversation's rep.
    Say { id: String, text: String },
    /// Transfer the conversation to another rep.
    Transfer {
        id: String,
        #[arg(long)]
        name: String,
    },
    /// Leave the conversation (it goes back to the queue).
    Leave { id: String },
    /// End the chat as the rep (the messaging session ends).
    Close { id: String },
    /// Whether new conversations find an available agent.
    Availability { state: OnOff },
    /// Post a comment on a Case (public unless --internal); a public one fires the case webhook.
    Comment {
        /// The Case id (15 or 18 characters).
        case: String,
        text: String,
        /// An internal comment (IsPublished = false): never reaches the customer.
        #[arg(long)]
        internal: bool,
        /// The rep's name (CreatedBy.Name); default "Rep".
        #[arg(long)]
        name: Option<String>,
    },
    /// Send an outbound email on a Case (to its SuppliedEmail); fires the case webhook.
    Email {
        /// The Case id (15 or 18 characters).
        case: String,
        text: String,
        /// An HTML body besides the text.
        #[arg(long)]
        html: Option<String>,
        /// The rep's name (CreatedBy.Name); default "Rep".
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

/// Runs one rep command; a refused action is an error carrying the emulator's message.
pub(crate) async fn run(args: RepArgs) -> anyhow::Result<()> {
    let mut builder = reqwest::Client::builder();
    if let Some(ca) = &args.ca {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(&pem).context("the CA file is not a PEM certificate")?,
        );
    }
    let http = builder.build()?;
    let root = format!("{}/__emulator", args.url.trim_end_matches('/'));
    let (method, path, body) = match &args.action {
        RepAction::List => ("GET", "/miaw/conversations".to_string(), None),
        RepAction::Show { id } => ("GET", format!("/miaw/conversations/{id}"), None),
        RepAction::Accept { id, name } => (
            "POST",
            format!("/miaw/conversations/{id}/accept"),
            Some(json!({"rep_name": name})),
        ),
        RepAction::Say { id, text } => (
            "POST",
            format!("/miaw/conversations/{id}/messages"),
            Some(json!({"text": text})),
        ),
        RepAction::Transfer { id, name } => (
            "POST",
            format!("/miaw/conversations/{id}/transfer"),
            Some(json!({"rep_name": name})),
        ),
        RepAction::Leave { id } => ("POST", format!("/miaw/conversations/{id}/leave"), None),
        RepAction::Close { id } => ("POST", format!("/miaw/conversations/{id}/close"), None),
        RepAction::Availability { state } => (
            "PUT",
            "/miaw/availability".to_string(),
            Some(json!({"agents_available": matches!(state, OnOff::On)})),
        ),
        RepAction::Comment {
            case,
            text,
            internal,
            name,
        } => (
            "POST",
            format!("/cases/{case}/comments"),
            Some(json!({"text": text, "public": !internal, "rep_name": name})),
        ),
        RepAction::Email {
            case,
            text,
            html,
            name,
        } => (
            "POST",
            format!("/cases/{case}/emails"),
            Some(json!({"text": text, "html": html, "rep_name": name})),
        ),
    };
    let method = reqwest::Method::from_bytes(method.as_bytes())?;
    let mut req = http.request(method, format!("{root}{path}"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach the emulator at {}", args.url))?;
    let status = resp.status();
    let text = resp.text().await?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        // The console's `{"message"}`, or Salesforce's `[{"message","errorCode"}]` for a refused record.
        let message = value["message"]
            .as_str()
            .or_else(|| value[0]["message"].as_str())
            .unwrap_or("no message");
        bail!("{status}: {message}");
    }
    match args.action {
        RepAction::List => {
            for c in value["conversations"].as_array().into_iter().flatten() {
                let text = |k: &str| c[k].as_str().unwrap_or("-").to_string();
                println!(
                    "{}  {:<8} {:<14} {:<20} {}",
                    text("conversation_id"),
                    text("status"),
                    text("routing_status"),
                    text("rep_name"),
                    text("created_at")
                );
            }
        }
        RepAction::Say { .. } | RepAction::Comment { .. } | RepAction::Email { .. } => {
            println!("sent {}", value["id"].as_str().unwrap_or_default());
        }
        RepAction::Availability { .. } => {
            println!("agents_available = {}", value["agents_available"]);
        }
        _ => println!("{}", serde_json::to_string_pretty(&value)?),
    }
    Ok(())
}
