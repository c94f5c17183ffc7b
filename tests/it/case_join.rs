//! Case append (`case.append_to_open_case`): a new Case-path escalation from a
//! customer whose earlier Handoff Case is open joins that Case instead of
//! opening another.

use std::time::{Duration, Instant};

use gateway::store::NoteState;
use handoff_tests::{Db, TestApp, both_databases, spawn_app_with};
use serde_json::json;

use crate::support::{escalation, unique};

async fn escalate(app: &TestApp, prefix: &str) -> (String, String) {
    let session_id = unique(prefix);
    let (status, body) = app.post_escalation(&escalation(&session_id, 2)).await;
    assert_eq!(status, 202, "{body}");
    let session = app
        .driver()
        .wait_escalated(&session_id, Duration::from_secs(30))
        .await
        .expect("escalated");
    (session_id, session.salesforce_case_id.expect("case id"))
}

async fn notes_written(app: &TestApp, session_id: &str) {
    let store = &app.gateway.state.store;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let notes = store.case_notes_for_session(session_id).await.unwrap();
        if !notes.is_empty() && notes.iter().all(|n| n.state == NoteState::Written.as_str()) {
            return;
        }
        assert!(Instant::now() < deadline, "notes not written: {notes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// The second escalation from the same address joins the open Case: one Case in
// Salesforce, the follow-up summary and transcript on it as internal comments,
// both sessions found by the Case id.
both_databases!(
    a_second_escalation_joins_the_open_case,
    |db: Db| async move {
        let app = spawn_app_with(db, |c| c.case.append_to_open_case = true).await;
        let (first, case_id) = escalate(&app, "join-1").await;
        let (second, joined_case) = escalate(&app, "join-2").await;
        assert_eq!(joined_case, case_id);
        assert_eq!(app.emulator.records("Case").len(), 1);
        let store = &app.gateway.state.store;
        let session = store.session(&second).await.unwrap().unwrap();
        assert_eq!(session.joined_session_id.as_deref(), Some(first.as_str()));
        assert!(
            app.event_kinds(&second)
                .await
                .contains(&"case.joined".to_string())
        );

        notes_written(&app, &second).await;
        let follow_up: Vec<(String, bool)> = app
            .soql(&format!(
                "SELECT CommentBody, IsPublished FROM CaseComment WHERE ParentId = '{case_id}' ORDER BY CreatedDate"
            ))
            .await
            .iter()
            .map(|c| {
                (
                    c["CommentBody"].as_str().unwrap().to_string(),
                    c["IsPublished"].as_bool().unwrap(),
                )
            })
            .filter(|(body, _)| body.contains(&format!("Follow-up escalation {second}")))
            .collect();
        assert_eq!(follow_up.len(), 1, "{follow_up:?}");
        assert!(!follow_up[0].1, "internal");
        assert!(
            follow_up[0]
                .0
                .contains("Summary:\nCustomer's parcel is two weeks late")
        );
        assert!(follow_up[0].0.contains("Transcript:\n"));

        let (status, found) = app
            .get(&format!("/v1/sessions?id={case_id}"), Some(&app.read_token))
            .await;
        assert_eq!(status, 200, "{found}");
        let mut ids: Vec<&str> = found["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        ids.sort();
        let mut expected = vec![first.as_str(), second.as_str()];
        expected.sort();
        assert_eq!(ids, expected);
        app.gateway.stop().await;
    }
);

// Once the earlier Case is closed, the next escalation gets a Case of its own.
both_databases!(
    after_the_case_is_closed_a_new_case_is_created,
    |db: Db| async move {
        let app = spawn_app_with(db, |c| c.case.append_to_open_case = true).await;
        let (_, case_id) = escalate(&app, "closed-1").await;
        let id = salesforce::SalesforceId::parse(&case_id).unwrap();
        app.salesforce
            .update("Case", &id, &json!({"Status": "Closed"}))
            .await
            .expect("close the Case");
        let (second, new_case) = escalate(&app, "closed-2").await;
        assert_ne!(new_case, case_id);
        assert_eq!(app.emulator.records("Case").len(), 2);
        let session = app
            .gateway
            .state
            .store
            .session(&second)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session.joined_session_id, None);
        assert!(
            app.event_kinds(&second)
                .await
                .contains(&"case.created".to_string())
        );
        app.gateway.stop().await;
    }
);

// With the setting off, every escalation opens its own Case.
both_databases!(
    with_the_setting_off_every_escalation_gets_a_case,
    |db: Db| async move {
        let app = spawn_app_with(db, |c| c.case.append_to_open_case = false).await;
        let (_, first) = escalate(&app, "off-1").await;
        let (_, second) = escalate(&app, "off-2").await;
        assert_ne!(first, second);
        assert_eq!(app.emulator.records("Case").len(), 2);
        app.gateway.stop().await;
    }
);
