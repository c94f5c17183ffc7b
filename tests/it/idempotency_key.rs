//! The `Idempotency-Key` header on POSTs: replay, in flight, reuse, scoping,
//! validation, expiry, abandoned requests and the sweep.

use std::time::Duration;

use gateway::Application;
use gateway::store::{
    Begin, IdempotencyPolicy, StoredResponse, fingerprint, idempotency_key, job, now_ms,
};
use handoff_tests::{Db, TestApp, both_databases, spawn_app, spawn_app_with};
use reqwest::header::HeaderValue;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::{escalation, unique};

/// What came back, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    replayed: Option<String>,
    content_type: Option<String>,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn send(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    key: Option<HeaderValue>,
    body: Vec<u8>,
) -> Answer {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.expect("request sent");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_string())
    };
    Answer {
        status: response.status().as_u16(),
        replayed: header("idempotent-replayed"),
        content_type: header("content-type"),
        retry_after: header("retry-after"),
        body: response.bytes().await.expect("body").to_vec(),
    }
}

fn key(k: &str) -> Option<HeaderValue> {
    Some(HeaderValue::from_str(k).expect("header value"))
}

fn bytes(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).expect("json")
}

/// POST /v1/escalations with the escalate token.
async fn escalate(app: &TestApp, k: Option<HeaderValue>, body: &Value) -> Answer {
    post_as(app, &app.escalate_token, k, body).await
}

async fn post_as(app: &TestApp, token: &str, k: Option<HeaderValue>, body: &Value) -> Answer {
    send(
        &app.http,
        app.url("/v1/escalations"),
        Some(token),
        k,
        bytes(body),
    )
    .await
}

async fn token_id(app: &TestApp, secret: &str) -> String {
    app.gateway
        .state
        .store
        .token_identity(secret)
        .await
        .expect("db")
        .expect("live token")
        .id
}

async fn key_rows(app: &TestApp) -> u64 {
    idempotency_key::Entity::find()
        .count(app.gateway.state.store.connection())
        .await
        .expect("count")
}

async fn key_row(app: &TestApp, token: &str, k: &str) -> Option<idempotency_key::Model> {
    let id = token_id(app, token).await;
    app.gateway
        .state
        .store
        .idempotency_key(&id, k)
        .await
        .expect("db")
}

async fn jobs_for(app: &TestApp, session_id: &str) -> u64 {
    job::Entity::find()
        .filter(job::Column::SessionId.eq(session_id))
        .count(app.gateway.state.store.connection())
        .await
        .expect("count")
}

async fn accepted_events(app: &TestApp, session_id: &str) -> usize {
    app.event_kinds(session_id)
        .await
        .iter()
        .filter(|k| *k == "accepted")
        .count()
}

async fn session_exists(app: &TestApp, session_id: &str) -> bool {
    let (status, _) = app
        .get(&format!("/v1/sessions/{session_id}"), Some(&app.read_token))
        .await;
    status == 200
}

fn policy(app: &TestApp) -> IdempotencyPolicy {
    app.config.idempotency.policy()
}

both_databases!(
    replay_is_byte_identical_and_runs_once,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let id = unique("idk-replay");
        let body = escalation(&id, 4);
        let k = unique("key");

        let first = escalate(&app, key(&k), &body).await;
        assert_eq!(first.status, 202, "{:?}", first.json());
        assert_eq!(first.replayed, None);
        assert_eq!(first.json()["status"], "accepted");

        // Let the session move on: a replay still answers what the first request answered.
        app.driver()
            .wait_escalated(&id, Duration::from_secs(30))
            .await
            .expect("Case created");
        let again = escalate(&app, key(&k), &body).await;
        assert_eq!(again.status, 202);
        assert_eq!(again.replayed.as_deref(), Some("true"));
        assert_eq!(again.body, first.body, "byte-identical replay");
        assert_eq!(again.content_type, first.content_type);
        // Without the key the handler runs and shows today's state.
        let fresh = escalate(&app, None, &body).await;
        assert_eq!(fresh.status, 202);
        assert_eq!(fresh.replayed, None);
        assert_eq!(fresh.json()["status"], "escalated");

        assert_eq!(jobs_for(&app, &id).await, 1, "no second job");
        assert_eq!(accepted_events(&app, &id).await, 1, "no second acceptance");
        let row = key_row(&app, &app.escalate_token, &k)
            .await
            .expect("key stored");
        assert_eq!(row.state, "done");
        assert_eq!(row.status, Some(202));
        assert_eq!(row.body.as_deref(), Some(first.body.as_slice()));
    }
);

