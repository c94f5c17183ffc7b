//! Internal notes on a session's Case (`write_case_note`): written once, as
//! unpublished CaseComments, split under the 4,000-byte limit, and reconciled
//! when an attempt's answer was lost after Salesforce committed it.

use std::time::{Duration, Instant};

use gateway::store::{NoteState, case_note_id};
use handoff_tests::{Db, TestApp, both_databases, spawn_app};

use crate::support::{escalation, unique};

async fn escalated(app: &TestApp, prefix: &str) -> (String, String) {
    let session_id = unique(prefix);
    let (status, body) = app.post_escalation(&escalation(&session_id, 2)).await;
    assert_eq!(status, 202, "{body}");
    let session = app
        .driver()
        .wait_escalated(&session_id, Duration::from_secs(30))
        .await
        .expect("Case created");
    (session_id, session.salesforce_case_id.expect("case id"))
}

async fn wait_note(app: &TestApp, note_id: &str) -> gateway::store::case_note::Model {
    let store = &app.gateway.state.store;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let note = store.case_note(note_id).await.unwrap().expect("note row");
        if note.state != NoteState::Queued.as_str() {
            return note;
        }
        assert!(Instant::now() < deadline, "note never settled: {note:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn note_comments(app: &TestApp, case_id: &str, note_id: &str) -> Vec<(String, bool)> {
    app.soql(&format!(
        "SELECT CommentBody, IsPublished FROM CaseComment WHERE ParentId = '{case_id}' ORDER BY CreatedDate"
    ))
    .await
    .iter()
    .filter_map(|c| {
        let body = c["CommentBody"].as_str()?.to_string();
        body.contains(&format!("[{note_id}]"))
            .then(|| (body, c["IsPublished"].as_bool().unwrap()))
    })
    .collect()
}

// A note becomes one internal comment on the session's Case; producing it
// again writes nothing.
both_databases!(
    a_note_is_written_once_as_an_internal_comment,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let (session_id, case_id) = escalated(&app, "note").await;
        let store = &app.gateway.state.store;
        let note_id = case_note_id(&session_id, "test:1");
        let body = "Customer replied by email\n\nThanks, that fixed it.";
        assert!(
            store
                .enqueue_case_note(&session_id, &note_id, "inbound_email", body)
                .await
                .unwrap()
        );
        assert!(
            !store
                .enqueue_case_note(&session_id, &note_id, "inbound_email", body)
                .await
                .unwrap(),
            "the same note id is queued once"
        );
        let note = wait_note(&app, &note_id).await;
        assert_eq!(note.state, "written", "{note:?}");
        let comments = note_comments(&app, &case_id, &note_id).await;
        assert_eq!(comments.len(), 1, "{comments:?}");
        assert_eq!(
            comments[0].0,
            format!("Handoff note 1/1 [{note_id}]\n{body}")
        );
        assert!(!comments[0].1, "internal, never published");
        assert_eq!(note.salesforce_id.as_deref().map(str::len), Some(18));
        let kinds = app.event_kinds(&session_id).await;
        assert!(kinds.contains(&"case_note.queued".to_string()), "{kinds:?}");
        assert!(
            kinds.contains(&"case_note.written".to_string()),
            "{kinds:?}"
        );
    }
);

// A long note is split into labelled parts under 4,000 bytes. The first
// attempt's answer is lost after Salesforce committed it: the retry reads the
// Case's comments and writes nothing twice.
both_databases!(
    a_long_note_survives_a_lost_answer_without_duplicates,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let (session_id, case_id) = escalated(&app, "note-long").await;
        let store = &app.gateway.state.store;
        let note_id = case_note_id(&session_id, "test:long");
        let body = "Très long message. ".repeat(600);
        app.emulator.set_faults(sf_emulator::Faults {
            drop_next: 1,
            ..Default::default()
        });
        assert!(
            store
                .enqueue_case_note(&session_id, &note_id, "inbound_email", &body)
                .await
                .unwrap()
        );
        let note = wait_note(&app, &note_id).await;
        assert_eq!(note.state, "written", "{note:?}");
        let comments = note_comments(&app, &case_id, &note_id).await;
        assert!(comments.len() >= 3, "{}", comments.len());
        let mut joined = String::new();
        for (i, (text, published)) in comments.iter().enumerate() {
            assert!(text.len() <= 4_000);
            assert!(!published);
            assert!(
                text.starts_with(&format!("Handoff note {}/{} [", i + 1, comments.len())),
                "{text:.60}"
            );
            joined.push_str(text.split_once('\n').unwrap().1);
        }
        assert_eq!(joined, body, "every part exactly once, in order");
        let done = store.jobs_in_state("done").await.unwrap();
        let job = done
            .iter()
            .find(|j| j.kind == "write_case_note")
            .expect("the note's job");
        assert_eq!(job.attempts, 2, "the lost answer cost one attempt: {job:?}");
    }
);
