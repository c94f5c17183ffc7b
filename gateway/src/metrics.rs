//! Prometheus metrics, served at `GET /metrics` (docs/metrics.md lists every metric).
//!
//! Two sources make one answer:
//!
//! * **Process metrics** — histograms and counters recorded where things happen (HTTP requests,
//!   Salesforce calls in the `salesforce` crate, deliveries, job claims) through the [`metrics`]
//!   facade into one Prometheus recorder, installed once per process by [`install`]. They are
//!   **per process**: several gateways in one process (the tests) share them and each one's
//!   `/metrics` shows the sum.
//! * **State metrics** — the breaker, the Salesforce client's and the case-reply poller's
//!   counters, and the jobs by state — read from one gateway's own state at scrape time
//!   ([`render`]) into a recorder made for that scrape, so they describe that gateway alone.
//!
//! The two sets of names are disjoint. Labels carry bounded values only — route templates,
//! method names, status codes, job kinds, configured channel names, fixed operation names —
//! never a session id, an email address, a phone number, a URL or anything else a client
//! chooses: every distinct label set is a time series the recorder keeps for the life of
//! the process.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::http::AppState;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Histogram: seconds to answer an HTTP request (until the response head), by `route`
/// (the matched template), `method` and `status`.
pub const HTTP_REQUEST_SECONDS: &str = "handoff_http_request_seconds";
/// Histogram: seconds to answer `POST /v1/escalations`, by `status`.
pub const ACCEPT_SECONDS: &str = "handoff_accept_seconds";
/// Histogram: seconds from an outbox row being written to its provider accepting it, by
/// `channel` (the configured channel name that delivered it).
pub const DELIVERY_SECONDS: &str = "handoff_delivery_seconds";
/// Histogram: seconds a job waited between being due and being claimed, by `kind`.
pub const QUEUE_AGE_SECONDS: &str = "handoff_queue_age_seconds";

/// Request-sized latencies: 5 ms to 30 s.
const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Waits that include retries and outages: 10 ms to a day.
const WAIT_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
    86400.0,
];

/// How often the recorder folds recorded samples into its histograms when nobody scrapes
/// (scraping does it too), so their memory stays bounded.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static PROCESS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's Prometheus recorder the first time it is called; later calls (other
/// gateways in the same process) return the same handle. `None` when another recorder was
/// installed first by the embedding program: `/metrics` then shows the state metrics only.
pub fn install() -> Option<&'static PrometheusHandle> {
    PROCESS
        .get_or_init(|| {
            let builder = buckets(PrometheusBuilder::new())
                .expect("the bucket lists are not empty");
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    let upkeep = handle.clone();
                    let spawned = std::thread::Builder::new()
                        .name("handoff-metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(UPKEEP_EVERY);
                                upkeep.run_upkeep();
                            }
                        });
                    if let Err(e) = spawned {
                        tracing::warn!(error = %e, "no metrics upkeep thread; scrapes still fold samples in");
                    }
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "another metrics recorder is installed in this process; /metrics shows the gateway's state only");
                    None
                }
            }
        })
        .as_ref()
}

/// The bucket bounds of each histogram (rendered as Prometheus histograms, not summaries).
fn buckets(
    builder: PrometheusBuilder,
) -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    builder
        .set_buckets(REQUEST_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(DELIVERY_SECONDS.into()), WAIT_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(QUEUE_AGE_SECONDS.into()), WAIT_BUCKETS)
}

/// Help text of the process metrics.
fn describe() {
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "HTTP requests by route template, method and status: seconds until the response head (a stream's body is not included)."
    );
    describe_histogram!(
        ACCEPT_SECONDS,
        Unit::Seconds,
        "POST /v1/escalations by status: seconds to answer."
    );
    describe_histogram!(
        DELIVERY_SECONDS,
        Unit::Seconds,
        "Outbound messages by channel: seconds from the outbox row being written to the provider accepting it (retries and waits included)."
    );
    describe_histogram!(
        QUEUE_AGE_SECONDS,
        Unit::Seconds,
        "Jobs by kind: seconds between being due and being claimed (a job re-claimed after its worker stopped counts from when it was due)."
    );
    salesforce::metrics::describe();
}

