//! `handoff bench …`: the figures in docs/benchmarks.md come from here. Each
//! bench starts the built-in Salesforce emulator and the gateway in-process, on
//! loopback, and drives the gateway over HTTP.

use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::app::{Application, RunningApp};
use crate::config::Config;
use crate::demo::Driver;
use crate::store::Scope;

mod channels;
mod live;
mod replies;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Salesforce calls (and token requests) per escalation, by transcript length.
    Calls {
        /// Transcript lengths to measure, in turns.
        #[arg(long, value_delimiter = ',', default_value = "5,50,500")]
        turns: Vec<usize>,
        /// Escalations per length.
        #[arg(long, default_value_t = 20)]
        escalations: usize,
    },
    /// Accepted escalations per second and accept latency (POST → 202).
    Accept {
        /// Total escalations to send.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Turns per transcript.
        #[arg(long, default_value_t = 10)]
        turns: usize,
        /// Database (default: a scratch SQLite file). A postgres:// URL benches PostgreSQL.
        #[arg(long)]
        database_url: Option<String>,
        /// Salesforce answers 503 throughout: the breaker opens and no Case is written, so the
        /// figure is the accept path alone, without the worker sharing the machine.
        #[arg(long)]
        salesforce_down: bool,
    },
    /// Jobs completed per second while Salesforce answers every call after a delay.
    Drain {
        /// Escalations queued before the clock starts.
        #[arg(long, default_value_t = 400)]
        escalations: usize,
        /// Latency the emulator adds to every API call.
        #[arg(long, default_value_t = 100)]
        latency_ms: u64,
        /// Salesforce calls in flight at once (default: `salesforce.max_concurrency`).
        #[arg(long)]
        max_concurrency: Option<usize>,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// A total Salesforce outage: accept latency during it, probes sent, drain time after.
    Outage {
        /// How long Salesforce answers every call with 503.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Escalations per second offered during the outage.
        #[arg(long, default_value_t = 20)]
        rate: u64,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Live chats (MIAW): memory per live session, and rep message → callback latency.
    Live {
        /// Live sessions open at once.
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Rep messages to time.
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        /// Rep messages per second.
        #[arg(long, default_value_t = 100)]
        rate: u64,
        /// Escalations (and console accepts) in flight at once while opening.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Turns per transcript.
        #[arg(long, default_value_t = 10)]
        turns: usize,
        /// Seed for picking the sessions the rep messages go to.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Overrides `miaw.supervisor_interval_ms` (how often leases are renewed).
        #[arg(long)]
        supervisor_interval_ms: Option<u64>,
        /// Overrides `worker.concurrency` (deliveries in flight).
        #[arg(long)]
        worker_concurrency: Option<usize>,
    },
    /// Rep reply on a Case → customer's reply accepted by SMTP, by push and by poll;
    /// and the Salesforce API calls the poller spends per day.
    Replies {
        /// Email Cases the replies go to.
        #[arg(long, default_value_t = 20)]
        cases: usize,
        /// Replies timed per path, one at a time.
        #[arg(long, default_value_t = 200)]
        replies: usize,
        /// The poller's interval for the poll path's latency.
        #[arg(long, default_value_t = 1)]
        poll_interval_secs: u64,
        /// Open escalated Cases in the org for the poller-cost figure.
        #[arg(long, value_delimiter = ',', default_value = "100,2500,10000")]
        open_cases: Vec<usize>,
        /// Database (default: a scratch SQLite file). A postgres:// URL benches PostgreSQL.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Live SMS / WhatsApp sessions: customer's text (signed provider webhook) → in front of
    /// the rep, and rep message → provider API called; with the fixed parts timed alone.
    Channels {
        /// Live sessions open at once (split evenly with `--channel both`).
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Which channels the sessions are on.
        #[arg(long, value_enum, default_value_t = channels::ChannelMode::Sms)]
        channel: channels::ChannelMode,
        /// Messages to time in each direction.
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Messages per second in each direction (and for the fixed parts).
        #[arg(long, default_value_t = 50)]
        rate: u64,
        /// Escalations (and console accepts) in flight at once while opening.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Turns per transcript.
        #[arg(long, default_value_t = 10)]
        turns: usize,
        /// Seed for picking the sessions the messages go to.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Samples of each fixed part timed alone.
        #[arg(long, default_value_t = 200)]
        baseline: usize,
        /// The provider emulators' pause between status reports (sent, delivered, read).
        #[arg(long, default_value_t = 500)]
        status_delay_ms: u64,
        /// Overrides `worker.concurrency` (deliveries in flight).
        #[arg(long)]
        worker_concurrency: Option<usize>,
    },
    /// The emulator for `bench live` and `bench channels`, run as its child process (not for direct use).
    #[command(hide = true)]
    EmulatorChild,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    crate::telemetry::init("warn");
    match command {
        BenchCommand::Calls { turns, escalations } => calls(&turns, escalations).await,
        BenchCommand::Accept {
            requests,
            concurrency,
            turns,
            database_url,
            salesforce_down,
        } => accept(requests, concurrency, turns, database_url, salesforce_down).await,
        BenchCommand::Drain {
            escalations,
            latency_ms,
            max_concurrency,
            database_url,
        } => drain(escalations, latency_ms, max_concurrency, database_url).await,
        BenchCommand::Outage {
            seconds,
            rate,
            database_url,
        } => outage(seconds, rate, database_url).await,
        BenchCommand::Live {
            sessions,
            messages,
            rate,
            concurrency,
            turns,
            seed,
            supervisor_interval_ms,
            worker_concurrency,
        } => {
            live::run(live::LiveArgs {
                sessions,
                messages,
                rate,
                concurrency,
                turns,
                seed,
                supervisor_interval_ms,
                worker_concurrency,
            })
            .await
        }
        BenchCommand::Replies {
            cases,
            replies,
            poll_interval_secs,
            open_cases,
            database_url,
        } => {
            replies::run(replies::RepliesArgs {
                cases,
                replies,
                poll_interval_secs,
                open_cases,
                database_url,
            })
            .await
        }
        BenchCommand::Channels {
            sessions,
            channel,
            messages,
            rate,
            concurrency,
            turns,
            seed,
            baseline,
            status_delay_ms,
            worker_concurrency,
        } => {
            channels::run(channels::ChannelsArgs {
                sessions,
                channel,
                messages,
                rate,
                concurrency,
                turns,
                seed,
                baseline,
                status_delay_ms,
                worker_concurrency,
            })
            .await
        }
        BenchCommand::EmulatorChild => live::emulator_child().await,
    }
}

/// The gateway against a fresh emulator, and a token with every scope.
struct Stack {
    app: RunningApp,
    emulator: sf_emulator::EmulatorHandle,
    token: String,
    _dir: Option<tempfile::TempDir>,
}

async fn start(database_url: Option<String>) -> anyhow::Result<Stack> {
    start_with(database_url, |_| {}).await
}

async fn start_with(
    database_url: Option<String>,
    adjust: impl FnOnce(&mut Config),
) -> anyhow::Result<Stack> {
    let emulator = sf_emulator::spawn(
        sf_emulator::EmulatorConfig::default(),
        TcpListener::bind("127.0.0.1:0").await?,
    )
    .await?;
    let mut config = Config::defaults();
    // What a run stores is sealed with a key that lives as long as the run.
    config.secrets.ephemeral_fallback = true;
    // Every benchmark escalation comes from one address: each must make its own Case.
    config.case.append_to_open_case = false;
    let dir = match database_url {
        Some(url) => {
            config.database_url = url;
            None
        }
        None => {
            let dir = tempfile::tempdir()?;
            config.database_url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            );
            Some(dir)
        }
    };
    let app_config = emulator
        .config()
        .connected_apps
        .first()
        .cloned()
        .context("emulator has no app")?;
    config.salesforce.login_url = emulator.url();
    config.salesforce.credentials = Some(salesforce::Credentials::ClientCredentials {
        client_id: app_config.client_id,
        client_secret: app_config.client_secret.into(),
    });
    adjust(&mut config);
    let app = Application::build(config, TcpListener::bind("127.0.0.1:0").await?).await?;
    let token = app
        .state()
        .store
        .create_token("bench", &[Scope::Escalate])
        .await?
        .secret;
    Ok(Stack {
        app: app.spawn()?,
        emulator,
        token,
        _dir: dir,
    })
}

fn body(session_id: &str, turns: usize) -> Value {
    let transcript: Vec<Value> = (0..turns)
        .map(|i| {
            json!({
                "role": if i % 2 == 0 { "customer" } else { "bot" },
                "text": format!("Turn {i}. My order number is A-{:05} and the parcel has not moved for a week; the tracking page says it is at the depot. Could you check with the courier, please?", i * 7),
                "at": format!("2026-11-22T{:02}:{:02}:{:02}Z", 8 + i / 3600, (i / 60) % 60, i % 60),
            })
        })
        .collect();
    json!({
        "session_id": session_id,
        "channel": "email",
        "customer": {"name": "Bench Customer", "email": "bench@example.com"},
        "subject": "Parcel stuck at the depot",
        "summary": "Parcel stuck at the depot for a week; customer wants a courier investigation.",
        "transcript": transcript,
    })
}

async fn calls(lengths: &[usize], escalations: usize) -> anyhow::Result<()> {
    println!("Measuring Salesforce calls per escalation ({escalations} escalations per length)…");
    println!();
    println!(
        "{:>6} {:>12} {:>10} {:>22} {:>16}",
        "TURNS", "TRANSCRIPT", "COMMENTS", "SF CALLS / ESCALATION", "TOKEN REQUESTS"
    );
    for &turns in lengths {
        // A fresh stack per length, so token requests are counted from zero.
        let stack = start(None).await?;
        let driver = Driver::new(stack.app.url(), stack.token.clone())?;
        let mut ids = Vec::new();
        let mut transcript_bytes = 0usize;
        for n in 0..escalations {
            let id = format!("calls-{turns}-{n}");
            let b = body(&id, turns);
            transcript_bytes = b["transcript"].to_string().len();
            driver.escalate(&b).await?;
            ids.push(id);
        }
        let (mut calls, mut comments) = (0i64, 0i64);
        for id in &ids {
            let s = driver.wait_escalated(id, Duration::from_secs(120)).await?;
            calls += i64::from(s.salesforce_calls);
            comments += i64::from(s.comments_written);
        }
        let stats = stack.emulator.stats();
        let n = escalations as f64;
        println!(
            "{:>6} {:>9} KB {:>10.1} {:>22.2} {:>16}",
            turns,
            transcript_bytes / 1024,
            comments as f64 / n,
            calls as f64 / n,
            stats.token_requests
        );
        // Cross-check against what the emulator itself counted.
        anyhow::ensure!(
            stats.api_calls as i64 == calls,
            "the emulator counted {} API calls, the gateway {calls}",
            stats.api_calls
        );
        stack.app.stop().await;
        stack.emulator.shutdown().await;
    }
    println!();
    println!(
        "SF calls are counted by the gateway per session and cross-checked against the emulator's own count."
    );
    Ok(())
}

async fn accept(
    requests: usize,
    concurrency: usize,
    turns: usize,
    database_url: Option<String>,
    salesforce_down: bool,
) -> anyhow::Result<()> {
    let backend = match &database_url {
        Some(url) if url.starts_with("postgres") => "PostgreSQL",
        _ => "SQLite (scratch file, WAL, synchronous=FULL)",
    };
    let stack = start(database_url).await?;
    if salesforce_down {
        stack.emulator.set_faults(sf_emulator::Faults {
            error_rate: 1.0,
            ..Default::default()
        });
    }
    println!(
        "Sending {requests} escalations of {turns} turns, {concurrency} at a time, on {backend}…"
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let url = format!("{}/v1/escalations", stack.app.url());
    let run = uuid::Uuid::now_v7().simple().to_string();
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..requests)
            .map(|i| body(&format!("acc-{run}-{i}"), turns).to_string())
            .collect(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, token, bodies, next) = (
            http.clone(),
            url.clone(),
            stack.token.clone(),
            Arc::clone(&bodies),
            Arc::clone(&next),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= bodies.len() {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let t = Instant::now();
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(bodies[i].clone())
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status().as_u16() == 202,
                    "got {}",
                    response.status()
                );
                latencies.push(t.elapsed());
                if (i + 1) % 500 == 0 {
                    eprintln!("  {} / {} accepted", i + 1, bodies.len());
                }
            }
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(latencies.len() - 1)]
    };
    println!();
    println!("accepted:      {}", latencies.len());
    println!("elapsed:       {:.2} s", elapsed.as_secs_f64());
    println!(
        "throughput:    {:.0} escalations/s",
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!("latency p50:   {:.1} ms", pct(0.50).as_secs_f64() * 1000.0);
    println!("latency p99:   {:.1} ms", pct(0.99).as_secs_f64() * 1000.0);
    println!(
        "latency max:   {:.1} ms",
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    if salesforce_down {
        println!("(Salesforce was down: the breaker kept the worker idle)");
    } else {
        println!("(the worker was creating Cases in the emulator at the same time)");
    }
    stack.app.stop().await;
    stack.emulator.shutdown().await;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize)
        .saturating_sub(1)
        .min(sorted.len() - 1)]
}

