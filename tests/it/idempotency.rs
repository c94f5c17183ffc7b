//! The session id is the natural idempotency key.

use std::time::Duration;

use handoff_tests::{Db, both_databases, spawn_app};
use serde_json::json;

use crate::support::{escalation, unique};

both_databases!(
    same_body_same_session_different_body_409,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let id = unique("idem");
        let body = escalation(&id, 4);
        let (s1, first) = app.post_escalation(&body).await;
        assert_eq!(s1, 202);

        // Same JSON with keys in another order is the same body. Written by
        // hand: serde_json (without `preserve_order`) serializes every Value
        // with its keys sorted, so a re-serialized map is identical bytes.
        let reordered = reordered_text(&body);
        assert_ne!(reordered.as_bytes(), body.to_string().as_bytes());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&reordered).unwrap(),
            body,
            "same content"
        );
        let (s2, second) = app
            .post_raw(
                "/v1/escalations",
                Some(&app.escalate_token),
                "application/json",
                reordered.into_bytes(),
            )
            .await;
        assert_eq!(s2, 202);
        assert_eq!(first["id"], second["id"]);
        assert_eq!(first["created_at"], second["created_at"]);

        let mut changed = body.clone();
        changed["summary"] = json!("a different summary");
        let (s3, problem) = app.post_escalation(&changed).await;
        assert_eq!(s3, 409, "{problem}");
        assert_eq!(problem["code"], "session_conflict");

        // Many concurrent duplicates: still exactly one Case.
        let statuses = app.post_concurrently(vec![body.clone(); 10]).await;
        assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
        app.driver()
            .wait_escalated(&id, Duration::from_secs(30))
            .await
            .expect("Case created");
        let cases = app
            .soql(&format!(
                "SELECT Id FROM Case WHERE Handoff_Session_Id__c = '{id}'"
            ))
            .await;
        assert_eq!(cases.len(), 1);
    }
);

/// The JSON text of `value` with every object's keys in reverse order: the same
/// document, other bytes (only the key order differs).
pub(crate) fn reordered_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        serde_json::Value::from(k.as_str()),
                        reordered_text(v)
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(reordered_text).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

both_databases!(
    concurrent_distinct_escalations_each_get_one_case,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let ids: Vec<String> = (0..20).map(|i| unique(&format!("many{i}"))).collect();
        let statuses = app
            .post_concurrently(ids.iter().map(|id| escalation(id, 6)).collect())
            .await;
        assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
        let driver = app.driver();
        for id in &ids {
            driver
                .wait_escalated(id, Duration::from_secs(60))
                .await
                .expect("Case created");
        }
        let rows = app.soql("SELECT Handoff_Session_Id__c FROM Case").await;
        assert_eq!(rows.len(), ids.len(), "one Case per escalation, no more");
    }
);
