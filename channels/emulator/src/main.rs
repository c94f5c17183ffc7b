#![forbid(unsafe_code)]
//! `channel-emulator`: runs the Twilio and WhatsApp Cloud emulators until Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use channel_emulator::twilio::{self, TwilioEmulator, TwilioSettings};
use channel_emulator::whatsapp::{self, WhatsappEmulator, WhatsappSettings};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Local stand-ins for Twilio's Messages API and Meta's WhatsApp Cloud API.
#[derive(Debug, Parser)]
#[command(name = "channel-emulator", version)]
struct Args {
    /// Address of the Twilio emulator.
    #[arg(
        long,
        env = "CHANNEL_EMULATOR_TWILIO_LISTEN",
        default_value = "127.0.0.1:7081"
    )]
    twilio_listen: SocketAddr,
    /// Address of the WhatsApp Cloud emulator.
    #[arg(
        long,
        env = "CHANNEL_EMULATOR_WHATSAPP_LISTEN",
        default_value = "127.0.0.1:7082"
    )]
    whatsapp_listen: SocketAddr,
    /// Twilio Account SID (AC + 32 hex digits).
    #[arg(long, env = "CHANNEL_EMULATOR_TWILIO_ACCOUNT_SID", default_value = twilio::DEMO_ACCOUNT_SID)]
    twilio_account_sid: String,
    /// Twilio auth token (API auth and webhook signatures).
    #[arg(long, env = "CHANNEL_EMULATOR_TWILIO_AUTH_TOKEN", default_value = twilio::DEMO_AUTH_TOKEN, hide_env_values = true)]
    twilio_auth_token: String,
    /// Twilio API key SID (SK + 32 hex digits), accepted for API auth.
    #[arg(
        long,
        env = "CHANNEL_EMULATOR_TWILIO_API_KEY_SID",
        requires = "twilio_api_key_secret"
    )]
    twilio_api_key_sid: Option<String>,
    /// Secret of --twilio-api-key-sid.
    #[arg(
        long,
        env = "CHANNEL_EMULATOR_TWILIO_API_KEY_SECRET",
        requires = "twilio_api_key_sid",
        hide_env_values = true
    )]
    twilio_api_key_secret: Option<String>,
    /// Where inbound SMS are posted (e.g. http://127.0.0.1:8080/channels/sms/inbound).
    #[arg(long, env = "CHANNEL_EMULATOR_TWILIO_SMS_WEBHOOK")]
    twilio_sms_webhook: Option<String>,
    /// Where inbound messages of Twilio WhatsApp senders are posted.
    #[arg(long, env = "CHANNEL_EMULATOR_TWILIO_WHATSAPP_WEBHOOK")]
    twilio_whatsapp_webhook: Option<String>,
    /// SMS numbers of the account (repeat, or comma-separated). None: any E.164 From.
    #[arg(
        long = "twilio-number",
        env = "CHANNEL_EMULATOR_TWILIO_NUMBERS",
        value_delimiter = ','
    )]
    twilio_numbers: Vec<String>,
    /// WhatsApp senders of the account (repeat, or comma-separated). None: any.
    #[arg(
        long = "twilio-whatsapp-sender",
        env = "CHANNEL_EMULATOR_TWILIO_WHATSAPP_SENDERS",
        value_delimiter = ','
    )]
    twilio_whatsapp_senders: Vec<String>,
    /// A Messaging Service: `MG…=+1555…,whatsapp:+1555…` (repeat, or `;`-separated).
    #[arg(
        long = "twilio-messaging-service",
        env = "CHANNEL_EMULATOR_TWILIO_MESSAGING_SERVICES",
        value_delimiter = ';'
    )]
    twilio_messaging_services: Vec<String>,
    /// WhatsApp Cloud phone number id.
    #[arg(long, env = "CHANNEL_EMULATOR_WHATSAPP_PHONE_NUMBER_ID", default_value = whatsapp::DEMO_PHONE_NUMBER_ID)]
    whatsapp_phone_number_id: String,
    /// WhatsApp Cloud access token (Bearer).
    #[arg(long, env = "CHANNEL_EMULATOR_WHATSAPP_ACCESS_TOKEN", default_value = whatsapp::DEMO_ACCESS_TOKEN, hide_env_values = true)]
    whatsapp_access_token: String,
    /// App secret signing the WhatsApp webhooks.
    #[arg(long, env = "CHANNEL_EMULATOR_WHATSAPP_APP_SECRET", default_value = whatsapp::DEMO_APP_SECRET, hide_env_values = true)]
    whatsapp_app_secret: String,
    /// Verify token of the WhatsApp handshake.
    #[arg(long, env = "CHANNEL_EMULATOR_WHATSAPP_VERIFY_TOKEN", default_value = whatsapp::DEMO_VERIFY_TOKEN, hide_env_values = true)]
    whatsapp_verify_token: String,
    /// The WhatsApp app's webhook (e.g. http://127.0.0.1:8080/channels/whatsapp/inbound).
    #[arg(long, env = "CHANNEL_EMULATOR_WHATSAPP_WEBHOOK")]
    whatsapp_webhook: Option<String>,
    /// Approved WhatsApp template names (repeat, or comma-separated).
    #[arg(
        long = "whatsapp-template",
        env = "CHANNEL_EMULATOR_WHATSAPP_TEMPLATES",
        value_delimiter = ','
    )]
    whatsapp_templates: Vec<String>,
    /// Pause before each status callback / status webhook, in milliseconds.
    #[arg(long, env = "CHANNEL_EMULATOR_STATUS_DELAY_MS", default_value_t = 500)]
    status_delay_ms: u64,
    /// Perform the WhatsApp verification handshake at start (needs --whatsapp-webhook).
    #[arg(long)]
    verify_whatsapp_webhook: bool,
}

