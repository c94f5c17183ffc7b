//! A provider's report on a message we sent (Twilio status callbacks, WhatsApp `statuses[]`):
//! the delivery's `provider_status` moves forward only; a report that the message did not
//! reach the customer also fails the delivery, visibly.

use channels::{ProviderStatus, StatusUpdate};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use serde_json::json;

use super::outbox::{DeliveryState, event_row};
use super::{Store, delivery, now_ms};

/// The longest provider error code stored (`deliveries.provider_error_code`).
const ERROR_CODE_MAX_CHARS: usize = 32;

/// `provider_status` as stored, read back (`None`: none yet, or a name this version does not
/// know, which any report may replace).
fn parse_status(name: Option<&str>) -> Option<ProviderStatus> {
    use ProviderStatus::*;
    let name = name?;
    [Queued, Sent, Delivered, Read, Undelivered, Failed]
        .into_iter()
        .find(|s| s.as_str() == name)
}

/// The provider's error code as stored: at most 32 printable characters.
fn error_code(code: Option<&str>) -> Option<String> {
    let code: String = code?
        .chars()
        .filter(|c| !c.is_control())
        .take(ERROR_CODE_MAX_CHARS)
        .collect();
    (!code.is_empty()).then_some(code)
}

impl Store {
    /// Applies one status report received on `channel`: the delivery named by its
    /// `delivery_id`, else the one whose provider id it reports — only a delivery of that
    /// channel. The status only moves forward (`queued` < `sent` < `delivered` < `read` <
    /// `undelivered` < `failed`); `undelivered` and `failed` also fail the delivery with
    /// `provider reported <status> (<code>)` and a `delivery.failed` event, others add a
    /// `delivery.status` event. `true` when the delivery changed.
    pub async fn apply_provider_status(
        &self,
        channel: &str,
        update: &StatusUpdate,
    ) -> Result<bool, DbErr> {
        let txn = self.db.begin().await?;
        let by_id = match &update.delivery_id {
            Some(id) => {
                delivery::Entity::find_by_id(id.clone())
                    .filter(delivery::Column::Channel.eq(channel))
                    .one(&txn)
                    .await?
            }
            None => None,
        };
        let found = match by_id {
            Some(row) => Some(row),
            None => {
                delivery::Entity::find()
                    .filter(delivery::Column::Channel.eq(channel))
                    .filter(delivery::Column::ProviderId.eq(update.provider_message_id.as_str()))
                    .order_by_desc(delivery::Column::CreatedAt)
                    .one(&txn)
                    .await?
            }
        };
        let Some(row) = found else {
            txn.rollback().await?;
            return Ok(false);
        };
        let current = parse_status(row.provider_status.as_deref());
        if current.is_some_and(|c| c >= update.status) {
            txn.rollback().await?;
            return Ok(false);
        }
        let code = error_code(update.error_code.as_deref());
        let mut change = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::ProviderStatus,
                Expr::value(update.status.as_str()),
            )
            .col_expr(
                delivery::Column::ProviderStatusAt,
                Expr::value(update.at.timestamp_millis()),
            )
            .col_expr(
                delivery::Column::ProviderErrorCode,
                Expr::value(code.clone()),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(delivery::Column::Id.eq(row.id.as_str()));
        // Compare-and-set: a concurrent report that moved it further wins.
        change = match &row.provider_status {
            Some(status) => change.filter(delivery::Column::ProviderStatus.eq(status.as_str())),
            None => change.filter(delivery::Column::ProviderStatus.is_null()),
        };
        let failed = update.status.is_failure();
        let error = failed.then(|| match &code {
            Some(code) => format!("provider reported {} ({code})", update.status.as_str()),
            None => format!("provider reported {}", update.status.as_str()),
        });
        if let Some(error) = &error {
            change = change
                .col_expr(
                    delivery::Column::State,
                    Expr::value(DeliveryState::Failed.as_str()),
                )
                .col_expr(delivery::Column::LastError, Expr::value(error.as_str()));
        }
        if change.exec(&txn).await?.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        let (kind, data) = match &error {
            Some(error) => (
                "delivery.failed",
                json!({"delivery_id": row.id, "error": error, "provider_status": update.status.as_str()}),
            ),
            None => (
                "delivery.status",
                json!({"delivery_id": row.id, "provider_status": update.status.as_str()}),
            ),
        };
        event_row(&row.session_id, kind, data).insert(&txn).await?;
        txn.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use channels::{OutboundKind, ReplyTarget};
    use chrono::Utc;

    use super::*;
    use crate::store::NewDelivery;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
        (Store::open(&url).await.unwrap(), dir)
    }

