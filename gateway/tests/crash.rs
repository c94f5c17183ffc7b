//! Crash test (reliability target 1): the gateway is SIGKILLed at random moments
//! while escalations pour in and Salesforce misbehaves (5 % 503, 2 % "commit then
//! drop the response", access tokens dying every 50 calls, 40 ms per call).
//! Afterwards every accepted escalation must be exactly one Case in Salesforce
//! holding its whole transcript exactly once, checked with SOQL against the
//! emulator, and every job must be done.
//!
//! The emulator runs in this process; the gateway runs as child processes of the
//! real `handoff` binary, configured only through the environment, restarted on
//! the same database right after each kill. Each process binds port 0 itself and
//! prints its address; the clients always use the replica's latest address (no
//! port is picked here, released, and hoped to be still free for the child). Clients submit at a fixed
//! rate and retry until 202; kills go on until every submission is accepted and
//! 90 % of the Cases exist (so they also hit Case writes), then the last
//! instances drain the queue.
//!
//! Knobs: `HANDOFF_CRASH_ESCALATIONS` (default 300), `HANDOFF_CRASH_RATE`
//! (submissions per second, 25), `HANDOFF_CRASH_SEED` (transcripts, kill times,
//! fault draws; timing still varies run to run), `HANDOFF_CRASH_LATENCY_MS` (40)
//! and `HANDOFF_CRASH_LEASE_SECS` (3). Each variant prints a one-paragraph
//! verdict; a failed run keeps its logs and database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use channels::{Role, Turn};
use chrono::{SecondsFormat, TimeZone, Utc};
use gateway::escalation::mapper;
use gateway::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sf_emulator::{EmulatorConfig, EmulatorHandle, Faults};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod common;
use common::{
    Fleet, Harness, Urls, create_token, drop_postgres_database, fresh_postgres_database, lock,
    postgres_admin_url, url_of,
};

/// Client tasks submitting escalations at once.
const CLIENTS: usize = 8;
/// Default submissions per second (`HANDOFF_CRASH_RATE`): spread over several
/// seconds, so that kills land while escalations are accepted *and* written.
const DEFAULT_RATE: usize = 25;
/// How long the gateway gets to finish every accepted escalation once the kills stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(180);
/// How long the kills go on at most after the last submission was accepted.
const CHAOS_AFTER_ACCEPT_LIMIT: Duration = Duration::from_secs(60);
/// Kills continue (after every submission is accepted) until this share of the
/// Cases exists, so that kills also land while the workers write to Salesforce.
const CHAOS_UNTIL_CASES: f64 = 0.9;
/// Delay the emulator adds to every API call (`HANDOFF_CRASH_LATENCY_MS`).
const SALESFORCE_LATENCY_MS: u64 = 40;
/// The job lease (`HANDOFF_CRASH_LEASE_SECS`): short, so a killed worker's job
/// is reclaimed quickly; far longer than an attempt at the default latency.
const LEASE_SECS: u64 = 3;
/// Comments that fit in the first (composite) call; more need sObject Collections.
const FIRST_CALL_COMMENTS: usize = 23;

// ---------------------------------------------------------------- variants --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_one_gateway_killed_at_random() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("handoff.db").display()
    );
    run("sqlite", url, 1, dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_replicas_killed_in_turn() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, name) = fresh_postgres_database(&admin, "handoff_crash").await;
    run("postgres", url, 2, dir).await;
    // Only reached on success; a failed run leaves the database for inspection.
    drop_postgres_database(&admin, &name).await;
}

// ------------------------------------------------------------------ run --

/// Everything the verdict reports.
#[derive(Debug, Default)]
struct Verdict {
    escalations: usize,
    accepted: usize,
    client_retries: u64,
    kills: usize,
    cases: usize,
    duplicate_cases: usize,
    orphan_cases: usize,
    sessions_without_case: usize,
    case_id_mismatches: usize,
    missing_comments: usize,
    duplicate_comments: usize,
    foreign_comments: usize,
    wrong_transcripts: usize,
    comments: usize,
    multi_call_transcripts: usize,
    jobs_not_done: usize,
    /// Accepted sessions that did not reach `escalated` in time.
    not_escalated: usize,
    /// `case.attempt` events: attempts started.
    attempts: usize,
    /// Attempts with a recorded failure (`case.attempt_failed`).
    attempts_failed: usize,
    /// Attempts with neither failure nor success recorded: cut short by a kill.
    attempts_cut: usize,
    /// Cases written by an attempt that first found an earlier attempt's Case.
    reconciled: usize,
    accept_secs: f64,
    drain_secs: f64,
    elapsed_secs: f64,
    stats: sf_emulator::Stats,
}

