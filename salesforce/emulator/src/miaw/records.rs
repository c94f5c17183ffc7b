//! The `Conversation` and `MessagingSession` records behind the MIAW state, in the emulator's
//! record store, so SOQL finds them (`… WHERE Conversation.ConversationIdentifier = '…'`).
//! Lock order: the MIAW lock, then the store lock (the REST side never takes the MIAW lock).

use serde_json::Value;

use crate::schema::Record;
use crate::server::{AppState, lock};

fn blank(state: &AppState, object: &str, id: &str) -> Record {
    let now = crate::dml::now_string();
    let user = state
        .config
        .users
        .first()
        .map(|u| state.user_id(&u.username))
        .unwrap_or_default();
    let mut r = Record::new();
    if let Some(def) = lock(&state.store).schema.object(object) {
        for f in &def.fields {
            r.insert(f.name.clone(), f.default.clone().unwrap_or(Value::Null));
        }
    }
    r.insert("Id".into(), Value::String(id.to_string()));
    r.insert("IsDeleted".into(), Value::Bool(false));
    for f in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
        r.insert(f.into(), Value::String(now.clone()));
    }
    for f in ["CreatedById", "LastModifiedById"] {
        r.insert(f.into(), Value::String(user.clone()));
    }
    r
}

/// Creates the `Conversation` record; returns its id.
pub(crate) fn create_conversation(state: &AppState, identifier: &str) -> String {
    let id = lock(&state.store).mint_id("Conversation");
    let mut r = blank(state, "Conversation", &id);
    r.insert(
        "ConversationIdentifier".into(),
        Value::String(identifier.to_string()),
    );
    lock(&state.store).insert("Conversation", r);
    id
}

/// Creates a `Waiting` `MessagingSession` of the conversation record; returns its id.
pub(crate) fn create_session(state: &AppState, conversation_record: &str) -> String {
    let id = lock(&state.store).mint_id("MessagingSession");
    let mut r = blank(state, "MessagingSession", &id);
    let text = |s: &str| Value::String(s.to_string());
    r.insert("ConversationId".into(), text(conversation_record));
    r.insert("Status".into(), text("Waiting"));
    r.insert("Origin".into(), text("InboundInitiated"));
    r.insert("AgentType".into(), text("Agent"));
    r.insert("StartTime".into(), text(&crate::dml::now_string()));
    r.insert("SessionKey".into(), text(&uuid::Uuid::new_v4().to_string()));
    lock(&state.store).insert("MessagingSession", r);
    id
}

/// Sets a session's `Status` (`Waiting|Active|Ended`); `Ended` also sets `EndTime` and
/// `EndedByType` (`EndUser|Agent`).
pub(crate) fn set_session_status(
    state: &AppState,
    session_id: &str,
    status: &str,
    ended_by: Option<&str>,
) {
    let now = crate::dml::now_string();
    let mut store = lock(&state.store);
    if let Some(r) = store.get_mut("MessagingSession", session_id) {
        r.insert("Status".into(), Value::String(status.to_string()));
        if status == "Ended" {
            r.insert("EndTime".into(), Value::String(now.clone()));
            r.insert(
                "EndedByType".into(),
                ended_by.map_or(Value::Null, |b| Value::String(b.to_string())),
            );
        }
        r.insert("LastModifiedDate".into(), Value::String(now.clone()));
        r.insert("SystemModstamp".into(), Value::String(now));
    }
}
