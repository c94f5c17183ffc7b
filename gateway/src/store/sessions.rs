//! Sessions and their event timeline.

use chrono::{DateTime, Utc};
use sea_orm::ExprTrait;
use sea_orm::sea_query::{Expr, Order};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, SqlErr, TransactionTrait,
};
use serde_json::Value;

use super::entities::{event, job, session};
use super::{Store, now_ms};
use crate::escalation::mapper;
use crate::escalation::request::{Escalation, phone_e164};

/// The outcome of accepting an escalation.
#[derive(Debug)]
pub enum Accepted {
    /// Stored now, with its job.
    New(session::Model),
    /// The session id was already there with the same request body.
    Same(session::Model),
    /// The session id was already there with a different body.
    Conflict,
    /// Another session's id differs from this one only in letter case. Salesforce
    /// matches external ids without regard to case, so both would write one Case.
    CaseInsensitiveConflict,
}

impl Store {
    /// Stores the session, its first events (`accepted`, then `extra_events` in order) and its
    /// job in one transaction, so that an accepted escalation is durable before the caller
    /// hears 202.
    pub async fn accept_escalation(
        &self,
        escalation: &Escalation,
        route: &str,
        job_kind: &str,
        max_attempts: u32,
        extra_events: impl IntoIterator<Item = (&'static str, Value)>,
        live: Option<&super::NewLive>,
    ) -> Result<Accepted, DbErr> {
        let now = Utc::now();
        let conversation = &escalation.payload.conversation;
        let payload = serde_json::to_string(&escalation.payload)
            .map_err(|e| DbErr::Custom(format!("payload does not serialize: {e}")))?;
        let row = session::ActiveModel {
            id: Set(escalation.session_id.to_string()),
            channel: Set(escalation.channel.to_string()),
            route: Set(route.to_string()),
            status: Set("accepted".into()),
            customer_name: Set(conversation.customer.name.clone()),
            customer_email: Set(conversation
                .customer
                .email
                .as_ref()
                .map(|e| e.as_str().to_lowercase())),
            customer_phone: Set(conversation.customer.phone.clone()),
            customer_phone_e164: Set(conversation.customer.phone.as_deref().and_then(phone_e164)),
            id_folded: Set(Some(folded(escalation.session_id.as_str()))),
            reply_token: Set(None),
            joined_session_id: Set(None),
            customer_last_message_at: Set(last_customer_turn_ms(conversation, now)),
            language: Set(conversation.language.clone()),
            priority: Set(escalation.payload.priority.as_str().into()),
            subject: Set(conversation.subject.clone()),
            request_hash: Set(escalation.request_hash.clone()),
            payload: Set(payload),
            salesforce_case_id: Set(None),
            salesforce_case_id15: Set(None),
            salesforce_case_number: Set(None),
            salesforce_miaw_session_id: Set(live.map(|l| l.conversation_id.clone())),
            salesforce_messaging_session_id: Set(None),
            comments_written: Set(0),
            salesforce_calls: Set(0),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };

        let txn = self.db.begin().await?;
        match row.insert(&txn).await {
            Ok(model) => {
                event_row(
                    &model.id,
                    "accepted",
                    serde_json::json!({
                        "channel": model.channel,
                        "route": route,
                        "turns": conversation.turns.len(),
                    }),
                )
                .insert(&txn)
                .await?;
                for (kind, data) in extra_events {
                    event_row(&model.id, kind, data).insert(&txn).await?;
                }
                for omitted in mapper::omitted_fields(&escalation.payload) {
                    event_row(&model.id, "case.field_omitted", omitted)
                        .insert(&txn)
                        .await?;
                }
                if let Some(live) = live {
                    super::live::insert_live_session(&txn, &model.id, live).await?;
                    let open = crate::jobs::JobKind::OpenConversation {
                        session_id: model.id.clone(),
                    };
                    super::jobs::insert_job(&txn, &open, &model.id, max_attempts).await?;
                } else {
                    let t = now_ms();
                    job::ActiveModel {
                        kind: Set(job_kind.into()),
                        session_id: Set(model.id.clone()),
                        state: Set("queued".into()),
                        attempts: Set(0),
                        max_attempts: Set(max_attempts as i32),
                        run_at: Set(t),
                        lease_until: Set(None),
                        locked_by: Set(None),
                        last_error: Set(None),
                        created_at: Set(t),
                        updated_at: Set(t),
                        ..Default::default()
                    }
                    .insert(&txn)
                    .await?;
                }
                txn.commit().await?;
                Ok(Accepted::New(model))
            }
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                txn.rollback().await?;
                // Either this id is taken, or (the unique `id_folded`) another id
                // equal to it ignoring case is.
                let Some(existing) = self.session(escalation.session_id.as_str()).await? else {
                    return Ok(Accepted::CaseInsensitiveConflict);
                };
                if existing.request_hash == escalation.request_hash {
                    Ok(Accepted::Same(existing))
                } else {
                    Ok(Accepted::Conflict)
                }
            }
            Err(e) => Err(e),
        }
    }