async fn run(label: &str, database_url: String, replicas: usize, dir: tempfile::TempDir) {
    let started = Instant::now();
    let escalations = env_usize("HANDOFF_CRASH_ESCALATIONS", 300);
    let seed = env_u64("HANDOFF_CRASH_SEED", 20_261_122);
    let rate = env_usize("HANDOFF_CRASH_RATE", DEFAULT_RATE).max(1);
    let latency_ms = env_u64("HANDOFF_CRASH_LATENCY_MS", SALESFORCE_LATENCY_MS);
    let lease_secs = env_u64("HANDOFF_CRASH_LEASE_SECS", LEASE_SECS);
    eprintln!(
        "crash[{label}]: {escalations} escalations at {rate}/s, {replicas} gateway process(es), \
         seed {seed}, Salesforce latency {latency_ms} ms, lease {lease_secs} s, logs in {}",
        dir.path().display()
    );

    // Salesforce, in this process, misbehaving.
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind emulator");
    let emulator = Arc::new(
        sf_emulator::spawn(EmulatorConfig::default(), listener)
            .await
            .expect("start emulator"),
    );
    emulator.set_faults(Faults {
        // Real Salesforce calls take a while; latency makes kills land mid-attempt.
        latency_ms,
        error_rate: 0.05,
        drop_response_rate: 0.02,
        token_expires_after_calls: Some(50),
        seed: Some(seed),
        ..Faults::default()
    });

    // The gateway's environment; `tokens create` also applies the migrations, so
    // replicas never race to create the schema.
    let app = EmulatorConfig::default().connected_apps[0].clone();
    let env: Vec<(String, String)> = [
        ("HANDOFF_DATABASE_URL", database_url.clone()),
        ("HANDOFF_SALESFORCE__LOGIN_URL", emulator.url()),
        (
            "HANDOFF_SALESFORCE__CREDENTIALS__TYPE",
            "client_credentials".into(),
        ),
        ("HANDOFF_SALESFORCE__CREDENTIALS__CLIENT_ID", app.client_id),
        (
            "HANDOFF_SALESFORCE__CREDENTIALS__CLIENT_SECRET",
            app.client_secret.clone(),
        ),
        ("HANDOFF_WORKER__RETRY_BASE_MS", "50".into()),
        ("HANDOFF_WORKER__RETRY_MAX_MS", "1000".into()),
        ("HANDOFF_WORKER__POLL_INTERVAL_MS", "50".into()),
        ("HANDOFF_WORKER__LEASE_SECS", lease_secs.to_string()),
        ("HANDOFF_WORKER__MAX_ATTEMPTS", "100".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let token = create_token(&env, "crash");

    let fleet = Fleet::new(env, replicas, dir.path().to_path_buf());
    let urls = fleet.urls();
    let harness = Harness::new(fleet, dir, "crash");
    for replica in 0..replicas {
        harness.fleet().start(replica);
    }

    let mut plan_rng = StdRng::seed_from_u64(seed);
    let plan = Arc::new(submissions(escalations, &mut plan_rng));

    // The chaos task: SIGKILL, restart, repeat.
    let accepted_all = CancellationToken::new();
    let chaos = tokio::spawn(chaos(
        harness.shared_fleet(),
        Arc::clone(&emulator),
        accepted_all.clone(),
        escalations,
        seed ^ 0x5eed,
    ));

    // The clients: submit everything, retrying until 202.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let next = Arc::new(Mutex::new(0usize));
    let retries = Arc::new(AtomicU64::new(0));
    let schedule = Instant::now();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (plan, next, retries) = (Arc::clone(&plan), Arc::clone(&next), Arc::clone(&retries));
        let (http, urls, token) = (http.clone(), Arc::clone(&urls), token.clone());
        clients.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            loop {
                let index = {
                    let mut next = lock(&next);
                    let index = *next;
                    *next += 1;
                    index
                };
                let Some(submission) = plan.get(index) else {
                    return accepted;
                };
                // Open-loop pacing: submission `index` starts at index / rate.
                let due = schedule + Duration::from_secs_f64(index as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                submit(&http, &urls, client + index, &token, submission, &retries).await;
                accepted.push(submission.id.clone());
            }
        }));
    }
    // The chaos task only ends once told to; if it stops earlier (a gateway
    // process died by itself), fail now rather than let the clients time out.
    let mut chaos = chaos;
    let results = tokio::select! {
        results = futures_util::future::join_all(clients) => results,
        stopped = &mut chaos => panic!("the chaos task stopped early: {stopped:?}"),
    };
    let mut accepted: HashSet<String> = HashSet::new();
    for ids in results {
        for id in ids.expect("a client task failed") {
            assert!(accepted.insert(id.clone()), "{id} was accepted twice");
        }
    }
    let accept_secs = started.elapsed().as_secs_f64();
    accepted_all.cancel();
    let kills = chaos.await.expect("the chaos task failed");
    let last_restart = Instant::now();
    eprintln!(
        "crash[{label}]: all {} accepted after {accept_secs:.1} s; {kills} kills; draining",
        accepted.len()
    );

    // Every accepted session must reach `escalated`, with the last instances running.
    // If they do not, Salesforce is still checked and the verdict printed first.
    let (case_ids, mut stuck) = wait_escalated(&http, &urls, &token, &accepted).await;
    let store = Store::open(&database_url).await.expect("open the database");
    if stuck.is_none() {
        stuck = wait_jobs_done(&store).await;
    }
    let drain_secs = last_restart.elapsed().as_secs_f64();
    harness.fleet().check_alive();
    harness.fleet().kill_all();

    // What Salesforce holds, read with SOQL, faults off.
    let stats = emulator.stats();
    emulator.set_faults(Faults::default());
    let mut verdict = verify(&emulator, &plan, &accepted, &case_ids).await;
    verdict.escalations = escalations;
    verdict.accepted = accepted.len();
    verdict.client_retries = retries.load(Ordering::Relaxed);
    verdict.kills = kills;
    verdict.jobs_not_done = jobs_not_done(&store).await;
    recovery_figures(&store, &mut verdict).await;
    verdict.accept_secs = accept_secs;
    verdict.drain_secs = drain_secs;
    verdict.elapsed_secs = started.elapsed().as_secs_f64();
    verdict.stats = stats;
    verdict.not_escalated = accepted.len() - case_ids.len();
    print_verdict(label, replicas, &verdict);
    if let Some(problem) = stuck {
        panic!("{problem}");
    }

    assert_eq!(verdict.accepted, escalations, "every submission accepted");
    assert!(verdict.kills >= 1, "the gateway was never killed");
    assert!(
        verdict.stats.dropped_responses >= 1 && rejected(&verdict.stats, "SERVER_UNAVAILABLE") >= 1,
        "the faults never fired"
    );
    assert!(
        verdict.multi_call_transcripts >= 1,
        "no transcript needed an sObject Collections call"
    );
    assert_eq!(verdict.cases, escalations, "one Case per escalation");
    for (what, n) in [
        ("duplicate Cases", verdict.duplicate_cases),
        ("orphan Cases", verdict.orphan_cases),
        ("sessions without a Case", verdict.sessions_without_case),
        ("sessions naming another Case", verdict.case_id_mismatches),
        ("missing comments", verdict.missing_comments),
        ("duplicate comments", verdict.duplicate_comments),
        ("comments outside any transcript", verdict.foreign_comments),
        ("transcripts that differ", verdict.wrong_transcripts),
        ("jobs not done", verdict.jobs_not_done),
    ] {
        assert_eq!(n, 0, "{what}");
    }
    drop(store);
    if let Ok(emulator) = Arc::try_unwrap(emulator) {
        emulator.shutdown().await;
    }
    drop(harness);
}

