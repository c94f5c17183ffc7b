//! `handoff bench replies`: a rep's public comment on a Case → the customer's
//! reply accepted by the SMTP relay, through the push path (the emulator fires
//! the same signed webhook the shipped Apex does) and through the poller; and
//! the Salesforce API calls the poller spends per day.
//!
//! Everything runs in this process on loopback: the emulator, the gateway, and
//! a small SMTP receiver ([`crate::mailsink`]) that timestamps the `250` after
//! `DATA`. Replies are timed one at a time, so each figure is the path's own
//! latency, not queueing behind other replies.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{percentile, start_with};
use crate::demo::Driver;
use crate::mailsink::MailSink;

/// The webhook secret the emulator signs with and the gateway checks.
const SECRET: &str = "bench-case-webhook-secret-0123456789abcdef";

pub struct RepliesArgs {
    pub cases: usize,
    pub replies: usize,
    pub poll_interval_secs: u64,
    pub open_cases: Vec<usize>,
    pub database_url: Option<String>,
}

pub async fn run(args: RepliesArgs) -> anyhow::Result<()> {
    println!(
        "Rep reply → SMTP accepted: {} Cases, {} replies per path, one at a time.",
        args.cases, args.replies
    );
    let push = latency(&args, Path::Push).await?;
    let poll = latency(&args, Path::Poll).await?;
    println!();
    println!(
        "{:<6} {:>8} {:>10} {:>10} {:>10}",
        "PATH", "REPLIES", "P50", "P99", "MAX"
    );
    for (name, samples) in [("push", &push), (format_poll(&args).as_str(), &poll)] {
        println!(
            "{:<6} {:>8} {:>10} {:>10} {:>10}",
            name,
            samples.len(),
            ms(percentile(samples, 0.50)),
            ms(percentile(samples, 0.99)),
            ms(samples.last().copied().unwrap_or_default()),
        );
    }
    println!();
    println!("Poller cost (interval 10 s = 8,640 polls a day):");
    println!(
        "{:>12} {:>16} {:>16}",
        "OPEN CASES", "CALLS / POLL", "CALLS / DAY"
    );
    for &open in &args.open_cases {
        let per_poll = poll_calls(open, args.database_url.clone()).await?;
        println!(
            "{:>12} {:>16.2} {:>16.0}",
            open,
            per_poll,
            per_poll * 8_640.0
        );
    }
    Ok(())
}

fn format_poll(args: &RepliesArgs) -> String {
    format!("poll{}s", args.poll_interval_secs)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Push,
    Poll,
}

/// Sorted latencies of `args.replies` replies through one path.
async fn latency(args: &RepliesArgs, path: Path) -> anyhow::Result<Vec<Duration>> {
    let sink = MailSink::start().await?;
    let smtp_port = sink.addr().port();
    let interval = args.poll_interval_secs;
    let stack = start_with(args.database_url.clone(), move |config| {
        config.channels.insert(
            "email".into(),
            channels::ChannelConfig::Email(bench_email(smtp_port)),
        );
        config.case_replies.push = path == Path::Push;
        config.case_replies.webhook_secret = Some(SECRET.into());
        config.case_replies.poll = path == Path::Poll;
        config.case_replies.poll_interval_secs = interval;
    })
    .await?;
    if path == Path::Push {
        stack
            .emulator
            .set_case_webhook(Some(sf_emulator::CaseWebhookConfig {
                url: format!("{}/salesforce/events", stack.app.url()),
                hmac_secret: Some(SECRET.into()),
                jwt: None,
                timeout_secs: 10,
            }))
            .map_err(anyhow::Error::msg)?;
    }
    let driver = Driver::new(stack.app.url(), stack.token.clone())?;
    let label = if path == Path::Push { "push" } else { "poll" };
    let mut case_ids = Vec::new();
    for n in 0..args.cases {
        let id = format!("bench-reply-{label}-{n}");
        driver
            .escalate(&json!({
                "session_id": id,
                "channel": "email",
                "customer": {"name": "Bench Customer", "email": format!("customer{n}@example.com")},
                "subject": "Parcel stuck at the depot",
                "summary": "Parcel stuck at the depot for a week.",
                "transcript": [{"role": "customer", "text": "Where is my parcel?", "at": "2026-12-01T09:00:00Z"}],
            }))
            .await?;
        let session = driver.wait_escalated(&id, Duration::from_secs(60)).await?;
        case_ids.push(session.salesforce_case_id.context("no Case id")?);
    }
    let http = reqwest::Client::new();
    let mut samples = Vec::with_capacity(args.replies);
    print!("{label}: ");
    for n in 0..args.replies {
        let case_id = &case_ids[n % case_ids.len()];
        let before = sink.messages().len();
        let started = Instant::now();
        let response = http
            .post(format!(
                "{}/__emulator/cases/{case_id}/comments",
                stack.emulator.url()
            ))
            .json(&json!({"text": format!("Reply {n}: the courier picked it up."), "public": true, "rep_name": "Bench Rep"}))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("the emulator refused the comment: {}", response.status());
        }
        let wait = Duration::from_secs(interval * 3 + 30);
        let messages = sink.wait_for(before + 1, wait).await;
        let Some(message) = messages.get(before) else {
            bail!("reply {n} never reached the SMTP relay within {wait:?}");
        };
        samples.push(message.accepted_at.duration_since(started));
        if n % 20 == 19 {
            print!(".");
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
        }
    }
    println!(" done");
    stack.app.stop().await;
    stack.emulator.shutdown().await;
    samples.sort();
    Ok(samples)
}