/// `MG…=a,b` → (sid, senders).
fn parse_service(spec: &str) -> anyhow::Result<(String, Vec<String>)> {
    let (sid, senders) = spec.split_once('=').with_context(|| {
        format!("--twilio-messaging-service '{spec}': expected MG…=sender,sender")
    })?;
    let senders: Vec<String> = senders
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Ok((sid.trim().to_string(), senders))
}

/// A secret shown only when it is the demo default.
fn shown(value: &str, demo: &str) -> String {
    if value == demo {
        value.to_string()
    } else {
        "(as given)".to_string()
    }
}

async fn start_twilio(args: &Args) -> anyhow::Result<TwilioEmulator> {
    let settings = TwilioSettings {
        account_sid: args.twilio_account_sid.clone(),
        auth_token: args.twilio_auth_token.clone(),
        api_key: args
            .twilio_api_key_sid
            .clone()
            .zip(args.twilio_api_key_secret.clone()),
        webhook_url: args.twilio_sms_webhook.clone(),
        whatsapp_webhook_url: args.twilio_whatsapp_webhook.clone(),
    };
    settings.validate().context("Twilio settings")?;
    let listener = tokio::net::TcpListener::bind(args.twilio_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.twilio_listen))?;
    let emulator = TwilioEmulator::serve(settings, listener)
        .await
        .context("cannot start the Twilio emulator")?;
    for number in &args.twilio_numbers {
        emulator
            .add_number(number)
            .with_context(|| format!("--twilio-number '{number}'"))?;
    }
    for number in &args.twilio_whatsapp_senders {
        emulator
            .add_whatsapp_sender(number)
            .with_context(|| format!("--twilio-whatsapp-sender '{number}'"))?;
    }
    for spec in &args.twilio_messaging_services {
        let (sid, senders) = parse_service(spec)?;
        let refs: Vec<&str> = senders.iter().map(String::as_str).collect();
        emulator
            .add_messaging_service(&sid, &refs)
            .with_context(|| format!("--twilio-messaging-service '{spec}'"))?;
    }
    emulator.set_status_delay(Duration::from_millis(args.status_delay_ms));
    Ok(emulator)
}

