//! `GET /metrics` over real sockets: the Prometheus text the `metrics` crates render, with the
//! histograms of requests, Salesforce calls, deliveries and job waits next to the gateway's
//! state metrics.
//!
//! The histograms are per process and the tests of this binary run side by side in one
//! process, so every check compares a scrape before with a scrape after and asks for *at
//! least* the increase this test caused, never an absolute value.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use handoff_tests::console::{RepConsole, texts_by};
use handoff_tests::receiver::receiver;
use handoff_tests::{Db, TestApp, both_databases, spawn_app, spawn_live_app};
use serde_json::{Value, json};

/// A sample's labels, in order.
type Labels = Vec<(String, String)>;

/// One scrape: every sample, keyed by metric name and then by its labels.
#[derive(Debug)]
struct Scrape {
    text: String,
    samples: BTreeMap<String, Vec<(Labels, f64)>>,
}

impl Scrape {
    /// The sum of the samples of `name` whose labels include every pair of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .get(name)
            .into_iter()
            .flatten()
            .filter(|(have, _)| {
                labels
                    .iter()
                    .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
            })
            .map(|(_, value)| value)
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.samples.contains_key(name)
    }

    /// Every label value of every sample.
    fn label_values(&self) -> impl Iterator<Item = &str> {
        self.samples
            .values()
            .flatten()
            .flat_map(|(labels, _)| labels.iter().map(|(_, v)| v.as_str()))
    }
}

/// Scrapes `/metrics`, checking the content type and that every line parses.
async fn scrape(app: &TestApp) -> Scrape {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    let text = response.text().await.unwrap();
    let mut samples: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, labels, value) = parse_sample(line).unwrap_or_else(|| panic!("{line:?}"));
        samples.entry(name).or_default().push((labels, value));
    }
    Scrape { text, samples }
}

/// `name{k="v",…} value` → its parts (label values unescaped).
fn parse_sample(line: &str) -> Option<(String, Labels, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        v => v.parse().ok()?,
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series.to_string(), Vec::new(), value));
    };
    let mut labels = Vec::new();
    let mut chars = rest.strip_suffix('}')?.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next()? != '"' {
            return None;
        }
        let mut val = String::new();
        loop {
            match chars.next()? {
                '\\' => val.push(chars.next()?),
                '"' => break,
                c => val.push(c),
            }
        }
        labels.push((key, val));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Some((name.to_string(), labels, value))
}

/// Every histogram family is complete: a `histogram` TYPE line and `_bucket`, `_sum` and
/// `_count` samples.
fn assert_histogram(s: &Scrape, name: &str) {
    assert!(
        s.text.contains(&format!("# TYPE {name} histogram\n")),
        "{name} is not a histogram:\n{}",
        s.text
    );
    for part in ["_bucket", "_sum", "_count"] {
        assert!(s.has(&format!("{name}{part}")), "no {name}{part}");
    }
    assert!(
        s.samples[&format!("{name}_bucket")]
            .iter()
            .any(|(labels, _)| labels.iter().any(|(k, v)| k == "le" && v == "+Inf")),
        "{name} has no +Inf bucket"
    );
}

/// The metric names `/metrics` served before it came from the `metrics` crates.
const STATE_METRICS: [&str; 9] = [
    "handoff_salesforce_breaker_state",
    "handoff_salesforce_breaker_opened_total",
    "handoff_salesforce_probes_total",
    "handoff_salesforce_api_calls_total",
    "handoff_salesforce_token_requests_total",
    "handoff_case_reply_poll_calls_total",
    "handoff_case_reply_poll_calls_per_day",
    "handoff_case_reply_events_total",
    "handoff_jobs",
];

