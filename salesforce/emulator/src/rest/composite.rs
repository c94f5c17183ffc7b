//! `POST composite`: up to 25 subrequests with `@{ref.path}` references.
//!
//! The envelope is validated first (any problem → top-level 400, nothing runs). Then:
//! - `allOrNone: true`: subrequests run in order under a savepoint; at the first failure it is
//!   rolled back, the failing subrequest keeps its error and every other one answers
//!   400 `PROCESSING_HALTED`.
//! - `allOrNone: false`: each subrequest commits on its own; one that references a failed (or
//!   missing) result is not run and answers 400 `PROCESSING_HALTED`.
//!
//! The response is HTTP 200 whenever the envelope was valid.

use std::collections::{HashMap, HashSet};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value, json};

use super::{Call, Reply, dispatch, parse_version, split_path};
use crate::dml::Ctx;
use crate::error::SfError;
use crate::server::AppState;
use crate::store::Store;

pub(crate) const MAX_SUBREQUESTS: usize = 25;
const FORBIDDEN_HEADERS: [&str; 3] = ["accept", "authorization", "content-type"];
const HALTED: &str =
    "The transaction was rolled back since another operation in the same transaction failed.";

struct Sub {
    method: Method,
    url: String,
    reference_id: String,
    body: Option<Value>,
    headers: HeaderMap,
}

fn invalid(message: impl Into<String>) -> SfError {
    SfError::bad_request("INVALID_INPUT", message)
}

fn parse_envelope(call: &Call) -> Result<(bool, Vec<Sub>), SfError> {
    let body = call.object_body()?;
    let all_or_none = match body.get("allOrNone") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(SfError::json_parser(format!(
                "Cannot deserialize instance of boolean from value {other}"
            )));
        }
    };
    let Some(list) = body.get("compositeRequest").and_then(Value::as_array) else {
        return Err(invalid(
            "The compositeRequest property is required and must be an array",
        ));
    };
    if list.is_empty() {
        return Err(invalid(
            "The compositeRequest array must contain at least one subrequest",
        ));
    }
    if list.len() > MAX_SUBREQUESTS {
        return Err(invalid(format!(
            "The number of subrequests ({}) exceeds the limit of {MAX_SUBREQUESTS}",
            list.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut subs = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let Some(item) = item.as_object() else {
            return Err(invalid(format!("Subrequest {i} is not a JSON object")));
        };
        let reference_id = item
            .get("referenceId")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("Subrequest {i} has no referenceId")))?;
        if reference_id.is_empty()
            || !reference_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(invalid(format!(
                "Invalid referenceId '{reference_id}': use only letters, digits and underscores"
            )));
        }
        if !seen.insert(reference_id.to_string()) {
            return Err(invalid(format!("Duplicate referenceId '{reference_id}'")));
        }
        let method = match item.get("method").and_then(Value::as_str) {
            Some(m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE")) => {
                Method::from_bytes(m.as_bytes()).map_err(|_| invalid("invalid method"))?
            }
            other => {
                return Err(invalid(format!(
                    "Invalid method {} in subrequest '{reference_id}': use GET, POST, PUT, PATCH or DELETE",
                    other.unwrap_or("(missing)")
                )));
            }
        };
        let url = item
            .get("url")
            .and_then(Value::as_str)
            .filter(|u| u.starts_with("/services/data/"))
            .ok_or_else(|| {
                invalid(format!(
                    "The url of subrequest '{reference_id}' must start with /services/data/"
                ))
            })?
            .to_string();
        let mut headers = HeaderMap::new();
        if let Some(h) = item.get("httpHeaders") {
            let Some(h) = h.as_object() else {
                return Err(invalid("httpHeaders must be an object"));
            };
            for (k, v) in h {
                if FORBIDDEN_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                    return Err(invalid(format!(
                        "The header {k} is not allowed in a composite subrequest"
                    )));
                }
                let v = v
                    .as_str()
                    .ok_or_else(|| invalid(format!("The value of header {k} must be a string")))?;
                let name = HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| invalid(format!("Invalid header name {k}")))?;
                let value = HeaderValue::from_str(v)
                    .map_err(|_| invalid(format!("Invalid value for header {k}")))?;
                headers.insert(name, value);
            }
        }
        subs.push(Sub {
            method,
            url,
            reference_id: reference_id.to_string(),
            body: item.get("body").cloned().filter(|b| !b.is_null()),
            headers,
        });
    }
    Ok((all_or_none, subs))
}

/// Why a reference could not be resolved.
struct Unresolved(String);

/// Walks `records[0].Id`-style paths.
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = value;
    for part in path.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        let mut rest = indexes;
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']')?;
            let n: usize = stripped[..end].parse().ok()?;
            cur = cur.get(n)?;
            rest = &stripped[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(cur)
}