async fn drain(
    escalations: usize,
    latency_ms: u64,
    max_concurrency: Option<usize>,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let stack = start_with(database_url, |c| {
        if let Some(n) = max_concurrency {
            c.salesforce.max_concurrency = n;
        }
    })
    .await?;
    let in_flight = stack.app.state.config.salesforce.max_concurrency;
    stack.emulator.set_faults(sf_emulator::Faults {
        latency_ms,
        ..Default::default()
    });
    let driver = Driver::new(stack.app.url(), stack.token.clone())?;
    let ceiling = in_flight as f64 * 1000.0 / latency_ms.max(1) as f64;
    println!(
        "Salesforce answers every call after {latency_ms} ms; {escalations} escalations, up to {in_flight} Salesforce calls in flight (ceiling {ceiling:.0} jobs/s)…"
    );
    let run = uuid::Uuid::now_v7().simple().to_string();
    let store = &stack.app.state.store;
    // The burst arrives 32 requests at a time; the clock runs from its first POST.
    let started = Instant::now();
    let driver = std::sync::Arc::new(driver);
    let posted: Vec<anyhow::Result<_>> = futures_util::stream::iter(0..escalations)
        .map(|i| {
            let driver = std::sync::Arc::clone(&driver);
            let run = run.clone();
            async move {
                driver
                    .escalate(&body(&format!("drain-{run}-{i}"), 10))
                    .await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for result in posted {
        result?;
    }
    let queued_in = started.elapsed();
    let done_while_posting = count(store, "done").await?;
    loop {
        if count(store, "done").await? as usize >= escalations {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "drain took over 10 minutes"
        );
    }
    let elapsed = started.elapsed();
    let mut to_case = accept_to_case(store, &format!("drain-{run}-")).await?;
    to_case.sort();
    let rate = escalations as f64 / elapsed.as_secs_f64();
    let drained = (escalations as i64 - done_while_posting) as f64
        / (elapsed - queued_in).as_secs_f64().max(0.001);
    println!();
    println!(
        "burst posted:   {escalations} in {:.2} s ({done_while_posting} jobs done meanwhile)",
        queued_in.as_secs_f64()
    );
    println!(
        "drain:          {drained:.1} jobs/s once the burst was queued ({:.0} % of the ceiling)",
        drained / ceiling * 100.0
    );
    println!(
        "end to end:     {rate:.1} jobs/s from the first POST to the last job done, {:.2} s ({:.0} % of the ceiling)",
        elapsed.as_secs_f64(),
        rate / ceiling * 100.0
    );
    println!(
        "accept → Case:  p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        percentile(&to_case, 0.50).as_secs_f64(),
        percentile(&to_case, 0.99).as_secs_f64(),
        to_case.last().map_or(0.0, Duration::as_secs_f64),
    );
    stack.app.stop().await;
    stack.emulator.shutdown().await;
    Ok(())
}

/// For each escalated session whose id starts with `prefix`: from its
/// acceptance to the Case being recorded.
async fn accept_to_case(
    store: &crate::store::Store,
    prefix: &str,
) -> anyhow::Result<Vec<Duration>> {
    use crate::store::session;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let sessions = session::Entity::find()
        .filter(session::Column::Id.starts_with(prefix))
        .filter(session::Column::Status.eq("escalated"))
        .all(store.connection())
        .await?;
    Ok(sessions
        .into_iter()
        .map(|s| (s.updated_at - s.created_at).to_std().unwrap_or_default())
        .collect())
}

async fn count(store: &crate::store::Store, state: &str) -> anyhow::Result<i64> {
    Ok(store
        .job_counts()
        .await?
        .into_iter()
        .find(|(s, _)| s == state)
        .map_or(0, |(_, n)| n))
}

async fn outage(seconds: u64, rate: u64, database_url: Option<String>) -> anyhow::Result<()> {
    let stack = start(database_url).await?;
    let config = stack.app.state.config.clone();
    let http = reqwest::Client::new();
    let url = format!("{}/v1/escalations", stack.app.url());
    let run = uuid::Uuid::now_v7().simple().to_string();
    println!(
        "Salesforce answers 503 to everything for {seconds} s while {rate} escalations/s arrive (breaker: {} failures, {} s open)…",
        config.salesforce.breaker_failure_threshold, config.salesforce.breaker_open_secs
    );
    stack.emulator.set_faults(sf_emulator::Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    let calls_before = stack.emulator.stats().api_calls;
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let id = format!("outage-{run}-{}", ids.len());
        let t = Instant::now();
        let response = http
            .post(&url)
            .bearer_auth(&stack.token)
            .json(&body(&id, 10))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().as_u16() == 202,
            "got {}",
            response.status()
        );
        latencies.push(t.elapsed());
        ids.push(id);
        if ids.len() % (rate as usize * 10) == 0 {
            eprintln!(
                "  {:>3} s: {} accepted",
                started.elapsed().as_secs(),
                ids.len()
            );
        }
    }
    let outage_secs = started.elapsed().as_secs_f64();
    let calls_during = stack.emulator.stats().api_calls - calls_before;
    stack.emulator.set_faults(sf_emulator::Faults::default());
    let recovered = Instant::now();
    let driver = Driver::new(stack.app.url(), stack.token.clone())?;
    for id in &ids {
        driver.wait_escalated(id, Duration::from_secs(600)).await?;
    }
    let drain = recovered.elapsed();
    latencies.sort();
    println!();
    println!("accepted during the outage: {} (all 202)", ids.len());
    println!(
        "accept latency p50 / p99:   {:.1} ms / {:.1} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0
    );
    println!(
        "Salesforce calls during it: {calls_during} in {outage_secs:.0} s ({} to open the breaker, then probes; at most one per {} s)",
        config.salesforce.breaker_failure_threshold, config.salesforce.breaker_open_secs
    );
    println!(
        "drained after recovery:     {} Cases in {:.1} s",
        ids.len(),
        drain.as_secs_f64()
    );
    stack.app.stop().await;
    stack.emulator.shutdown().await;
    Ok(())
}
