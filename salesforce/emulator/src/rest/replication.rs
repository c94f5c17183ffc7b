//! `GET sobjects/{Type}/updated?start=&end=` and `…/deleted?start=&end=`: the data-replication
//! resources (REST API Developer Guide, "sObject Get Updated" / "sObject Get Deleted").
//!
//! Seconds in `start` and `end` are truncated; `start` must precede `end`; results reach back at
//! most 30 days (updated) or 15 days (deleted, the recycle bin). A record counts as updated when
//! its `SystemModstamp` falls in `[start, latestDateCovered]`, where `latestDateCovered` is `end`,
//! or now when `end` is later.

use chrono::{DateTime, Duration, DurationRound, Utc};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Call, Reply, method_not_allowed};
use crate::dml::{format_datetime, parse_datetime};
use crate::error::SfError;
use crate::store::Store;

const UPDATED_DAYS: i64 = 30;
const DELETED_DAYS: i64 = 15;

fn replication_error(message: impl Into<String>) -> SfError {
    SfError::bad_request("INVALID_REPLICATION_DATE", message)
}

fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::minutes(1)).unwrap_or(t)
}

/// Parses `start`/`end` (a `+` decoded as a space by form decoding is taken back).
fn param(call: &Call, name: &str) -> Result<DateTime<Utc>, SfError> {
    let raw = call.param(name).ok_or_else(|| {
        SfError::bad_request(
            "MISSING_ARGUMENT",
            format!("{name} parameter is required, in ISO 8601 form (2026-01-01T00:00:00+00:00)"),
        )
    })?;
    let text = raw.trim().replace(' ', "+");
    parse_datetime(&text).map(minute).ok_or_else(|| {
        replication_error(format!(
            "{name} is not a valid date and time: {raw}; use ISO 8601 (2026-01-01T00:00:00+00:00)"
        ))
    })
}

struct Window {
    start: DateTime<Utc>,
    covered: DateTime<Utc>,
    earliest: DateTime<Utc>,
}

fn window(call: &Call, now: DateTime<Utc>, days: i64) -> Result<Window, SfError> {
    let start = param(call, "start")?;
    let end = param(call, "end")?;
    if start >= end {
        return Err(replication_error(
            "startDate must chronologically precede endDate",
        ));
    }
    let earliest = minute(now - Duration::days(days));
    if start < earliest {
        return Err(replication_error(format!(
            "startDate cannot be more than {days} days ago; the earliest date available is {}",
            format_datetime(earliest)
        )));
    }
    Ok(Window {
        start,
        covered: end.min(now),
        earliest,
    })
}

fn stamp(r: &serde_json::Map<String, Value>) -> Option<DateTime<Utc>> {
    r.get("SystemModstamp")
        .and_then(Value::as_str)
        .and_then(parse_datetime)
}

/// `GET sobjects/{Type}/updated` and `…/deleted`.
pub(crate) fn run(store: &Store, call: &Call, t: &str, deleted: bool) -> Reply {
    if call.method != Method::GET {
        return method_not_allowed(&call.method, "GET,HEAD");
    }
    let Some(obj) = store.schema.object(t) else {
        return SfError::not_found().into();
    };
    let now = Utc::now();
    let days = if deleted { DELETED_DAYS } else { UPDATED_DAYS };
    let w = match window(call, now, days) {
        Ok(w) => w,
        Err(e) => return e.into(),
    };
    let in_window = |r: &&serde_json::Map<String, Value>| {
        stamp(r).is_some_and(|t| t >= w.start && t <= w.covered)
    };
    let id = |r: &serde_json::Map<String, Value>| r.get("Id").cloned().unwrap_or(Value::Null);
    let covered = format_datetime(w.covered);
    if deleted {
        let list: Vec<Value> = store
            .deleted(&obj.name)
            .iter()
            .filter(in_window)
            .map(|r| json!({"id": id(r), "deletedDate": r.get("SystemModstamp")}))
            .collect();
        Reply::ok(json!({
            "deletedRecords": list,
            "earliestDateAvailable": format_datetime(w.earliest),
            "latestDateCovered": covered,
        }))
    } else {
        let ids: Vec<Value> = store
            .rows(&obj.name)
            .iter()
            .filter(in_window)
            .map(id)
            .collect();
        Reply::json(
            StatusCode::OK,
            json!({"ids": ids, "latestDateCovered": covered}),
        )
    }
}
