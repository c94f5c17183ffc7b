//! `/services/data/…`: the REST entry point (auth, limits, faults, drop-after-commit) and the
//! dispatcher shared by top-level requests and composite subrequests.

pub(crate) mod actions;
pub(crate) mod collections;
pub(crate) mod composite;
pub(crate) mod describe;
pub(crate) mod limits;
pub(crate) mod query;
pub(crate) mod replication;
pub(crate) mod sobjects;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::dml::Ctx;
use crate::drain::MAX_BODY_BYTES;
use crate::error::SfError;
use crate::faults::PreFault;
use crate::ids;
use crate::server::{AppState, DropSignal, lock};
use crate::store::Store;

const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// What a handler answers, before it becomes an HTTP response or a composite subresponse.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Option<Value>,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, body: Value) -> Self {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub(crate) fn ok(body: Value) -> Self {
        Self::json(StatusCode::OK, body)
    }

    pub(crate) fn no_content() -> Self {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: None,
            headers: Vec::new(),
        }
    }

    pub(crate) fn error(e: SfError) -> Self {
        Self::json(e.status, e.rest_body())
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn is_error(&self) -> bool {
        self.status.as_u16() >= 400
    }
}

impl From<SfError> for Reply {
    fn from(e: SfError) -> Self {
        Reply::error(e)
    }
}

/// One REST call, from the wire or from a composite subrequest.
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    /// Major API version (`62` for `v62.0`).
    pub(crate) version: u32,
    /// Path segments after `/services/data/vNN.0/`, percent-decoded, without a trailing empty one.
    pub(crate) segments: Vec<String>,
    /// Decoded query parameters.
    pub(crate) params: Vec<(String, String)>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Option<Value>,
}

impl Call<'_> {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `v62.0`
    pub(crate) fn version_str(&self) -> String {
        format!("v{}.0", self.version)
    }

    /// `/services/data/v62.0`
    pub(crate) fn base(&self) -> String {
        format!("/services/data/v{}.0", self.version)
    }

    /// The body as a JSON object, or JSON_PARSER_ERROR.
    pub(crate) fn object_body(&self) -> Result<&serde_json::Map<String, Value>, SfError> {
        match &self.body {
            Some(Value::Object(m)) => Ok(m),
            Some(other) => Err(SfError::json_parser(format!(
                "Cannot deserialize instance of sobject from {} value or request may be missing a required field",
                match other {
                    Value::Array(_) => "START_ARRAY",
                    Value::String(_) => "VALUE_STRING",
                    Value::Number(_) => "VALUE_NUMBER_INT",
                    Value::Bool(_) => "VALUE_TRUE",
                    _ => "VALUE_NULL",
                }
            ))),
            None => Err(SfError::json_parser(
                "The HTTP entity body is required, but this request has no entity body.",
            )),
        }
    }
}

/// 405 with Salesforce's text.
pub(crate) fn method_not_allowed(method: &Method, allowed: &str) -> Reply {
    Reply::error(SfError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
    ))
}

/// Parses `v62.0` into `62` when the version is accepted.
pub(crate) fn parse_version(state: &AppState, segment: &str) -> Option<u32> {
    let rest = segment.strip_prefix('v')?;
    let (major, minor) = rest.split_once('.')?;
    if minor != "0" || major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let major: u32 = major.parse().ok()?;
    let range = state.config.api_versions;
    (range.min..=range.max).contains(&major).then_some(major)
}

/// Splits a path after `/services/data/` into (version segment, decoded rest segments).
///
/// A `.` or `..` segment (literal or percent-encoded) does not resolve to a resource: `None`,
/// which callers answer with 404 NOT_FOUND. Salesforce's answer to such a URL is not
/// documented; a client that normalises dot segments never sends one (see docs/emulator.md).
pub(crate) fn split_path(path: &str) -> Option<(String, Vec<String>)> {
    let rest = path.strip_prefix("/services/data/")?;
    let mut parts = rest.split('/');
    let version = parts.next()?.to_string();
    let mut segments: Vec<String> = parts
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    while segments.last().is_some_and(String::is_empty) {
        segments.pop();
    }
    if segments.iter().any(|s| s == "." || s == "..") {
        return None;
    }
    Some((version, segments))
}

fn season(version: u32) -> String {
    // v20.0 = Winter '11; three releases a year (Spring, Summer, Winter).
    let index = version.saturating_sub(20);
    let names = ["Winter", "Spring", "Summer"];
    let name = names[(index % 3) as usize];
    let year = 11 + index / 3;
    format!("{name} '{year:02}")
}

/// `GET /services/data/`: the versions list (no auth, no limit header).
pub(crate) async fn versions(State(state): State<Arc<AppState>>) -> Response {
    let r = state.config.api_versions;
    let list: Vec<Value> = (r.min..=r.max)
        .map(|v| {
            json!({"version": format!("{v}.0"), "url": format!("/services/data/v{v}.0"), "label": season(v)})
        })
        .collect();
    json_response(StatusCode::OK, Some(&Value::Array(list)), &[])
}

