//! Internal notes the gateway writes on a session's Case: a customer's emailed
//! answer, a delivery Salesforce's rep should know failed, a follow-up
//! escalation. Each note is a `case_notes` row written with its
//! `write_case_note` job in one transaction; the job writes it to Salesforce
//! once (see `escalation/notes.rs`).

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use sha2::{Digest, Sha256};

use super::outbox::event_row;
use super::{Store, case_note, now_ms};
use crate::jobs::JobKind;

/// Attempts a `write_case_note` job gets (with the worker's backoff, about an
/// hour in all): a note waits for its session's Case to exist, then for
/// Salesforce.
pub const NOTE_MAX_ATTEMPTS: u32 = 15;

/// Where a note stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteState {
    Queued,
    Written,
    Failed,
}

impl NoteState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Written => "written",
            Self::Failed => "failed",
        }
    }
}

/// A stable note id for the note `purpose` of a session: producing the same
/// note twice (a retried job, a replayed webhook) writes it once.
pub fn case_note_id(session_id: &str, purpose: &str) -> String {
    let digest = Sha256::digest(format!("{session_id}\n{purpose}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("note_{hex}")
}

impl Store {
    /// Writes the note, its `case_note.queued` event and its `write_case_note`
    /// job in one transaction. A note id that already exists writes nothing and
    /// returns `false`.
    pub async fn enqueue_case_note(
        &self,
        session_id: &str,
        note_id: &str,
        kind: &str,
        body: &str,
    ) -> Result<bool, DbErr> {
        let txn = self.db.begin().await?;
        let inserted = enqueue_case_note_in(&txn, session_id, note_id, kind, body).await?;
        txn.commit().await?;
        Ok(inserted)
    }

    pub async fn case_note(&self, id: &str) -> Result<Option<case_note::Model>, DbErr> {
        case_note::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
    }

    /// A session's notes, oldest first.
    pub async fn case_notes_for_session(
        &self,
        session_id: &str,
    ) -> Result<Vec<case_note::Model>, DbErr> {
        use sea_orm::QueryOrder;
        case_note::Entity::find()
            .filter(case_note::Column::SessionId.eq(session_id))
            .order_by_asc(case_note::Column::CreatedAt)
            .order_by_asc(case_note::Column::Id)
            .all(&self.db)
            .await
    }

    /// Records how writing a note ended, with its session event.
    pub async fn finish_case_note(
        &self,
        note: &case_note::Model,
        state: NoteState,
        salesforce_id: Option<&str>,
        error: Option<&str>,
        event: (&str, serde_json::Value),
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        case_note::ActiveModel {
            id: Set(note.id.clone()),
            state: Set(state.as_str().into()),
            salesforce_id: Set(salesforce_id.map(str::to_string)),
            last_error: Set(error.map(str::to_string)),
            updated_at: Set(now_ms()),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        event_row(&note.session_id, event.0, event.1)
            .insert(&txn)
            .await?;
        txn.commit().await
    }
}

/// [`Store::enqueue_case_note`] inside the caller's transaction.
pub(crate) async fn enqueue_case_note_in<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    note_id: &str,
    kind: &str,
    body: &str,
) -> Result<bool, DbErr> {
    let t = now_ms();
    let inserted = case_note::Entity::insert(case_note::ActiveModel {
        id: Set(note_id.to_string()),
        session_id: Set(session_id.to_string()),
        kind: Set(kind.to_string()),
        body: Set(body.to_string()),
        state: Set(NoteState::Queued.as_str().into()),
        salesforce_id: Set(None),
        last_error: Set(None),
        created_at: Set(t),
        updated_at: Set(t),
    })
    .on_conflict(
        OnConflict::column(case_note::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if inserted == 0 {
        return Ok(false);
    }
    event_row(
        session_id,
        "case_note.queued",
        serde_json::json!({"note_id": note_id, "kind": kind}),
    )
    .insert(db)
    .await?;
    let job = JobKind::WriteCaseNote {
        note_id: note_id.to_string(),
    };
    super::jobs::insert_job(db, &job, session_id, NOTE_MAX_ATTEMPTS).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn note_ids_are_stable_and_distinct() {
        let a = super::case_note_id("s-1", "inbound:abc");
        assert_eq!(a, super::case_note_id("s-1", "inbound:abc"));
        assert_eq!(a.len(), 37);
        assert_ne!(a, super::case_note_id("S-1", "inbound:abc"));
        assert_ne!(a, super::case_note_id("s-1", "inbound:abd"));
    }
}