/// Records the time a delivery took from its outbox row (`created_at_ms`) until now.
pub fn record_delivery(channel: &str, created_at_ms: i64) {
    let seconds = (crate::store::now_ms() - created_at_ms).max(0) as f64 / 1000.0;
    // Bounded: a delivery is sent only through a configured channel, named in the config.
    metrics::histogram!(DELIVERY_SECONDS, "channel" => channel.to_owned()).record(seconds);
}

/// Records how long a claimed job of `kind` waited since it was due (`due_ms`).
pub fn record_queue_age(kind: &'static str, due_ms: i64, claimed_ms: i64) {
    let seconds = (claimed_ms - due_ms).max(0) as f64 / 1000.0;
    metrics::histogram!(QUEUE_AGE_SECONDS, "kind" => kind).record(seconds);
}

/// The whole `/metrics` answer for the gateway of `state`: its state metrics, then the
/// process metrics.
pub async fn render(state: &AppState) -> Result<String, sea_orm::DbErr> {
    let jobs = state.store.job_counts().await?;
    let mut out = render_state(state, &jobs);
    if let Some(process) = install() {
        out.push_str(&process.render());
    }
    Ok(out)
}

/// The state metrics, through a recorder of this scrape's own (so two gateways in one process
/// never see each other's values, and a label set that disappeared is not shown stale).
fn render_state(state: &AppState, jobs: &[(String, i64)]) -> String {
    let gate = state.gate.snapshot();
    let sf = state.salesforce.stats();
    let (poll_calls, last_poll_calls) = state.replies.poll_calls();
    let poll_per_day = if state.config.case_replies.poll {
        (last_poll_calls.max(1) * 86_400 / state.config.case_replies.poll_interval_secs) as f64
    } else {
        0.0
    };
    let decided = state.replies.decided();
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        describe_gauge!(
            "handoff_salesforce_breaker_state",
            "1 for the breaker's current state (closed, open, half_open)."
        );
        for s in ["closed", "open", "half_open"] {
            gauge!("handoff_salesforce_breaker_state", "state" => s)
                .set(f64::from(u8::from(gate.state == s)));
        }
        describe_counter!(
            "handoff_salesforce_breaker_opened_total",
            "Times Salesforce work was paused (breaker opened or rate limit hit)."
        );
        counter!("handoff_salesforce_breaker_opened_total").absolute(gate.opened_total);
        describe_counter!(
            "handoff_salesforce_probes_total",
            "Probe attempts made while Salesforce work was paused."
        );
        counter!("handoff_salesforce_probes_total").absolute(gate.probes_total);
        describe_counter!(
            "handoff_salesforce_api_calls_total",
            "Salesforce REST calls made by this gateway."
        );
        counter!("handoff_salesforce_api_calls_total").absolute(sf.api_calls);
        describe_counter!(
            "handoff_salesforce_token_requests_total",
            "OAuth token requests made by this gateway."
        );
        counter!("handoff_salesforce_token_requests_total").absolute(sf.token_requests);
        describe_counter!(
            "handoff_case_reply_poll_calls_total",
            "SOQL calls (query and queryMore) the case-reply poller made in this gateway."
        );
        counter!("handoff_case_reply_poll_calls_total").absolute(poll_calls);
        describe_gauge!(
            "handoff_case_reply_poll_calls_per_day",
            "Salesforce API calls per day the poller costs at case_replies.poll_interval_secs and the last poll's page count (0 when polling is off)."
        );
        gauge!("handoff_case_reply_poll_calls_per_day").set(poll_per_day);
        describe_counter!(
            "handoff_case_reply_events_total",
            "Rep-reply events decided in this gateway, by who told us first and what became of them."
        );
        for (source, outcome, n) in decided {
            counter!("handoff_case_reply_events_total", "source" => source, "outcome" => outcome)
                .absolute(n);
        }
        describe_gauge!("handoff_jobs", "Jobs in the database by state.");
        for (job_state, n) in jobs {
            // Bounded: the job states the gateway writes.
            gauge!("handoff_jobs", "state" => job_state.clone()).set(*n as f64);
        }
    });
    handle.render()
}