fn print_verdict(label: &str, replicas: usize, v: &Verdict) {
    let kind = if replicas == 1 {
        "one gateway process".to_string()
    } else {
        format!("{replicas} gateway replicas killed in turn")
    };
    println!(
        "crash[{label}] verdict ({kind}): {accepted}/{n} escalations accepted (clients retried {retries} times) \
         while the gateway was SIGKILLed {kills} times; Salesforce holds {cases} Cases \
         ({dup} duplicate, {orphan} orphan, {nocase} sessions without a Case, {mismatch} case-id mismatches) \
         and {comments} transcript comments ({missing} missing, {dupc} duplicate, {foreign} stray, \
         {wrong} transcripts not byte-identical; {multi} transcripts needed sObject Collections calls); \
         {notdone} jobs not done, {stuck} sessions not escalated. The workers made {attempts} attempts: {failed} failed, {cut} were cut \
         short by a kill, and {reconciled} Cases were completed by reconciling an earlier attempt's \
         writes. Elapsed {elapsed:.1} s (all accepted at {accept:.1} s, drained \
         {drain:.1} s after the last restart). Emulator: {calls} API calls, {e503} answered 503, \
         {dropped} responses dropped after commit, {expired} expired-token 401s, {tokens} token requests.",
        accepted = v.accepted,
        n = v.escalations,
        retries = v.client_retries,
        kills = v.kills,
        cases = v.cases,
        dup = v.duplicate_cases,
        orphan = v.orphan_cases,
        nocase = v.sessions_without_case,
        mismatch = v.case_id_mismatches,
        comments = v.comments,
        missing = v.missing_comments,
        dupc = v.duplicate_comments,
        foreign = v.foreign_comments,
        wrong = v.wrong_transcripts,
        multi = v.multi_call_transcripts,
        notdone = v.jobs_not_done,
        stuck = v.not_escalated,
        attempts = v.attempts,
        failed = v.attempts_failed,
        cut = v.attempts_cut,
        reconciled = v.reconciled,
        elapsed = v.elapsed_secs,
        accept = v.accept_secs,
        drain = v.drain_secs,
        calls = v.stats.api_calls,
        e503 = rejected(&v.stats, "SERVER_UNAVAILABLE"),
        dropped = v.stats.dropped_responses,
        expired = rejected(&v.stats, "INVALID_SESSION_ID"),
        tokens = v.stats.token_requests,
    );
}

