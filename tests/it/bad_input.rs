//! Bad input gets a clear problem+json error naming the field, and writes nothing.

use handoff_tests::{Db, TestApp, both_databases, spawn_app, spawn_app_with};
use serde_json::{Value, json};

use crate::support::{escalation, unique};

/// Asserts a problem+json answer with the status, code and (optional) field, and
/// that no session with `session_id` exists afterwards.
async fn assert_rejected(
    app: &TestApp,
    (status, body): (u16, Value),
    want_status: u16,
    code: &str,
    field: Option<&str>,
    session_id: Option<&str>,
) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["status"], want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["type"].as_str().is_some_and(|t| t.ends_with(code)),
        "{body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
    }
    let text = body.to_string();
    assert!(
        !text.contains("panicked") && !text.contains("src/"),
        "leaks internals: {text}"
    );
    if let Some(id) = session_id {
        let (status, _) = app
            .get(&format!("/v1/sessions/{id}"), Some(&app.read_token))
            .await;
        assert_eq!(
            status, 404,
            "a rejected escalation must not create session {id}"
        );
    }
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

/// The body with `raw_email` instead of `transcript`.
fn raw_only(body: &Value, raw: Value) -> Value {
    let mut body = body.clone();
    body.as_object_mut().unwrap().remove("transcript");
    body["raw_email"] = raw;
    body
}

both_databases!(
    each_bad_escalation_is_refused_and_writes_nothing,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let id = unique("bad");
        let good = escalation(&id, 3);

        let cases: Vec<(Value, &str, &str)> = vec![
            (
                with(good.clone(), "session_id", Value::Null),
                "missing_field",
                "session_id",
            ),
            (
                with(good.clone(), "session_id", json!("has space")),
                "invalid_session_id",
                "session_id",
            ),
            (
                with(good.clone(), "session_id", json!("x".repeat(129))),
                "invalid_session_id",
                "session_id",
            ),
            (
                with(good.clone(), "session_id", json!(42)),
                "invalid_session_id",
                "session_id",
            ),
            (
                with(good.clone(), "channel", json!("fax")),
                "unknown_channel",
                "channel",
            ),
            (
                with(good.clone(), "channel", Value::Null),
                "missing_field",
                "channel",
            ),
            (
                with(good.clone(), "transcript", json!([])),
                "empty_transcript",
                "transcript",
            ),
            (
                with(good.clone(), "customer", json!({"email": "not-an-address"})),
                "invalid_email",
                "customer.email",
            ),
            (
                with(good.clone(), "priority", json!("urgent")),
                "invalid_priority",
                "priority",
            ),
            (
                with(good.clone(), "language", json!("english please")),
                "invalid_language",
                "language",
            ),
            (
                with(
                    good.clone(),
                    "transcript",
                    json!([{"role": "robot", "text": "hi"}]),
                ),
                "invalid_role",
                "transcript[0].role",
            ),
            (
                with(
                    good.clone(),
                    "transcript",
                    json!([{"role": "customer", "text": "hi", "at": "yesterday"}]),
                ),
                "invalid_time",
                "transcript[0].at",
            ),
            (
                raw_only(&good, json!(["this is not an email at all"])),
                "invalid_raw_email",
                "raw_email[0]",
            ),
            (
                raw_only(&good, json!("a string, not a list")),
                "invalid_raw_email",
                "raw_email",
            ),
        ];
        for (body, code, field) in cases {
            // Every case uses the same session id: none of them may create it.
            let mut body = body;
            if body["session_id"].is_string()
                && body["session_id"].as_str().unwrap().len() <= 128
                && !body["session_id"].as_str().unwrap().contains(' ')
            {
                body["session_id"] = json!(id);
            }
            let response = app.post_escalation(&body).await;
            assert_rejected(&app, response, 400, code, Some(field), Some(&id)).await;
        }

        // Not JSON at all.
        let response = app
            .post_raw(
                "/v1/escalations",
                Some(&app.escalate_token),
                "application/json",
                b"{not json".to_vec(),
            )
            .await;
        assert_rejected(&app, response, 400, "invalid_json", None, Some(&id)).await;
        let response = app
            .post_raw(
                "/v1/escalations",
                Some(&app.escalate_token),
                "text/plain",
                good.to_string().into_bytes(),
            )
            .await;
        assert_rejected(
            &app,
            response,
            415,
            "unsupported_media_type",
            None,
            Some(&id),
        )
        .await;

        // Tokens.
        let response = app
            .post_raw(
                "/v1/escalations",
                None,
                "application/json",
                good.to_string().into_bytes(),
            )
            .await;
        assert_rejected(&app, response, 401, "unauthenticated", None, Some(&id)).await;
        let response = app
            .post_raw(
                "/v1/escalations",
                Some("hnd_wrong"),
                "application/json",
                good.to_string().into_bytes(),
            )
            .await;
        assert_rejected(&app, response, 401, "unauthenticated", None, Some(&id)).await;
        let response = app
            .post_raw(
                "/v1/escalations",
                Some(&app.read_token.clone()),
                "application/json",
                good.to_string().into_bytes(),
            )
            .await;
        assert_rejected(&app, response, 403, "insufficient_scope", None, Some(&id)).await;
        let (status, _) = app.get("/v1/sessions?id=x", None).await;
        assert_eq!(status, 401);
        let (status, body) = app.get("/v1/sessions", Some(&app.read_token)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("missing_field"))
        );

        // Unknown session: 404 without saying anything else.
        let (status, body) = app.get("/v1/sessions/nope", Some(&app.read_token)).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
        let (status, _) = app
            .get("/v1/sessions/nope/events", Some(&app.read_token))
            .await;
        assert_eq!(status, 404);

        // Finally the good body is accepted under that id: nothing before blocked it.
        assert_eq!(app.post_escalation(&good).await.0, 202);
    }
);

both_databases!(bodies_over_the_limit_get_413, |db: Db| async move {
    let app = spawn_app_with(db, |c| c.max_body_bytes = 64 * 1024).await;
    let id = unique("big");
    let mut body = escalation(&id, 1);
    body["summary"] = json!("x".repeat(70 * 1024));
    let response = app.post_escalation(&body).await;
    assert_rejected(&app, response, 413, "body_too_large", None, Some(&id)).await;
});

#[tokio::test]
async fn default_body_limit_is_8_mib() {
    let app = spawn_app(Db::Sqlite).await;
    assert_eq!(app.config.max_body_bytes, 8 * 1024 * 1024);
    let id = unique("big");
    let mut body = escalation(&id, 1);
    body["attributes"] = json!({"padding": "y".repeat(8 * 1024 * 1024)});
    let response = app.post_escalation(&body).await;
    assert_rejected(&app, response, 413, "body_too_large", None, Some(&id)).await;
}