both_databases!(
    concurrent_first_requests_run_the_handler_once,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let id = unique("idk-race");
        let payload = bytes(&escalation(&id, 6));
        let k = unique("key");
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (http, url, token) = (
                    app.http.clone(),
                    app.url("/v1/escalations"),
                    app.escalate_token.clone(),
                );
                let (k, payload) = (k.clone(), payload.clone());
                tokio::spawn(async move { send(&http, url, Some(&token), key(&k), payload).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("task"));
        }

        let accepted: Vec<&Answer> = answers.iter().filter(|a| a.status == 202).collect();
        let in_flight: Vec<&Answer> = answers.iter().filter(|a| a.status == 409).collect();
        assert_eq!(accepted.len() + in_flight.len(), 50, "{answers:?}");
        let originals = accepted.iter().filter(|a| a.replayed.is_none()).count();
        assert_eq!(originals, 1, "exactly one request ran the handler");
        assert!(accepted.iter().all(|a| a.body == accepted[0].body));
        for a in &in_flight {
            assert_eq!(a.json()["code"], "idempotency_key_in_flight");
            assert_eq!(a.content_type.as_deref(), Some("application/problem+json"));
            assert_eq!(a.retry_after.as_deref(), Some("1"));
        }

        let (status, found) = app
            .get(&format!("/v1/sessions?id={id}"), Some(&app.read_token))
            .await;
        assert_eq!(status, 200);
        assert_eq!(found["sessions"].as_array().expect("sessions").len(), 1);
        assert_eq!(jobs_for(&app, &id).await, 1);
        assert_eq!(accepted_events(&app, &id).await, 1);
        assert_eq!(key_rows(&app).await, 1);

        // Once done, a late duplicate is a replay of the one original.
        let late = send(
            &app.http,
            app.url("/v1/escalations"),
            Some(&app.escalate_token),
            key(&k),
            payload,
        )
        .await;
        assert_eq!(late.status, 202);
        assert_eq!(late.replayed.as_deref(), Some("true"));
        assert_eq!(late.body, accepted[0].body);
    }
);

both_databases!(
    same_key_other_request_is_422_and_writes_nothing,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let id = unique("idk-first");
        let body = escalation(&id, 3);
        let k = unique("key");
        assert_eq!(escalate(&app, key(&k), &body).await.status, 202);
        let before = key_row(&app, &app.escalate_token, &k).await.expect("row");

        let other_id = unique("idk-other");
        let reused = escalate(&app, key(&k), &escalation(&other_id, 3)).await;
        assert_eq!(reused.status, 422, "{:?}", reused.json());
        assert_eq!(reused.json()["code"], "idempotency_key_reused");
        assert_eq!(reused.json()["status"], 422);
        assert_eq!(
            reused.content_type.as_deref(),
            Some("application/problem+json")
        );
        assert_eq!(reused.replayed, None);
        assert!(!session_exists(&app, &other_id).await, "nothing written");
        assert_eq!(jobs_for(&app, &other_id).await, 0);

        // The same body elsewhere (another request target) is another request too.
        let elsewhere = send(
            &app.http,
            app.url("/v1/escalations?x=1"),
            Some(&app.escalate_token),
            key(&k),
            bytes(&body),
        )
        .await;
        assert_eq!(elsewhere.status, 422);

        let after = key_row(&app, &app.escalate_token, &k).await.expect("row");
        assert_eq!(after, before, "the record is untouched");
        assert_eq!(key_rows(&app).await, 1);
        assert_eq!(accepted_events(&app, &id).await, 1);
    }
);

