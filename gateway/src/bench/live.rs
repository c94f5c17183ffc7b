//! `handoff bench live`: memory per live session and the latency the gateway
//! adds between a rep's message and the customer's webhook, with N live chats
//! open at once.
//!
//! Each live session holds one Server-Sent Events stream to MIAW, so N sessions
//! are N sockets on each side. The emulator therefore runs in a child process
//! (`handoff bench emulator-child`, this same executable), and the gateway, the
//! customer's chat webhook receiver and the load driver in this one: 10,000
//! streams then need 10,000 descriptors per process instead of 20,000 in one.
//!
//! Phases: open N chats (escalate over HTTP, wait until every conversation is
//! waiting in the rep console, every stream is held and has shown its
//! MessagingSession, and every opening message was delivered); read the RSS;
//! accept every chat at the console (wait for N `agent.joined` webhooks); read
//! the RSS again; then send M rep messages at a fixed rate to random sessions
//! and time each from just before the console POST to its webhook's arrival.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

use super::percentile;
use crate::app::{Application, SANDBOX_MIAW_DEPLOYMENT};
use crate::config::Config;
use crate::store::{LiveState, Scope, live_session, session};

/// The chat webhook secret (the Standard Webhooks specification's example).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Rep messages carry `bench-msg-<k>`, so the receiver knows which one arrived.
const MARKER: &str = "bench-msg-";
/// Token requests per minute the child emulator allows (Salesforce: 200 per
/// org; every session needs one, so opening 10,000 at 200 a minute would take
/// 50 minutes).
const BENCH_TOKEN_REQUESTS_PER_MINUTE: u32 = 1_000_000;
/// Each phase gives up after this long (a hang guard, not a measurement).
const PHASE_TIMEOUT: Duration = Duration::from_secs(1800);

pub struct LiveArgs {
    pub sessions: usize,
    pub messages: usize,
    pub rate: u64,
    pub concurrency: usize,
    pub turns: usize,
    pub seed: u64,
    pub supervisor_interval_ms: Option<u64>,
    pub worker_concurrency: Option<usize>,
}

/// `handoff bench emulator-child`: serves the emulator (MIAW token limit raised
/// for the bench) on loopback, prints its URL on the first line of stdout, and
/// stops when stdin closes (the parent exited or dropped it).
pub async fn emulator_child() -> anyhow::Result<()> {
    let mut config = sf_emulator::EmulatorConfig::default();
    config.miaw.token_requests_per_minute = BENCH_TOKEN_REQUESTS_PER_MINUTE;
    let emulator = sf_emulator::spawn(config, TcpListener::bind("127.0.0.1:0").await?).await?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", emulator.url())?;
        out.flush()?;
    }
    let _ = tokio::task::spawn_blocking(|| {
        std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())
    })
    .await;
    emulator.shutdown().await;
    Ok(())
}

/// The child emulator: killed when dropped; its stdin is its lifeline.
pub(super) struct Child {
    pub(super) process: tokio::process::Child,
    pub(super) url: String,
}

