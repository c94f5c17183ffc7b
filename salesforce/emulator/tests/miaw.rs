//! MIAW (Enhanced Chat custom client) side of the emulator, over real sockets with reqwest:
//! tokens, conversations, messages, files, the SSE stream, limits, the rep console, faults,
//! SOQL on MessagingSession and the `sf-emulator rep` CLI.
//!
//! No sleeps: tests read the stream until the event they expect; `HANG_GUARD` only stops a
//! test that would otherwise hang.

mod common;

use std::time::Duration;

use common::{read, spawn};
use serde_json::{Value, json};
use sf_emulator::{EmulatorConfig, EmulatorHandle, IdentityKey};

const HANG_GUARD: Duration = Duration::from_secs(30);
const DEPLOYMENT: &str = "Handoff_Chat";
const ORG: &str = "00D5g000004Hnd0";
const V2: &str = "/iamessage/api/v2";

struct Miaw {
    sf: EmulatorHandle,
    http: reqwest::Client,
}

struct Token {
    token: String,
    last_event_id: String,
    subject: String,
}

fn config(f: impl FnOnce(&mut sf_emulator::MiawConfig)) -> EmulatorConfig {
    let mut c = EmulatorConfig::default();
    f(&mut c.miaw);
    c
}

impl Miaw {
    async fn start(config: EmulatorConfig) -> Miaw {
        Miaw {
            sf: spawn(config).await,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sf.url())
    }

    async fn token_request(&self, body: Value) -> common::Resp {
        read(
            self.http
                .post(self.url(&format!("{V2}/authorization/unauthenticated/access-token")))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn token(&self) -> Token {
        let r = self
            .token_request(json!({"orgId": ORG, "esDeveloperName": DEPLOYMENT,
                                  "capabilitiesVersion": "1", "platform": "Web"}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        token_of(&r.body)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> common::Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.unwrap()).await
    }

    async fn create(&self, token: &str, id: &str, attributes: Value) -> common::Resp {
        self.call(
            "POST",
            &format!("{V2}/conversation"),
            token,
            Some(json!({"conversationId": id, "esDeveloperName": DEPLOYMENT,
                        "routingAttributes": attributes, "language": "en_US"})),
        )
        .await
    }

    async fn send(
        &self,
        token: &str,
        id: &str,
        message_id: &str,
        text: &str,
        new_session: bool,
    ) -> common::Resp {
        self.call(
            "POST",
            &format!("{V2}/conversation/{id}/message"),
            token,
            Some(
                json!({"message": {"id": message_id, "messageType": "StaticContentMessage",
                                    "staticContent": {"formatType": "Text", "text": text}},
                        "esDeveloperName": DEPLOYMENT, "isNewMessagingSession": new_session,
                        "routingAttributes": {}, "language": "en_US"}),
            ),
        )
        .await
    }

    async fn console(&self, method: &str, path: &str, body: Option<Value>) -> common::Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, self.url(&format!("/__emulator/miaw{path}")));
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.unwrap()).await
    }

    async fn stream(&self, token: &str, last_event_id: Option<&str>) -> Stream {
        let resp = self.stream_response(token, Some(ORG), last_event_id).await;
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Stream {
            resp,
            buf: String::new(),
            last_id: None,
        }
    }

    async fn stream_response(
        &self,
        token: &str,
        org: Option<&str>,
        last: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .get(self.url("/eventrouter/v1/sse"))
            .bearer_auth(token)
            .header("Accept", "text/event-stream");
        if let Some(org) = org {
            req = req.header("X-Org-Id", org);
        }
        if let Some(last) = last {
            req = req.header("Last-Event-Id", last);
        }
        req.send().await.unwrap()
    }

    /// A conversation with an open stream, past its initial routing result.
    async fn conversation(&self) -> (Token, String, Stream) {
        let t = self.token().await;
        let mut s = self.stream(&t.token, Some(&t.last_event_id)).await;
        let id = uuid::Uuid::new_v4().to_string();
        assert_eq!(self.create(&t.token, &id, json!({})).await.status, 201);
        s.until("CONVERSATION_ROUTING_RESULT").await;
        (t, id, s)
    }

