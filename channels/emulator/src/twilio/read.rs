//! `GET …/Messages/{Sid}.json` and `GET …/Messages.json` (newest first, `To`/`From`
//! filters, `Page`/`PageSize` paging).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Uri};
use serde_json::json;

use crate::server::lock;
use crate::twilio::auth;
use crate::twilio::errors::TwilioError;
use crate::twilio::state::{API_VERSION, TwilioState};

/// Default and largest `PageSize`.
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;
/// Largest `Page` looked at (beyond the message limit anyway).
const MAX_PAGE: usize = 1_000_000;

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`.
pub(crate) async fn fetch(
    State(state): State<Arc<TwilioState>>,
    Path((account, file)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !auth::authenticated(&state, &headers) {
        return TwilioError::authenticate().into_response();
    }
    let Some(sid) = file.strip_suffix(".json") else {
        return TwilioError::not_found(uri.path()).into_response();
    };
    if account != state.account_sid {
        return TwilioError::not_found(uri.path()).into_response();
    }
    let inner = lock(&state.inner);
    match inner.messages.iter().rev().find(|m| m.sid == sid) {
        Some(m) => Json(m.resource(&state.account_sid)).into_response(),
        None => TwilioError::not_found(uri.path()).into_response(),
    }
}

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`.
pub(crate) async fn list(
    State(state): State<Arc<TwilioState>>,
    Path(account): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !auth::authenticated(&state, &headers) {
        return TwilioError::authenticate().into_response();
    }
    if account != state.account_sid {
        return TwilioError::not_found(uri.path()).into_response();
    }
    // Unparsable values fall back to the defaults; sizes are held to 1..=1000.
    let page_size = query
        .get("PageSize")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let page = query
        .get("Page")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_PAGE);
    let to = query.get("To").filter(|s| !s.is_empty());
    let from = query.get("From").filter(|s| !s.is_empty());
    let inner = lock(&state.inner);
    let matching: Vec<_> = inner
        .messages
        .iter()
        .rev()
        .filter(|m| to.is_none_or(|t| &m.to == t))
        .filter(|m| from.is_none_or(|f| m.from_shown && &m.from == f))
        .collect();
    let start = page * page_size;
    let items: Vec<_> = matching
        .iter()
        .skip(start)
        .take(page_size)
        .map(|m| m.resource(&state.account_sid))
        .collect();
    let base = format!(
        "/{API_VERSION}/Accounts/{}/Messages.json",
        state.account_sid
    );
    let filters: String = [("To", to), ("From", from)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("&{k}={}", encode(v))))
        .collect();
    let page_uri = |p: usize| format!("{base}?PageSize={page_size}&Page={p}{filters}");
    let more = matching.len() > start + items.len();
    let end = if items.is_empty() {
        start
    } else {
        start + items.len() - 1
    };
    Json(json!({
        "end": end,
        "first_page_uri": page_uri(0),
        "messages": items,
        "next_page_uri": more.then(|| page_uri(page + 1)),
        "page": page,
        "page_size": page_size,
        "previous_page_uri": (page > 0).then(|| page_uri(page - 1)),
        "start": start,
        "uri": page_uri(page),
    }))
    .into_response()
}

fn encode(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}