fn rejected(stats: &sf_emulator::Stats, code: &str) -> u64 {
    stats.rejected.get(code).copied().unwrap_or(0)
}

// ---------------------------------------------------------- submissions --

struct Submission {
    id: String,
    body: Value,
    turns: Vec<Turn>,
}

const WORDS: &[&str] = &[
    "parcel",
    "refund",
    "invoice",
    "password",
    "ünïcödé",
    "délai",
    "配送",
    "遅延",
    "✓",
    "🙂",
    "order",
    "account",
    "broken",
    "charger",
    "subscription",
    "cancel",
    "warranty",
    "Größe",
    "naïve",
    "courier",
    "tracking",
    "number",
    "please",
    "help",
    "today",
    "again",
];

/// Words (some multi-byte, some lines) up to about `chars` characters; no
/// leading or trailing whitespace, as the channel adapters trim turns.
fn text(rng: &mut StdRng, chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    while count < chars {
        if count > 0 {
            out.push(if rng.random_range(0..12) == 0 {
                '\n'
            } else {
                ' '
            });
            count += 1;
        }
        let word = WORDS[rng.random_range(0..WORDS.len())];
        out.push_str(word);
        count += word.chars().count();
    }
    out
}

/// The escalations: mostly short; every 10th 30–300 turns; every 20th (offset 5)
/// 200–300 long turns, which needs more comments than the composite call carries;
/// every 50th (offset 7) one turn larger than a comment.
fn submissions(n: usize, rng: &mut StdRng) -> Vec<Submission> {
    let channels = ["chat", "sms", "whatsapp", "voice", "email"];
    let start = Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let id = format!("crash-{i:05}");
            let (count, min_len, max_len) = if i % 20 == 5 {
                (rng.random_range(200..=300), 400, 700)
            } else if i % 10 == 0 {
                (rng.random_range(30..=300), 20, 400)
            } else {
                (rng.random_range(1..=6), 5, 200)
            };
            let mut turns: Vec<Turn> = (0..count)
                .map(|k| {
                    let chars = rng.random_range(min_len..=max_len);
                    Turn {
                        role: if k % 2 == 0 {
                            Role::Customer
                        } else {
                            Role::Bot
                        },
                        text: text(rng, chars),
                        at: start + chrono::Duration::seconds((i * 600 + k * 7) as i64),
                        offset_ms: None,
                    }
                })
                .collect();
            if i % 50 == 7 {
                turns[0].text = text(rng, 9_000);
            }
            let transcript: Vec<Value> = turns
                .iter()
                .map(|t| {
                    json!({
                        "role": if t.role == Role::Customer { "customer" } else { "bot" },
                        "text": t.text,
                        "at": t.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    })
                })
                .collect();
            let body = json!({
                "session_id": id,
                "channel": channels[i % channels.len()],
                "customer": {
                    "name": format!("Customer {i}"),
                    "email": format!("customer{i}@example.com"),
                    "phone": format!("+1415555{:04}", i % 10_000),
                },
                "summary": format!("Crash test escalation {i}: the bot could not help."),
                "transcript": transcript,
            });
            Submission { id, body, turns }
        })
        .collect()
}

