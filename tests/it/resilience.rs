//! Salesforce misbehaves; each escalation still lands exactly once.

use std::time::Duration;

use handoff_tests::{Db, both_databases, spawn_app, spawn_app_with};
use serde_json::json;
use sf_emulator::Faults;

use crate::support::{escalation, reassemble, rendered, unique};

/// Posts `body`, waits for its Case, and checks Salesforce holds exactly one Case
/// for it with the whole transcript, once, in order. Returns the Case id.
async fn lands_exactly_once(app: &handoff_tests::TestApp, body: &serde_json::Value) -> String {
    let id = body["session_id"].as_str().unwrap();
    assert_eq!(app.post_escalation(body).await.0, 202);
    let session = app
        .driver()
        .wait_escalated(id, Duration::from_secs(60))
        .await
        .expect("Case created");
    let cases = app
        .soql(&format!(
            "SELECT Id FROM Case WHERE Handoff_Session_Id__c = '{id}'"
        ))
        .await;
    assert_eq!(cases.len(), 1, "exactly one Case");
    let case_id = session.salesforce_case_id.unwrap();
    let bodies = app.comment_bodies(&case_id).await;
    assert_eq!(
        reassemble(&bodies),
        rendered(body["transcript"].as_array().unwrap()),
        "whole transcript, once, in order"
    );
    case_id
}

both_databases!(a_503_once_still_lands_exactly_once, |db: Db| async move {
    let app = spawn_app(db).await;
    let id = unique("flaky");
    let body = escalation(&id, 300);
    app.emulator.set_faults(Faults {
        fail_next: 1,
        ..Faults::default()
    });
    lands_exactly_once(&app, &body).await;

    let kinds = app.event_kinds(&id).await;
    assert!(
        kinds.iter().any(|k| k == "case.attempt_failed"),
        "{kinds:?}"
    );
    assert_eq!(kinds.last().map(String::as_str), Some("case.created"));
});

both_databases!(
    a_lost_response_is_reconciled_not_repeated,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let id = unique("lost");
        let body = escalation(&id, 60);
        // Salesforce commits the composite call, then the connection drops.
        app.emulator.set_faults(Faults {
            drop_next: 1,
            ..Faults::default()
        });
        lands_exactly_once(&app, &body).await;
        let (_, events) = app
            .get(&format!("/v1/sessions/{id}/events"), Some(&app.read_token))
            .await;
        let created = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "case.created")
            .unwrap();
        assert_eq!(created["data"]["reconciled"], true, "{created}");
    }
);

both_databases!(
    a_permanent_salesforce_error_stops_at_once,
    |db: Db| async move {
        // An allow-listed attribute mapped to a field the org does not have.
        let app = spawn_app_with(db, |c| {
            c.case
                .attribute_fields
                .insert("order_id".into(), "Order_Id__c".into());
        })
        .await;
        let id = unique("perm");
        let mut body = escalation(&id, 3);
        body["attributes"] = json!({"order_id": "A-1001"});
        assert_eq!(app.post_escalation(&body).await.0, 202);
        let driver = app.driver();
        let err = driver
            .wait_escalated(&id, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("INVALID_FIELD"), "{err}");
        let attempts = app
            .event_kinds(&id)
            .await
            .iter()
            .filter(|k| *k == "case.attempt")
            .count();
        assert_eq!(attempts, 1, "a permanent error is not retried");
        let dead = app.gateway.state.store.jobs_in_state("dead").await.unwrap();
        assert_eq!(dead.len(), 1);
        assert!(
            app.soql(&format!(
                "SELECT Id FROM Case WHERE Handoff_Session_Id__c = '{id}'"
            ))
            .await
            .is_empty()
        );
    }
);

both_databases!(a_slow_attempt_keeps_its_lease, |db: Db| async move {
    // Salesforce takes longer to answer than the lease lasts: the worker renews
    // its lease, so no other worker loop takes the job over mid-call.
    let app = spawn_app_with(db, |c| c.worker.lease_secs = 3).await;
    app.emulator.set_faults(Faults {
        latency_ms: 4_500,
        ..Faults::default()
    });
    let id = unique("slow");
    assert_eq!(app.post_escalation(&escalation(&id, 3)).await.0, 202);
    app.driver()
        .wait_escalated(&id, Duration::from_secs(30))
        .await
        .expect("Case created");
    let attempts = app
        .event_kinds(&id)
        .await
        .iter()
        .filter(|k| *k == "case.attempt")
        .count();
    assert_eq!(
        attempts,
        1,
        "the job was never taken over: {:?}",
        app.event_kinds(&id).await
    );
    assert_eq!(app.emulator.stats().api_calls, 1);
});
