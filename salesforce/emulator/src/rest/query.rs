//! `query`, `queryAll` and paging through `nextRecordsUrl` (`…/query/<locator>-<offset>`).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Call, Reply, method_not_allowed};
use crate::error::SfError;
use crate::ids;
use crate::server::{AppState, lock};
use crate::store::Store;

pub(crate) const DEFAULT_BATCH: usize = 2000;
pub(crate) const MIN_BATCH: usize = 200;
pub(crate) const MAX_BATCH: usize = 2000;
/// Open cursors kept; older ones are discarded (Salesforce also caps open cursors per user).
const MAX_CURSORS: usize = 100;
/// A locator unused for this long is gone (Salesforce: 15 minutes of inactivity).
const CURSOR_IDLE: Duration = Duration::from_secs(15 * 60);

struct Cursor {
    records: Vec<Value>,
    total_size: usize,
    batch: usize,
    last_used: Instant,
}

/// Open query cursors.
#[derive(Default)]
pub(crate) struct Cursors {
    next: u64,
    map: HashMap<String, Cursor>,
    order: VecDeque<String>,
}

impl Cursors {
    fn open(&mut self, records: Vec<Value>, total_size: usize, batch: usize) -> String {
        self.next += 1;
        let locator = ids::mint("01g", 2 * 62 * 62 * 62 * 62 + self.next);
        self.map.insert(
            locator.clone(),
            Cursor {
                records,
                total_size,
                batch,
                last_used: Instant::now(),
            },
        );
        self.order.push_back(locator.clone());
        while self.order.len() > MAX_CURSORS {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        locator
    }
}

/// `Sforce-Query-Options: batchSize=N`, clamped to 200..=2000.
fn batch_size(call: &Call) -> usize {
    call.headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',').find_map(|part| {
                let (k, val) = part.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("batchSize")
                    .then(|| val.trim().parse::<usize>().ok())
                    .flatten()
            })
        })
        .map(|n| n.clamp(MIN_BATCH, MAX_BATCH))
        .unwrap_or(DEFAULT_BATCH)
}

fn page(
    call: &Call,
    locator: Option<&str>,
    total: usize,
    records: &[Value],
    end: usize,
    done: bool,
) -> Reply {
    let mut body = json!({"totalSize": total, "done": done, "records": records});
    if let (false, Some(loc)) = (done, locator) {
        body["nextRecordsUrl"] = Value::String(format!("{}/query/{loc}-{end}", call.base()));
    }
    Reply::ok(body)
}

fn execute(store: &Store, call: &Call, q: &str, all: bool) -> Result<(usize, Vec<Value>), SfError> {
    let view = store.view(all);
    let parsed = crate::soql::parse(q).map_err(soql_error)?;
    let out = crate::soql::execute(&parsed, &view, &call.version_str()).map_err(soql_error)?;
    Ok((out.total_size, out.records))
}

fn soql_error(e: crate::soql::SoqlError) -> SfError {
    SfError::bad_request(e.error_code(), e.message())
}

/// `GET query?q=…` / `GET queryAll?q=…`
pub(crate) fn run(state: &AppState, store: &Store, call: &Call, all: bool) -> Reply {
    if call.method != Method::GET && call.method != Method::HEAD {
        return method_not_allowed(&call.method, "GET,HEAD");
    }
    let Some(q) = call.param("q").filter(|q| !q.trim().is_empty()) else {
        return SfError::bad_request("MALFORMED_QUERY", "A query string has to be specified")
            .into();
    };
    let (total, records) = match execute(store, call, q, all) {
        Ok(r) => r,
        Err(e) => return e.into(),
    };
    let batch = batch_size(call);
    if records.len() <= batch {
        return page(call, None, total, &records, records.len(), true);
    }
    let first: Vec<Value> = records[..batch].to_vec();
    let locator = lock(&state.cursors).open(records, total, batch);
    page(call, Some(&locator), total, &first, batch, false)
}

/// `GET query/<locator>-<offset>`
pub(crate) fn more(state: &AppState, call: &Call, segment: &str) -> Reply {
    if call.method != Method::GET && call.method != Method::HEAD {
        return method_not_allowed(&call.method, "GET,HEAD");
    }
    let invalid = || {
        Reply::error(SfError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        ))
    };
    let Some((locator, offset)) = segment.rsplit_once('-') else {
        return invalid();
    };
    let Ok(offset) = offset.parse::<usize>() else {
        return invalid();
    };
    let mut cursors = lock(&state.cursors);
    cursors
        .map
        .retain(|_, c| c.last_used.elapsed() < CURSOR_IDLE);
    let Some(cursor) = cursors.map.get_mut(locator) else {
        return invalid();
    };
    if offset > cursor.records.len() {
        return invalid();
    }
    cursor.last_used = Instant::now();
    let end = (offset + cursor.batch).min(cursor.records.len());
    let done = end >= cursor.records.len();
    page(
        call,
        Some(locator),
        cursor.total_size,
        &cursor.records[offset..end],
        end,
        done,
    )
}
