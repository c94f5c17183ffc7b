//! The spine: an email escalation becomes a Case with its transcript, and the
//! session is found again by any id.

use std::time::Duration;

use handoff_tests::{Db, both_databases, spawn_app};
use serde_json::Value;

use crate::support::{escalation, reassemble, rendered, unique};

both_databases!(escalation_becomes_a_case, |db: Db| async move {
    let app = spawn_app(db).await;
    let session_id = unique("e2e");
    let body = escalation(&session_id, 12);
    let (status, accepted) = app.post_escalation(&body).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["id"], session_id.as_str());
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["route"], "case");

    let session = app
        .driver()
        .wait_escalated(&session_id, Duration::from_secs(30))
        .await
        .expect("Case created");
    let case_id = session.salesforce_case_id.clone().expect("case id");
    assert_eq!(case_id.len(), 18);
    let case_number = session.salesforce_case_number.clone().expect("case number");

    // What Salesforce holds, read back with SOQL.
    let cases = app
        .soql(&format!(
            "SELECT Id, CaseNumber, Subject, Description, Case_From__c, Handoff_Session_Id__c, Origin, Priority, SuppliedEmail, SuppliedName, SuppliedPhone FROM Case WHERE Handoff_Session_Id__c = '{session_id}'"
        ))
        .await;
    assert_eq!(cases.len(), 1, "exactly one Case");
    let case = &cases[0];
    assert_eq!(case["Id"], case_id.as_str());
    assert_eq!(case["CaseNumber"], case_number.as_str());
    assert_eq!(case["Description"], body["summary"]);
    assert_eq!(case["Subject"], "Parcel is late");
    assert_eq!(case["Case_From__c"], "opencx");
    assert_eq!(case["Handoff_Session_Id__c"], session_id.as_str());
    assert_eq!(case["Origin"], "Email");
    assert_eq!(case["Priority"], "High");
    assert_eq!(
        case["SuppliedEmail"], "Ann.Example@example.com",
        "domain lower-cased, local part kept"
    );
    assert_eq!(case["SuppliedName"], "Ann Example");
    assert_eq!(case["SuppliedPhone"], "+14155550100");

    let comments = app
        .soql(&format!(
            "SELECT CommentBody, IsPublished FROM CaseComment WHERE ParentId = '{case_id}' ORDER BY CreatedDate"
        ))
        .await;
    assert!(!comments.is_empty());
    assert!(
        comments
            .iter()
            .all(|c| c["IsPublished"] == Value::Bool(false)),
        "transcript comments are internal"
    );
    let bodies: Vec<String> = comments
        .iter()
        .map(|c| c["CommentBody"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        reassemble(&bodies),
        rendered(body["transcript"].as_array().unwrap())
    );
    assert_eq!(session.comments_written as usize, bodies.len());
    assert_eq!(
        session.salesforce_calls, 1,
        "one composite call for a short transcript"
    );

    // Found again by every id.
    let driver = app.driver();
    let case15 = &case_id[..15];
    for any in [
        session_id.as_str(),
        case_id.as_str(),
        case15,
        case_number.as_str(),
        "ann.example@example.com",
        "ANN.EXAMPLE@example.com",
        "+14155550100",
    ] {
        let found = driver.find(any).await.expect("find");
        assert!(
            found.iter().any(|s| s.id == session_id),
            "not found by {any}"
        );
    }
    assert!(driver.find("no-such-id").await.unwrap().is_empty());

    // The timeline tells the story.
    let kinds = app.event_kinds(&session_id).await;
    assert_eq!(
        kinds,
        ["accepted", "case.attempt", "case.created"],
        "the timeline tells the story"
    );
});

both_databases!(
    long_transcript_lands_complete_in_order,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let session_id = unique("long");
        let body = escalation(&session_id, 300);
        assert_eq!(app.post_escalation(&body).await.0, 202);
        let session = app
            .driver()
            .wait_escalated(&session_id, Duration::from_secs(60))
            .await
            .expect("Case created");
        let case_id = session.salesforce_case_id.unwrap();
        let bodies = app.comment_bodies(&case_id).await;
        assert!(
            bodies.len() > 23,
            "a 300-turn transcript needs more than one call's worth of comments"
        );
        assert_eq!(
            reassemble(&bodies),
            rendered(body["transcript"].as_array().unwrap())
        );
        assert_eq!(session.comments_written as usize, bodies.len());
    }
);

both_databases!(raw_email_threads_become_cases, |db: Db| async move {
    let app = spawn_app(db).await;
    let run = unique("raw");
    let conversations = gateway::demo::demo_conversations(&run);
    for (label, body) in conversations
        .iter()
        .filter(|(_, b)| b.get("raw_email").is_some())
    {
        let (status, accepted) = app.post_escalation(body).await;
        assert_eq!(status, 202, "{label}: {accepted}");
        let id = body["session_id"].as_str().unwrap();
        let session = app
            .driver()
            .wait_escalated(id, Duration::from_secs(30))
            .await
            .expect(label);
        let case_id = session.salesforce_case_id.unwrap();
        let cases = app
            .soql(&format!(
                "SELECT Subject, SuppliedEmail FROM Case WHERE Id = '{case_id}'"
            ))
            .await;
        let comments = app
            .soql(&format!(
                "SELECT CommentBody FROM CaseComment WHERE ParentId = '{case_id}'"
            ))
            .await;
        let text: String = comments
            .iter()
            .map(|c| c["CommentBody"].as_str().unwrap())
            .collect();
        if label.contains("HTML") {
            assert_eq!(cases[0]["Subject"], "Colis endommagé");
            assert_eq!(cases[0]["SuppliedEmail"], "chloe@example.fr");
            assert!(text.contains("Mon colis est arrivé endommagé"), "{text}");
            assert!(!text.contains("<p>"), "HTML was converted to text");
        } else {
            assert_eq!(cases[0]["Subject"], "Invoice shows the wrong company name");
            assert!(
                text.contains("Customer: Hello, our invoice INV-2291"),
                "{text}"
            );
            assert!(
                text.contains("Bot: I can help. What is the new legal name?"),
                "{text}"
            );
            assert!(
                text.contains("Customer: It is Patel Analytics Pvt Ltd. Thanks!"),
                "{text}"
            );
            assert!(
                !text.contains("> I can help"),
                "quoted replies are stripped: {text}"
            );
        }
    }
});

both_databases!(
    messaging_channels_fall_back_to_a_case,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let id = unique("sms");
        let mut body = escalation(&id, 4);
        body["channel"] = serde_json::json!("sms");
        let (status, accepted) = app.post_escalation(&body).await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(accepted["route"], "case");
        let session = app
            .driver()
            .wait_escalated(&id, Duration::from_secs(30))
            .await
            .expect("Case created");
        let case_id = session.salesforce_case_id.unwrap();
        let cases = app
            .soql(&format!("SELECT Origin FROM Case WHERE Id = '{case_id}'"))
            .await;
        assert_eq!(cases[0]["Origin"], "SMS");
        let (_, events) = app
            .get(&format!("/v1/sessions/{id}/events"), Some(&app.read_token))
            .await;
        let fallback = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "route.fallback")
            .expect("fallback recorded");
        assert_eq!(fallback["data"]["preferred"], "messaging");
    }
);