fn bench_email(smtp_port: u16) -> channels::EmailConfig {
    let config: channels::EmailConfig = serde_json::from_value(json!({
        "from": "Acme Support <support@acme.example>",
        "reply_to": "support+{token}@acme.example",
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "tls": "plain"},
    }))
    .expect("the bench's email config parses");
    config
}

/// Salesforce calls one poll makes with `open` open escalated Cases in the org
/// (created directly, 200 per call), averaged over several polls.
async fn poll_calls(open: usize, database_url: Option<String>) -> anyhow::Result<f64> {
    let stack = start_with(database_url, |config| {
        config.case_replies.push = false;
        config.case_replies.poll = true;
        config.case_replies.poll_interval_secs = 1;
    })
    .await?;
    let client = bench_client(&stack.emulator)?;
    for start in (0..open).step_by(200) {
        let records: Vec<Value> = (start..open.min(start + 200))
            .map(|n| {
                json!({
                    "attributes": {"type": "Case"},
                    "Subject": format!("Open case {n}"),
                    "Case_From__c": "opencx",
                    "Handoff_Session_Id__c": format!("bench-open-{n}"),
                })
            })
            .collect();
        client.collections_create(records, true).await?;
    }
    let gauge = |text: &str| -> Option<f64> {
        text.lines().find_map(|l| {
            l.strip_prefix("handoff_case_reply_poll_calls_per_day ")?
                .trim()
                .parse()
                .ok()
        })
    };
    // The gauge is the last poll's calls × polls a day at the configured interval
    // (1 s here): wait for a poll that ran with every Case in place.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut samples = Vec::new();
    while samples.len() < 3 {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let text = reqwest::get(format!("{}/metrics", stack.app.url()))
            .await?
            .text()
            .await?;
        if let Some(per_day) = gauge(&text).filter(|v| *v > 0.0) {
            samples.push(per_day / 86_400.0);
        }
        if Instant::now() > deadline {
            bail!("the poller reported no calls within a minute");
        }
    }
    stack.app.stop().await;
    stack.emulator.shutdown().await;
    Ok(samples.iter().sum::<f64>() / samples.len() as f64)
}

fn bench_client(emulator: &sf_emulator::EmulatorHandle) -> anyhow::Result<salesforce::Client> {
    let app = emulator
        .config()
        .connected_apps
        .first()
        .cloned()
        .context("emulator has no app")?;
    Ok(salesforce::Client::new(salesforce::ClientConfig {
        login_url: emulator.url(),
        api_version: "v66.0".into(),
        credentials: salesforce::Credentials::ClientCredentials {
            client_id: app.client_id,
            client_secret: app.client_secret.into(),
        },
        timeout: Duration::from_secs(30),
        max_concurrency: 4,
    })?)
}