    pub async fn session(&self, id: &str) -> Result<Option<session::Model>, DbErr> {
        session::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
    }

    /// Sessions matching any id (the first 100, newest first); see
    /// [`Store::find_sessions_page`].
    pub async fn find_sessions(&self, any_id: &str) -> Result<Vec<session::Model>, DbErr> {
        self.find_sessions_page(any_id, None, 100).await
    }

    /// Sessions matching any id: session id, Case id (15 or 18 chars), CaseNumber,
    /// MIAW conversation id, MessagingSession id, customer email (ignoring case)
    /// or phone (any punctuation of the same E.164 number, or exactly the text
    /// sent when it has no E.164 form). Newest first, `limit` after the
    /// `(created_at, id)` of the previous page's last row.
    pub async fn find_sessions_page(
        &self,
        any_id: &str,
        after: Option<(DateTime<Utc>, &str)>,
        limit: u64,
    ) -> Result<Vec<session::Model>, DbErr> {
        let needle = any_id.trim();
        if needle.is_empty() {
            return Ok(Vec::new());
        }
        let mut condition = Condition::any()
            .add(session::Column::Id.eq(needle))
            .add(session::Column::SalesforceCaseNumber.eq(needle))
            .add(session::Column::SalesforceMiawSessionId.eq(needle))
            // Conversation ids are lowercase UUIDs; people paste them in any case.
            .add(session::Column::SalesforceMiawSessionId.eq(needle.to_lowercase()))
            .add(session::Column::CustomerEmail.eq(needle.to_lowercase()))
            .add(session::Column::CustomerPhone.eq(needle));
        if let Some(e164) = phone_e164(needle) {
            condition = condition.add(session::Column::CustomerPhoneE164.eq(e164));
        }
        if let Ok(id) = salesforce::SalesforceId::parse_case_insensitive(needle) {
            // An 18-char id matches in any letter case (its suffix restores the case);
            // a 15-char id is case-sensitive.
            condition = condition
                .add(session::Column::SalesforceCaseId15.eq(id.to_15()))
                .add(session::Column::SalesforceMessagingSessionId.eq(id.as_str()));
        }
        let mut query = session::Entity::find().filter(condition);
        if let Some((created_at, id)) = after {
            query = query.filter(
                Condition::any()
                    .add(session::Column::CreatedAt.lt(created_at))
                    .add(
                        Condition::all()
                            .add(session::Column::CreatedAt.eq(created_at))
                            .add(session::Column::Id.lt(id)),
                    ),
            );
        }
        query
            .order_by(session::Column::CreatedAt, Order::Desc)
            .order_by(session::Column::Id, Order::Desc)
            .limit(limit)
            .all(&self.db)
            .await
    }

    /// A session's whole timeline, oldest first.
    pub async fn events(&self, session_id: &str) -> Result<Vec<event::Model>, DbErr> {
        event::Entity::find()
            .filter(event::Column::SessionId.eq(session_id))
            .order_by(event::Column::Id, Order::Asc)
            .all(&self.db)
            .await
    }

    /// Up to `limit` events of a session after event `after_id`, oldest first.
    pub async fn events_page(
        &self,
        session_id: &str,
        after_id: Option<i64>,
        limit: u64,
    ) -> Result<Vec<event::Model>, DbErr> {
        let mut query = event::Entity::find().filter(event::Column::SessionId.eq(session_id));
        if let Some(after) = after_id {
            query = query.filter(event::Column::Id.gt(after));
        }
        query
            .order_by(event::Column::Id, Order::Asc)
            .limit(limit)
            .all(&self.db)
            .await
    }