async fn start_whatsapp(args: &Args) -> anyhow::Result<WhatsappEmulator> {
    let settings = WhatsappSettings {
        phone_number_id: args.whatsapp_phone_number_id.clone(),
        access_token: args.whatsapp_access_token.clone(),
        app_secret: args.whatsapp_app_secret.clone(),
        verify_token: args.whatsapp_verify_token.clone(),
        webhook_url: args.whatsapp_webhook.clone(),
        templates: args.whatsapp_templates.clone(),
    };
    settings.validate().context("WhatsApp settings")?;
    let listener = tokio::net::TcpListener::bind(args.whatsapp_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.whatsapp_listen))?;
    let emulator = WhatsappEmulator::serve(settings, listener)
        .await
        .context("cannot start the WhatsApp emulator")?;
    emulator.set_status_delay(Duration::from_millis(args.status_delay_ms));
    Ok(emulator)
}

fn print_twilio(args: &Args, t: &TwilioEmulator) {
    let url = t.url();
    println!("Twilio emulator listening on {}", t.local_addr());
    println!("  api_url:        {url}");
    println!(
        "  send:           POST {url}/2010-04-01/Accounts/{}/Messages.json",
        t.account_sid()
    );
    println!("  account_sid:    {}", t.account_sid());
    println!(
        "  auth_token:     {}",
        shown(&args.twilio_auth_token, twilio::DEMO_AUTH_TOKEN)
    );
    match &args.twilio_api_key_sid {
        Some(sid) => println!("  api key:        {sid} (secret as given)"),
        None => println!("  api key:        none"),
    }
    let webhook = |w: &Option<String>| w.clone().unwrap_or_else(|| "none".into());
    println!("  SMS webhook:    {}", webhook(&args.twilio_sms_webhook));
    println!(
        "  WA webhook:     {}",
        webhook(&args.twilio_whatsapp_webhook)
    );
    if args.twilio_numbers.is_empty() {
        println!("  numbers:        any E.164 From (none configured)");
    } else {
        println!("  numbers:        {}", args.twilio_numbers.join(", "));
    }
    println!("  inspect:        GET {url}/__emulator/twilio/messages");
    println!(
        "  customer texts: curl -s {url}/__emulator/twilio/inbound -H 'content-type: application/json' -d '{{\"from\":\"+14155550100\",\"to\":\"+15550100000\",\"body\":\"Hello\"}}'"
    );
}

fn print_whatsapp(args: &Args, w: &WhatsappEmulator) {
    let url = w.url();
    println!("WhatsApp Cloud emulator listening on {}", w.local_addr());
    println!("  api_url:        {url}");
    println!(
        "  send:           POST {url}/v21.0/{}/messages",
        w.phone_number_id()
    );
    println!(
        "  access_token:   {}",
        shown(&args.whatsapp_access_token, whatsapp::DEMO_ACCESS_TOKEN)
    );
    println!(
        "  app_secret:     {}",
        shown(&args.whatsapp_app_secret, whatsapp::DEMO_APP_SECRET)
    );
    println!(
        "  verify_token:   {}",
        shown(&args.whatsapp_verify_token, whatsapp::DEMO_VERIFY_TOKEN)
    );
    println!(
        "  webhook:        {}",
        args.whatsapp_webhook.as_deref().unwrap_or("none")
    );
    println!("  templates:      {:?}", args.whatsapp_templates);
    println!("  inspect:        GET {url}/__emulator/whatsapp/messages");
    println!(
        "  customer texts: curl -s {url}/__emulator/whatsapp/inbound -H 'content-type: application/json' -d '{{\"from\":\"14155550100\",\"text\":\"Hello\"}}'"
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let twilio = start_twilio(&args).await?;
    let whatsapp = start_whatsapp(&args).await?;
    print_twilio(&args, &twilio);
    print_whatsapp(&args, &whatsapp);
    if args.verify_whatsapp_webhook {
        let echoed = whatsapp
            .verify_webhook()
            .await
            .context("WhatsApp verification handshake")?;
        anyhow::ensure!(echoed, "the WhatsApp webhook did not echo the challenge");
        println!("  handshake:      challenge echoed");
    }
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    tracing::info!("shutting down");
    twilio.shutdown().await;
    whatsapp.shutdown().await;
    Ok(())
}
