//! Shared helpers for the emulator's integration tests: spawn on 127.0.0.1:0 (the listener is
//! handed over, never re-bound), log in, and call the REST API with reqwest or a raw socket.
#![allow(dead_code)]

use serde_json::Value;
use sf_emulator::{EmulatorConfig, EmulatorHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const V: &str = "/services/data/v62.0";

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body[0]["errorCode"].as_str().unwrap_or_default()
    }

    pub fn message(&self) -> &str {
        self.body[0]["message"].as_str().unwrap_or_default()
    }
}

pub async fn spawn(config: EmulatorConfig) -> EmulatorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sf_emulator::spawn(config, listener).await.unwrap()
}

pub async fn read(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// A logged-in client of one emulator.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Client {
    /// Logs in with the default app's client-credentials grant.
    pub async fn login(http: reqwest::Client, base: &str) -> Client {
        let r = read(
            http.post(format!("{base}/services/oauth2/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "handoff-local-client"),
                    ("client_secret", "handoff-local-secret"),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        Client {
            http,
            base: base.to_string(),
            token: r.body["access_token"].as_str().unwrap().to_string(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }

    pub async fn create(&self, object: &str, body: Value) -> String {
        let r = self
            .call("POST", &format!("{V}/sobjects/{object}"), Some(body))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    pub async fn query(&self, soql: &str) -> Resp {
        let q: String = form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        self.get(&format!("{V}/query?q={q}")).await
    }
}

/// Sends one request exactly as written (no path normalisation) with `Connection: close`;
/// returns the status and the body text.
pub async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: emulator\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