/// Fallback for paths outside the API.
pub(crate) async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        Some(&SfError::not_found().rest_body()),
        &[],
    )
}

fn json_response(status: StatusCode, body: Option<&Value>, headers: &[(&str, String)]) -> Response {
    let mut resp = match body {
        Some(b) => {
            let mut r = (status, b.to_string()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(JSON_CONTENT_TYPE),
            );
            r
        }
        None => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = status;
            r
        }
    };
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    resp
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| token.trim())
}

/// Checks the token; returns the caller's user id.
pub(crate) fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, SfError> {
    let token = bearer(headers).ok_or_else(SfError::invalid_session)?;
    let max_calls = lock(&state.faults).faults.token_expires_after_calls;
    let mut sessions = lock(&state.sessions);
    let Some(session) = sessions.get(token) else {
        return Err(SfError::invalid_session());
    };
    let expired_by_time =
        session.issued.elapsed() > Duration::from_secs(state.config.session_timeout_secs);
    let expired_by_calls = max_calls.is_some_and(|n| session.calls >= n);
    if expired_by_time || expired_by_calls {
        sessions.remove(token);
        return Err(SfError::invalid_session());
    }
    Ok(session.user_id.clone())
}

fn count_session_call(state: &AppState, headers: &HeaderMap) {
    if let Some(token) = bearer(headers)
        && let Some(s) = lock(&state.sessions).get_mut(token)
    {
        s.calls += 1;
    }
}

/// Stats key for a call: `"PATCH sobjects/Case/{id}"`.
pub(crate) fn route_label(method: &Method, segments: &[String]) -> String {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let path = match s.as_slice() {
        [] => String::new(),
        ["sobjects", t, x] if *x != "describe" => {
            if ids::canonical(x).is_some() {
                format!("sobjects/{t}/{{id}}")
            } else {
                format!("sobjects/{t}/{x}")
            }
        }
        ["sobjects", t, f, _] => format!("sobjects/{t}/{f}/{{value}}"),
        [q @ ("query" | "queryAll"), _] => format!("{q}/{{locator}}"),
        other => other.join("/"),
    };
    format!("{method} {path}")
}

/// A record id quoted by a lock error: the path id, else the first id-valued body field.
fn lock_target(store: &Store, segments: &[String], body: Option<&Value>) -> Option<String> {
    let known =
        |s: &str| ids::canonical(s).filter(|id| store.schema.object_by_prefix(&id[..3]).is_some());
    if let [_, _, x] = segments
        && let Some(id) = known(x)
    {
        return Some(id);
    }
    let obj = match body? {
        Value::Object(m) => m
            .get("records")
            .and_then(|r| r.get(0))
            .and_then(Value::as_object)
            .unwrap_or(m),
        _ => return None,
    };
    obj.values().filter_map(Value::as_str).find_map(known)
}

