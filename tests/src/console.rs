//! The emulator's rep console (`/__emulator/miaw/…`, design §7.1) driven over
//! HTTP, as a person at the console would: tests play the rep with it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The rep console of one emulator.
pub struct RepConsole {
    base: String,
    http: reqwest::Client,
}

impl RepConsole {
    pub fn new(emulator_url: &str) -> RepConsole {
        RepConsole {
            base: format!("{}/__emulator/miaw", emulator_url.trim_end_matches('/')),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("console request sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn conversations(&self) -> Vec<Value> {
        let (status, body) = self
            .send(self.http.get(format!("{}/conversations", self.base)))
            .await;
        assert_eq!(status, 200, "{body}");
        body["conversations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn conversation(&self, id: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}/conversations/{id}", self.base)))
            .await
    }

    /// Waits (hang guard: 30 s) until the conversation exists and `ready` holds for it.
    pub async fn wait_for(&self, id: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.conversation(id).await;
            if status == 200 && ready(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn accept(&self, id: &str, rep_name: &str) -> (u16, Value) {
        self.post(id, "accept", json!({"rep_name": rep_name})).await
    }

    pub async fn say(&self, id: &str, text: &str) -> (u16, Value) {
        self.post(id, "messages", json!({"text": text})).await
    }

    pub async fn transfer(&self, id: &str, rep_name: &str) -> (u16, Value) {
        self.post(id, "transfer", json!({"rep_name": rep_name}))
            .await
    }

    pub async fn leave(&self, id: &str) -> (u16, Value) {
        self.post(id, "leave", json!({})).await
    }

    pub async fn close(&self, id: &str) -> (u16, Value) {
        self.post(id, "close", json!({})).await
    }

    async fn post(&self, id: &str, action: &str, body: Value) -> (u16, Value) {
        self.send(
            self.http
                .post(format!("{}/conversations/{id}/{action}", self.base))
                .json(&body),
        )
        .await
    }

    pub async fn set_agents_available(&self, available: bool) {
        let (status, body) = self
            .send(
                self.http
                    .put(format!("{}/availability", self.base))
                    .json(&json!({"agents_available": available})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Sets the MIAW faults (`drop_stream_every_secs`, `delay_events_ms`, `fail`).
    pub async fn set_faults(&self, faults: Value) {
        let (status, body) = self
            .send(self.http.put(format!("{}/faults", self.base)).json(&faults))
            .await;
        assert!((200..300).contains(&status), "{status} {body}");
    }

    pub async fn clear_faults(&self) {
        let (status, body) = self
            .send(self.http.delete(format!("{}/faults", self.base)))
            .await;
        assert!((200..300).contains(&status), "{status} {body}");
    }
}

/// The texts of a conversation's entries written by `role` (`EndUser`, `Agent`).
pub fn texts_by(conversation: &Value, role: &str) -> Vec<String> {
    conversation["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["role"] == role && e["type"] == "Message")
                .filter_map(|e| e["text"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
