//! Test helpers: a webhook receiver on a real socket that records every request, and
//! signature checks written here independently of the crate (HMAC computed directly).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, StatusCode};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    /// Path and query, as received.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The form parameters, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// The first value of a form parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

type Responder = Arc<dyn Fn(&Captured) -> (u16, String) + Send + Sync>;

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Captured>>>,
    respond: Responder,
}

/// A webhook receiver on `127.0.0.1`.
pub struct Receiver {
    pub base: String,
    seen: Arc<Mutex<Vec<Captured>>>,
}

impl Receiver {
    /// Answers every request with `status` and `body`.
    pub async fn fixed(status: u16, body: &'static str) -> Receiver {
        Self::start(move |_| (status, body.to_string())).await
    }

    /// Answers with `respond(request)`.
    pub async fn start(
        respond: impl Fn(&Captured) -> (u16, String) + Send + Sync + 'static,
    ) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            seen: seen.clone(),
            respond: Arc::new(respond),
        };
        let app = Router::new().fallback(record).with_state(shared);
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { base, seen }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn to_path(&self, prefix: &str) -> Vec<Captured> {
        self.requests()
            .into_iter()
            .filter(|c| c.uri.starts_with(prefix))
            .collect()
    }
}

async fn record(State(shared): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 4 * 1024 * 1024).await.unwrap();
    let captured = Captured {
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts.headers,
        body,
    };
    let (status, answer) = (shared.respond)(&captured);
    shared.seen.lock().unwrap().push(captured);
    (
        StatusCode::from_u16(status).unwrap(),
        [(http::header::CONTENT_TYPE, "text/xml")],
        answer,
    )
        .into_response()
}

/// Twilio's signature computed here, independently: base64 HMAC-SHA1(auth token, URL +
/// for each name in byte order, each distinct value in byte order: name + value).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut grouped: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
    for (k, v) in params {
        grouped
            .entry(k.as_bytes().to_vec())
            .or_default()
            .push(v.as_bytes().to_vec());
    }
    let mut data = url.as_bytes().to_vec();
    for (k, mut values) in grouped {
        values.sort();
        values.dedup();
        for v in values {
            data.extend_from_slice(&k);
            data.extend_from_slice(&v);
        }
    }
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(auth_token.as_bytes()).unwrap();
    mac.update(&data);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Meta's signature computed here, independently: `sha256=` + hex HMAC-SHA256(secret, body).
pub fn meta_signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(app_secret.as_bytes()).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}