/// Every authenticated `/services/data/vNN.0/…` request.
pub(crate) async fn entry(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let drop_signal = req.extensions().get::<DropSignal>().cloned();
    let (parts, body) = req.into_parts();
    let limit_header = |state: &AppState| {
        let used = lock(&state.stats).api_calls;
        (
            "Sforce-Limit-Info",
            format!("api-usage={used}/{}", state.daily_limit()),
        )
    };
    let respond = |state: &AppState, reply: Reply| {
        let mut headers = reply.headers.clone();
        headers.push(limit_header(state));
        json_response(reply.status, reply.body.as_ref(), &headers)
    };

    let Some((version_segment, segments)) = split_path(parts.uri.path()) else {
        return respond(&state, SfError::not_found().into());
    };
    let Some(version) = parse_version(&state, &version_segment) else {
        return respond(&state, SfError::not_found().into());
    };

    let user_id = match authenticate(&state, &parts.headers) {
        Ok(u) => u,
        Err(e) => {
            lock(&state.stats).reject(&e.code);
            return respond(&state, e.into());
        }
    };
    let limit = state.daily_limit();
    {
        let mut stats = lock(&state.stats);
        if stats.api_calls >= limit {
            stats.reject("REQUEST_LIMIT_EXCEEDED");
            drop(stats);
            return respond(
                &state,
                SfError::new(
                    StatusCode::FORBIDDEN,
                    "REQUEST_LIMIT_EXCEEDED",
                    "TotalRequests Limit exceeded.",
                )
                .into(),
            );
        }
        stats.api_calls += 1;
        stats.route(route_label(&parts.method, &segments));
    }
    count_session_call(&state, &parts.headers);

    let latency = lock(&state.faults).faults.latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return respond(
                &state,
                SfError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "JSON_PARSER_ERROR",
                    "Request body too large",
                )
                .into(),
            );
        }
    };
    let params: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let mut method = parts.method.clone();
    if method == Method::POST
        && let Some((_, m)) = params.iter().find(|(k, _)| k == "_HttpMethod")
        && let Ok(m) = Method::from_bytes(m.to_ascii_uppercase().as_bytes())
    {
        method = m;
    }
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                return respond(&state, SfError::json_parser(json_error_text(&e)).into());
            }
        }
    };

    let is_write = method != Method::GET && method != Method::HEAD;
    let pre = lock(&state.faults).before_call(is_write);
    match pre {
        PreFault::None => {}
        PreFault::ServerUnavailable => {
            lock(&state.stats).reject("SERVER_UNAVAILABLE");
            return respond(
                &state,
                SfError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVER_UNAVAILABLE",
                    "Server temporarily unavailable. Please try again later.",
                )
                .into(),
            );
        }
        PreFault::LockRow => {
            lock(&state.stats).reject("UNABLE_TO_LOCK_ROW");
            let target = lock_target(&lock(&state.store), &segments, body.as_ref());
            let message = match target {
                Some(id) => format!(
                    "unable to obtain exclusive access to this record or 1 records: {}",
                    ids::to15(&id)
                ),
                None => "unable to obtain exclusive access to this record".to_string(),
            };
            return respond(
                &state,
                SfError::dml("UNABLE_TO_LOCK_ROW", message, Vec::new()).into(),
            );
        }
    }

    let call = Call {
        method,
        version,
        segments,
        params,
        headers: &parts.headers,
        body,
    };
    let ctx = Ctx::new(&user_id);
    let reply = {
        let mut store = lock(&state.store);
        dispatch(&state, &mut store, &ctx, &call)
    };
    tracing::debug!(method = %call.method, status = reply.status.as_u16(), "api call");

    let drop_now = drop_signal.is_some() && lock(&state.faults).drop_response();
    if drop_now && let Some(signal) = drop_signal {
        lock(&state.stats).dropped_responses += 1;
        signal.0.notify_one();
        // The connection task closes the socket; never produce a response for this request.
        std::future::pending::<()>().await;
    }
    respond(&state, reply)
}

/// A JSON parse error in the style of Salesforce's (Jackson) messages.
pub(crate) fn json_error_text(e: &serde_json::Error) -> String {
    format!(
        "{} at [line:{}, column:{}]",
        e.to_string()
            .split(" at line ")
            .next()
            .unwrap_or("Unexpected character"),
        e.line(),
        e.column()
    )
}

/// Routes a call. Runs with the store locked (or on a composite transaction's copy).
pub(crate) fn dispatch(state: &AppState, store: &mut Store, ctx: &Ctx, call: &Call) -> Reply {
    let s: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        [] => match call.method {
            Method::GET => resources(call),
            _ => method_not_allowed(&call.method, "GET,HEAD"),
        },
        ["sobjects"] => match call.method {
            Method::GET => sobjects::describe_global(store, call),
            _ => method_not_allowed(&call.method, "GET,HEAD"),
        },
        ["sobjects", t] => sobjects::object_root(store, ctx, call, t),
        ["sobjects", t, "describe"] => match call.method {
            Method::GET => describe::describe(store, call, t),
            _ => method_not_allowed(&call.method, "GET,HEAD"),
        },
        ["sobjects", t, r @ ("updated" | "deleted")] => {
            replication::run(store, call, t, *r == "deleted")
        }
        ["sobjects", t, x] => sobjects::record(store, ctx, call, t, x),
        ["sobjects", t, f, v] => sobjects::by_external_id(store, ctx, call, t, f, v),
        [q @ ("query" | "queryAll")] => query::run(state, store, call, *q == "queryAll"),
        ["query" | "queryAll", locator] => query::more(state, call, locator),
        ["composite"] => match call.method {
            Method::POST => composite::run(state, store, ctx, call),
            _ => method_not_allowed(&call.method, "POST"),
        },
        ["composite", "sobjects"] => collections::root(store, ctx, call),
        ["composite", "sobjects", t] => collections::retrieve(store, call, t),
        ["composite", "sobjects", t, f] => collections::upsert(store, ctx, call, t, f),
        ["limits"] => match call.method {
            Method::GET => limits::get(state, store),
            _ => method_not_allowed(&call.method, "GET,HEAD"),
        },
        ["actions", "custom", "flow", name] => actions::flow(state, store, ctx, call, name),
        _ => SfError::not_found().into(),
    }
}

/// `GET /services/data/vNN.0/`: the resource map.
fn resources(call: &Call) -> Reply {
    let base = call.base();
    let mut map = serde_json::Map::new();
    for name in [
        "sobjects",
        "query",
        "queryAll",
        "composite",
        "limits",
        "actions",
    ] {
        map.insert(name.into(), Value::String(format!("{base}/{name}")));
    }
    Reply::ok(Value::Object(map))
}
