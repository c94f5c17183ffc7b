//! `handoff bench channels`: with N live SMS and/or WhatsApp sessions open at once, the
//! latency of both directions through the gateway:
//!
//! - **(a) customer's text → in front of the rep**: from just before the provider emulator
//!   POSTs the signed webhook (Twilio's `X-Twilio-Signature` form, or Meta's
//!   `X-Hub-Signature-256` envelope) to the moment the MIAW emulator stores the message in
//!   the conversation (its own entry timestamp, whole milliseconds).
//! - **(b) rep's message → provider API called**: from just before the rep's console POST to
//!   the moment the provider emulator accepts the gateway's send (its own timestamp,
//!   microseconds: Twilio's `date_created`, the WhatsApp emulator's `accepted_at`).
//!
//! As in `bench live`, the Salesforce emulator (MIAW and its rep console) runs in a child
//! process, the gateway and the driver in this one. The provider emulators
//! (`channel-emulator`) run in this process too: they sign every webhook as the providers do
//! and the gateway verifies each. All timestamps are the system's wall clock, read in both
//! processes, so no polling interval enters a figure: the driver waits for the messages by
//! polling every 2 s and then reads when each arrived.
//!
//! To isolate what the gateway adds, the fixed parts of each path are also timed alone,
//! with nothing in between: the same signed webhook to a bare receiver, the MIAW message
//! POST made with the gateway's own client, and the provider's send API called directly.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use channel_emulator::twilio::TwilioEmulator;
use channel_emulator::whatsapp::WhatsappEmulator;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::live::{pending_jobs, spawn_child, wait_until};
use super::percentile;
use crate::app::{Application, SANDBOX_MIAW_DEPLOYMENT};
use crate::config::Config;
use crate::sandbox_channels::{self, ChannelEmulators, SMS_NUMBER};
use crate::store::{LiveState, Scope, live_session, session};

/// Customer messages carry `bench-in-<k>`, rep messages `bench-out-<k>`.
const IN_MARKER: &str = "bench-in-";
const OUT_MARKER: &str = "bench-out-";
/// The rep's name at the console.
const REP: &str = "Bench Rep";
/// The most sessions per channel (customer numbers are `+1415555NNNN` / `+1628555NNNN`).
const MAX_PER_CHANNEL: usize = 10_000;
/// Customer messages the gateway posts to one conversation per rolling minute by default
/// (`miaw.messages_per_minute`, Salesforce's limit): above it messages wait in the queue.
const MIAW_MESSAGES_PER_MINUTE: f64 = 22.0;

/// Which channels the bench opens sessions on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChannelMode {
    Sms,
    Whatsapp,
    /// Half the sessions on each.
    Both,
}

pub struct ChannelsArgs {
    pub sessions: usize,
    pub channel: ChannelMode,
    pub messages: usize,
    pub rate: u64,
    pub concurrency: usize,
    pub turns: usize,
    pub seed: u64,
    pub baseline: usize,
    pub status_delay_ms: u64,
    pub worker_concurrency: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Sms,
    Whatsapp,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sms => "sms",
            Kind::Whatsapp => "whatsapp",
        }
    }
}

/// One live session and its customer.
struct Session {
    id: String,
    kind: Kind,
    /// The customer's number (E.164).
    phone: String,
    conversation: String,
}

/// The provider emulators, shared with the sending tasks.
#[derive(Clone)]
struct Providers {
    twilio: Option<Arc<TwilioEmulator>>,
    whatsapp: Option<Arc<WhatsappEmulator>>,
}

impl Providers {
    /// The customer texts `text`: the emulator signs it and POSTs it to the gateway; the
    /// webhook's HTTP status.
    async fn customer_writes(&self, kind: Kind, phone: &str, text: &str) -> anyhow::Result<u16> {
        let result = match kind {
            Kind::Sms => {
                let twilio = self.twilio.as_ref().context("no Twilio emulator")?;
                twilio.inbound(phone, SMS_NUMBER, text, &[]).await
            }
            Kind::Whatsapp => {
                let wa = self.whatsapp.as_ref().context("no WhatsApp emulator")?;
                wa.inbound_text(phone.trim_start_matches('+'), text).await
            }
        };
        Ok(result
            .map_err(|e| anyhow::anyhow!("the emulator could not post: {e}"))?
            .status)
    }