/// Waits (hang guard: 30 s) until every delivery of the session is `sent`.
async fn wait_sent(app: &TestApp, id: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut reads = 0;
    loop {
        let (status, s) = app
            .get(&format!("/v1/sessions/{id}"), Some(&app.read_token))
            .await;
        reads += 1;
        assert_eq!(status, 200, "{s}");
        if s["deliveries"]
            .as_array()
            .is_some_and(|d| !d.is_empty() && d.iter().all(|d| d["state"] == "sent"))
        {
            return reads;
        }
        assert!(Instant::now() < deadline, "never delivered: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// One chat escalation that falls back to a Case and tells the customer over the chat
// webhook moves every histogram: the accept time, the request times by route template, the
// Salesforce calls (token and composite), the delivery time on `chat`, and the queue ages of
// `create_case` and `deliver_message`. The old state metrics are all still there, and no
// label carries the session id, the customer's email or a path a client made up.
both_databases!(
    an_escalation_moves_every_histogram_and_labels_stay_bounded,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let hook = receiver(vec![]).await;
        let session_id = format!("metrics-{}", uuid::Uuid::new_v4().simple());
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        let before = scrape(&app).await;
        for name in STATE_METRICS {
            assert!(before.has(name), "{name} is missing:\n{}", before.text);
        }
        assert!(
            before
                .text
                .contains("# TYPE handoff_salesforce_breaker_opened_total counter\n")
        );
        assert!(before.text.contains("# TYPE handoff_jobs gauge\n"));
        assert_eq!(
            before.sum("handoff_salesforce_breaker_state", &[("state", "closed")]),
            1.0,
            "a fresh gateway's breaker is closed (its own state, not the process's)"
        );

        let (status, body) = app
            .post_escalation(&json!({
                "session_id": session_id,
                "channel": "chat",
                "customer": {"name": "Ann", "email": email},
                "transcript": [{"role": "customer", "text": "I need a human", "at": "2026-11-22T09:00:00Z"}],
                "reply_to": {"webhook_url": hook.url},
            }))
            .await;
        assert_eq!(status, 202, "{body}");
        let reads = wait_sent(&app, &session_id).await;
        // A path no route matches, under a method nobody standardized, carrying an email.
        let odd = app
            .http
            .request(
                reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
                app.url(&format!("/nowhere/{email}")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(odd.status(), 404);
        let after = scrape(&app).await;

        for name in [
            "handoff_http_request_seconds",
            "handoff_accept_seconds",
            "handoff_salesforce_call_seconds",
            "handoff_delivery_seconds",
            "handoff_queue_age_seconds",
        ] {
            assert_histogram(&after, name);
        }
        let grew = |name: &str, labels: &[(&str, &str)]| {
            after.sum(name, labels) - before.sum(name, labels)
        };
        assert!(grew("handoff_accept_seconds_count", &[("status", "202")]) >= 1.0);
        assert!(
            grew(
                "handoff_http_request_seconds_count",
                &[
                    ("route", "/v1/escalations"),
                    ("method", "POST"),
                    ("status", "202")
                ]
            ) >= 1.0
        );
        assert!(
            grew(
                "handoff_http_request_seconds_count",
                &[("route", "/v1/sessions/{id}"), ("method", "GET")]
            ) >= reads as f64
        );
        assert!(
            grew(
                "handoff_http_request_seconds_count",
                &[
                    ("route", "unmatched"),
                    ("method", "other"),
                    ("status", "404")
                ]
            ) >= 1.0
        );
        // The first scrape is a request too, answered before the second one began.
        assert!(
            grew(
                "handoff_http_request_seconds_count",
                &[("route", "/metrics"), ("method", "GET"), ("status", "200")]
            ) >= 1.0
        );
        assert!(
            grew(
                "handoff_salesforce_call_seconds_count",
                &[("kind", "composite")]
            ) >= 1.0,
            "the Case went to Salesforce in a composite call"
        );
        assert!(
            after.sum(
                "handoff_salesforce_call_seconds_count",
                &[("kind", "token")]
            ) >= 1.0,
            "this gateway fetched a token at some point"
        );
        assert!(grew("handoff_delivery_seconds_count", &[("channel", "chat")]) >= 1.0);
        assert!(grew("handoff_delivery_seconds_sum", &[("channel", "chat")]) > 0.0);
        for kind in ["create_case", "deliver_message"] {
            assert!(
                grew("handoff_queue_age_seconds_count", &[("kind", kind)]) >= 1.0,
                "{kind}"
            );
        }
        // The gateway's own counters still count its own calls.
        assert!(
            grew("handoff_salesforce_api_calls_total", &[]) >= 1.0,
            "{}",
            after.text
        );
        // The Case job finished in the transaction that wrote the delivery.
        assert!(after.sum("handoff_jobs", &[("state", "done")]) >= 1.0);

        for (what, secret) in [
            ("the session id", session_id.as_str()),
            ("the email", email.as_str()),
            ("a made-up path", "/nowhere"),
            ("a made-up method", "PROPFIND"),
        ] {
            assert!(
                !after.text.contains(secret),
                "{what} leaked into /metrics:\n{}",
                after.text
            );
        }
        for value in after.label_values() {
            assert!(
                !value.contains('@') && !value.contains("metrics-"),
                "unbounded label value {value:?}"
            );
        }
        app.gateway.stop().await;
        app.emulator.shutdown().await;
    }
);

// A live chat times its MIAW calls under `miaw_…` kinds (the end-user token, the
// conversation, the messages to the rep, the event stream) without the conversation id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miaw_calls_are_timed_by_kind() {
    let app = spawn_live_app(Db::Sqlite, sf_emulator::EmulatorConfig::default(), |_| {}).await;
    let hook = receiver(vec![]).await;
    let session_id = format!("metrics-live-{}", uuid::Uuid::new_v4().simple());
    let before = scrape(&app).await;
    let (status, body) = app
        .post_escalation(&json!({
            "session_id": session_id,
            "channel": "chat",
            "customer": {"name": "Ana"},
            "summary": "Wants a refund.",
            "transcript": [{"role": "customer", "text": "Refund please", "at": "2026-11-22T10:00:00Z"}],
            "reply_to": {"webhook_url": hook.url},
        }))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["route"], "messaging", "{body}");
    let conversation_id = body["salesforce_miaw_session_id"]
        .as_str()
        .expect("conversation id")
        .to_string();
    RepConsole::new(&app.emulator.url())
        .wait_for(&conversation_id, "the opening messages", |c: &Value| {
            !texts_by(c, "EndUser").is_empty()
        })
        .await;
    // The stream is opened by the supervisor's next round.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let after = scrape(&app).await;
        let grew = |kind: &str| {
            after.sum("handoff_salesforce_call_seconds_count", &[("kind", kind)])
                - before.sum("handoff_salesforce_call_seconds_count", &[("kind", kind)])
        };
        if grew("miaw_subscribe") >= 1.0 {
            assert!(grew("miaw_create_conversation") >= 1.0, "{}", after.text);
            assert!(grew("miaw_send_message") >= 1.0, "{}", after.text);
            assert!(
                grew("miaw_unauthenticated_token") + grew("miaw_authenticated_token") >= 1.0,
                "{}",
                after.text
            );
            break after;
        }
        assert!(
            Instant::now() < deadline,
            "no stream subscription:\n{}",
            after.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for secret in [session_id.as_str(), conversation_id.as_str()] {
        assert!(
            !after.text.contains(secret),
            "{secret} leaked into /metrics"
        );
    }
    app.gateway.stop().await;
    app.emulator.shutdown().await;
}
