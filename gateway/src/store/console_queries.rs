//! Reads only the ops console needs: sessions by a provider's message id, the failed
//! outbox, live sessions still streaming, and a session's inbound messages and emails.
//! Every list is bounded by its caller's `limit`.

use sea_orm::sea_query::Order;
use sea_orm::{ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{
    INBOUND_SESSION_PREFIX, InboundMessageSummary, InboundSummary, LiveState, Store, delivery,
    email_message, inbound_email, inbound_message, live_session, session,
};

impl Store {
    /// The ids of sessions a provider's message id belongs to, exactly as given (provider ids
    /// are case-sensitive): a delivery's `provider_id` (an SMS sid, our email's Message-ID, …),
    /// a Message-ID of a session's email thread, an inbound message's provider id on any of
    /// `channels`, an inbound email's Message-ID. At most `limit` ids, without duplicates.
    pub async fn session_ids_by_provider_id(
        &self,
        provider_id: &str,
        channels: &[&str],
        limit: u64,
    ) -> Result<Vec<String>, DbErr> {
        let needle = provider_id.trim();
        if needle.is_empty() {
            return Ok(Vec::new());
        }
        // Message-IDs are stored without their angle brackets; people paste them with.
        let unbracketed = needle
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(needle);
        let forms = if unbracketed == needle {
            vec![needle.to_string()]
        } else {
            vec![needle.to_string(), unbracketed.to_string()]
        };
        let mut ids: Vec<String> = Vec::new();
        let mut add = |id: String| {
            if !id.starts_with(INBOUND_SESSION_PREFIX) && !ids.contains(&id) {
                ids.push(id);
            }
        };
        for d in delivery::Entity::find()
            .select_only()
            .column(delivery::Column::SessionId)
            .filter(delivery::Column::ProviderId.is_in(forms.clone()))
            .limit(limit)
            .into_tuple::<String>()
            .all(&self.db)
            .await?
        {
            add(d);
        }
        for t in email_message::Entity::find()
            .select_only()
            .column(email_message::Column::SessionId)
            .filter(email_message::Column::MessageId.is_in(forms.clone()))
            .limit(limit)
            .into_tuple::<String>()
            .all(&self.db)
            .await?
        {
            add(t);
        }
        // Inbound messages are keyed `<channel>:<provider message id>`: one key per channel.
        let keys: Vec<String> = channels
            .iter()
            .flat_map(|c| forms.iter().map(move |f| format!("{c}:{f}")))
            .collect();
        if !keys.is_empty() {
            for m in inbound_message::Entity::find()
                .select_only()
                .column(inbound_message::Column::SessionId)
                .filter(inbound_message::Column::Id.is_in(keys))
                .filter(inbound_message::Column::SessionId.is_not_null())
                .limit(limit)
                .into_tuple::<Option<String>>()
                .all(&self.db)
                .await?
                .into_iter()
                .flatten()
            {
                add(m);
            }
        }
        let email_keys: Vec<String> = forms
            .iter()
            .map(|f| crate::inbound::message_id_key(f))
            .collect();
        for e in inbound_email::Entity::find()
            .select_only()
            .column(inbound_email::Column::SessionId)
            .filter(inbound_email::Column::Id.is_in(email_keys))
            .filter(inbound_email::Column::SessionId.is_not_null())
            .into_tuple::<Option<String>>()
            .all(&self.db)
            .await?
            .into_iter()
            .flatten()
        {
            add(e);
        }
        ids.truncate(limit as usize);
        Ok(ids)
    }

    /// The sessions with these ids, newest first.
    pub async fn sessions_by_ids(&self, ids: &[String]) -> Result<Vec<session::Model>, DbErr> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        session::Entity::find()
            .filter(session::Column::Id.is_in(ids.iter().cloned()))
            .order_by(session::Column::CreatedAt, Order::Desc)
            .order_by(session::Column::Id, Order::Desc)
            .all(&self.db)
            .await
    }

    /// Deliveries that failed (our side gave up, the provider refused, the customer opted
    /// out) or that the provider later reported `undelivered` / `failed`; most recently
    /// changed first, at most `limit`.
    pub async fn failed_deliveries(&self, limit: u64) -> Result<Vec<delivery::Model>, DbErr> {
        delivery::Entity::find()
            .filter(
                Condition::any()
                    .add(delivery::Column::State.eq("failed"))
                    .add(delivery::Column::ProviderStatus.is_in(["undelivered", "failed"])),
            )
            .order_by(delivery::Column::UpdatedAt, Order::Desc)
            .order_by(delivery::Column::Id, Order::Desc)
            .limit(limit)
            .all(&self.db)
            .await
    }

    /// Live sessions whose conversation is not over (opening, waiting, active, closing),
    /// newest first, at most `limit`.
    pub async fn streaming_live_sessions(
        &self,
        limit: u64,
    ) -> Result<Vec<live_session::Model>, DbErr> {
        live_session::Entity::find()
            .filter(
                live_session::Column::State.is_in(LiveState::STREAMING.iter().map(|s| s.as_str())),
            )
            .order_by(live_session::Column::CreatedAt, Order::Desc)
            .order_by(live_session::Column::SessionId, Order::Desc)
            .limit(limit)
            .all(&self.db)
            .await
    }

    /// A session's inbound messages (without their text), newest first, at most `limit`.
    pub async fn inbound_messages_of_session(
        &self,
        session_id: &str,
        limit: u64,
    ) -> Result<Vec<InboundMessageSummary>, DbErr> {
        use inbound_message::Column as C;
        inbound_message::Entity::find()
            .select_only()
            .columns([
                C::Id,
                C::Channel,
                C::ProviderMessageId,
                C::SessionId,
                C::FromAddress,
                C::ToAddress,
                C::State,
                C::ReceivedAt,
                C::UpdatedAt,
            ])
            .filter(C::SessionId.eq(session_id))
            .order_by(C::ReceivedAt, Order::Desc)
            .order_by(C::Id, Order::Desc)
            .limit(limit)
            .into_model::<InboundMessageSummary>()
            .all(&self.db)
            .await
    }

    /// A session's inbound emails (without the raw message), newest first, at most `limit`.
    pub async fn inbound_emails_of_session(
        &self,
        session_id: &str,
        limit: u64,
    ) -> Result<Vec<InboundSummary>, DbErr> {
        use inbound_email::Column as C;
        inbound_email::Entity::find()
            .select_only()
            .columns([
                C::Id,
                C::State,
                C::SessionId,
                C::MessageId,
                C::FromAddress,
                C::Subject,
                C::Size,
                C::Reason,
                C::ReceivedAt,
                C::UpdatedAt,
            ])
            .filter(C::SessionId.eq(session_id))
            .order_by(C::ReceivedAt, Order::Desc)
            .order_by(C::Id, Order::Desc)
            .limit(limit)
            .into_model::<InboundSummary>()
            .all(&self.db)
            .await
    }
}