/// POSTs one escalation until the gateway answers 202, retrying on connection
/// errors and 5xx (the gateway may be dead or restarting). Anything else is a bug.
async fn submit(
    http: &reqwest::Client,
    urls: &Urls,
    spread: usize,
    token: &str,
    submission: &Submission,
    retries: &AtomicU64,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    for attempt in 0usize.. {
        let url = format!("{}/v1/escalations", url_of(urls, spread + attempt));
        let outcome = http
            .post(url)
            .bearer_auth(token)
            .json(&submission.body)
            .send()
            .await;
        match outcome {
            Ok(response) if response.status().as_u16() == 202 => return,
            Ok(response) if response.status().is_server_error() => {}
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                panic!("{}: unexpected {status}: {body}", submission.id);
            }
            Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "{}: not accepted within 120 s",
            submission.id
        );
        retries.fetch_add(1, Ordering::Relaxed);
        // Back off before the next try; the gateway is probably restarting.
        tokio::time::sleep(Duration::from_millis(20 + 10 * attempt.min(8) as u64)).await;
    }
}

// ---------------------------------------------------------------- chaos --

/// Kills a gateway process every 0.3–2 s (in turn, with several replicas) and
/// restarts it at once on the same database (on a port it picks). Goes on until every
/// submission is accepted and most Cases exist (so kills also land while the
/// workers write to Salesforce), at most [`CHAOS_AFTER_ACCEPT_LIMIT`] past the
/// last acceptance. Returns the number of kills.
async fn chaos(
    fleet: Arc<Mutex<Fleet>>,
    emulator: Arc<EmulatorHandle>,
    accepted_all: CancellationToken,
    escalations: usize,
    seed: u64,
) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let replicas = lock(&fleet).replicas();
    let mut kills = 0;
    let mut accepted_at: Option<Instant> = None;
    loop {
        let pause = Duration::from_millis(rng.random_range(300..=2_000));
        if accepted_at.is_none() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = accepted_all.cancelled() => accepted_at = Some(Instant::now()),
            }
        } else {
            tokio::time::sleep(pause).await;
        }
        if let Some(at) = accepted_at {
            let cases = emulator.records("Case").len();
            if cases as f64 >= CHAOS_UNTIL_CASES * escalations as f64
                || at.elapsed() > CHAOS_AFTER_ACCEPT_LIMIT
            {
                return kills;
            }
        }
        let victim = kills % replicas;
        let mut fleet = lock(&fleet);
        fleet.check_alive();
        fleet.kill(victim);
        kills += 1;
        fleet.start(victim);
    }
}

// ---------------------------------------------------------------- drain --