// The key's fingerprint is the request's bytes (README: method, path and
// query, body bytes), so the same JSON with its keys in another order is
// another request: 422, and nothing runs. Earlier "reordered" bodies were
// re-serialized `Value`s, which serde_json writes with sorted keys: identical
// bytes, so no test could tell bytes from content. This one sends bytes that
// differ only in key order.
both_databases!(
    same_key_with_reordered_bytes_is_another_request,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let id = unique("idk-order");
        let body = escalation(&id, 3);
        let k = unique("key");
        let first = escalate(&app, key(&k), &body).await;
        assert_eq!(first.status, 202, "{:?}", first.json());

        let reordered = crate::idempotency::reordered_text(&body).into_bytes();
        assert_ne!(reordered, bytes(&body), "the bytes differ");
        assert_eq!(
            serde_json::from_slice::<Value>(&reordered).expect("json"),
            body,
            "the content does not"
        );
        let again = send(
            &app.http,
            app.url("/v1/escalations"),
            Some(&app.escalate_token),
            key(&k),
            reordered.clone(),
        )
        .await;
        assert_eq!(again.status, 422, "{:?}", again.json());
        assert_eq!(again.json()["code"], "idempotency_key_reused");
        // Without the key, the session id decides, by content: the same session.
        let fresh = send(
            &app.http,
            app.url("/v1/escalations"),
            Some(&app.escalate_token),
            None,
            reordered,
        )
        .await;
        assert_eq!(fresh.status, 202);
        assert_eq!(fresh.json()["id"], first.json()["id"]);
        assert_eq!(jobs_for(&app, &id).await, 1);
    }
);

both_databases!(keys_are_scoped_per_token, |db: Db| async move {
    let app = spawn_app(db).await;
    let other = app
        .gateway
        .state
        .store
        .create_token("second-client", &[gateway::store::Scope::Escalate])
        .await
        .expect("token")
        .secret;
    let k = unique("shared-key");
    let a_id = unique("idk-a");
    let b_id = unique("idk-b");
    let a_body = escalation(&a_id, 3);
    let b_body = escalation(&b_id, 3);

    let a = escalate(&app, key(&k), &a_body).await;
    assert_eq!(a.status, 202);
    // Token B with A's key runs its own request: no replay of A's answer, no 422.
    let b = post_as(&app, &other, key(&k), &b_body).await;
    assert_eq!(b.status, 202, "{:?}", b.json());
    assert_eq!(b.replayed, None);
    assert_eq!(b.json()["id"], b_id.as_str());
    assert!(session_exists(&app, &b_id).await);
    // Each token replays only its own answer.
    let b_again = post_as(&app, &other, key(&k), &b_body).await;
    assert_eq!(b_again.replayed.as_deref(), Some("true"));
    assert_eq!(b_again.body, b.body);
    let a_again = escalate(&app, key(&k), &a_body).await;
    assert_eq!(a_again.replayed.as_deref(), Some("true"));
    assert_eq!(a_again.body, a.body);
    // B sending A's request under the key B used for its own is a reuse, for B only.
    assert_eq!(post_as(&app, &other, key(&k), &a_body).await.status, 422);
    assert_eq!(key_rows(&app).await, 2);
    assert_ne!(
        key_row(&app, &app.escalate_token, &k)
            .await
            .expect("A's row")
            .request_hash,
        key_row(&app, &other, &k)
            .await
            .expect("B's row")
            .request_hash
    );
});

