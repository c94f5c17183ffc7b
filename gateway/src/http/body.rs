//! Reading JSON bodies with a size limit, answering problem+json on every failure.

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use futures_util::StreamExt;
use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Reads at most `limit` bytes and parses them as JSON.
pub async fn read_json(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, ApiError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false);
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let bytes = read_limited(body, limit, declared.is_some_and(|n| n > limit)).await?;
    parse_json(&bytes)
}

/// Parses a JSON body, refusing an object that names the same key twice (JSON
/// leaves the meaning of duplicates open; serde_json would keep the last one
/// silently). One pass, linear in the input; nesting is bounded by serde_json's
/// recursion limit (128), so deeply nested input is a 400, never a stack overflow.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut walk = Walk::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = ValueSeed { walk: &mut walk }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(value) => Ok(value),
        Err(_) if walk.duplicate.is_some() => {
            let field = walk.duplicate.unwrap_or_default();
            Err(ApiError::invalid(
                "duplicate_key",
                Some(field.clone()),
                format!("{field} appears more than once in its object; send each key once"),
            ))
        }
        Err(e) => Err(ApiError::invalid(
            "invalid_json",
            None,
            format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )),
    }
}

/// Where the parser is (the JSON path of the value being read) and the first
/// duplicate key found.
#[derive(Default)]
struct Walk {
    path: Vec<Segment>,
    duplicate: Option<String>,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl Walk {
    /// `customer.email`, `transcript[2].role`: the field names the errors use.
    fn render(&self) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

struct ValueSeed<'w> {
    walk: &'w mut Walk,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            self.walk.path.push(Segment::Index(items.len()));
            let item = seq.next_element_seed(ValueSeed {
                walk: &mut *self.walk,
            })?;
            self.walk.path.pop();
            match item {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.walk.path.push(Segment::Key(key));
            if let Some(Segment::Key(key)) = self.walk.path.last()
                && out.contains_key(key)
            {
                self.walk.duplicate = Some(self.walk.render());
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(ValueSeed {
                walk: &mut *self.walk,
            })?;
            let Some(Segment::Key(key)) = self.walk.path.pop() else {
                return Err(de::Error::custom("path out of step"));
            };
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Reads at most `limit` bytes, whatever the content type (413 beyond).
pub async fn read_bytes(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    read_limited(body, limit, declared.is_some_and(|n| n > limit)).await
}

/// Reads the body, keeping at most `limit` bytes. An oversized body (declared
/// or discovered) is answered 413 at once, with `Connection: close`; what the
/// client is still sending is drained in the background, up to a bound, so it
/// can read our answer instead of a reset connection. A body that does not
/// arrive within `http.body_read_timeout_secs` (the deadline the server puts on
/// every request body) is answered 408.
async fn read_limited(
    body: Body,
    limit: usize,
    already_too_large: bool,
) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    if already_too_large {
        drain_in_background(stream);
        return Err(ApiError::TooLarge(limit));
    }
    let mut kept = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if is_timeout(&e) {
                ApiError::BodyTimeout
            } else {
                ApiError::invalid("invalid_body", None, "the request body could not be read")
            }
        })?;
        if kept.len() + chunk.len() > limit {
            drain_in_background(stream);
            return Err(ApiError::TooLarge(limit));
        }
        kept.extend_from_slice(&chunk);
    }
    Ok(kept)
}

/// Most bytes read and discarded after a 413, and for how long.
const DRAIN_BYTES: usize = 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

fn drain_in_background(mut stream: axum::body::BodyDataStream) {
    tokio::spawn(async move {
        let drain = async {
            let mut seen = 0usize;
            while let Some(Ok(chunk)) = stream.next().await {
                seen += chunk.len();
                if seen > DRAIN_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    });
}

/// Whether a body error is the server's body-read deadline.
fn is_timeout(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> (String, Option<String>) {
        match parse_json(body.as_bytes()) {
            Err(ApiError::Invalid { code, field, .. }) => (code.to_string(), field),
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn duplicates_are_refused_at_any_depth_with_their_path() {
        assert_eq!(
            field_of(r#"{"a":1,"a":2}"#),
            ("duplicate_key".into(), Some("a".into()))
        );
        assert_eq!(
            field_of(r#"{"customer":{"email":"x@y.z","name":"n","email":"q@y.z"}}"#),
            ("duplicate_key".into(), Some("customer.email".into()))
        );
        assert_eq!(
            field_of(r#"{"t":[{"r":1},{"r":1,"r":2}]}"#),
            ("duplicate_key".into(), Some("t[1].r".into()))
        );
    }

    #[test]
    fn values_parse_as_serde_json_does() {
        let text = r#"{"a":[1,-2,3.5,true,null,"s",{"b":{}}],"c":"\u00e9"}"#;
        let ours = parse_json(text.as_bytes()).expect("parses");
        let theirs: Value = serde_json::from_str(text).expect("parses");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn deep_nesting_and_trailing_garbage_are_invalid_json() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(field_of(&deep).0, "invalid_json");
        assert_eq!(field_of(r#"{"a":1} x"#).0, "invalid_json");
    }
}