fn resolve_expr(expr: &str, results: &HashMap<String, Option<Value>>) -> Result<Value, Unresolved> {
    let (reference, path) = expr.split_once('.').unwrap_or((expr, ""));
    let fail = || {
        Unresolved(format!(
            "Invalid reference specified. No value for {expr} found in {reference}. Provided referenceId ('{reference}') is not valid."
        ))
    };
    let body = results
        .get(reference)
        .ok_or_else(fail)?
        .as_ref()
        .ok_or_else(fail)?;
    let v = if path.is_empty() {
        body
    } else {
        lookup(body, path).ok_or_else(fail)?
    };
    if v.is_null() {
        return Err(fail());
    }
    Ok(v.clone())
}

/// Substitutes `@{…}` in a string. A string that is exactly one reference takes the referenced
/// JSON value as is; otherwise values are spliced in as text.
fn resolve_str(s: &str, results: &HashMap<String, Option<Value>>) -> Result<Value, Unresolved> {
    if let Some(inner) = s.strip_prefix("@{").and_then(|r| r.strip_suffix('}'))
        && !inner.contains('}')
    {
        return resolve_expr(inner, results);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        match resolve_expr(&after[..end], results)? {
            Value::String(v) => out.push_str(&v),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

fn resolve_value(v: &Value, results: &HashMap<String, Option<Value>>) -> Result<Value, Unresolved> {
    Ok(match v {
        Value::String(s) => resolve_str(s, results)?,
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| resolve_value(x, results))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                out.insert(k.clone(), resolve_value(x, results)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn halted(message: &str) -> Reply {
    Reply::error(SfError::bad_request("PROCESSING_HALTED", message))
}

/// A collection subresponse counts as failed when any record failed.
fn failed(reply: &Reply) -> bool {
    reply.is_error()
        || reply
            .body
            .as_ref()
            .and_then(Value::as_array)
            .is_some_and(|items| {
                items
                    .iter()
                    .any(|i| i.get("success").and_then(Value::as_bool) == Some(false))
            })
}

/// Runs one subrequest (after reference resolution).
fn execute(
    state: &AppState,
    store: &mut Store,
    ctx: &Ctx,
    sub: &Sub,
    results: &HashMap<String, Option<Value>>,
) -> Result<Reply, Unresolved> {
    let url = match resolve_str(&sub.url, results)? {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let body = sub
        .body
        .as_ref()
        .map(|b| resolve_value(b, results))
        .transpose()?;
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let Some((version_segment, segments)) = split_path(path) else {
        return Ok(SfError::not_found().into());
    };
    let Some(version) = parse_version(state, &version_segment) else {
        return Ok(SfError::not_found().into());
    };
    if segments.first().map(String::as_str) == Some("composite") && segments.len() == 1 {
        return Ok(invalid("A composite subrequest cannot itself be a composite request").into());
    }
    let params = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let call = Call {
        method: sub.method.clone(),
        version,
        segments,
        params,
        headers: &sub.headers,
        body,
    };
    Ok(dispatch(state, store, ctx, &call))
}

fn subresponse(reference_id: &str, reply: &Reply) -> Value {
    let headers: Map<String, Value> = reply
        .headers
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::String(v.clone())))
        .collect();
    json!({
        "body": reply.body.clone().unwrap_or(Value::Null),
        "httpHeaders": headers,
        "httpStatusCode": reply.status.as_u16(),
        "referenceId": reference_id,
    })
}

/// `POST composite`
pub(crate) fn run(state: &AppState, store: &mut Store, ctx: &Ctx, call: &Call) -> Reply {
    let (all_or_none, subs) = match parse_envelope(call) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    // referenceId → body of a successful subresponse (None when it failed).
    let mut results: HashMap<String, Option<Value>> = HashMap::new();
    let mut replies: Vec<Reply> = Vec::with_capacity(subs.len());

    if all_or_none {
        let sp = store.savepoint();
        let mut failure = None;
        for (i, sub) in subs.iter().enumerate() {
            let reply = match execute(state, store, ctx, sub, &results) {
                Ok(r) => r,
                Err(Unresolved(msg)) => halted(&msg),
            };
            let bad = failed(&reply);
            results.insert(
                sub.reference_id.clone(),
                (!bad).then(|| reply.body.clone().unwrap_or(Value::Null)),
            );
            replies.push(reply);
            if bad {
                failure = Some(i);
                break;
            }
        }
        match failure {
            None => store.release(sp),
            Some(f) => {
                store.rollback(sp);
                replies = (0..subs.len())
                    .map(|i| {
                        if i == f {
                            replies[f].clone()
                        } else {
                            halted(HALTED)
                        }
                    })
                    .collect();
            }
        }
    } else {
        for sub in &subs {
            let reply = match execute(state, store, ctx, sub, &results) {
                Ok(r) => r,
                Err(Unresolved(msg)) => halted(&msg),
            };
            let bad = reply.is_error();
            results.insert(
                sub.reference_id.clone(),
                (!bad).then(|| reply.body.clone().unwrap_or(Value::Null)),
            );
            replies.push(reply);
        }
    }

    let out: Vec<Value> = subs
        .iter()
        .zip(&replies)
        .map(|(s, r)| subresponse(&s.reference_id, r))
        .collect();
    Reply::ok(json!({"compositeResponse": out}))
}