both_databases!(malformed_keys_are_400, |db: Db| async move {
    let app = spawn_app(db).await;
    let id = unique("idk-bad");
    let body = escalation(&id, 2);
    let long = "k".repeat(256);
    let bad: Vec<HeaderValue> = vec![
        HeaderValue::from_static(""),
        HeaderValue::from_str(&long).unwrap(),
        HeaderValue::from_static("a\tb"),
        HeaderValue::from_bytes("café".as_bytes()).unwrap(),
        HeaderValue::from_static("\"\""),
    ];
    for value in bad {
        let answer = escalate(&app, Some(value.clone()), &body).await;
        assert_eq!(answer.status, 400, "{value:?}: {:?}", answer.json());
        assert_eq!(answer.json()["code"], "invalid_idempotency_key");
        assert_eq!(answer.json()["field"], "Idempotency-Key");
    }
    // Two keys at once are ambiguous.
    let two = app
        .http
        .post(app.url("/v1/escalations"))
        .bearer_auth(&app.escalate_token)
        .header("content-type", "application/json")
        .header("idempotency-key", "one")
        .header("idempotency-key", "two")
        .body(bytes(&body))
        .send()
        .await
        .expect("sent");
    assert_eq!(two.status().as_u16(), 400);
    assert_eq!(key_rows(&app).await, 0);
    assert!(!session_exists(&app, &id).await, "nothing ran");

    // 255 printable characters are fine; the IETF quoted form is the same key.
    let longest = "k".repeat(255);
    assert_eq!(escalate(&app, key(&longest), &body).await.status, 202);
    let quoted = escalate(&app, key(&format!("\"{longest}\"")), &body).await;
    assert_eq!(quoted.replayed.as_deref(), Some("true"));

    // Only POSTs look at the header.
    let get = app
        .http
        .get(app.url(&format!("/v1/sessions/{id}")))
        .bearer_auth(&app.read_token)
        .header("idempotency-key", "")
        .send()
        .await
        .expect("sent");
    assert_eq!(get.status().as_u16(), 200);
});

both_databases!(only_final_answers_are_stored, |db: Db| async move {
    let app = spawn_app_with(db, |c| c.max_body_bytes = 4096).await;
    let id = unique("idk-final");
    let body = escalation(&id, 2);
    let k = unique("key");

    // Unauthenticated: 401 before the table is touched.
    let anonymous = send(
        &app.http,
        app.url("/v1/escalations"),
        None,
        key(&k),
        bytes(&body),
    )
    .await;
    assert_eq!(anonymous.status, 401);
    let unknown = send(
        &app.http,
        app.url("/v1/escalations"),
        Some("hnd_not_a_token"),
        key(&k),
        bytes(&body),
    )
    .await;
    assert_eq!(unknown.status, 401);
    assert_eq!(key_rows(&app).await, 0);
    // A token without the scope: 403, and the key is released.
    let read_only = post_as(&app, &app.read_token, key(&k), &body).await;
    assert_eq!(read_only.status, 403);
    assert_eq!(key_rows(&app).await, 0);
    // Too large: 413, nothing kept.
    let huge = escalation(&id, 200);
    let too_large = escalate(&app, key(&k), &huge).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(key_rows(&app).await, 0);
    // Without the header: exactly as before, nothing kept.
    let plain = escalate(&app, None, &body).await;
    assert_eq!(plain.status, 202);
    assert_eq!(plain.replayed, None);
    assert_eq!(key_rows(&app).await, 0);

    // A validation error is a final answer: stored and replayed.
    let k2 = unique("key");
    let broken = json!({"channel": "email", "summary": "no session id"});
    let invalid = escalate(&app, key(&k2), &broken).await;
    assert_eq!(invalid.status, 400);
    let invalid_again = escalate(&app, key(&k2), &broken).await;
    assert_eq!(invalid_again.status, 400);
    assert_eq!(invalid_again.replayed.as_deref(), Some("true"));
    assert_eq!(invalid_again.body, invalid.body);
    assert_eq!(invalid_again.content_type, invalid.content_type);
    // … so a corrected body needs a new key.
    assert_eq!(escalate(&app, key(&k2), &body).await.status, 422);

    // The released key now runs normally.
    let ok = escalate(&app, key(&k), &body).await;
    assert_eq!(ok.status, 202);
    assert_eq!(ok.replayed, None);
    assert_eq!(key_rows(&app).await, 2);
});

