//! The `handoff` command line.

pub mod keys;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::Application;
use crate::config::Config;
use crate::store::{Scope, Store};

#[derive(Debug, Parser)]
#[command(
    name = "handoff",
    version,
    about = "Hands AI-bot support conversations to human reps in Salesforce."
)]
pub struct Cli {
    /// Config file (TOML). HANDOFF_* environment variables override it.
    #[arg(long, global = true, env = "HANDOFF_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway: HTTP API and worker.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Run against the built-in Salesforce emulator, on a scratch SQLite database;
        /// GET /v1/sandbox tells how to reach it. Listens on loopback only.
        #[arg(long)]
        sandbox: bool,
        /// Let the sandbox listen on a non-loopback address (anyone who reaches it
        /// can fetch its admin token).
        #[arg(long, requires = "sandbox")]
        sandbox_allow_remote: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Find sessions.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Manage API tokens.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Local console accounts (for orgs that do not sign in with Salesforce).
    Console {
        #[command(subcommand)]
        command: crate::console::accounts::ConsoleCommand,
    },
    /// Inspect and retry durable jobs (the dead-letter queue).
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// The keys that seal stored secrets: generate one, show which seal what, re-seal
    /// everything with the active key (docs/security.md).
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Erase what the retention policy says has expired, once, and exit.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Check the configuration against its Salesforce org (or the emulator): token,
    /// Case fields, live messaging, inbound routes. Prints a checklist with the fix
    /// for each failure; exits non-zero when anything failed.
    Doctor {
        /// The URL the gateway is reached at from outside (default: `public_url`).
        #[arg(long)]
        public_url: Option<String>,
        /// Print the checks as JSON instead of a checklist.
        #[arg(long)]
        json: bool,
    },
    /// Print the OpenAPI 3.1 document of the `/v1` API (what `GET /v1/openapi.json` serves;
    /// `docs/openapi.json` is this output).
    Openapi,
    /// Escalate a handful of real conversations end to end against the built-in
    /// emulator, on a scratch database, and print what happened.
    Demo {
        /// Escalate into this running gateway (e.g. `handoff serve --sandbox`) instead, and
        /// print every id each session can be found by in its console.
        #[arg(long)]
        gateway: Option<String>,
        /// An escalate+read API token for --gateway (default: the sandbox's, from /v1/sandbox).
        #[arg(long, requires = "gateway")]
        token: Option<String>,
    },
    /// Measure: Salesforce calls per escalation, and accepted escalations per second.
    Bench {
        #[command(subcommand)]
        command: crate::bench::BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Print the sessions matching any id: session id, Case id (15 or 18),
    /// CaseNumber, MIAW id, MessagingSession id, customer email or phone.
    Find { id: String },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs in a state (queued, running, done, dead).
    List {
        #[arg(long, default_value = "dead")]
        state: String,
    },
    /// Put a dead job back in the queue for a fresh set of attempts.
    Retry { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// One sweep now, with the configured `[retention]` periods.
    Run,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it once (only its hash is stored).
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated: read, escalate, admin.
        #[arg(long, default_value = "escalate")]
        scopes: String,
    },
    /// List tokens: id, name, scopes, created, revoked (never the secret).
    List,
    /// Revoke a token by id; its next request is refused (401).
    Revoke { id: String },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            sandbox,
            sandbox_allow_remote,
        } => {
            crate::telemetry::init("info,sqlx=warn");
            let mut config = Config::load(cli.config.as_deref())?;
            if let Some(addr) = listen {
                config.listen = addr;
            }
            if sandbox_allow_remote {
                config.sandbox.allow_remote = true;
            }
            let listener = TcpListener::bind(config.listen).await.with_context(|| {
                format!(
                    "cannot listen on {}; is another process using it? Pick another with --listen",
                    config.listen
                )
            })?;
            let scratch = std::env::var_os("HANDOFF_DATABASE_URL").is_none();
            let app = if sandbox {
                Application::build_sandbox(config, listener, scratch).await?
            } else {
                Application::build(config, listener).await?
            };
            let addr = app.local_addr()?;
            // The first line on stdout names the bound address, so that a
            // supervisor (or a test) can ask for port 0 and read the port back.
            if let Some(info) = app.sandbox() {
                println!("Handoff sandbox listening on http://{addr}");
                println!("  Salesforce emulator: {}", info.salesforce_url);
                println!("  API token (every scope): {}", info.api_token);
                if let Some(twilio) = &info.twilio_emulator {
                    println!(
                        "  SMS: Twilio emulator {} (customers text {})",
                        twilio.url, twilio.number
                    );
                }
                if let Some(whatsapp) = &info.whatsapp_emulator {
                    println!(
                        "  WhatsApp: Cloud API emulator {} (phone number id {})",
                        whatsapp.url, whatsapp.phone_number_id
                    );
                }
                println!(
                    "  Ops console: http://{addr}/console (local admin {} / {})",
                    info.console_username, info.console_password
                );
                println!("  GET http://{addr}/v1/sandbox for the same, as JSON");
            } else {
                // Not println!: a closed stdout must not stop the gateway.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "Handoff listening on http://{addr}");
                let _ = out.flush();
                tracing::info!(%addr, "Handoff listening.");
            }
            let _ = std::io::Write::flush(&mut std::io::stdout());
            let shutdown = CancellationToken::new();
            let signal = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("Shutting down: finishing in-flight work.");
                signal.cancel();
            });
            app.run(shutdown).await?;
            Ok(())
        }
        Command::Migrate => {
            let config = Config::load(cli.config.as_deref())?;
            Store::open(&config.database_url)
                .await
                .context("migration failed")?;
            println!("Database is up to date.");
            Ok(())
        }
        Command::Sessions {
            command: SessionsCommand::Find { id },
        } => {
            let config = Config::load(cli.config.as_deref())?;
            let store = Store::open(&config.database_url).await?;
            let sessions = store.find_sessions(&id).await?;
            if sessions.is_empty() {
                println!("No session matches {id:?}.");
                return Ok(());
            }
            println!(
                "{:<36} {:<9} {:<6} {:<10} {:<18} {:<10} CREATED",
                "SESSION", "CHANNEL", "ROUTE", "STATUS", "CASE ID", "CASE #"
            );
            for s in sessions {
                println!(
                    "{:<36} {:<9} {:<6} {:<10} {:<18} {:<10} {}",
                    s.id,
                    s.channel,
                    s.route,
                    s.status,
                    s.salesforce_case_id.as_deref().unwrap_or("-"),
                    s.salesforce_case_number.as_deref().unwrap_or("-"),
                    s.created_at.format("%Y-%m-%d %H:%M:%S")
                );
            }
            Ok(())
        }
        Command::Console { command } => {
            let config = Config::load(cli.config.as_deref())?;
            let store = Store::open(&config.database_url).await?;
            crate::console::accounts::run(&store, command).await
        }
        Command::Tokens {
            command: TokensCommand::List,
        } => {
            let config = Config::load(cli.config.as_deref())?;
            let store = Store::open(&config.database_url).await?;
            let mut after: Option<String> = None;
            let mut printed = 0usize;
            loop {
                let page = store.list_tokens(after.as_deref(), 500).await?;
                if printed == 0 && page.is_empty() {
                    println!("No tokens. Create one with `handoff tokens create --name NAME`.");
                    return Ok(());
                }
                if printed == 0 {
                    println!(
                        "{:<36} {:<20} {:<22} {:<20} REVOKED",
                        "ID", "NAME", "SCOPES", "CREATED"
                    );
                }
                for t in &page {
                    println!(
                        "{:<36} {:<20} {:<22} {:<20} {}",
                        t.id,
                        t.name,
                        t.scopes,
                        t.created_at.format("%Y-%m-%d %H:%M:%S"),
                        t.revoked_at
                            .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_else(|| "-".into())
                    );
                }
                printed += page.len();
                match page.last() {
                    Some(last) if page.len() == 500 => after = Some(last.id.clone()),
                    _ => return Ok(()),
                }
            }
        }
        Command::Tokens {
            command: TokensCommand::Revoke { id },
        } => {
            let config = Config::load(cli.config.as_deref())?;
            let store = Store::open(&config.database_url).await?;
            match store.revoke_token(&id).await? {
                Some(token) => {
                    println!(
                        "Token {} ({}) is revoked; its next request gets 401.",
                        token.id, token.name
                    );
                    Ok(())
                }
                None => bail!("there is no token {id}; `handoff tokens list` shows them"),
            }
        }
        Command::Tokens {
            command: TokensCommand::Create { name, scopes },
        } => {
            let mut parsed = Vec::new();
            for s in scopes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match Scope::parse(s) {
                    Some(scope) => parsed.push(scope),
                    None => bail!("unknown scope {s:?}; use read, escalate or admin"),
                }
            }
            if parsed.is_empty() {
                bail!("give at least one scope: --scopes read,escalate");
            }
            let config = Config::load(cli.config.as_deref())?;
            let store = Store::open(&config.database_url).await?;
            let token = store.create_token(&name, &parsed).await?;
            println!("{}", token.secret);
            eprintln!(
                "Token {} created. It is shown only now; store it safely.",
                token.id
            );
            Ok(())
        }
        Command::Jobs { command } => {
            let config = Config::load(cli.config.as_deref())?;
            let store = Store::open(&config.database_url).await?;
            match command {
                JobsCommand::List { state } => {
                    if !crate::http::jobs::JOB_STATES.contains(&state.as_str()) {
                        bail!("unknown state {state:?}; use queued, running, done or dead");
                    }
                    let jobs = store.jobs_in_state(&state).await?;
                    if jobs.is_empty() {
                        println!("No {state} jobs.");
                        return Ok(());
                    }
                    println!(
                        "{:>8} {:<12} {:<36} {:>8}  LAST ERROR",
                        "ID", "KIND", "SESSION", "ATTEMPTS"
                    );
                    for job in jobs {
                        println!(
                            "{:>8} {:<12} {:<36} {:>8}  {}",
                            job.id,
                            job.kind,
                            job.session_id,
                            format!("{}/{}", job.attempts, job.max_attempts),
                            job.last_error.as_deref().unwrap_or("-")
                        );
                    }
                    Ok(())
                }
                JobsCommand::Retry { id } => match store.retry_dead_job(id).await? {
                    Some(job) => {
                        println!(
                            "Job {} (session {}) is queued again; a running gateway picks it up within its poll interval.",
                            job.id, job.session_id
                        );
                        Ok(())
                    }
                    None => match store.job(id).await? {
                        Some(job) => {
                            bail!("job {id} is {}; only dead jobs can be retried", job.state)
                        }
                        None => {
                            bail!("there is no job {id}; `handoff jobs list` shows the dead ones")
                        }
                    },
                },
            }
        }
        Command::Keys { command } => keys::run(cli.config.as_deref(), command).await,
        Command::Retention {
            command: RetentionCommand::Run,
        } => {
            let config = Config::load(cli.config.as_deref())?;
            let store = Store::open(&config.database_url).await?;
            let report = store
                .sweep_retention(chrono::Utc::now(), config.retention.policy())
                .await?;
            println!(
                "Retention: {} sessions erased, {} events erased, {} timelines deleted.",
                report.sessions_erased, report.events_erased, report.timelines_deleted
            );
            Ok(())
        }
        Command::Doctor { public_url, json } => {
            let config = Config::load(cli.config.as_deref())?;
            let options = crate::doctor::Options { public_url };
            let checks = crate::doctor::run(&config, &options, |step| {
                if !json {
                    eprintln!("checking {step}…");
                }
            })
            .await;
            if json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                print!("{}", crate::doctor::render(&checks));
            }
            if crate::doctor::failed(&checks) {
                anyhow::bail!("some checks failed; the fix for each is listed above");
            }
            Ok(())
        }
        Command::Demo { gateway: None, .. } => crate::demo::run().await,
        Command::Demo {
            gateway: Some(gateway),
            token,
        } => crate::demo::remote::run(&gateway, token).await,
        Command::Openapi => {
            std::io::stdout()
                .write_all(crate::http::openapi::to_json().as_bytes())
                .context("writing the OpenAPI document to stdout")?;
            Ok(())
        }
        Command::Bench { command } => crate::bench::run(command).await,
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