    fn report(status: ProviderStatus, delivery_id: Option<&str>) -> StatusUpdate {
        StatusUpdate {
            provider_message_id: "SM1".into(),
            delivery_id: delivery_id.map(str::to_string),
            status,
            error_code: status.is_failure().then(|| "30003".to_string()),
            at: Utc::now(),
        }
    }

    async fn sent(store: &Store, id: &str, channel: &str) {
        store
            .enqueue_delivery(
                &NewDelivery {
                    id: id.into(),
                    session_id: "s-1".into(),
                    channel: channel.into(),
                    kind: OutboundKind::AgentMessage,
                    text: "hello".into(),
                    sender_name: None,
                    target: ReplyTarget::Phone {
                        number: "+15550100001".into(),
                    },
                },
                5,
            )
            .await
            .unwrap();
        store
            .finish_delivery_attempt(id, DeliveryState::Sent, Some("SM1"), None, None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn statuses_move_forward_and_failures_fail_the_delivery() {
        let (store, _dir) = store().await;
        sent(&store, "dlv_a", "sms").await;
        use ProviderStatus::*;
        // By provider id, then by delivery id; a report on another channel finds nothing.
        assert!(
            !store
                .apply_provider_status("whatsapp", &report(Sent, None))
                .await
                .unwrap()
        );
        assert!(
            store
                .apply_provider_status("sms", &report(Sent, None))
                .await
                .unwrap()
        );
        assert!(
            store
                .apply_provider_status("sms", &report(Delivered, Some("dlv_a")))
                .await
                .unwrap()
        );
        // Late or repeated reports do not move it back.
        for late in [Queued, Sent, Delivered] {
            assert!(
                !store
                    .apply_provider_status("sms", &report(late, Some("dlv_a")))
                    .await
                    .unwrap()
            );
        }
        let row = store.delivery("dlv_a").await.unwrap().unwrap();
        assert_eq!(
            (row.provider_status.as_deref(), row.state.as_str()),
            (Some("delivered"), "sent")
        );
        assert!(
            store
                .apply_provider_status("sms", &report(Undelivered, Some("dlv_a")))
                .await
                .unwrap()
        );
        let row = store.delivery("dlv_a").await.unwrap().unwrap();
        assert_eq!(row.state, "failed");
        assert_eq!(row.provider_status.as_deref(), Some("undelivered"));
        assert_eq!(row.provider_error_code.as_deref(), Some("30003"));
        assert_eq!(
            row.last_error.as_deref(),
            Some("provider reported undelivered (30003)")
        );
        let kinds: Vec<String> = store
            .events("s-1")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|k| k.as_str() == "delivery.status")
                .count(),
            2
        );
        assert_eq!(kinds.last().map(String::as_str), Some("delivery.failed"));
    }

    #[tokio::test]
    async fn unknown_deliveries_and_hostile_codes_are_handled() {
        let (store, _dir) = store().await;
        assert!(
            !store
                .apply_provider_status("sms", &report(ProviderStatus::Sent, Some("dlv_none")))
                .await
                .unwrap()
        );
        sent(&store, "dlv_b", "sms").await;
        let mut failed = report(ProviderStatus::Failed, Some("dlv_b"));
        failed.error_code = Some(format!("\u{7}{}", "9".repeat(100)));
        assert!(store.apply_provider_status("sms", &failed).await.unwrap());
        let row = store.delivery("dlv_b").await.unwrap().unwrap();
        assert_eq!(row.provider_error_code.unwrap(), "9".repeat(32));
        assert_eq!(parse_status(Some("bogus")), None);
    }
}