    /// Rep message k → when the provider accepted the gateway's send of it.
    fn sent_markers(&self) -> HashMap<usize, DateTime<Utc>> {
        let mut found = HashMap::new();
        if let Some(twilio) = &self.twilio {
            for m in twilio.sent() {
                if let Some(k) = marker(&m.body, OUT_MARKER) {
                    found.entry(k).or_insert(m.date_created);
                }
            }
        }
        if let Some(wa) = &self.whatsapp {
            for m in wa.sent() {
                if let Some(k) = m.text.as_deref().and_then(|t| marker(t, OUT_MARKER)) {
                    found.entry(k).or_insert(m.accepted_at);
                }
            }
        }
        found
    }

    /// Waits until every status report scheduled so far has been posted.
    async fn settled(&self) {
        if let Some(twilio) = &self.twilio {
            twilio.settled().await;
        }
        if let Some(wa) = &self.whatsapp {
            wa.settled().await;
        }
    }
}

/// `k` of the first `<prefix><k>` in `text`.
fn marker(text: &str, prefix: &str) -> Option<usize> {
    let start = text.find(prefix)? + prefix.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A live escalation of `turns` turns on `kind` for the customer at `phone`; the turns are
/// from the last minutes (WhatsApp's 24-hour window counts from the newest customer turn).
fn escalation(id: &str, kind: Kind, phone: &str, turns: usize) -> Value {
    let mut body = super::body(id, turns);
    let now = Utc::now();
    if let Some(transcript) = body["transcript"].as_array_mut() {
        let n = transcript.len();
        for (i, turn) in transcript.iter_mut().enumerate() {
            let at = now - chrono::Duration::seconds((n - i) as i64 * 5);
            turn["at"] = json!(at.to_rfc3339());
        }
    }
    body["channel"] = json!(kind.name());
    body["customer"] = json!({"name": "Bench Customer", "phone": phone});
    body["language"] = json!("en");
    body["priority"] = json!("medium");
    body
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `(t1 - t0)`, or zero when the whole-millisecond stamp `t1` reads earlier than `t0`.
fn between(t0: DateTime<Utc>, t1: DateTime<Utc>) -> Duration {
    (t1 - t0).to_std().unwrap_or_default()
}

/// The load averages (`/proc/loadavg`), for the record.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// One row of figures.
fn row(label: &str, samples: &mut [Duration]) -> String {
    samples.sort();
    format!(
        "  {label:<58} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
        samples.len(),
        ms(percentile(samples, 0.50)),
        ms(percentile(samples, 0.90)),
        ms(percentile(samples, 0.99)),
        ms(samples.last().copied().unwrap_or_default()),
    )
}

fn header() -> String {
    format!(
        "  {:<58} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"
    )
}

/// Sends `count` items at `rate` per second, each through `send(k)` in its own task, and
/// waits for all of them.
async fn at_rate<F, Fut>(count: usize, rate: u64, send: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for k in 0..count {
        ticker.tick().await;
        tasks.spawn(send(k));
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// A message entry in the rep console: role, text, when the emulator stored it.
type Entry = (String, String, DateTime<Utc>);

/// The MIAW emulator's rep console in the child.
#[derive(Clone)]
struct Console {
    http: reqwest::Client,
    base: String,
}

impl Console {
    /// Every message entry of a conversation: (role, text, when the emulator stored it).
    async fn entries(&self, conversation: &str) -> anyhow::Result<Vec<Entry>> {
        let body: Value = self
            .http
            .get(format!("{}/conversations/{conversation}", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(body["entries"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| {
                        let at = DateTime::parse_from_rfc3339(e["at"].as_str()?).ok()?;
                        Some((
                            e["role"].as_str()?.to_owned(),
                            e["text"].as_str()?.to_owned(),
                            at.with_timezone(&Utc),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// For the conversations named: marker k → when the emulator stored the message of
    /// `role` carrying `<prefix><k>`.
    async fn stamps(
        &self,
        conversations: &HashSet<String>,
        role: &str,
        prefix: &str,
    ) -> anyhow::Result<HashMap<usize, DateTime<Utc>>> {
        let fetched: Vec<anyhow::Result<Vec<Entry>>> =
            futures_util::stream::iter(conversations.iter().cloned())
                .map(|c| {
                    let console = self.clone();
                    async move { console.entries(&c).await }
                })
                .buffer_unordered(8)
                .collect()
                .await;
        let mut found = HashMap::new();
        for entries in fetched {
            for (r, text, at) in entries? {
                if r == role
                    && let Some(k) = marker(&text, prefix)
                {
                    found.entry(k).or_insert(at);
                }
            }
        }
        Ok(found)
    }
}

pub async fn run(args: ChannelsArgs) -> anyhow::Result<()> {
    let n = args.sessions;
    anyhow::ensure!(n > 0, "--sessions must be at least 1");
    anyhow::ensure!(args.messages > 0, "--messages must be at least 1");
    let kinds: Vec<Kind> = match args.channel {
        ChannelMode::Sms => vec![Kind::Sms],
        ChannelMode::Whatsapp => vec![Kind::Whatsapp],
        ChannelMode::Both => vec![Kind::Sms, Kind::Whatsapp],
    };
    let per_kind = n.div_ceil(kinds.len());
    anyhow::ensure!(
        per_kind <= MAX_PER_CHANNEL,
        "at most {MAX_PER_CHANNEL} sessions per channel (one customer number each)"
    );
    let load_at_start = load();
    let me = std::process::id().to_string();
    let child = spawn_child().await?;
    let child_pid = child
        .process
        .id()
        .context("the emulator child already exited")?
        .to_string();

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let public_url = format!("http://{}", listener.local_addr()?);
    let mut emulators = ChannelEmulators::default();
    if kinds.contains(&Kind::Sms) {
        let twilio = ChannelEmulators::start_twilio(&public_url)
            .await
            .map_err(anyhow::Error::msg)?;
        twilio.set_status_delay(Duration::from_millis(args.status_delay_ms));
        emulators.twilio = Some(twilio);
    }
    if kinds.contains(&Kind::Whatsapp) {
        let wa = ChannelEmulators::start_whatsapp(&public_url)
            .await
            .map_err(anyhow::Error::msg)?;
        wa.set_status_delay(Duration::from_millis(args.status_delay_ms));
        emulators.whatsapp = Some(wa);
    }
    let providers = Providers {
        twilio: emulators.twilio.clone(),
        whatsapp: emulators.whatsapp.clone(),
    };

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
    config.public_url = Some(public_url.clone());
    config.salesforce.login_url = child.url.clone();
    config.salesforce.credentials = Some(salesforce::Credentials::ClientCredentials {
        client_id: app_config.client_id,
        client_secret: app_config.client_secret.into(),
    });
    config.miaw.enabled = true;
    config.miaw.url = child.url.clone();
    config.miaw.org_id = defaults.org_id.clone();
    config.miaw.deployment = SANDBOX_MIAW_DEPLOYMENT.into();
    config.miaw.channels = kinds.iter().map(|k| k.name().to_owned()).collect();
    // As in `bench live`: a stream slot per session, opening 32 calls at a time, and no
    // Case fallback while thousands of chats open on one SQLite writer.
    config.miaw.max_streams = config.miaw.max_streams.max(n);
    config.salesforce.max_concurrency = 32;
    config.miaw.open_deadline_secs = config.miaw.open_deadline_secs.max(3600);
    if let Some(c) = args.worker_concurrency {
        config.worker.concurrency = c;
    }
    if let (Some(twilio), Some(channels::ChannelConfig::Sms(sms))) =
        (&emulators.twilio, config.channels.get_mut("sms"))
    {
        sandbox_channels::point_sms_at(sms, twilio);
    }
    if let (Some(wa), Some(channels::ChannelConfig::Whatsapp(whatsapp))) =
        (&emulators.whatsapp, config.channels.get_mut("whatsapp"))
    {
        sandbox_channels::point_whatsapp_at(whatsapp, wa);
    }
    let miaw_client_config = config.miaw.client_config();
    let app = Application::build(config, listener).await?;
    let store = app.state().store.clone();
    let token = store
        .create_token("bench", &[Scope::Escalate])
        .await?
        .secret;
    let app = app.spawn()?;
    let worker_cfg = app.state.config.worker.clone();
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    println!(
        "Channels bench: {n} live {} sessions of {} turns; {} customer texts and {} rep messages at {}/s; gateway, provider emulators and driver in process {me}, Salesforce emulator (MIAW) in child {child_pid}.",
        names.join(" + "),
        args.turns,
        args.messages,
        args.messages,
        args.rate
    );
    println!(
        "Settings: SQLite (scratch file), miaw.max_streams = {}, salesforce.max_concurrency = 32, worker.concurrency = {}, worker.poll_interval_ms = {}, miaw.supervisor_interval_ms = {}; provider status reports {} ms apart. Load average at start: {load_at_start}.",
        app.state.config.miaw.max_streams,
        worker_cfg.concurrency,
        worker_cfg.poll_interval_ms,
        app.state.config.miaw.supervisor_interval_ms,
        args.status_delay_ms,
    );
    // The customer texts one conversation gets in a minute, on average.
    let per_conversation = (args.messages as f64).min(args.rate as f64 * 60.0) / n as f64;
    if per_conversation > MIAW_MESSAGES_PER_MINUTE / 2.0 {
        println!(
            "Warning: {per_conversation:.1} customer texts per conversation per minute on average; near MIAW's {MIAW_MESSAGES_PER_MINUTE} a minute, some will wait in the gateway's queue."
        );
    }

    let run_id = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
    let sessions: Vec<Session> = (0..n)
        .map(|i| {
            let kind = kinds[i % kinds.len()];
            let j = i / kinds.len();
            let phone = match kind {
                Kind::Sms => format!("+1415555{j:04}"),
                Kind::Whatsapp => format!("+1628555{j:04}"),
            };
            let id = format!("chan-{run_id}-{}-{j}", kind.name());
            let conversation = salesforce::miaw::ConversationId::for_session(&id).to_string();
            Session {
                id,
                kind,
                phone,
                conversation,
            }
        })
        .collect();
    let sessions = Arc::new(sessions);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let console = Console {
        http: http.clone(),
        base: format!("{}/__emulator/miaw", child.url),
    };

    // Phase 0 (WhatsApp): each customer writes first, as they did to the bot: it opens
    // WhatsApp's 24-hour window at the provider. There is no session yet, so the gateway
    // records the message as unmatched.
    let wa_customers: Vec<String> = sessions
        .iter()
        .filter(|s| s.kind == Kind::Whatsapp)
        .map(|s| s.phone.clone())
        .collect();
    if !wa_customers.is_empty() {
        eprintln!(
            "Opening WhatsApp's window: {} customers write first…",
            wa_customers.len()
        );
        let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(wa_customers)
            .map(|phone| {
                let providers = providers.clone();
                async move {
                    let status = providers
                        .customer_writes(
                            Kind::Whatsapp,
                            &phone,
                            "Hello, I need help with my order.",
                        )
                        .await?;
                    anyhow::ensure!(status == 200, "the WhatsApp webhook answered {status}");
                    Ok(())
                }
            })
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
        for r in results {
            r?;
        }
    }

    // Phase 1: open N live sessions.
    eprintln!(
        "Opening {n} live sessions ({} at a time)…",
        args.concurrency
    );
    let opened = Instant::now();
    let escalations = format!("{}/v1/escalations", app.url());
    let turns = args.turns;
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(0..n)
        .map(|i| {
            let (http, url, token, sessions) = (
                http.clone(),
                escalations.clone(),
                token.clone(),
                Arc::clone(&sessions),
            );
            async move {
                let s = &sessions[i];
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&escalation(&s.id, s.kind, &s.phone, turns))
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
    wait_until("conversations waiting in the rep console", || {
        let (http, base) = (http.clone(), console.base.clone());
        async move {
            let body: Value = http
                .get(format!("{base}/conversations"))
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
    wait_until("opening messages sent to the customers' phones", || {
        let store = store.clone();
        async move {
            let pending = pending_jobs(&store).await?;
            Ok((pending == 0, format!("{pending} jobs pending")))
        }
    })
    .await?;
    let open_secs = opened.elapsed().as_secs_f64();

    // Phase 2: a rep accepts each conversation.
    eprintln!("Accepting {n} conversations at the rep console…");
    let accepted = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(0..n)
        .map(|i| {
            let (console, sessions) = (console.clone(), Arc::clone(&sessions));
            async move {
                let response = console
                    .http
                    .post(format!(
                        "{}/conversations/{}/accept",
                        console.base, sessions[i].conversation
                    ))
                    .json(&json!({"rep_name": REP}))
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
    wait_until("reps joined, every notice sent", || {
        let (db, store) = (db.clone(), store.clone());
        async move {
            use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
            let active = live_session::Entity::find()
                .filter(live_session::Column::State.eq(LiveState::Active.as_str()))
                .count(&db)
                .await?;
            let pending = pending_jobs(&store).await?;
            Ok((
                active as usize >= n && pending == 0,
                format!("{active} / {n} active, {pending} jobs pending"),
            ))
        }
    })
    .await?;
    providers.settled().await;
    let accept_secs = accepted.elapsed().as_secs_f64();
    let opening_sent = providers.twilio.as_ref().map_or(0, |t| t.sent().len())
        + providers.whatsapp.as_ref().map_or(0, |w| w.sent().len());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = super::live::rss_kib(&me)?;
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());

    let m = args.messages;
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let inbound_targets: Arc<Vec<usize>> =
        Arc::new((0..m).map(|_| rng.random_range(0..n)).collect());
    let outbound_targets: Arc<Vec<usize>> =
        Arc::new((0..m).map(|_| rng.random_range(0..n)).collect());

    // Phase 3 (a): customers text, through the provider's signed webhook.
    eprintln!(
        "(a) {m} customer texts at {}/s to random sessions…",
        args.rate
    );
    let in_starts: Arc<Mutex<Vec<Option<DateTime<Utc>>>>> = Arc::new(Mutex::new(vec![None; m]));
    let in_posts: Arc<Mutex<Vec<(Kind, Duration)>>> = Arc::new(Mutex::new(Vec::new()));
    let offered_in = at_rate(m, args.rate, |k| {
        let (providers, sessions, targets, starts, posts) = (
            providers.clone(),
            Arc::clone(&sessions),
            Arc::clone(&inbound_targets),
            Arc::clone(&in_starts),
            Arc::clone(&in_posts),
        );
        async move {
            let s = &sessions[targets[k]];
            let text = format!("{IN_MARKER}{k}");
            let t0 = Utc::now();
            let started = Instant::now();
            starts.lock().unwrap()[k] = Some(t0);
            let status = providers.customer_writes(s.kind, &s.phone, &text).await?;
            posts.lock().unwrap().push((s.kind, started.elapsed()));
            anyhow::ensure!(
                status == 200,
                "the {} webhook answered {status}",
                s.kind.name()
            );
            Ok(())
        }
    })
    .await?;
    let in_conversations: HashSet<String> = inbound_targets
        .iter()
        .map(|&i| sessions[i].conversation.clone())
        .collect();
    let in_stamps: Arc<Mutex<HashMap<usize, DateTime<Utc>>>> = Arc::default();
    wait_until("customer texts in front of the rep", || {
        let (store, console, conversations, stamps) = (
            store.clone(),
            console.clone(),
            in_conversations.clone(),
            Arc::clone(&in_stamps),
        );
        async move {
            let pending = pending_jobs(&store).await?;
            if pending > 0 {
                return Ok((false, format!("{pending} jobs pending")));
            }
            let found = console.stamps(&conversations, "EndUser", IN_MARKER).await?;
            let count = found.len();
            *stamps.lock().unwrap() = found;
            Ok((count >= m, format!("{count} / {m}")))
        }
    })
    .await?;

    // Phase 4 (b): the rep writes at the console.
    eprintln!(
        "(b) {m} rep messages at {}/s to random sessions…",
        args.rate
    );
    let out_starts: Arc<Mutex<Vec<Option<DateTime<Utc>>>>> = Arc::new(Mutex::new(vec![None; m]));
    let out_posts: Arc<Mutex<Vec<(Kind, Duration)>>> = Arc::new(Mutex::new(Vec::new()));
    let offered_out = at_rate(m, args.rate, |k| {
        let (console, sessions, targets, starts, posts) = (
            console.clone(),
            Arc::clone(&sessions),
            Arc::clone(&outbound_targets),
            Arc::clone(&out_starts),
            Arc::clone(&out_posts),
        );
        async move {
            let s = &sessions[targets[k]];
            let url = format!("{}/conversations/{}/messages", console.base, s.conversation);
            let body = json!({"text": format!("{OUT_MARKER}{k}")});
            let t0 = Utc::now();
            let started = Instant::now();
            starts.lock().unwrap()[k] = Some(t0);
            let response = console.http.post(url).json(&body).send().await?;
            posts.lock().unwrap().push((s.kind, started.elapsed()));
            anyhow::ensure!(
                response.status().as_u16() == 202,
                "the console answered {} to a rep message",
                response.status()
            );
            Ok(())
        }
    })
    .await?;
    let sent_stamps: Arc<Mutex<HashMap<usize, DateTime<Utc>>>> = Arc::default();
    wait_until("rep messages sent through the provider's API", || {
        let (providers, stamps) = (providers.clone(), Arc::clone(&sent_stamps));
        async move {
            let found = providers.sent_markers();
            let count = found.len();
            *stamps.lock().unwrap() = found;
            Ok((count >= m, format!("{count} / {m}")))
        }
    })
    .await?;
    let out_conversations: HashSet<String> = outbound_targets
        .iter()
        .map(|&i| sessions[i].conversation.clone())
        .collect();
    let rep_stamps = console
        .stamps(&out_conversations, "Agent", OUT_MARKER)
        .await?;
    providers.settled().await;

    // Phase 5: the fixed parts alone.
    eprintln!(
        "Fixed parts alone: {} of each, at {}/s…",
        args.baseline, args.rate
    );
    let bare = spawn_bare_receiver().await?;
    let mut webhook_alone: HashMap<Kind, Vec<Duration>> = HashMap::new();
    let mut send_alone: HashMap<Kind, Vec<Duration>> = HashMap::new();
    for &kind in &kinds {
        webhook_alone.insert(
            kind,
            bare_webhooks(kind, &bare, args.baseline, args.rate).await?,
        );
        let customer = sessions
            .iter()
            .find(|s| s.kind == kind)
            .map(|s| s.phone.clone())
            .context("no session of the kind")?;
        send_alone.insert(
            kind,
            provider_sends(kind, &providers, &customer, args.baseline, args.rate).await?,
        );
    }
    let mut miaw_alone = miaw_posts(miaw_client_config, &run_id, args.baseline, args.rate).await?;
    let load_at_end = load();

    // Figures.
    let in_starts = in_starts.lock().unwrap().clone();
    let in_stamps = in_stamps.lock().unwrap().clone();
    let out_starts = out_starts.lock().unwrap().clone();
    let sent_stamps = sent_stamps.lock().unwrap().clone();
    let in_posts = in_posts.lock().unwrap().clone();
    let out_posts = out_posts.lock().unwrap().clone();
    println!();
    println!(
        "live sessions:   {n} (opened in {open_secs:.1} s, accepted in {accept_secs:.1} s; {opening_sent} opening notices sent through the providers)"
    );
    println!(
        "bench process:   RSS {:.1} MiB, {fds} descriptors with every session live",
        rss as f64 / 1024.0
    );
    println!(
        "offered:         (a) {offered_in:.1}/s, (b) {offered_out:.1}/s; load average {load_at_start} at start, {load_at_end} at the end"
    );
    miaw_alone.sort();
    for &kind in &kinds {
        let of_kind = |k: usize, targets: &[usize]| sessions[targets[k]].kind == kind;
        let mut a_total: Vec<Duration> = (0..m)
            .filter(|&k| of_kind(k, &inbound_targets))
            .filter_map(|k| Some(between(in_starts[k]?, *in_stamps.get(&k)?)))
            .collect();
        let mut a_post: Vec<Duration> = in_posts
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, d)| *d)
            .collect();
        let mut b_total: Vec<Duration> = (0..m)
            .filter(|&k| of_kind(k, &outbound_targets))
            .filter_map(|k| Some(between(out_starts[k]?, *sent_stamps.get(&k)?)))
            .collect();
        let mut b_post: Vec<Duration> = out_posts
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, d)| *d)
            .collect();
        let mut b_to_entry: Vec<Duration> = (0..m)
            .filter(|&k| of_kind(k, &outbound_targets))
            .filter_map(|k| Some(between(out_starts[k]?, *rep_stamps.get(&k)?)))
            .collect();
        let mut b_from_entry: Vec<Duration> = (0..m)
            .filter(|&k| of_kind(k, &outbound_targets))
            .filter_map(|k| Some(between(*rep_stamps.get(&k)?, *sent_stamps.get(&k)?)))
            .collect();
        let hook = webhook_alone.get_mut(&kind).context("no baseline")?;
        let send = send_alone.get_mut(&kind).context("no baseline")?;
        let (provider, api) = match kind {
            Kind::Sms => ("Twilio", "POST …/Messages.json"),
            Kind::Whatsapp => ("WhatsApp Cloud", "POST /v21.0/{id}/messages"),
        };
        println!();
        println!("{} ({provider} emulator)", kind.name().to_uppercase());
        println!("{}", header());
        println!("(a) customer's text → in front of the rep");
        println!(
            "{}",
            row(
                "total: webhook POST → message in the MIAW conversation",
                &mut a_total
            )
        );
        println!(
            "{}",
            row(
                "  of which the webhook's round trip (200 once durable)",
                &mut a_post
            )
        );
        println!(
            "{}",
            row(
                "  fixed alone: the same signed webhook to a bare receiver",
                hook
            )
        );
        println!(
            "{}",
            row(
                "  fixed alone: MIAW message POST (the gateway's client)",
                &mut miaw_alone
            )
        );
        let a_added = ms(percentile(&a_total, 0.5))
            - ms(percentile(hook, 0.5))
            - ms(percentile(&miaw_alone, 0.5));
        println!(
            "  gateway-added, p50 total − p50 of the fixed parts: {a_added:.1} ms (of {:.1} ms)",
            ms(percentile(&a_total, 0.5))
        );
        println!("(b) rep's message → provider API called");
        println!(
            "{}",
            row(
                "total: console POST → provider accepts the send",
                &mut b_total
            )
        );
        println!(
            "{}",
            row("  of which the console POST's round trip", &mut b_post)
        );
        println!(
            "{}",
            row(
                "  console POST → rep's entry stored (emulator's stamp)",
                &mut b_to_entry
            )
        );
        println!(
            "{}",
            row(
                "  entry stored → provider accepts the send",
                &mut b_from_entry
            )
        );
        println!("{}", row(&format!("  fixed alone: {api}"), send));
        let b_added = ms(percentile(&b_total, 0.5))
            - ms(percentile(&b_post, 0.5))
            - ms(percentile(send, 0.5));
        println!(
            "  gateway-added, p50 total − p50 of the console POST and the provider send: {b_added:.1} ms (of {:.1} ms)",
            ms(percentile(&b_total, 0.5))
        );
        let missing_a = (0..m).filter(|&k| of_kind(k, &inbound_targets)).count() - a_total.len();
        let missing_b = (0..m).filter(|&k| of_kind(k, &outbound_targets)).count() - b_total.len();
        if missing_a + missing_b > 0 {
            println!("  not found: {missing_a} customer texts, {missing_b} rep messages");
        }
    }
    println!();
    println!(
        "Resolution: (a) ends at the MIAW emulator's entry stamp, in whole milliseconds (a figure may read up to 1 ms short); so does (b)'s split at the rep's entry (its first part may read up to 1 ms short, its second as much long). (b) ends at the provider emulator's stamp (microseconds). All are wall-clock readings on this machine, in this process and in the child; round trips are timed with the monotonic clock."
    );
    println!(
        "Gateway-added: the total minus the medians of the fixed parts (timed alone; for (b) the console POST as timed in the run). Each fixed part is a whole round trip of which only part lies on the measured path (the emulators stamp before they answer), so this under-states the gateway's share and the total over-states it; it lies between. (a)'s share is: verify the signature, record the message and queue it for the rep in one transaction, answer 200, wake the worker, claim the job, POST to MIAW. (b)'s: read the event off the session's stream, apply it with its cursor in one transaction, wake the worker, claim the delivery, call the provider; it also holds the emulator writing the event to the stream."
    );
    // No graceful stop: letting go of N leases one by one would only time the shutdown.
    drop(app);
    drop(child);
    Ok(())
}

/// A receiver that answers every provider webhook at once: Twilio's empty TwiML, or 200.
async fn spawn_bare_receiver() -> anyhow::Result<String> {
    use axum::http::header;
    let router = axum::Router::new()
        .route(
            "/channels/sms/inbound",
            axum::routing::post(|| async {
                (
                    [(header::CONTENT_TYPE, "text/xml")],
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
                )
            }),
        )
        .route(
            "/channels/whatsapp/inbound",
            axum::routing::post(|| async { "" }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

/// `count` signed webhooks from a fresh emulator of `kind` to the bare receiver, at `rate`.
async fn bare_webhooks(
    kind: Kind,
    bare: &str,
    count: usize,
    rate: u64,
) -> anyhow::Result<Vec<Duration>> {
    let providers = match kind {
        Kind::Sms => Providers {
            twilio: Some(
                ChannelEmulators::start_twilio(bare)
                    .await
                    .map_err(anyhow::Error::msg)?,
            ),
            whatsapp: None,
        },
        Kind::Whatsapp => Providers {
            twilio: None,
            whatsapp: Some(
                ChannelEmulators::start_whatsapp(bare)
                    .await
                    .map_err(anyhow::Error::msg)?,
            ),
        },
    };
    let samples: Arc<Mutex<Vec<Duration>>> = Arc::default();
    at_rate(count, rate, |k| {
        let (providers, samples) = (providers.clone(), Arc::clone(&samples));
        async move {
            let phone = match kind {
                Kind::Sms => "+14155559999",
                Kind::Whatsapp => "+16285559999",
            };
            let started = Instant::now();
            let status = providers
                .customer_writes(kind, phone, &format!("bench-probe-{k}"))
                .await?;
            samples.lock().unwrap().push(started.elapsed());
            anyhow::ensure!(status == 200, "the bare receiver answered {status}");
            Ok(())
        }
    })
    .await?;
    let samples = samples.lock().unwrap().clone();
    Ok(samples)
}

/// `count` sends made directly to the provider emulator's API (as the adapter makes them,
/// without a status callback), at `rate`.
async fn provider_sends(
    kind: Kind,
    providers: &Providers,
    customer: &str,
    count: usize,
    rate: u64,
) -> anyhow::Result<Vec<Duration>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let request: Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync> = match kind {
        Kind::Sms => {
            let twilio = providers.twilio.as_ref().context("no Twilio emulator")?;
            let defaults = channel_emulator::twilio::TwilioSettings::default();
            let url = format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                twilio.url(),
                defaults.account_sid
            );
            let (http, customer) = (http.clone(), customer.to_owned());
            Arc::new(move |k| {
                http.post(&url)
                    .basic_auth(&defaults.account_sid, Some(&defaults.auth_token))
                    .form(&[
                        ("To", customer.as_str()),
                        ("From", SMS_NUMBER),
                        ("Body", &format!("bench-probe-{k}")),
                    ])
            })
        }
        Kind::Whatsapp => {
            let wa = providers
                .whatsapp
                .as_ref()
                .context("no WhatsApp emulator")?;
            let defaults = channel_emulator::whatsapp::WhatsappSettings::default();
            let url = format!("{}/v21.0/{}/messages", wa.url(), wa.phone_number_id());
            let (http, to) = (http.clone(), customer.trim_start_matches('+').to_owned());
            Arc::new(move |k| {
                http.post(&url)
                    .bearer_auth(&defaults.access_token)
                    .json(&json!({
                        "messaging_product": "whatsapp",
                        "recipient_type": "individual",
                        "to": to,
                        "type": "text",
                        "text": {"body": format!("bench-probe-{k}")},
                    }))
            })
        }
    };
    let samples: Arc<Mutex<Vec<Duration>>> = Arc::default();
    at_rate(count, rate, |k| {
        let (request, samples) = (Arc::clone(&request), Arc::clone(&samples));
        async move {
            let started = Instant::now();
            let response = request(k).send().await?;
            let status = response.status();
            let _ = response.bytes().await?;
            samples.lock().unwrap().push(started.elapsed());
            anyhow::ensure!(status.is_success(), "the provider API answered {status}");
            Ok(())
        }
    })
    .await?;
    let samples = samples.lock().unwrap().clone();
    Ok(samples)
}

/// `count` end-user message POSTs, made with the gateway's MIAW client against the child
/// emulator, at `rate`; to conversations of their own, 20 messages each (MIAW takes 22 a
/// minute per conversation).
async fn miaw_posts(
    config: salesforce::miaw::MiawConfig,
    run_id: &str,
    count: usize,
    rate: u64,
) -> anyhow::Result<Vec<Duration>> {
    use secrecy::ExposeSecret;
    const PER_CONVERSATION: usize = 20;
    let client = salesforce::miaw::MiawClient::new(config)?;
    let mut conversations = Vec::new();
    for j in 0..count.div_ceil(PER_CONVERSATION) {
        let token = client.unauthenticated_token().await?;
        let token: Arc<str> = Arc::from(token.token.expose_secret());
        let id = salesforce::miaw::ConversationId::for_session(&format!("chan-{run_id}-probe-{j}"));
        client
            .create_conversation(&token, &id, &BTreeMap::new(), Some("en"))
            .await?;
        conversations.push((token, id));
    }
    let conversations = Arc::new(conversations);
    let samples: Arc<Mutex<Vec<Duration>>> = Arc::default();
    at_rate(count, rate, |k| {
        let (client, conversations, samples) = (
            client.clone(),
            Arc::clone(&conversations),
            Arc::clone(&samples),
        );
        async move {
            let (token, id) = &conversations[k / PER_CONVERSATION];
            let message = salesforce::miaw::OutgoingMessage {
                id: uuid::Uuid::now_v7(),
                text: format!("bench-probe-{k}"),
                routing_attributes: None,
                language: None,
            };
            let started = Instant::now();
            client.send_message(token, id, &message).await?;
            samples.lock().unwrap().push(started.elapsed());
            Ok(())
        }
    })
    .await?;
    let samples = samples.lock().unwrap().clone();
    Ok(samples)
}