pub(super) async fn spawn_child() -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find this executable to re-run it")?;
    let mut process = tokio::process::Command::new(exe)
        .args(["bench", "emulator-child"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the emulator child process")?;
    let stdout = process.stdout.take().context("the child has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("the emulator child did not start within 30 s")??
        .context("the emulator child exited before naming its URL")?;
    Ok(Child { process, url })
}

/// What the customer's chat backend got.
#[derive(Default)]
struct Inbox {
    /// Webhooks by `type`.
    by_type: Mutex<HashMap<String, u64>>,
    bad_signatures: AtomicU64,
    /// Rep message k → when its webhook arrived.
    arrivals: Mutex<HashMap<usize, Instant>>,
}

impl Inbox {
    fn count(&self, kind: &str) -> u64 {
        self.by_type.lock().unwrap().get(kind).copied().unwrap_or(0)
    }

    fn total(&self) -> u64 {
        self.by_type.lock().unwrap().values().sum()
    }
}

/// The AI product's chat backend on loopback: notes the arrival time of each
/// rep message before anything else, then checks the signature.
async fn spawn_receiver(inbox: Arc<Inbox>) -> anyhow::Result<String> {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};

    let secret = channels::webhook::WebhookSecret::parse(&SECRET.to_owned().into())
        .map_err(|e| anyhow::anyhow!("the bench's webhook secret: {e}"))?;
    let handler = move |headers: HeaderMap, body: Bytes| {
        let arrived = Instant::now();
        let (secret, inbox) = (secret.clone(), Arc::clone(&inbox));
        async move {
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let kind = json["type"].as_str().unwrap_or("?").to_string();
            if let Some(k) = json["data"]["text"]
                .as_str()
                .and_then(|t| t.strip_prefix(MARKER))
                .and_then(|k| k.parse::<usize>().ok())
            {
                inbox.arrivals.lock().unwrap().entry(k).or_insert(arrived);
            }
            *inbox.by_type.lock().unwrap().entry(kind).or_insert(0) += 1;
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            if secret
                .verify(
                    &header("webhook-id"),
                    &header("webhook-timestamp"),
                    &header("webhook-signature"),
                    &body,
                    chrono::Utc::now(),
                )
                .is_err()
            {
                inbox.bad_signatures.fetch_add(1, Ordering::Relaxed);
            }
            StatusCode::NO_CONTENT
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/chat-webhook", listener.local_addr()?);
    let router = axum::Router::new().route("/chat-webhook", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

/// Resident set size of a process in KiB (`VmRSS` in `/proc/<pid>/status`).
pub(super) fn rss_kib(pid: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status (Linux only)"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line in /proc/<pid>/status")
}

/// A chat escalation of `turns` turns (the same transcript as the other benches).
fn chat(session_id: &str, turns: usize, hook: &str) -> Value {
    let mut body = super::body(session_id, turns);
    body["channel"] = json!("chat");
    body["language"] = json!("en");
    body["priority"] = json!("medium");
    body["reply_to"] = json!({"webhook_url": hook});
    body
}

/// Polls `probe` every 2 s (listing 10,000 conversations is not free), printing its progress every 5 s, until it says done.
pub(super) async fn wait_until<F, Fut>(what: &str, mut probe: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(bool, String)>>,
{
    let started = Instant::now();
    let mut shown = Instant::now();
    loop {
        let (done, progress) = probe().await?;
        if done {
            eprintln!(
                "  {what}: {progress} ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if shown.elapsed() >= Duration::from_secs(5) {
            eprintln!("  … {what}: {progress}");
            shown = Instant::now();
        }
        if started.elapsed() > PHASE_TIMEOUT {
            bail!("gave up waiting for {what}: {progress}");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

pub(super) async fn pending_jobs(store: &crate::store::Store) -> anyhow::Result<i64> {
    Ok(store
        .job_counts()
        .await?
        .into_iter()
        .filter(|(state, _)| state == "queued" || state == "running")
        .map(|(_, n)| n)
        .sum())
}

pub async fn run(args: LiveArgs) -> anyhow::Result<()> {
    let n = args.sessions;
    anyhow::ensure!(n > 0, "--sessions must be at least 1");
    let me = std::process::id().to_string();
    let child = spawn_child().await?;
    let child_pid = child
        .process
        .id()
        .context("the emulator child already exited")?
        .to_string();
    let inbox = Arc::new(Inbox::default());
    let hook = spawn_receiver(Arc::clone(&inbox)).await?;

    let defaults = sf_emulator::EmulatorConfig::default();
    let app_config = defaults
        .connected_apps
        .first()
        .cloned()
        .context("emulator has no app")?;
    let dir = tempfile::tempdir()?;
    let mut config = Config::defaults();
    // What a run stores is sealed with a key that lives as long as the run.
    config.secrets.ephemeral_fallback = true;
    config.database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    config.salesforce.login_url = child.url.clone();
    config.salesforce.credentials = Some(salesforce::Credentials::ClientCredentials {
        client_id: app_config.client_id,
        client_secret: app_config.client_secret.into(),
    });
    config.miaw.enabled = true;
    config.miaw.url = child.url.clone();
    config.miaw.org_id = defaults.org_id.clone();
    config.miaw.deployment = SANDBOX_MIAW_DEPLOYMENT.into();
    // Tuned for the bench: enough stream slots for every session, and opening
    // (MIAW token, conversation, opening messages) 32 calls at a time.
    config.miaw.max_streams = config.miaw.max_streams.max(n);
    config.salesforce.max_concurrency = 32;
    // Opening thousands of chats on one SQLite writer takes longer than the
    // default 5 minutes after which an unopened chat becomes a Case.
    config.miaw.open_deadline_secs = config.miaw.open_deadline_secs.max(3600);
    if let Some(ms) = args.supervisor_interval_ms {
        config.miaw.supervisor_interval_ms = ms;
    }
    if let Some(n) = args.worker_concurrency {
        config.worker.concurrency = n;
    }
    config.channels.insert(
        "chat".into(),
        channels::ChannelConfig::Chat(channels::ChatConfig {
            enabled: true,
            webhook_secret: Some(SECRET.into()),
            webhook_secret_file: None,
            allow_private_webhook_urls: true,
        }),
    );
    let app = Application::build(config, TcpListener::bind("127.0.0.1:0").await?).await?;
    let store = app.state().store.clone();
    let token = store
        .create_token("bench", &[Scope::Escalate])
        .await?
        .secret;
    let app = app.spawn()?;
    let worker_cfg = app.state.config.worker.clone();
    println!(
        "Live bench: {n} chats of {} turns, {} rep messages at {}/s; gateway, receiver and driver in process {me}, emulator in child {child_pid}.",
        args.turns, args.messages, args.rate
    );
    println!(
        "Settings: SQLite (scratch file), miaw.max_streams = {}, salesforce.max_concurrency = 32, worker.concurrency = {}, worker.poll_interval_ms = {}, miaw.supervisor_interval_ms = {}; emulator MIAW token_requests_per_minute = {BENCH_TOKEN_REQUESTS_PER_MINUTE}.",
        app.state.config.miaw.max_streams,
        worker_cfg.concurrency,
        worker_cfg.poll_interval_ms,
        app.state.config.miaw.supervisor_interval_ms,
    );

    // Let the runtime, the pools and the first allocations settle, then read the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_kib(&me)?;
    let child_before = rss_kib(&child_pid)?;

    // Phase 1: open N live chats.
    eprintln!("Opening {n} live chats ({} at a time)…", args.concurrency);
    let run_id = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
    let ids: Vec<String> = (0..n).map(|i| format!("live-{run_id}-{i}")).collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let opened = Instant::now();
    let turns = args.turns;
    let escalations = format!("{}/v1/escalations", app.url());
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(ids.iter().cloned())
        .map(|id| {
            let (http, url, token, hook) = (
                http.clone(),
                escalations.clone(),
                token.clone(),
                hook.clone(),
            );
            async move {
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&chat(&id, turns, &hook))
                    .send()
                    .await?;
                let status = response.status();
                if status.as_u16() != 202 {
                    bail!(
                        "escalation answered {status}: {}",
                        response.text().await.unwrap_or_default()
                    );
                }
                let body: Value = response.json().await?;
                anyhow::ensure!(
                    body["route"] == "messaging",
                    "not routed to live messaging: {body}"
                );
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    for r in results {
        r?;
    }
    eprintln!(
        "  {n} escalations accepted ({:.1} s)",
        opened.elapsed().as_secs_f64()
    );
    let console = format!("{}/__emulator/miaw", child.url);
    wait_until("conversations waiting in the rep console", || {
        let (http, console) = (http.clone(), console.clone());
        async move {
            let body: Value = http
                .get(format!("{console}/conversations"))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let waiting = body["conversations"]
                .as_array()
                .map_or(0, |c| c.iter().filter(|c| c["status"] == "waiting").count());
            Ok((waiting >= n, format!("{waiting} / {n}")))
        }
    })
    .await?;
    let db = store.connection().clone();
    wait_until(
        "streams held, each having shown its MessagingSession",
        || {
            let db = db.clone();
            async move {
                use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
                let held = live_session::Entity::find()
                    .filter(live_session::Column::State.eq(LiveState::Waiting.as_str()))
                    .filter(live_session::Column::Owner.is_not_null())
                    .count(&db)
                    .await?;
                let seen = session::Entity::find()
                    .filter(session::Column::SalesforceMessagingSessionId.is_not_null())
                    .count(&db)
                    .await?;
                let done = held as usize >= n && seen as usize >= n;
                Ok((done, format!("{held} held, {seen} seen / {n}")))
            }
        },
    )
    .await?;
    wait_until("opening messages delivered to the receiver", || {
        let (store, inbox) = (store.clone(), Arc::clone(&inbox));
        async move {
            let pending = pending_jobs(&store).await?;
            Ok((
                pending == 0,
                format!("{} webhooks, {pending} jobs pending", inbox.total()),
            ))
        }
    })
    .await?;
    let open_secs = opened.elapsed().as_secs_f64();
    let opening_webhooks = inbox.total();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_open = rss_kib(&me)?;
    let child_open = rss_kib(&child_pid)?;
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    eprintln!(
        "  every stream up and idle: RSS {:.1} MiB → {:.1} MiB, {fds} descriptors open",
        rss_before as f64 / 1024.0,
        rss_open as f64 / 1024.0
    );

    // Phase 2: a rep accepts each chat.
    eprintln!("Accepting {n} chats at the rep console…");
    let accepted = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(ids.iter().cloned())
        .map(|id| {
            let (http, console) = (http.clone(), console.clone());
            async move {
                let conversation = salesforce::miaw::ConversationId::for_session(&id);
                let response = http
                    .post(format!("{console}/conversations/{conversation}/accept"))
                    .json(&json!({"rep_name": "Bench Rep"}))
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "accept answered {}",
                    response.status()
                );
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    for r in results {
        r?;
    }
    wait_until("agent.joined webhooks", || {
        let (store, inbox) = (store.clone(), Arc::clone(&inbox));
        async move {
            let joined = inbox.count("agent.joined");
            let pending = pending_jobs(&store).await?;
            Ok((
                joined as usize >= n && pending == 0,
                format!("{joined} / {n}, {pending} jobs pending"),
            ))
        }
    })
    .await?;
    let accept_secs = accepted.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_active = rss_kib(&me)?;

    // Phase 3: rep messages at a fixed rate to random sessions.
    let m = args.messages;
    eprintln!(
        "Sending {m} rep messages at {}/s to random sessions…",
        args.rate
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let targets: Vec<usize> = (0..m).map(|_| rng.random_range(0..n)).collect();
    let starts: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; m]));
    let posts: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::with_capacity(m)));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1) as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sends = tokio::task::JoinSet::new();
    let sending = Instant::now();
    for (k, &target) in targets.iter().enumerate() {
        ticker.tick().await;
        let conversation = salesforce::miaw::ConversationId::for_session(&ids[target]);
        let (http, console, starts, posts) = (
            http.clone(),
            console.clone(),
            Arc::clone(&starts),
            Arc::clone(&posts),
        );
        sends.spawn(async move {
            let url = format!("{console}/conversations/{conversation}/messages");
            let body = json!({"text": format!("{MARKER}{k}")});
            let t0 = Instant::now();
            starts.lock().unwrap()[k] = Some(t0);
            let response = http.post(url).json(&body).send().await?;
            posts.lock().unwrap().push(t0.elapsed());
            anyhow::ensure!(
                response.status().as_u16() == 202,
                "the console answered {} to a rep message",
                response.status()
            );
            Ok(())
        });
    }
    while let Some(r) = sends.join_next().await {
        r??;
    }
    let offered = m as f64 / sending.elapsed().as_secs_f64();
    wait_until("rep messages delivered", || {
        let inbox = Arc::clone(&inbox);
        async move {
            let arrived = inbox.arrivals.lock().unwrap().len();
            Ok((arrived >= m, format!("{arrived} / {m}")))
        }
    })
    .await?;
    let arrivals = inbox.arrivals.lock().unwrap().clone();
    let starts = starts.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = (0..m)
        .filter_map(|k| Some(arrivals.get(&k)?.saturating_duration_since(starts[k]?)))
        .collect();
    latencies.sort();
    let mut posts = posts.lock().unwrap().clone();
    posts.sort();
    let fds_end = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());

    let kib = |k: f64| k / n as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!();
    println!(
        "live sessions:            {n} (opened in {open_secs:.1} s, accepted in {accept_secs:.1} s)"
    );
    println!(
        "webhooks received:        {} ({opening_webhooks} while opening; {} bad signatures)",
        inbox.total(),
        inbox.bad_signatures.load(Ordering::Relaxed)
    );
    println!("descriptors (gateway):    {fds} with every stream up, {fds_end} at the end");
    println!(
        "gateway RSS:              {:.1} MiB before, {:.1} MiB with {n} streams idle, {:.1} MiB with every chat accepted",
        rss_before as f64 / 1024.0,
        rss_open as f64 / 1024.0,
        rss_active as f64 / 1024.0
    );
    println!(
        "memory per live session:  {:.1} KiB (idle streams), {:.1} KiB (accepted)",
        kib(rss_open.saturating_sub(rss_before) as f64),
        kib(rss_active.saturating_sub(rss_before) as f64)
    );
    println!(
        "emulator child RSS:       {:.1} MiB → {:.1} MiB ({:.1} KiB per session; not counted above)",
        child_before as f64 / 1024.0,
        child_open as f64 / 1024.0,
        kib(child_open.saturating_sub(child_before) as f64)
    );
    println!(
        "rep messages:             {} of {m} delivered, offered at {offered:.1}/s",
        latencies.len()
    );
    println!(
        "console POST → callback:  p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    println!(
        "  of which the console POST round trip: p50 {:.1} ms, p99 {:.1} ms",
        ms(percentile(&posts, 0.50)),
        ms(percentile(&posts, 0.99))
    );
    println!(
        "(an upper bound of the gateway's share: it includes the emulator emitting the event and the receiver's HTTP)"
    );
    // No graceful stop: letting go of N leases one by one would only time the
    // shutdown. The child emulator is killed when `child` drops.
    drop(app);
    drop(child);
    Ok(())
}
