//! The outbox: every message to a customer is a `deliveries` row, written with
//! the job that sends it in one transaction, and moved through
//! queued → sending → sent | failed with its attempts and the provider's id.

use sea_orm::ExprTrait;
use sea_orm::sea_query::{Expr, OnConflict, Order};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::Value;

use super::entities::{delivery, event};
use super::{Store, now_ms};
use crate::jobs::JobKind;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its job.
    Queued,
    /// An attempt is sending it (or died while sending: outcome unknown).
    Sending,
    Sent,
    /// Visibly failed: refused for good, or given up on after the last attempt.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Queued,
            DeliveryState::Sending,
            DeliveryState::Sent,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

/// A message to put in the outbox.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: String,
    pub session_id: String,
    pub channel: String,
    pub kind: channels::OutboundKind,
    pub text: String,
    pub sender_name: Option<String>,
    pub target: channels::ReplyTarget,
}

impl Store {
    /// Writes the delivery, its `delivery.queued` event and its `DeliverMessage`
    /// job in one transaction. A delivery id that already exists writes nothing
    /// and returns `false`: enqueueing is idempotent, so a producer that runs
    /// again (a retried job) never sends a message twice.
    pub async fn enqueue_delivery(
        &self,
        new: &NewDelivery,
        max_attempts: u32,
    ) -> Result<bool, DbErr> {
        let txn = self.db.begin().await?;
        let inserted = enqueue_delivery_in(&txn, new, max_attempts).await?;
        txn.commit().await?;
        Ok(inserted)
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<delivery::Model>, DbErr> {
        delivery::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
    }

    /// A session's deliveries, oldest first.
    pub async fn deliveries_for_session(
        &self,
        session_id: &str,
    ) -> Result<Vec<delivery::Model>, DbErr> {
        delivery::Entity::find()
            .filter(delivery::Column::SessionId.eq(session_id))
            .order_by(delivery::Column::CreatedAt, Order::Asc)
            .order_by(delivery::Column::Id, Order::Asc)
            .all(&self.db)
            .await
    }

    /// The newest `limit` deliveries of a session, returned oldest first (the session view).
    pub async fn latest_deliveries(
        &self,
        session_id: &str,
        limit: u64,
    ) -> Result<Vec<delivery::Model>, DbErr> {
        let mut rows = delivery::Entity::find()
            .filter(delivery::Column::SessionId.eq(session_id))
            .order_by(delivery::Column::CreatedAt, Order::Desc)
            .order_by(delivery::Column::Id, Order::Desc)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.reverse();
        Ok(rows)
    }

    /// Up to `limit` deliveries of a session after `(created_at, id)`, oldest first.
    pub async fn deliveries_page(
        &self,
        session_id: &str,
        after: Option<(i64, &str)>,
        limit: u64,
    ) -> Result<Vec<delivery::Model>, DbErr> {
        let mut query = delivery::Entity::find().filter(delivery::Column::SessionId.eq(session_id));
        if let Some((at, id)) = after {
            query = query.filter(
                Condition::any()
                    .add(delivery::Column::CreatedAt.gt(at))
                    .add(
                        Condition::all()
                            .add(delivery::Column::CreatedAt.eq(at))
                            .add(delivery::Column::Id.gt(id)),
                    ),
            );
        }
        query
            .order_by(delivery::Column::CreatedAt, Order::Asc)
            .order_by(delivery::Column::Id, Order::Asc)
            .limit(limit)
            .all(&self.db)
            .await
    }

    /// The state of the oldest delivery of the same session written before
    /// `row` that is not settled (`queued` or `sending`), if any.
    pub async fn earlier_unsettled_delivery(
        &self,
        row: &delivery::Model,
    ) -> Result<Option<DeliveryState>, DbErr> {
        let earlier = delivery::Entity::find()
            .filter(delivery::Column::SessionId.eq(row.session_id.as_str()))
            .filter(
                Condition::any()
                    .add(delivery::Column::CreatedAt.lt(row.created_at))
                    .add(
                        Condition::all()
                            .add(delivery::Column::CreatedAt.eq(row.created_at))
                            .add(delivery::Column::Id.lt(row.id.as_str())),
                    ),
            )
            .filter(delivery::Column::State.is_in([
                DeliveryState::Queued.as_str(),
                DeliveryState::Sending.as_str(),
            ]))
            .order_by(delivery::Column::CreatedAt, Order::Asc)
            .order_by(delivery::Column::Id, Order::Asc)
            .one(&self.db)
            .await?;
        Ok(earlier.and_then(|d| DeliveryState::parse(&d.state)))
    }

    /// Marks the delivery as being sent and counts the attempt. Returns the
    /// attempt number.
    pub async fn start_delivery_attempt(&self, id: &str) -> Result<i32, DbErr> {
        delivery::Entity::update_many()
            .col_expr(
                delivery::Column::State,
                Expr::value(DeliveryState::Sending.as_str()),
            )
            .col_expr(
                delivery::Column::Attempts,
                Expr::col(delivery::Column::Attempts).add(1),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(delivery::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        let row = self
            .delivery(id)
            .await?
            .ok_or_else(|| DbErr::Custom("delivery vanished".into()))?;
        Ok(row.attempts)
    }

    /// Records how a delivery attempt ended, with an event on its session when
    /// `event` is given, in one transaction.
    pub async fn finish_delivery_attempt(
        &self,
        id: &str,
        state: DeliveryState,
        provider_id: Option<&str>,
        error: Option<&str>,
        event: Option<(&str, &str, Value)>,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        finish_delivery_attempt_in(&txn, id, state, provider_id, error, event).await?;
        txn.commit().await
    }
}

/// [`Store::finish_delivery_attempt`] inside the caller's transaction.
pub(super) async fn finish_delivery_attempt_in(
    txn: &DatabaseTransaction,
    id: &str,
    state: DeliveryState,
    provider_id: Option<&str>,
    error: Option<&str>,
    event: Option<(&str, &str, Value)>,
) -> Result<(), DbErr> {
    let mut update = delivery::Entity::update_many()
        .col_expr(delivery::Column::State, Expr::value(state.as_str()))
        .col_expr(
            delivery::Column::LastError,
            Expr::value(error.map(str::to_string)),
        )
        .col_expr(delivery::Column::UpdatedAt, Expr::value(now_ms()));
    if let Some(provider_id) = provider_id {
        update = update.col_expr(delivery::Column::ProviderId, Expr::value(provider_id));
    }
    update.filter(delivery::Column::Id.eq(id)).exec(txn).await?;
    if let Some((session_id, kind, data)) = event {
        event_row(session_id, kind, data).insert(txn).await?;
    }
    Ok(())
}

/// [`Store::enqueue_delivery`] inside the caller's transaction.
pub(super) async fn enqueue_delivery_in(
    txn: &DatabaseTransaction,
    new: &NewDelivery,
    max_attempts: u32,
) -> Result<bool, DbErr> {
    let target = serde_json::to_string(&new.target)
        .map_err(|e| DbErr::Custom(format!("reply target does not serialize: {e}")))?;
    // A session's deliveries go out in (created_at, id) order, and ids are
    // hashes: keep created_at increasing per session, so deliveries written in
    // the same millisecond (or after the clock stepped back) keep the order
    // they were written in.
    let last: Option<i64> = delivery::Entity::find()
        .select_only()
        .column_as(delivery::Column::CreatedAt.max(), "last")
        .filter(delivery::Column::SessionId.eq(new.session_id.as_str()))
        .into_tuple::<Option<i64>>()
        .one(txn)
        .await?
        .flatten();
    let t = Ord::max(now_ms(), last.map_or(i64::MIN, |l| l + 1));
    let inserted = delivery::Entity::insert(delivery::ActiveModel {
        id: Set(new.id.clone()),
        session_id: Set(new.session_id.clone()),
        channel: Set(new.channel.clone()),
        kind: Set(new.kind.as_str().into()),
        text: Set(new.text.clone()),
        sender_name: Set(new.sender_name.clone()),
        target: Set(target),
        state: Set(DeliveryState::Queued.as_str().into()),
        attempts: Set(0),
        provider_id: Set(None),
        last_error: Set(None),
        created_at: Set(t),
        updated_at: Set(t),
        provider_status: Set(None),
        provider_status_at: Set(None),
        provider_error_code: Set(None),
    })
    .on_conflict(
        OnConflict::column(delivery::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    if inserted == 0 {
        return Ok(false);
    }
    event_row(
        &new.session_id,
        "delivery.queued",
        serde_json::json!({
            "delivery_id": new.id,
            "channel": new.channel,
            "type": new.kind.as_str(),
        }),
    )
    .insert(txn)
    .await?;
    let job = JobKind::DeliverMessage {
        delivery_id: new.id.clone(),
    };
    super::jobs::insert_job(txn, &job, &new.session_id, max_attempts).await?;
    Ok(true)
}

pub(super) fn event_row(session_id: &str, kind: &str, data: Value) -> event::ActiveModel {
    event::ActiveModel {
        session_id: Set(session_id.to_string()),
        at: Set(chrono::Utc::now()),
        kind: Set(kind.to_string()),
        data: Set(data.to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use channels::{OutboundKind, ReplyTarget};

    use super::*;

    fn delivery(id: &str) -> NewDelivery {
        NewDelivery {
            id: id.into(),
            session_id: "s-1".into(),
            channel: "chat".into(),
            kind: OutboundKind::AgentMessage,
            text: id.into(),
            sender_name: None,
            target: ReplyTarget::Webhook {
                url: "https://ai.example.com/hook".into(),
            },
        }
    }

    /// Deliveries keep the order they were written in, even when their ids
    /// (hashes) sort the other way and the clock gives them no later time: the
    /// first row here is stamped a minute ahead, as if written by a replica
    /// whose clock runs fast, or in the same millisecond.
    #[tokio::test]
    async fn deliveries_keep_their_write_order_whatever_their_ids_and_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("o.db").display());
        let store = Store::open(&url).await.unwrap();
        assert!(store.enqueue_delivery(&delivery("dlv_b"), 5).await.unwrap());
        let ahead = now_ms() + 60_000;
        delivery::Entity::update_many()
            .col_expr(delivery::Column::CreatedAt, Expr::value(ahead))
            .filter(delivery::Column::Id.eq("dlv_b"))
            .exec(store.connection())
            .await
            .unwrap();
        assert!(store.enqueue_delivery(&delivery("dlv_a"), 5).await.unwrap());

        let order: Vec<String> = store
            .deliveries_for_session("s-1")
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(order, ["dlv_b", "dlv_a"]);
        let first = store.delivery("dlv_b").await.unwrap().unwrap();
        let second = store.delivery("dlv_a").await.unwrap().unwrap();
        assert_eq!(second.created_at, ahead + 1);
        assert_eq!(
            store.earlier_unsettled_delivery(&first).await.unwrap(),
            None
        );
        assert_eq!(
            store.earlier_unsettled_delivery(&second).await.unwrap(),
            Some(DeliveryState::Queued),
            "the second waits for the first"
        );
    }
}