/// Polls `GET /v1/sessions/{id}` until every accepted session is `escalated`
/// or `failed`, for at most [`DRAIN_LIMIT`]. Returns each escalated session's
/// Case id, and what went wrong (sessions failed or still pending), if anything.
async fn wait_escalated(
    http: &reqwest::Client,
    urls: &Urls,
    token: &str,
    accepted: &HashSet<String>,
) -> (HashMap<String, String>, Option<String>) {
    let deadline = Instant::now() + DRAIN_LIMIT;
    let mut pending: Vec<String> = accepted.iter().cloned().collect();
    pending.sort();
    let mut case_ids = HashMap::new();
    let mut failed = Vec::new();
    let mut round = 0usize;
    loop {
        let mut still = Vec::new();
        for (i, id) in pending.into_iter().enumerate() {
            let url = format!("{}/v1/sessions/{id}", url_of(urls, i + round));
            let session: Value = match http.get(url).bearer_auth(token).send().await {
                Ok(r) if r.status().is_success() => r.json().await.expect("session JSON"),
                Ok(r) => panic!("GET session {id}: {}", r.status()),
                Err(e) => panic!("GET session {id}: {e} (the gateway should be up now)"),
            };
            match session["status"].as_str() {
                Some("escalated") => {
                    let case = session["salesforce_case_id"]
                        .as_str()
                        .expect("an escalated session names its Case");
                    case_ids.insert(id, case.to_string());
                }
                Some("failed") => failed.push(id),
                _ => still.push(id),
            }
        }
        pending = still;
        if pending.is_empty() || Instant::now() > deadline {
            break;
        }
        round += 1;
        // Poll again shortly; the workers are still busy.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if pending.is_empty() && failed.is_empty() {
        return (case_ids, None);
    }
    let mut problem = format!(
        "{} sessions failed, {} not escalated {} s after the kills stopped",
        failed.len(),
        pending.len(),
        DRAIN_LIMIT.as_secs()
    );
    for id in failed.iter().chain(&pending).take(5) {
        let url = format!("{}/v1/sessions/{id}/events", url_of(urls, 0));
        let events = match http.get(url).bearer_auth(token).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        problem.push_str(&format!("\n{id}: {events}"));
    }
    (case_ids, Some(problem))
}