both_databases!(expired_key_behaves_as_new, |db: Db| async move {
    let app = spawn_app_with(db, |c| c.idempotency.retention_hours = 0).await;
    let id = unique("idk-exp");
    let body = escalation(&id, 2);
    let k = unique("key");
    assert_eq!(escalate(&app, key(&k), &body).await.status, 202);

    // Retention 0: the stored answer has expired at once, the request runs again.
    let again = escalate(&app, key(&k), &body).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.replayed, None);
    // And another request may use the key: no 422.
    let other_id = unique("idk-exp-other");
    let other = escalate(&app, key(&k), &escalation(&other_id, 2)).await;
    assert_eq!(other.status, 202, "{:?}", other.json());
    assert_eq!(other.replayed, None);
    assert!(session_exists(&app, &other_id).await);
    let row = key_row(&app, &app.escalate_token, &k).await.expect("row");
    assert_eq!(
        row.request_hash,
        fingerprint("POST", "/v1/escalations", &bytes(&escalation(&other_id, 2)))
    );
    assert_eq!(key_rows(&app).await, 1);
});

both_databases!(abandoned_in_flight_key_is_taken_over, |db: Db| async move {
    let app = spawn_app(db).await;
    let store = app.gateway.state.store.clone();
    let token = token_id(&app, &app.escalate_token).await;
    let policy = policy(&app);
    assert_eq!(policy.lock_timeout_ms, 60_000, "the default lock timeout");

    // A request that started 2 minutes ago and died (its process is gone).
    let id = unique("idk-dead");
    let body = escalation(&id, 2);
    let k = unique("key");
    let hash = fingerprint("POST", "/v1/escalations", &bytes(&body));
    let Begin::Started(dead) = store
        .begin_idempotent(&token, &k, &hash, now_ms() - 120_000, policy)
        .await
        .expect("db")
    else {
        panic!("a new key is ours");
    };
    let taken = escalate(&app, key(&k), &body).await;
    assert_eq!(taken.status, 202, "{:?}", taken.json());
    assert_eq!(taken.replayed, None);
    assert!(session_exists(&app, &id).await);
    let row = key_row(&app, &app.escalate_token, &k).await.expect("row");
    assert_eq!(row.state, "done");
    assert_ne!(row.lock_id, dead.lock_id);
    // The dead request's lock is fenced off: it can neither store nor release.
    let late = StoredResponse {
        status: 500,
        content_type: None,
        body: b"late".to_vec(),
    };
    assert!(
        !store
            .complete_idempotent(&dead, &late, now_ms())
            .await
            .expect("db")
    );
    assert!(!store.release_idempotent(&dead).await.expect("db"));
    assert_eq!(escalate(&app, key(&k), &body).await.body, taken.body);

    // A request still running (started now): 409, retry later.
    let k2 = unique("key");
    let id2 = unique("idk-live");
    let body2 = escalation(&id2, 2);
    let hash2 = fingerprint("POST", "/v1/escalations", &bytes(&body2));
    let Begin::Started(live) = store
        .begin_idempotent(&token, &k2, &hash2, now_ms(), policy)
        .await
        .expect("db")
    else {
        panic!("a new key is ours");
    };
    let busy = escalate(&app, key(&k2), &body2).await;
    assert_eq!(busy.status, 409);
    assert_eq!(busy.json()["code"], "idempotency_key_in_flight");
    assert!(!session_exists(&app, &id2).await);
    // A different request under a key in flight is a reuse.
    assert_eq!(escalate(&app, key(&k2), &body).await.status, 422);
    // When it completes, its stored answer is replayed exactly.
    let canned = StoredResponse {
        status: 201,
        content_type: Some("text/plain; charset=utf-8".into()),
        body: b"stored answer \x00\xff".to_vec(),
    };
    assert!(
        store
            .complete_idempotent(&live, &canned, now_ms())
            .await
            .expect("db")
    );
    let replayed = escalate(&app, key(&k2), &body2).await;
    assert_eq!(replayed.status, 201);
    assert_eq!(replayed.body, canned.body);
    assert_eq!(replayed.content_type, canned.content_type);
    assert_eq!(replayed.replayed.as_deref(), Some("true"));
    assert!(
        !session_exists(&app, &id2).await,
        "a replay never runs the handler"
    );

    // An abandoned key is released only to the same request.
    let k3 = unique("key");
    let Begin::Started(_) = store
        .begin_idempotent(&token, &k3, &hash, now_ms() - 120_000, policy)
        .await
        .expect("db")
    else {
        panic!("a new key is ours");
    };
    assert_eq!(escalate(&app, key(&k3), &body2).await.status, 422);
});

