#![forbid(unsafe_code)]
//! `sf-emulator`: runs the local Salesforce until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use figment::Figment;
use figment::providers::{Format, Json, Serialized, Toml};
use sf_emulator::{EmulatorConfig, TlsConfig};
use tracing_subscriber::EnvFilter;

mod rep_cli;

/// A local Salesforce (OAuth, REST, SOQL, composite, limits, MIAW, fault injection).
#[derive(Debug, Parser)]
#[command(name = "sf-emulator", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Args,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Act as a rep on a running emulator: MIAW conversations (list, show, accept, say,
    /// transfer, leave, close, availability) and replies on Cases (comment, email).
    Rep(rep_cli::RepArgs),
}

/// Serving options (the default command).
#[derive(Debug, clap::Args)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SF_EMULATOR_LISTEN", default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Configuration file (TOML, or JSON when the name ends in .json). Unset keys keep their defaults.
    #[arg(long, env = "SF_EMULATOR_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration (as JSON, usable with `--config file.json`) and exit.
    #[arg(long)]
    print_config: bool,
    /// Base URL handed out in instance_url, identity and SOAP URLs (`https://host[:port]`),
    /// e.g. the address of a proxy in front of the emulator.
    #[arg(long, env = "SF_EMULATOR_PUBLIC_URL")]
    public_url: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "SF_EMULATOR_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "SF_EMULATOR_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a generated CA and certificate; the CA (PEM) is printed, and written to
    /// --ca-out when given, for clients to trust.
    #[arg(long, conflicts_with = "tls_cert")]
    tls_self_signed: bool,
    /// Where to write the generated CA certificate (PEM), with --tls-self-signed.
    #[arg(long, requires = "tls_self_signed")]
    ca_out: Option<PathBuf>,
}

/// Command-line TLS and URL options override the configuration file.
fn apply_flags(config: &mut EmulatorConfig, args: &Args) {
    if let Some(url) = &args.public_url {
        config.public_url = Some(url.clone());
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(TlsConfig::Files {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    if args.tls_self_signed {
        config.tls = Some(TlsConfig::SelfSigned {
            names: Vec::new(),
            ca_out: args.ca_out.clone(),
        });
    }
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<EmulatorConfig> {
    let mut figment = Figment::from(Serialized::defaults(EmulatorConfig::default()));
    if let Some(path) = path {
        anyhow::ensure!(
            path.exists(),
            "config file {} does not exist",
            path.display()
        );
        figment = if path.extension().is_some_and(|e| e == "json") {
            figment.merge(Json::file(path))
        } else {
            figment.merge(Toml::file(path))
        };
    }
    let config: EmulatorConfig = figment
        .extract()
        .with_context(|| "invalid emulator configuration")?;
    config.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Rep(rep)) = cli.command {
        return rep_cli::run(rep).await;
    }
    let args = cli.serve;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let mut config = load_config(args.config.as_ref())?;
    apply_flags(&mut config, &args);
    config.validate().map_err(anyhow::Error::msg)?;
    if args.print_config {
        println!("{}", serde_json::to_string_pretty(&config)?);
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let handle = sf_emulator::spawn(config, listener)
        .await
        .context("cannot start the emulator")?;
    let url = handle.url();
    println!(
        "Salesforce emulator listening on {} as {url}",
        handle.local_addr()
    );
    println!("  token endpoint: {url}/services/oauth2/token");
    println!("  REST base:      {url}/services/data/v66.0/");
    println!("  org id:         {}", handle.config().org_id);
    for app in &handle.config().connected_apps {
        println!(
            "  connected app:  client_id={} client_secret={} run_as={} callback_urls={:?}",
            app.client_id,
            app.client_secret,
            app.run_as.as_deref().unwrap_or("(none)"),
            app.callback_urls
        );
    }
    for user in &handle.config().users {
        println!(
            "  user:           username={} password={} security_token={} profile={:?} permission_sets={:?}",
            user.username, user.password, user.security_token, user.profile, user.permission_sets
        );
    }
    println!("  SOAP login:     {url}/services/Soap/u/64.0");
    println!(
        "  login page:     {url}/services/oauth2/authorize  (web-server flow; userinfo at {url}/services/oauth2/userinfo)"
    );
    println!(
        "  MIAW (SCRT URL): {url}  deployments={:?}",
        handle.config().miaw.deployments
    );
    println!(
        "  rep console:    {url}/__emulator/miaw/conversations  (or: sf-emulator rep --url {url} list)"
    );
    println!(
        "  case replies:   {url}/__emulator/cases/{{caseId}}/comments  (or: sf-emulator rep --url {url} comment CASE_ID \"text\")"
    );
    match &handle.config().case_webhook {
        Some(hook) => println!("  case webhook:   {}", hook.url),
        None => println!("  case webhook:   none (PUT {url}/__emulator/case-webhook to set one)"),
    }
    if let Some(ca) = handle.ca_pem() {
        match &args.ca_out {
            Some(path) => println!("  TLS CA (trust it): {}", path.display()),
            None => println!("  TLS CA (trust it):\n{ca}"),
        }
    }
    println!(
        "  try: curl -s {url}/services/oauth2/token -d grant_type=client_credentials -d client_id=… -d client_secret=…"
    );
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}