/// A session is `escalated` before its job is marked done; waits for the jobs too.
async fn wait_jobs_done(store: &Store) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while jobs_not_done(store).await > 0 {
        if Instant::now() > deadline {
            return Some(
                "jobs still queued, running or dead 30 s after every session escalated".into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// How the work went, from the sessions' timelines.
async fn recovery_figures(store: &Store, v: &mut Verdict) {
    use sea_orm::EntityTrait;
    let events = gateway::store::event::Entity::find()
        .all(store.connection())
        .await
        .expect("events");
    let mut created = 0;
    for event in &events {
        match event.kind.as_str() {
            "case.attempt" => v.attempts += 1,
            "case.attempt_failed" => v.attempts_failed += 1,
            "case.created" => {
                created += 1;
                let data: Value = serde_json::from_str(&event.data).unwrap_or_default();
                v.reconciled += usize::from(data["reconciled"] == json!(true));
            }
            _ => {}
        }
    }
    v.attempts_cut = v.attempts.saturating_sub(v.attempts_failed + created);
}

async fn jobs_not_done(store: &Store) -> usize {
    let mut n = 0;
    for state in ["queued", "running", "dead"] {
        n += store.jobs_in_state(state).await.expect("jobs").len();
    }
    n
}

// --------------------------------------------------------------- verify --

async fn verify(
    emulator: &EmulatorHandle,
    plan: &[Submission],
    accepted: &HashSet<String>,
    case_ids: &HashMap<String, String>,
) -> Verdict {
    let app = EmulatorConfig::default().connected_apps[0].clone();
    let salesforce = salesforce::Client::new(salesforce::ClientConfig::new(
        emulator.url(),
        salesforce::Credentials::ClientCredentials {
            client_id: app.client_id,
            client_secret: app.client_secret.into(),
        },
    ))
    .expect("salesforce client");
    let cases = salesforce
        .query_all_pages("SELECT Id, Handoff_Session_Id__c FROM Case")
        .await
        .expect("query Cases");
    let comments = salesforce
        .query_all_pages("SELECT ParentId, CommentBody FROM CaseComment ORDER BY CreatedDate")
        .await
        .expect("query CaseComments");

    let mut v = Verdict {
        cases: cases.len(),
        comments: comments.len(),
        ..Verdict::default()
    };
    // Cases by session id.
    let mut by_session: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for case in &cases {
        let id = case["Id"].as_str().expect("Case Id").to_string();
        match case["Handoff_Session_Id__c"].as_str() {
            Some(session) if accepted.contains(session) => {
                by_session.entry(session.to_string()).or_default().push(id)
            }
            _ => v.orphan_cases += 1,
        }
    }
    // Comments by Case, as (k, N, body).
    let mut by_case: HashMap<String, Vec<&str>> = HashMap::new();
    for comment in &comments {
        let parent = comment["ParentId"].as_str().expect("ParentId").to_string();
        let body = comment["CommentBody"].as_str().expect("CommentBody");
        by_case.entry(parent).or_default().push(body);
    }
    let mut seen_cases: HashSet<&str> = HashSet::new();
    for submission in plan.iter().filter(|s| accepted.contains(&s.id)) {
        let expected = mapper::pack_comments(&submission.turns);
        if expected.len() > FIRST_CALL_COMMENTS {
            v.multi_call_transcripts += 1;
        }
        let Some(ids) = by_session.get(&submission.id) else {
            v.sessions_without_case += 1;
            v.missing_comments += expected.len();
            continue;
        };
        v.duplicate_cases += ids.len() - 1;
        // The gateway recorded one of these Cases (the only one, when all is well).
        if !case_ids
            .get(&submission.id)
            .is_some_and(|recorded| ids.contains(recorded))
        {
            v.case_id_mismatches += 1;
        }
        for case_id in ids {
            seen_cases.insert(case_id);
            let bodies = by_case.get(case_id).map(Vec::as_slice).unwrap_or(&[]);
            let check = check_transcript(bodies, &expected, &submission.turns);
            v.missing_comments += check.missing;
            v.duplicate_comments += check.duplicate;
            v.foreign_comments += check.foreign;
            v.wrong_transcripts += usize::from(!check.identical);
            if !check.identical {
                eprintln!(
                    "{} (Case {case_id}): {} comments, expected {}: {check:?}",
                    submission.id,
                    bodies.len(),
                    expected.len()
                );
            }
        }
    }
    v.foreign_comments += by_case
        .iter()
        .filter(|(case, _)| !seen_cases.contains(case.as_str()))
        .map(|(_, bodies)| bodies.len())
        .sum::<usize>();
    v
}

#[derive(Debug, Default)]
struct TranscriptCheck {
    missing: usize,
    duplicate: usize,
    /// Comments without a valid "Transcript k/N" header for this transcript.
    foreign: usize,
    /// The parts, in header order, are exactly the expected comments, and their
    /// bodies concatenate to the rendered transcript.
    identical: bool,
}

/// A Case's comments must be "Transcript k/N" for k = 1..N, each exactly once,
/// equal to what the mapper packs, and concatenate (headers removed) to the
/// rendered transcript.
fn check_transcript(bodies: &[&str], expected: &[String], turns: &[Turn]) -> TranscriptCheck {
    let total = expected.len();
    let mut check = TranscriptCheck::default();
    let mut parts: BTreeMap<usize, &str> = BTreeMap::new();
    for body in bodies {
        match mapper::parse_comment_header(body) {
            Some((k, n)) if n == total && (1..=total).contains(&k) => {
                if parts.insert(k, body).is_some() {
                    check.duplicate += 1;
                }
            }
            _ => check.foreign += 1,
        }
    }
    check.missing = total - parts.len();
    let whole: String = parts
        .iter()
        .map(|(k, body)| &body[mapper::comment_header(*k, total).len()..])
        .collect();
    check.identical = check.missing == 0
        && check.duplicate == 0
        && check.foreign == 0
        && parts.values().zip(expected).all(|(got, want)| *got == want)
        && whole == mapper::render_transcript(turns);
    check
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a count"))
        })
        .unwrap_or(default)
}

fn env_u64(name: &str, default: u64) -> u64 {
    env_usize(name, default as usize) as u64
}