    pub async fn add_event(&self, session_id: &str, kind: &str, data: Value) -> Result<(), DbErr> {
        event_row(session_id, kind, data)
            .insert(&self.db)
            .await
            .map(|_| ())
    }

    /// Records the Case on the session, with its event, in one transaction.
    pub async fn record_case(
        &self,
        session_id: &str,
        case_id: &salesforce::SalesforceId,
        case_number: Option<&str>,
        comments_written: usize,
        salesforce_calls: u64,
        event_data: Value,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        session::Entity::update_many()
            .col_expr(session::Column::Status, Expr::value("escalated"))
            .col_expr(
                session::Column::SalesforceCaseId,
                Expr::value(case_id.as_str()),
            )
            .col_expr(
                session::Column::SalesforceCaseId15,
                Expr::value(case_id.to_15()),
            )
            .col_expr(
                session::Column::SalesforceCaseNumber,
                Expr::value(case_number.map(str::to_string)),
            )
            .col_expr(
                session::Column::CommentsWritten,
                Expr::value(comments_written as i32),
            )
            .col_expr(
                session::Column::SalesforceCalls,
                Expr::col(session::Column::SalesforceCalls).add(salesforce_calls as i32),
            )
            .col_expr(
                session::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .col_expr(session::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(session::Column::Id.eq(session_id))
            .exec(&txn)
            .await?;
        event_row(session_id, "case.created", event_data)
            .insert(&txn)
            .await?;
        txn.commit().await
    }

    /// Adds calls spent by an attempt that did not finish, and the error seen.
    pub async fn record_attempt_failure(
        &self,
        session_id: &str,
        salesforce_calls: u64,
        error: &str,
        failed: bool,
        event_kind: &str,
        event_data: Value,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        let mut update = session::Entity::update_many()
            .col_expr(
                session::Column::SalesforceCalls,
                Expr::col(session::Column::SalesforceCalls).add(salesforce_calls as i32),
            )
            .col_expr(session::Column::LastError, Expr::value(error))
            .col_expr(session::Column::UpdatedAt, Expr::value(Utc::now()));
        if failed {
            update = update.col_expr(session::Column::Status, Expr::value("failed"));
        }
        update
            .filter(session::Column::Id.eq(session_id))
            .exec(&txn)
            .await?;
        event_row(session_id, event_kind, event_data)
            .insert(&txn)
            .await?;
        txn.commit().await
    }

    /// Counts sessions by status (for the demo and benchmarks).
    pub async fn count_sessions_with_status(&self, status: &str) -> Result<u64, DbErr> {
        use sea_orm::PaginatorTrait;
        session::Entity::find()
            .filter(session::Column::Status.eq(status))
            .count(&self.db)
            .await
    }
}

/// The session id as Salesforce compares external ids: without regard to case
/// (session ids are ASCII).
/// When the customer last wrote, as the escalation tells it: the newest customer turn's time
/// (never later than `now`), in epoch milliseconds.
fn last_customer_turn_ms(
    conversation: &channels::Conversation,
    now: chrono::DateTime<Utc>,
) -> Option<i64> {
    conversation
        .turns
        .iter()
        .filter(|turn| turn.role == channels::Role::Customer)
        .map(|turn| Ord::min(turn.at, now).timestamp_millis())
        .max()
}

pub fn folded(session_id: &str) -> String {
    session_id.to_ascii_lowercase()
}

fn event_row(session_id: &str, kind: &str, data: Value) -> event::ActiveModel {
    event::ActiveModel {
        session_id: Set(session_id.to_string()),
        at: Set(Utc::now()),
        kind: Set(kind.to_string()),
        data: Set(data.to_string()),
        ..Default::default()
    }
}

/// Marks a session as waiting again after an operator retried its dead job.
pub(super) async fn requeue_session(
    txn: &sea_orm::DatabaseTransaction,
    session_id: &str,
    job_id: i64,
) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::Status, Expr::value("accepted"))
        .col_expr(session::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(session::Column::Id.eq(session_id))
        .exec(txn)
        .await?;
    event_row(
        session_id,
        "job.retried",
        serde_json::json!({"job_id": job_id}),
    )
    .insert(txn)
    .await
    .map(|_| ())
}
