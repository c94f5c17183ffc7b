//! Timings and failures of every HTTP call this crate makes to Salesforce, recorded through
//! the [`metrics`] facade: whatever recorder the embedding program installed receives them
//! (the gateway's Prometheus recorder; none at all is fine — the calls then record nothing).
//!
//! Labels are bounded: `kind` is one of this crate's fixed operation names (`create`,
//! `upsert`, `query`, `composite`, `token`, `miaw_send_message`, …) and `status` an HTTP
//! status class name or code. Never record an id, a URL, an sObject value or a user name
//! in a label: every distinct label value is a time series kept for the process's life.

use std::time::Duration;

/// Histogram: seconds from sending a request to reading its whole answer (or failing), by `kind`.
pub const CALL_SECONDS: &str = "handoff_salesforce_call_seconds";
/// Counter: calls that failed in transport or were answered with a status of 400 or more,
/// by `kind` and `status` (`transport`, or the code, `400`–`599`; `other` beyond).
pub const CALL_ERRORS: &str = "handoff_salesforce_call_errors_total";

/// Registers the help text of this crate's metrics with the installed recorder.
pub fn describe() {
    metrics::describe_histogram!(
        CALL_SECONDS,
        metrics::Unit::Seconds,
        "Salesforce HTTP calls (REST, OAuth token, MIAW) by kind: seconds from sending to the end of the answer."
    );
    metrics::describe_counter!(
        CALL_ERRORS,
        "Salesforce HTTP calls that failed in transport or were answered with a status of 400 or more, by kind and status."
    );
}

/// How a call ended, for [`record`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    /// An answer with this HTTP status arrived.
    Answered(u16),
    /// No (complete) answer: connection, TLS, timeout or body read failure.
    Transport,
}

/// Records one call of `kind` that took `elapsed`.
pub(crate) fn record(kind: impl Into<metrics::SharedString>, elapsed: Duration, outcome: Outcome) {
    let kind = kind.into();
    metrics::histogram!(CALL_SECONDS, "kind" => kind.clone()).record(elapsed.as_secs_f64());
    let status = match outcome {
        Outcome::Answered(code) if code < 400 => return,
        // A bounded set: 200 codes at most.
        Outcome::Answered(code @ 400..=599) => metrics::SharedString::from(code.to_string()),
        Outcome::Answered(_) => metrics::SharedString::const_str("other"),
        Outcome::Transport => metrics::SharedString::const_str("transport"),
    };
    metrics::counter!(CALL_ERRORS, "kind" => kind, "status" => status).increment(1);
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use super::*;

    /// A metric's name and its labels.
    type Kept = (String, Vec<(String, String)>);

    /// Keeps the name and labels of every metric handle asked for (each `record` asks anew).
    #[derive(Default)]
    struct Keys(Mutex<Vec<Kept>>);

    impl Keys {
        fn keep(&self, key: &Key) {
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            self.0.lock().unwrap().push((key.name().to_owned(), labels));
        }
    }

    impl Recorder for Keys {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            self.keep(key);
            Counter::noop()
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            self.keep(key);
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            self.keep(key);
            Histogram::noop()
        }
    }

    #[test]
    fn every_call_is_timed_and_failures_are_counted_by_bounded_status() {
        let keys = Keys::default();
        metrics::with_local_recorder(&keys, || {
            record("query", Duration::from_millis(5), Outcome::Answered(200));
            record("upsert", Duration::from_millis(5), Outcome::Answered(300));
            record("query", Duration::from_millis(5), Outcome::Answered(503));
            record("token", Duration::from_millis(5), Outcome::Transport);
            record(
                "composite",
                Duration::from_millis(5),
                Outcome::Answered(999),
            );
        });
        let kept = keys.0.into_inner().unwrap();
        let of = |name: &str| -> Vec<Vec<(String, String)>> {
            kept.iter()
                .filter(|(n, _)| n == name)
                .map(|(_, labels)| labels.clone())
                .collect()
        };
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let timed: Vec<String> = of(CALL_SECONDS)
            .into_iter()
            .map(|l| l[0].1.clone())
            .collect();
        assert_eq!(timed, ["query", "upsert", "query", "token", "composite"]);
        assert_eq!(
            of(CALL_ERRORS),
            [
                vec![pair("kind", "query"), pair("status", "503")],
                vec![pair("kind", "token"), pair("status", "transport")],
                vec![pair("kind", "composite"), pair("status", "other")],
            ]
        );
    }
}