both_databases!(sweep_deletes_expired_keys, |db: Db| async move {
    let app = spawn_app(db).await;
    let store = app.gateway.state.store.clone();
    let token = token_id(&app, &app.escalate_token).await;
    let k = unique("key");
    assert_eq!(
        escalate(&app, key(&k), &escalation(&unique("idk-sweep"), 2))
            .await
            .status,
        202
    );
    // A request in flight right now is never swept, whatever the retention.
    let live_key = unique("key");
    let Begin::Started(live) = store
        .begin_idempotent(&token, &live_key, "h", now_ms(), policy(&app))
        .await
        .expect("db")
    else {
        panic!("a new key is ours");
    };
    let kept = IdempotencyPolicy {
        retention_ms: 3_600_000,
        lock_timeout_ms: 60_000,
    };
    assert_eq!(
        store
            .sweep_idempotency_keys(now_ms(), kept)
            .await
            .expect("db"),
        0
    );

    // A second gateway on the same database, keeping keys 0 hours: its sweep
    // (spawned by `run`, first pass at start) removes the completed key.
    let mut config = app.config.clone();
    config.idempotency.retention_hours = 0;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let second = Application::build(config, listener)
        .await
        .expect("builds")
        .spawn()
        .expect("runs");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while store
        .idempotency_key(&token, &k)
        .await
        .expect("db")
        .is_some()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweep never ran"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let still: Option<idempotency_key::Model> =
        store.idempotency_key(&token, &live_key).await.expect("db");
    assert_eq!(still.map(|r| r.lock_id), Some(live.lock_id.clone()));
    // The sweep honours the shutdown token.
    tokio::time::timeout(Duration::from_secs(15), second.stop())
        .await
        .expect("the gateway stops promptly");

    // An abandoned in-flight key past retention is swept too.
    let gone = IdempotencyPolicy {
        retention_ms: 0,
        lock_timeout_ms: 60_000,
    };
    assert_eq!(
        store
            .sweep_idempotency_keys(now_ms() + 61_000, gone)
            .await
            .expect("db"),
        1
    );
    assert_eq!(key_rows(&app).await, 0);
});

#[test]
fn idempotency_config_is_validated() {
    let mut config = gateway::Config::defaults();
    assert_eq!(config.idempotency.retention_hours, 24);
    assert_eq!(config.idempotency.lock_timeout_secs, 60);
    config.validate().expect("defaults are valid");
    config.idempotency.lock_timeout_secs = 0;
    assert!(config.validate().is_err());
    config.idempotency.lock_timeout_secs = 60;
    config.idempotency.retention_hours = 100_000;
    assert!(config.validate().is_err());
}