    async fn accept(&self, id: &str, rep: &str) {
        let r = self
            .console(
                "POST",
                &format!("/conversations/{id}/accept"),
                Some(json!({"rep_name": rep})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

fn token_of(body: &Value) -> Token {
    Token {
        token: body["accessToken"].as_str().unwrap().to_string(),
        last_event_id: body["lastEventId"].as_str().unwrap().to_string(),
        subject: body["context"]["endUser"]["subject"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// One SSE frame.
#[derive(Debug, Clone)]
struct Frame {
    id: Option<String>,
    event: String,
    data: String,
}

impl Frame {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }

    /// `entryPayload`, parsed (it is a JSON string inside the JSON).
    fn payload(&self) -> Value {
        let v = self.json();
        let text = v["conversationEntry"]["entryPayload"]
            .as_str()
            .expect("entryPayload is a string");
        serde_json::from_str(text).unwrap()
    }

    fn entry(&self) -> Value {
        self.json()["conversationEntry"].clone()
    }

    fn id_num(&self) -> u64 {
        self.id.as_deref().unwrap().parse().unwrap()
    }
}

struct Stream {
    resp: reqwest::Response,
    buf: String,
    /// The id of the last frame that had one.
    last_id: Option<String>,
}

impl Stream {
    /// The next frame; `None` when the server ended the stream.
    async fn next(&mut self) -> Option<Frame> {
        tokio::time::timeout(HANG_GUARD, self.next_inner())
            .await
            .expect("hang guard: no SSE frame")
    }

    async fn next_inner(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut f = Frame {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        f.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        f.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        f.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if block.trim().is_empty() || block.lines().all(|l| l.starts_with(':')) {
                    continue;
                }
                if f.id.is_some() {
                    self.last_id.clone_from(&f.id);
                }
                return Some(f);
            }
            match self.resp.chunk().await {
                Ok(Some(bytes)) => self.buf.push_str(std::str::from_utf8(&bytes).unwrap()),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    fn id_num_of_last(&self) -> u64 {
        self.last_id.as_deref().unwrap().parse().unwrap()
    }

    /// Reads (skipping pings and other events) until an event named `name`.
    async fn until(&mut self, name: &str) -> Frame {
        loop {
            let f = self
                .next()
                .await
                .unwrap_or_else(|| panic!("stream ended before {name}"));
            if f.event == name {
                return f;
            }
        }
    }

    /// The next non-ping frame.
    async fn next_event(&mut self) -> Frame {
        loop {
            let f = self.next().await.expect("stream ended");
            if f.event != "ping" {
                return f;
            }
        }
    }
}

// ---------------------------------------------------------------- tokens

#[tokio::test]
async fn unauthenticated_token_has_the_documented_shape() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let r = m
        .token_request(json!({"orgId": ORG, "esDeveloperName": DEPLOYMENT,
                              "capabilitiesVersion": "1", "platform": "Web",
                              "context": {"appName": "t", "clientVersion": "1"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = token_of(&r.body);
    assert!(t.subject.starts_with("v2/iamessage/ANON/"), "{}", t.subject);
    assert!(t.last_event_id.parse::<u64>().is_ok());
    let config = &r.body["context"]["configuration"]["embeddedServiceConfig"];
    assert_eq!(config["name"], DEPLOYMENT);
    assert_eq!(config["deploymentType"], "api");
    let fields = config["forms"][0]["formFields"].as_array().unwrap();
    let session = fields
        .iter()
        .find(|f| f["name"] == "OpencxSessionId")
        .unwrap();
    assert_eq!(session["maxLength"], 255);
    assert_eq!(session["isHidden"], true);
    assert_eq!(fields.len(), 9);
    // The JWT carries the 15-char org id and the subject.
    let claims = t.token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["orgId"], ORG);
    assert_eq!(claims["sub"], t.subject.as_str());
    assert!(claims["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp());
    // The 18-character org id works too.
    let r = m
        .token_request(json!({"orgId": "00D5g000004Hnd0EAC", "esDeveloperName": DEPLOYMENT}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn token_requests_for_an_unknown_deployment_or_org_are_400() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let r = m
        .token_request(json!({"orgId": ORG, "esDeveloperName": "Other_Deployment"}))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("esDeveloperName")
    );
    let r = m
        .token_request(json!({"orgId": "00D000000000001", "esDeveloperName": DEPLOYMENT}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["message"].as_str().unwrap().contains("orgId"));
}

fn identity_jwt(key_file: &str, kid: &str, issuer: &str, sub: &str, exp_in: i64) -> String {
    let pem = std::fs::read(format!(
        "{}/tests/fixtures/{key_file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_string());
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": issuer, "sub": sub, "aud": "https://example.my.salesforce.com",
                        "exp": now + exp_in, "iat": now});
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test]
async fn authenticated_token_verifies_the_identity_jwt_and_falls_back_to_anonymous() {
    let public = std::fs::read_to_string(format!(
        "{}/tests/fixtures/test_only_jwt_public_key.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let m = Miaw::start(config(|c| {
        c.identity_keys = vec![IdentityKey {
            kid: "k1".into(),
            issuer: "https://handoff.example".into(),
            public_key_pem: public,
        }]
    }))
    .await;
    let ask = |jwt: String| {
        m.http
            .post(m.url(&format!("{V2}/authorization/authenticated/access-token")))
            .json(
                &json!({"orgId": ORG, "esDeveloperName": DEPLOYMENT, "capabilitiesVersion": "1",
                          "platform": "Web", "authorizationType": "JWT",
                          "customerIdentityToken": jwt}),
            )
            .send()
    };
    let good = identity_jwt(
        "test_only_jwt_private_key.pem",
        "k1",
        "https://handoff.example",
        "cust-42",
        300,
    );
    let r = read(ask(good).await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = token_of(&r.body);
    assert_eq!(
        t.subject,
        "v2/iamessage/AUTH/https://handoff.example/uid:cust-42"
    );
    // The same verified user gets the same subject again.
    let again = identity_jwt(
        "test_only_jwt_private_key.pem",
        "k1",
        "https://handoff.example",
        "cust-42",
        300,
    );
    let r = read(ask(again).await.unwrap()).await;
    assert_eq!(token_of(&r.body).subject, t.subject);
    // Wrong key, wrong issuer, unknown kid, expired: still 200, but anonymous.
    for jwt in [
        identity_jwt(
            "test_only_other_private_key.pem",
            "k1",
            "https://handoff.example",
            "cust-42",
            300,
        ),
        identity_jwt(
            "test_only_jwt_private_key.pem",
            "k1",
            "https://evil.example",
            "cust-42",
            300,
        ),
        identity_jwt(
            "test_only_jwt_private_key.pem",
            "k2",
            "https://handoff.example",
            "cust-42",
            300,
        ),
        identity_jwt(
            "test_only_jwt_private_key.pem",
            "k1",
            "https://handoff.example",
            "cust-42",
            -10,
        ),
        "not-a-jwt".to_string(),
    ] {
        let r = read(ask(jwt).await.unwrap()).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(token_of(&r.body).subject.contains("/ANON/"), "{}", r.body);
    }
}

#[tokio::test]
async fn continuation_token_keeps_the_subject_and_reports_the_latest_event() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, _id, s) = m.conversation().await;
    let routed = s.id_num_of_last();
    let r = m
        .call(
            "GET",
            &format!("{V2}/authorization/continuation-access-token"),
            &t.token,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new = r.body["accessToken"].as_str().unwrap();
    assert_ne!(new, t.token);
    assert_eq!(r.body["lastEventId"], routed.to_string());
    // The new token works for the same conversations.
    let list = m
        .call("GET", &format!("{V2}/conversation/list"), new, None)
        .await;
    assert_eq!(list.body["openConversationsFound"], 1);
}

#[tokio::test]
async fn expired_tokens_get_401_jwt_is_expired_on_rest_and_sse() {
    let m = Miaw::start(config(|c| c.token_ttl_secs = 0)).await;
    let t = m.token().await;
    let r = m
        .create(&t.token, &uuid::Uuid::new_v4().to_string(), json!({}))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["message"], "Jwt is expired");
    let resp = m.stream_response(&t.token, Some(ORG), None).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(read(resp).await.body["message"], "Jwt is expired");
    let r = m
        .call(
            "GET",
            &format!("{V2}/authorization/continuation-access-token"),
            &t.token,
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    let r = m
        .create("garbage", &uuid::Uuid::new_v4().to_string(), json!({}))
        .await;
    assert_eq!(r.status, 401);
}

// ---------------------------------------------------------------- conversations

#[tokio::test]
async fn create_conversation_validates_the_id_and_is_idempotent() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let t = m.token().await;
    for bad in [
        "0DB1B9A6-96BF-46BD-B088-182D05522E90",
        "not-a-uuid",
        "0db1b9a696bf46bdb088182d05522e90",
    ] {
        let r = m.create(&t.token, bad, json!({})).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(
            r.body["message"],
            "Specify the conversationId in UUID format. The UUID must be in lowercase."
        );
    }
    // A UUIDv5 (what the gateway derives) is accepted: 201 with an empty body.
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, b"session-1").to_string();
    let resp = m
        .http
        .post(m.url(&format!("{V2}/conversation")))
        .bearer_auth(&t.token)
        .json(&json!({"conversationId": id, "esDeveloperName": DEPLOYMENT}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(resp.bytes().await.unwrap().is_empty());
    // Again by the same end user: 201, nothing new.
    assert_eq!(m.create(&t.token, &id, json!({})).await.status, 201);
    let list = m.console("GET", "/conversations", None).await;
    assert_eq!(list.body["conversations"].as_array().unwrap().len(), 1);
    let shown = m
        .console("GET", &format!("/conversations/{id}"), None)
        .await;
    let routing = shown.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "RoutingResult")
        .count();
    assert_eq!(routing, 1);
    // By another end user: 409.
    let other = m.token().await;
    assert_eq!(m.create(&other.token, &id, json!({})).await.status, 409);
}

#[tokio::test]
async fn routing_attributes_unknown_keys_are_dropped_and_long_values_refused() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let t = m.token().await;
    let id = uuid::Uuid::new_v4().to_string();
    let r = m
        .create(
            &t.token,
            &id,
            json!({"OpencxSessionId": "s-1", "opencxsessionid": "x", "Bogus": "y"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let shown = m
        .console("GET", &format!("/conversations/{id}"), None)
        .await;
    assert_eq!(
        shown.body["routing_attributes"],
        json!({"OpencxSessionId": "s-1"})
    );
    let mut dropped: Vec<String> =
        serde_json::from_value(shown.body["dropped_attributes"].clone()).unwrap();
    dropped.sort();
    assert_eq!(dropped, vec!["Bogus", "opencxsessionid"]);
    assert_eq!(shown.body["language"], "en_US");
    let id2 = uuid::Uuid::new_v4().to_string();
    let r = m
        .create(&t.token, &id2, json!({"Priority": "x".repeat(41)}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["message"].as_str().unwrap().contains("Priority"));
    assert_eq!(
        m.console("GET", &format!("/conversations/{id2}"), None)
            .await
            .status,
        404
    );
    // Exactly the maximum length is fine.
    let r = m
        .create(&t.token, &id2, json!({"Priority": "x".repeat(40)}))
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn create_routes_the_new_session_and_the_echo_names_it() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let t = m.token().await;
    let mut s = m.stream(&t.token, Some(&t.last_event_id)).await;
    let id = uuid::Uuid::new_v4().to_string();
    assert_eq!(m.create(&t.token, &id, json!({})).await.status, 201);
    let routing = s.until("CONVERSATION_ROUTING_RESULT").await;
    let payload = routing.payload();
    assert_eq!(payload["routingType"], "Initial");
    assert_eq!(payload["failureType"], "None");
    assert_eq!(routing.json()["conversationId"], id.as_str());
    let status = m
        .call("GET", &format!("{V2}/conversation/{id}"), &t.token, None)
        .await;
    assert_eq!(
        status.body,
        json!({"conversationId": id, "routingStatus": "ROUTED"})
    );

    let message_id = uuid::Uuid::new_v4().to_string();
    let r = m.send(&t.token, &id, &message_id, "hello", false).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["conversationEntries"][0]["id"], message_id.as_str());
    assert!(
        r.body["conversationEntries"][0]["clientTimestamp"]
            .as_i64()
            .is_some()
    );
    let echo = s.until("CONVERSATION_MESSAGE").await;
    assert!(echo.id_num() > routing.id_num());
    let entry = echo.entry();
    assert_eq!(entry["sender"]["role"], "EndUser");
    assert_eq!(entry["identifier"], message_id.as_str());
    let session = entry["relatedRecords"][0].as_str().unwrap().to_string();
    assert!(
        session.starts_with("0Mw") && session.len() == 18,
        "{session}"
    );
    assert_eq!(
        sf_emulator::ids::canonical(&session).as_deref(),
        Some(session.as_str())
    );
    assert_eq!(
        echo.payload()["abstractMessage"]["staticContent"]["text"],
        "hello"
    );
    let shown = m
        .console("GET", &format!("/conversations/{id}"), None)
        .await;
    assert_eq!(shown.body["messaging_session_id"], session.as_str());
}

#[tokio::test]
async fn the_same_message_id_twice_is_accepted_once() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, id, mut s) = m.conversation().await;
    let message_id = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        m.send(&t.token, &id, &message_id, "once", false)
            .await
            .status,
        202
    );
    assert_eq!(
        m.send(&t.token, &id, &message_id, "once", false)
            .await
            .status,
        202
    );
    let marker = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        m.send(&t.token, &id, &marker, "marker", false).await.status,
        202
    );
    let first = s.until("CONVERSATION_MESSAGE").await;
    assert_eq!(first.entry()["identifier"], message_id.as_str());
    // The next message on the stream is the marker, not a second copy.
    let next = s.until("CONVERSATION_MESSAGE").await;
    assert_eq!(next.entry()["identifier"], marker.as_str());
    let entries = m
        .call(
            "GET",
            &format!("{V2}/conversation/{id}/entries?entryTypeFilter=Message"),
            &t.token,
            None,
        )
        .await;
    assert_eq!(
        entries.body["conversationEntries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn after_the_session_ends_messages_get_417_until_a_new_session_is_asked_for() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, id, mut s) = m.conversation().await;
    let first_session = m
        .console("GET", &format!("/conversations/{id}"), None)
        .await
        .body["messaging_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = m
        .call(
            "DELETE",
            &format!("{V2}/conversation/{id}/session?esDeveloperName={DEPLOYMENT}"),
            &t.token,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let ended = s.until("CONVERSATION_SESSION_STATUS_CHANGED").await;
    assert_eq!(ended.payload()["sessionStatus"], "Ended");
    assert_eq!(ended.payload()["sessionEndedByRole"], "EndUser");
    let msg = uuid::Uuid::new_v4().to_string();
    let r = m.send(&t.token, &id, &msg, "are you there?", false).await;
    assert_eq!(r.status, 417, "{}", r.body);
    assert!(r.body["message"].as_str().is_some());
    let r = m.send(&t.token, &id, &msg, "are you there?", true).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let routed = s.until("CONVERSATION_ROUTING_RESULT").await;
    assert_eq!(routed.payload()["routingType"], "Initial");
    let echo = s.until("CONVERSATION_MESSAGE").await;
    let second_session = echo.entry()["relatedRecords"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second_session, first_session);
    let shown = m
        .console("GET", &format!("/conversations/{id}"), None)
        .await;
    assert_eq!(shown.body["status"], "waiting");
}

#[tokio::test]
async fn a_closed_conversation_refuses_messages() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, id, mut s) = m.conversation().await;
    let r = m
        .call(
            "DELETE",
            &format!("{V2}/conversation/{id}?esDeveloperName={DEPLOYMENT}"),
            &t.token,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    s.until("CONVERSATION_CLOSE_CONVERSATION").await;
    let r = m
        .send(&t.token, &id, &uuid::Uuid::new_v4().to_string(), "hi", true)
        .await;
    assert_eq!(r.status, 409);
    assert!(r.body["message"].as_str().unwrap().contains("closed"));
    // Closing again is fine.
    let r = m
        .call(
            "DELETE",
            &format!("{V2}/conversation/{id}?esDeveloperName={DEPLOYMENT}"),
            &t.token,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let list = m
        .call("GET", &format!("{V2}/conversation/list"), &t.token, None)
        .await;
    assert_eq!(list.body["openConversationsFound"], 0);
    let list = m
        .call(
            "GET",
            &format!("{V2}/conversation/list?inclClosedConvs=true"),
            &t.token,
            None,
        )
        .await;
    assert_eq!(list.body["conversations"][0]["conversationId"], id.as_str());
}

#[tokio::test]
async fn another_end_users_conversation_is_404() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (_t, id, _s) = m.conversation().await;
    let other = m.token().await;
    let r = m
        .send(
            &other.token,
            &id,
            &uuid::Uuid::new_v4().to_string(),
            "x",
            false,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = m
        .call(
            "GET",
            &format!("{V2}/conversation/{id}"),
            &other.token,
            None,
        )
        .await;
    assert_eq!(r.status, 404);
}

fn multipart(entry: &Value, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "emulatorTestBoundary42";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"messageEntry\"\r\nContent-Type: application/json\r\n\r\n{entry}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"fileData\"; filename=\"receipt.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn send_file_puts_an_attachment_on_the_stream_and_refuses_over_5_mb() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, id, mut s) = m.conversation().await;
    let message_id = uuid::Uuid::new_v4().to_string();
    let entry = json!({"esDeveloperName": DEPLOYMENT,
                       "message": {"id": message_id, "fileId": uuid::Uuid::new_v4().to_string(), "text": "my receipt"}});
    let (ct, body) = multipart(&entry, b"%PDF-1.4 tiny");
    let r = read(
        m.http
            .post(m.url(&format!("{V2}/conversation/{id}/file")))
            .bearer_auth(&t.token)
            .header("Content-Type", ct)
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(r.status == 202, "{} {}", r.status, r.body);
    let echo = s.until("CONVERSATION_MESSAGE").await;
    let content = &echo.payload()["abstractMessage"]["staticContent"];
    assert_eq!(content["formatType"], "Attachments");
    assert_eq!(content["attachments"][0]["name"], "receipt.pdf");
    assert_eq!(content["attachments"][0]["mimeType"], "application/pdf");
    let shown = m
        .console("GET", &format!("/conversations/{id}"), None)
        .await;
    assert_eq!(
        shown.body["files"],
        json!([{"name": "receipt.pdf", "content_type": "application/pdf", "size": 13}])
    );
    let big = vec![b'a'; 5 * 1024 * 1024 + 1];
    let entry =
        json!({"esDeveloperName": DEPLOYMENT, "message": {"id": uuid::Uuid::new_v4().to_string()}});
    let (ct, body) = multipart(&entry, &big);
    let r = read(
        m.http
            .post(m.url(&format!("{V2}/conversation/{id}/file")))
            .bearer_auth(&t.token)
            .header("Content-Type", ct)
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 413);
    assert!(r.body["message"].as_str().unwrap().contains("5 MB"));
    let shown = m
        .console("GET", &format!("/conversations/{id}"), None)
        .await;
    assert_eq!(shown.body["files"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn typing_receipts_and_transcript() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, id, _s) = m.conversation().await;
    let r = m
        .call("POST", &format!("{V2}/conversation/{id}/entry"), &t.token,
              Some(json!({"entryType": "TypingStartedIndicator", "id": uuid::Uuid::new_v4().to_string()})))
        .await;
    assert_eq!(r.status, 202);
    let r = m
        .call(
            "POST",
            &format!("{V2}/conversation/{id}/entry"),
            &t.token,
            Some(json!({"entryType": "Bogus", "id": "x"})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = m
        .call("POST", &format!("{V2}/conversation/{id}/acknowledge-entries"), &t.token,
              Some(json!({"acks": [{"id": uuid::Uuid::new_v4().to_string(), "entryType": "Read", "conversationEntryId": "x"}]})))
        .await;
    assert_eq!(r.status, 202);
    for text in ["one", "two", "three"] {
        let r = m
            .send(
                &t.token,
                &id,
                &uuid::Uuid::new_v4().to_string(),
                text,
                false,
            )
            .await;
        assert_eq!(r.status, 202);
    }
    let r = m
        .call(
            "GET",
            &format!(
                "{V2}/conversation/{id}/entries?limit=2&direction=FromEnd&entryTypeFilter=Message"
            ),
            &t.token,
            None,
        )
        .await;
    let list = r.body["conversationEntries"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    // Transcript payloads are objects, newest first with FromEnd.
    assert_eq!(
        list[0]["entryPayload"]["abstractMessage"]["staticContent"]["text"],
        "three"
    );
    assert_eq!(
        list[1]["entryPayload"]["abstractMessage"]["staticContent"]["text"],
        "two"
    );
    assert_eq!(list[0]["sender"]["role"], "EndUser");
    let r = m
        .call(
            "GET",
            &format!("{V2}/conversation/{id}/entries"),
            &t.token,
            None,
        )
        .await;
    assert_eq!(
        r.body["conversationEntries"][0]["entryType"],
        "RoutingResult"
    );
    let path = format!("{V2}/conversation/{id}/entries?limit=many");
    let r = m.call("GET", &path, &t.token, None).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["message"].as_str().unwrap().contains("limit"),
        "{}",
        r.body
    );
    let path = format!("{V2}/conversation/{id}/entries?direction=Sideways");
    let r = m.call("GET", &path, &t.token, None).await;
    assert_eq!(r.status, 400);
}

// ---------------------------------------------------------------- the stream

#[tokio::test]
async fn the_stream_needs_x_org_id_and_a_valid_token() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let t = m.token().await;
    let resp = m.stream_response(&t.token, None, None).await;
    assert_eq!(resp.status(), 400);
    assert!(
        read(resp).await.body["message"]
            .as_str()
            .unwrap()
            .contains("X-Org-Id")
    );
    let resp = m
        .stream_response(&t.token, Some("00D000000000001"), None)
        .await;
    assert_eq!(resp.status(), 400);
    let resp = m.stream_response("nope", Some(ORG), None).await;
    assert_eq!(resp.status(), 401);
    // The 18-character org id is accepted.
    let resp = m
        .stream_response(&t.token, Some("00D5g000004Hnd0EAC"), None)
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_second_stream_with_the_same_token_closes_the_first() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, id, mut first) = m.conversation().await;
    let mut second = m.stream(&t.token, None).await;
    // The first stream ends (it may still hand out what was queued, never anything new).
    while let Some(f) = first.next().await {
        assert_ne!(f.event, "CONVERSATION_MESSAGE", "{f:?}");
    }
    let msg = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        m.send(&t.token, &id, &msg, "still here", false)
            .await
            .status,
        202
    );
    let echo = second.until("CONVERSATION_MESSAGE").await;
    assert_eq!(echo.entry()["identifier"], msg.as_str());
    // A continuation token is another token: its stream does not close the second one.
    let r = m
        .call(
            "GET",
            &format!("{V2}/authorization/continuation-access-token"),
            &t.token,
            None,
        )
        .await;
    let other = r.body["accessToken"].as_str().unwrap().to_string();
    let mut third = m.stream(&other, None).await;
    let msg2 = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        m.send(&t.token, &id, &msg2, "both", false).await.status,
        202
    );
    assert_eq!(
        second.until("CONVERSATION_MESSAGE").await.entry()["identifier"],
        msg2.as_str()
    );
    assert_eq!(
        third.until("CONVERSATION_MESSAGE").await.entry()["identifier"],
        msg2.as_str()
    );
}

#[tokio::test]
async fn reconnecting_with_last_event_id_replays_what_was_missed() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, id, s) = m.conversation().await;
    let cursor = s.last_id.clone().unwrap();
    drop(s);
    let mut sent = Vec::new();
    for text in ["a", "b", "c"] {
        let msg = uuid::Uuid::new_v4().to_string();
        assert_eq!(m.send(&t.token, &id, &msg, text, false).await.status, 202);
        sent.push(msg);
    }
    let mut s = m.stream(&t.token, Some(&cursor)).await;
    let mut ids = Vec::new();
    let mut last = cursor.parse::<u64>().unwrap();
    for msg in &sent {
        let f = s.next_event().await;
        assert_eq!(f.event, "CONVERSATION_MESSAGE");
        assert_eq!(f.entry()["identifier"], msg.as_str());
        assert!(f.id_num() > last, "ids increase");
        last = f.id_num();
        ids.push(f.id.clone().unwrap());
    }
    // Replaying from the middle gives only the rest.
    drop(s);
    let mut s = m.stream(&t.token, Some(&ids[1])).await;
    assert_eq!(s.next_event().await.entry()["identifier"], sent[2].as_str());
    // Without Last-Event-Id nothing is replayed: the next event is new.
    drop(s);
    let mut s = m.stream(&t.token, None).await;
    let fresh = uuid::Uuid::new_v4().to_string();
    assert_eq!(m.send(&t.token, &id, &fresh, "d", false).await.status, 202);
    assert_eq!(s.next_event().await.entry()["identifier"], fresh.as_str());
}

#[tokio::test]
async fn the_replay_log_keeps_only_the_last_replay_limit_events() {
    let m = Miaw::start(config(|c| c.replay_limit = 2)).await;
    let (t, id, s) = m.conversation().await;
    let cursor = s.last_id.clone().unwrap();
    drop(s);
    let mut sent = Vec::new();
    for text in ["a", "b", "c"] {
        let msg = uuid::Uuid::new_v4().to_string();
        assert_eq!(m.send(&t.token, &id, &msg, text, false).await.status, 202);
        sent.push(msg);
    }
    let mut s = m.stream(&t.token, Some(&cursor)).await;
    assert_eq!(s.next_event().await.entry()["identifier"], sent[1].as_str());
    assert_eq!(s.next_event().await.entry()["identifier"], sent[2].as_str());
}

#[tokio::test]
async fn the_stream_pings_every_ping_secs() {
    let m = Miaw::start(config(|c| c.ping_secs = 1)).await;
    let t = m.token().await;
    let mut s = m.stream(&t.token, None).await;
    let f = s.next().await.unwrap();
    assert_eq!(f.event, "ping");
    assert_eq!(f.data, "0");
    assert_eq!(f.id, None);
}

// ---------------------------------------------------------------- rep console

#[tokio::test]
async fn a_rep_accepts_and_writes() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (_t, id, mut s) = m.conversation().await;
    // No rep yet: 409.
    let r = m
        .console(
            "POST",
            &format!("/conversations/{id}/messages"),
            Some(json!({"text": "hi"})),
        )
        .await;
    assert_eq!(r.status, 409);
    assert!(r.body["message"].as_str().is_some());
    m.accept(&id, "Jane Rep").await;
    let joined = s.until("CONVERSATION_PARTICIPANT_CHANGED").await;
    let change = &joined.payload()["entries"][0];
    assert_eq!(change["operation"], "add");
    assert_eq!(change["displayName"], "Jane Rep");
    assert_eq!(change["participant"]["role"], "Agent");
    assert!(
        change["participant"]["subject"]
            .as_str()
            .unwrap()
            .starts_with("005")
    );
    let active = s.until("CONVERSATION_SESSION_STATUS_CHANGED").await;
    assert_eq!(active.payload()["sessionStatus"], "Active");
    let r = m
        .console(
            "POST",
            &format!("/conversations/{id}/messages"),
            Some(json!({"text": "How can I help?"})),
        )
        .await;
    assert_eq!(r.status, 202);
    let entry_id = r.body["id"].as_str().unwrap().to_string();
    let msg = s.until("CONVERSATION_MESSAGE").await;
    let entry = msg.entry();
    assert_eq!(entry["sender"]["role"], "Agent");
    assert_eq!(entry["senderDisplayName"], "Jane Rep");
    assert_eq!(entry["identifier"], entry_id.as_str());
    assert!(
        entry["relatedRecords"][0]
            .as_str()
            .unwrap()
            .starts_with("0Mw")
    );
    assert_eq!(
        msg.payload()["abstractMessage"]["staticContent"]["text"],
        "How can I help?"
    );
    let shown = m
        .console("GET", &format!("/conversations/{id}"), None)
        .await;
    assert_eq!(shown.body["status"], "active");
    assert_eq!(shown.body["rep_name"], "Jane Rep");
    let last = shown.body["entries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["type"], "Message");
    assert_eq!(last["role"], "Agent");
    assert_eq!(last["sender_name"], "Jane Rep");
    assert_eq!(last["text"], "How can I help?");
    // Accepting twice is a conflict.
    let r = m
        .console(
            "POST",
            &format!("/conversations/{id}/accept"),
            Some(json!({"rep_name": "Bob"})),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        m.console("GET", "/conversations/nope", None).await.status,
        404
    );
}

#[tokio::test]
async fn a_transfer_swaps_reps_and_shows_transfer_routing() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, id, mut s) = m.conversation().await;
    let r = m
        .console(
            "POST",
            &format!("/conversations/{id}/transfer"),
            Some(json!({"rep_name": "Bob"})),
        )
        .await;
    assert_eq!(r.status, 409, "no rep to transfer from");
    m.accept(&id, "Jane Rep").await;
    s.until("CONVERSATION_SESSION_STATUS_CHANGED").await;
    let r = m
        .console(
            "POST",
            &format!("/conversations/{id}/transfer"),
            Some(json!({"rep_name": "Bob Senior"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["rep_name"], "Bob Senior");
    let routing = s.next_event().await;
    assert_eq!(routing.event, "CONVERSATION_ROUTING_RESULT");
    assert_eq!(routing.payload()["routingType"], "Transfer");
    let removed = s.next_event().await;
    assert_eq!(removed.payload()["entries"][0]["operation"], "remove");
    assert_eq!(removed.payload()["entries"][0]["displayName"], "Jane Rep");
    let added = s.next_event().await;
    assert_eq!(added.payload()["entries"][0]["operation"], "add");
    assert_eq!(added.payload()["entries"][0]["displayName"], "Bob Senior");
    let status = m
        .call("GET", &format!("{V2}/conversation/{id}"), &t.token, None)
        .await;
    assert_eq!(status.body["routingStatus"], "ROUTED");
    m.console(
        "POST",
        &format!("/conversations/{id}/messages"),
        Some(json!({"text": "Bob here"})),
    )
    .await;
    assert_eq!(
        s.until("CONVERSATION_MESSAGE").await.entry()["senderDisplayName"],
        "Bob Senior"
    );
}

#[tokio::test]
async fn a_rep_leaving_puts_the_conversation_back_in_the_queue() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, id, mut s) = m.conversation().await;
    m.accept(&id, "Jane Rep").await;
    s.until("CONVERSATION_SESSION_STATUS_CHANGED").await;
    let r = m
        .console("POST", &format!("/conversations/{id}/leave"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "waiting");
    let removed = s.until("CONVERSATION_PARTICIPANT_CHANGED").await;
    assert_eq!(removed.payload()["entries"][0]["operation"], "remove");
    let status = m
        .call("GET", &format!("{V2}/conversation/{id}"), &t.token, None)
        .await;
    assert_eq!(status.body["routingStatus"], "NEEDS_ROUTING");
    // The customer can still write (the session did not end), and another rep can take it.
    let r = m
        .send(
            &t.token,
            &id,
            &uuid::Uuid::new_v4().to_string(),
            "hello?",
            false,
        )
        .await;
    assert_eq!(r.status, 202);
    m.accept(&id, "Bob").await;
}

#[tokio::test]
async fn a_rep_closing_ends_the_session_by_agent() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, id, mut s) = m.conversation().await;
    assert_eq!(
        m.console("POST", &format!("/conversations/{id}/close"), None)
            .await
            .status,
        409
    );
    m.accept(&id, "Jane Rep").await;
    s.until("CONVERSATION_SESSION_STATUS_CHANGED").await;
    let r = m
        .console("POST", &format!("/conversations/{id}/close"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "ended");
    let removed = s.next_event().await;
    assert_eq!(removed.event, "CONVERSATION_PARTICIPANT_CHANGED");
    assert_eq!(removed.payload()["entries"][0]["operation"], "remove");
    let ended = s.next_event().await;
    assert_eq!(ended.event, "CONVERSATION_SESSION_STATUS_CHANGED");
    assert_eq!(ended.payload()["sessionStatus"], "Ended");
    assert_eq!(ended.payload()["sessionEndedByRole"], "Agent");
    let status = m
        .call("GET", &format!("{V2}/conversation/{id}"), &t.token, None)
        .await;
    assert_eq!(status.body["routingStatus"], "NEEDS_ROUTING");
    let r = m
        .send(
            &t.token,
            &id,
            &uuid::Uuid::new_v4().to_string(),
            "wait",
            false,
        )
        .await;
    assert_eq!(r.status, 417);
}

#[tokio::test]
async fn with_no_agents_available_routing_fails() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let r = m
        .console(
            "PUT",
            "/availability",
            Some(json!({"agents_available": false})),
        )
        .await;
    assert_eq!(r.status, 200);
    let t = m.token().await;
    let mut s = m.stream(&t.token, None).await;
    let id = uuid::Uuid::new_v4().to_string();
    assert_eq!(m.create(&t.token, &id, json!({})).await.status, 201);
    let routing = s.until("CONVERSATION_ROUTING_RESULT").await;
    assert_eq!(routing.payload()["failureType"], "RoutingError");
    assert_eq!(routing.payload()["failureReason"], "NoAgentsAvailable");
    let status = m
        .call("GET", &format!("{V2}/conversation/{id}"), &t.token, None)
        .await;
    assert_eq!(status.body["routingStatus"], "NEEDS_ROUTING");
    // Back on: the next conversation routes.
    m.console(
        "PUT",
        "/availability",
        Some(json!({"agents_available": true})),
    )
    .await;
    let id2 = uuid::Uuid::new_v4().to_string();
    assert_eq!(m.create(&t.token, &id2, json!({})).await.status, 201);
    let routing = s.until("CONVERSATION_ROUTING_RESULT").await;
    assert_eq!(routing.payload()["failureType"], "None");
    // The config knob starts the emulator without agents.
    let m = Miaw::start(config(|c| c.agents_available = false)).await;
    let t = m.token().await;
    let id = uuid::Uuid::new_v4().to_string();
    m.create(&t.token, &id, json!({})).await;
    let status = m
        .call("GET", &format!("{V2}/conversation/{id}"), &t.token, None)
        .await;
    assert_eq!(status.body["routingStatus"], "NEEDS_ROUTING");
}

// ---------------------------------------------------------------- SOQL

#[tokio::test]
async fn messaging_sessions_are_queryable_by_conversation_identifier() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, id, mut s) = m.conversation().await;
    let rest = common::Client::login(m.http.clone(), &m.sf.url()).await;
    let soql = format!(
        "SELECT Id, Status, ConversationId, Conversation.ConversationIdentifier FROM MessagingSession WHERE Conversation.ConversationIdentifier = '{id}'"
    );
    let r = rest.query(&soql).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalSize"], 1);
    let row = &r.body["records"][0];
    assert_eq!(row["Status"], "Waiting");
    assert!(row["Id"].as_str().unwrap().starts_with("0Mw"));
    assert_eq!(row["Conversation"]["ConversationIdentifier"], id.as_str());
    let session = row["Id"].as_str().unwrap().to_string();
    m.accept(&id, "Jane Rep").await;
    let r = rest.query(&soql).await;
    assert_eq!(r.body["records"][0]["Status"], "Active");
    s.until("CONVERSATION_SESSION_STATUS_CHANGED").await;
    m.console("POST", &format!("/conversations/{id}/close"), None)
        .await;
    let r = rest
        .query(&format!(
            "SELECT Status, EndedByType, EndTime FROM MessagingSession WHERE Id = '{session}'"
        ))
        .await;
    assert_eq!(r.body["records"][0]["Status"], "Ended");
    assert_eq!(r.body["records"][0]["EndedByType"], "Agent");
    assert!(r.body["records"][0]["EndTime"].is_string());
    // A new session after the end is a second record of the same conversation.
    m.send(
        &t.token,
        &id,
        &uuid::Uuid::new_v4().to_string(),
        "again",
        true,
    )
    .await;
    let r = rest
        .query(&format!("SELECT Id FROM MessagingSession WHERE Conversation.ConversationIdentifier = '{id}' AND Status != 'Ended'"))
        .await;
    assert_eq!(r.body["totalSize"], 1);
    assert_ne!(r.body["records"][0]["Id"], session.as_str());
    let r = rest
        .query(&format!("SELECT Id, ConversationIdentifier FROM Conversation WHERE ConversationIdentifier = '{id}'"))
        .await;
    assert_eq!(r.body["totalSize"], 1);
}

// ---------------------------------------------------------------- limits

#[tokio::test]
async fn messages_over_the_per_conversation_limit_get_429() {
    let m = Miaw::start(config(|c| c.messages_per_minute = 2)).await;
    let (t, id, _s) = m.conversation().await;
    for _ in 0..2 {
        let r = m
            .send(&t.token, &id, &uuid::Uuid::new_v4().to_string(), "x", false)
            .await;
        assert_eq!(r.status, 202);
    }
    let r = m
        .send(&t.token, &id, &uuid::Uuid::new_v4().to_string(), "x", false)
        .await;
    assert_eq!(r.status, 429);
    assert!(r.headers.contains_key("retry-after"));
    assert!(r.body["message"].as_str().is_some());
    // The limit is per conversation.
    let id2 = uuid::Uuid::new_v4().to_string();
    m.create(&t.token, &id2, json!({})).await;
    let r = m
        .send(
            &t.token,
            &id2,
            &uuid::Uuid::new_v4().to_string(),
            "x",
            false,
        )
        .await;
    assert_eq!(r.status, 202);
}

#[tokio::test]
async fn token_requests_over_the_per_org_limit_get_429() {
    let m = Miaw::start(config(|c| c.token_requests_per_minute = 2)).await;
    let t = m.token().await;
    let r = m
        .call(
            "GET",
            &format!("{V2}/authorization/continuation-access-token"),
            &t.token,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = m
        .token_request(json!({"orgId": ORG, "esDeveloperName": DEPLOYMENT}))
        .await;
    assert_eq!(r.status, 429);
    let r = m
        .call(
            "GET",
            &format!("{V2}/authorization/continuation-access-token"),
            &t.token,
            None,
        )
        .await;
    assert_eq!(r.status, 429);
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn planned_failures_hit_the_named_operation_n_times() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (t, id, _s) = m.conversation().await;
    let r = m
        .console(
            "PUT",
            "/faults",
            Some(json!({"fail": [{"operation": "send_message", "status": 503, "times": 2}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let msg = uuid::Uuid::new_v4().to_string();
    assert_eq!(m.send(&t.token, &id, &msg, "x", false).await.status, 503);
    assert_eq!(m.send(&t.token, &id, &msg, "x", false).await.status, 503);
    assert_eq!(m.send(&t.token, &id, &msg, "x", false).await.status, 202);
    let r = m
        .console("PUT", "/faults", Some(json!({"fail": [{"operation": "token", "status": 500, "times": 1},
                                                        {"operation": "sse", "status": 503, "times": 1}]})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        m.token_request(json!({"orgId": ORG, "esDeveloperName": DEPLOYMENT}))
            .await
            .status,
        500
    );
    assert_eq!(
        m.stream_response(&t.token, Some(ORG), None).await.status(),
        503
    );
    assert_eq!(
        m.stream_response(&t.token, Some(ORG), None).await.status(),
        200
    );
    // Bad plans are refused; DELETE clears.
    let r = m
        .console(
            "PUT",
            "/faults",
            Some(json!({"fail": [{"operation": "nope", "status": 503, "times": 1}]})),
        )
        .await;
    assert_eq!(r.status, 400);
    m.console(
        "PUT",
        "/faults",
        Some(json!({"fail": [{"operation": "create_conversation", "status": 429, "times": 5}]})),
    )
    .await;
    assert_eq!(m.console("DELETE", "/faults", None).await.status, 204);
    let r = m
        .create(&t.token, &uuid::Uuid::new_v4().to_string(), json!({}))
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn drop_stream_every_secs_ends_streams() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let t = m.token().await;
    m.console("PUT", "/faults", Some(json!({"drop_stream_every_secs": 1})))
        .await;
    let mut s = m.stream(&t.token, None).await;
    // Default pings are 15 s apart: the stream ends first, with nothing on it.
    assert!(s.next().await.is_none());
}

#[tokio::test]
async fn delay_events_holds_events_back_but_not_pings() {
    let m = Miaw::start(config(|c| c.ping_secs = 1)).await;
    let (t, id, mut s) = m.conversation().await;
    m.console("PUT", "/faults", Some(json!({"delay_events_ms": 600000})))
        .await;
    let msg = uuid::Uuid::new_v4().to_string();
    assert_eq!(m.send(&t.token, &id, &msg, "slow", false).await.status, 202);
    // The echo is queued (its 202 came first) and held for ten minutes: the stream keeps pinging.
    for _ in 0..2 {
        assert_eq!(s.next().await.unwrap().event, "ping");
    }
    // A new stream without the delay gets it by replay.
    m.console("DELETE", "/faults", None).await;
    let t2 = m
        .call(
            "GET",
            &format!("{V2}/authorization/continuation-access-token"),
            &t.token,
            None,
        )
        .await;
    let mut s2 = m
        .stream(
            t2.body["accessToken"].as_str().unwrap(),
            Some(&s.last_id.clone().unwrap()),
        )
        .await;
    assert_eq!(s2.next_event().await.entry()["identifier"], msg.as_str());
}

// ---------------------------------------------------------------- CLI

async fn rep_cli(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = tokio::time::timeout(
        HANG_GUARD,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_sf-emulator"))
            .arg("rep")
            .arg("--url")
            .arg(url)
            .args(args)
            .output(),
    )
    .await
    .expect("hang guard")
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_rep_cli_drives_the_console() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (_t, id, mut s) = m.conversation().await;
    let url = m.sf.url();
    let (ok, out, _) = rep_cli(&url, &["list"]).await;
    assert!(ok);
    assert!(out.contains(&id) && out.contains("waiting"), "{out}");
    let (ok, _, err) = rep_cli(&url, &["say", &id, "too early"]).await;
    assert!(!ok);
    assert!(err.contains("409"), "{err}");
    let (ok, _, err) = rep_cli(&url, &["accept", &id, "--name", "Jane Rep"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        s.until("CONVERSATION_PARTICIPANT_CHANGED").await.payload()["entries"][0]["displayName"],
        "Jane Rep"
    );
    let (ok, _, err) = rep_cli(&url, &["say", &id, "Hello from the CLI"]).await;
    assert!(ok, "{err}");
    let msg = s.until("CONVERSATION_MESSAGE").await;
    assert_eq!(
        msg.payload()["abstractMessage"]["staticContent"]["text"],
        "Hello from the CLI"
    );
    let (ok, out, _) = rep_cli(&url, &["show", &id]).await;
    assert!(ok);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["rep_name"], "Jane Rep");
    let (ok, _, _) = rep_cli(&url, &["transfer", &id, "--name", "Bob"]).await;
    assert!(ok);
    let (ok, _, _) = rep_cli(&url, &["leave", &id]).await;
    assert!(ok);
    let (ok, _, _) = rep_cli(&url, &["accept", &id, "--name", "Bob"]).await;
    assert!(ok);
    let (ok, _, _) = rep_cli(&url, &["close", &id]).await;
    assert!(ok);
    // (The first Active went by while reading up to the message.) Bob's accept, then the end.
    let active = s.until("CONVERSATION_SESSION_STATUS_CHANGED").await;
    assert_eq!(active.payload()["sessionStatus"], "Active");
    let ended = s.until("CONVERSATION_SESSION_STATUS_CHANGED").await;
    assert_eq!(ended.payload()["sessionEndedByRole"], "Agent");
    let (ok, out, _) = rep_cli(&url, &["availability", "off"]).await;
    assert!(ok && out.contains("false"), "{out}");
    let t = m.token().await;
    let id2 = uuid::Uuid::new_v4().to_string();
    m.create(&t.token, &id2, json!({})).await;
    let r = m
        .call("GET", &format!("{V2}/conversation/{id2}"), &t.token, None)
        .await;
    assert_eq!(r.body["routingStatus"], "NEEDS_ROUTING");
    let (ok, _, err) = rep_cli(&url, &["show", "no-such-id"]).await;
    assert!(!ok && err.contains("404"), "{err}");
}

// ---------------------------------------------------------------- bounds

#[tokio::test]
async fn max_conversations_forgets_closed_ones_and_refuses_beyond() {
    let m = Miaw::start(config(|c| c.max_conversations = 2)).await;
    let t = m.token().await;
    let ids: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    assert_eq!(m.create(&t.token, &ids[0], json!({})).await.status, 201);
    assert_eq!(m.create(&t.token, &ids[1], json!({})).await.status, 201);
    let r = m.create(&t.token, &ids[2], json!({})).await;
    assert_eq!(r.status, 503);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("max_conversations")
    );
    let r = m
        .call(
            "DELETE",
            &format!("{V2}/conversation/{}?esDeveloperName={DEPLOYMENT}", ids[0]),
            &t.token,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(m.create(&t.token, &ids[2], json!({})).await.status, 201);
    assert_eq!(
        m.console("GET", &format!("/conversations/{}", ids[0]), None)
            .await
            .status,
        404
    );
    assert_eq!(
        m.console("GET", &format!("/conversations/{}", ids[1]), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let m = Miaw::start(EmulatorConfig::default()).await;
    let (_t, _id, mut s) = m.conversation().await;
    // Without ending the streams, a graceful shutdown would wait for them forever.
    tokio::time::timeout(HANG_GUARD, m.sf.shutdown())
        .await
        .expect("shutdown finished");
    assert!(s.next().await.is_none());
}
