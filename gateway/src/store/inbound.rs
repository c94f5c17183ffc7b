//! Customer emails posted to the inbound route: finding the session an email
//! answers, and recording it (with its Case note) in one transaction.

use sea_orm::sea_query::{OnConflict, Order};
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

use super::case_notes::enqueue_case_note_in;
use super::outbox::event_row;
use super::{Store, delivery, email_message, inbound_email, now_ms, session};

/// What an inbound email became (`inbound_emails.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundState {
    /// Matched to a session; a Case note is queued.
    Appended,
    /// No session matched; the raw message is kept for operators.
    Unmatched,
    /// An auto-reply or a bounce: recorded, never appended.
    IgnoredAutoReply,
}

impl InboundState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Appended => "appended",
            Self::Unmatched => "unmatched",
            Self::IgnoredAutoReply => "ignored_auto_reply",
        }
    }

    /// The states an operator can list by.
    pub const ALL: [&'static str; 3] = ["appended", "unmatched", "ignored_auto_reply"];
}

/// How an email found its session, in the order the rules are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// The session's token in a recipient address (our Reply-To).
    ReplyToken,
    /// `In-Reply-To`/`References` naming a message of the session's thread.
    ThreadHeaders,
    /// A Salesforce Ref ID naming the session's Case.
    CaseThreadToken,
    /// A new email from the customer of a session whose Case is open.
    OpenCase,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReplyToken => "reply_token",
            Self::ThreadHeaders => "thread_headers",
            Self::CaseThreadToken => "case_thread_token",
            Self::OpenCase => "open_case",
        }
    }
}

/// What an email offers for matching (each list bounded by the parser).
#[derive(Debug, Default)]
pub struct MatchKeys<'a> {
    /// Reply tokens, lower case.
    pub reply_tokens: &'a [String],
    /// Message-IDs the email answers, most telling first (`In-Reply-To`, then
    /// `References` newest first). Compared exactly: ids are case-sensitive.
    pub message_ids: &'a [String],
    /// Case ids from Ref IDs (15 or 18 characters).
    pub case_ids: &'a [String],
    /// The sender, for the open-Case rule (`None`: the rule is off or there is no sender).
    pub open_case_from: Option<&'a str>,
}

/// One inbound email to record.
#[derive(Debug)]
pub struct NewInbound<'a> {
    pub id: &'a str,
    pub state: InboundState,
    pub session_id: Option<&'a str>,
    pub matched_by: Option<MatchedBy>,
    pub message_id: Option<&'a str>,
    pub from_address: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub size: i64,
    pub reason: Option<&'a str>,
    pub raw: Option<String>,
    /// The Case note `(id, kind, body)` when appended.
    pub note: Option<(&'a str, &'a str, &'a str)>,
}

/// An inbound email without its raw message (what lists show).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct InboundSummary {
    pub id: String,
    pub state: String,
    pub session_id: Option<String>,
    pub message_id: Option<String>,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub size: i64,
    pub reason: Option<String>,
    pub received_at: i64,
    pub updated_at: i64,
}

impl Store {
    /// The session an inbound email belongs to, by the first rule that finds one:
    /// reply token, thread headers (our sent messages and the customer's earlier
    /// ones in `email_messages`, and email deliveries' provider ids), a Case Ref
    /// ID (the newest session holding that Case), then — when asked — the newest
    /// Case-route session of that customer whose Case is open locally (status
    /// `escalated`; Salesforce is not asked).
    pub async fn match_inbound(
        &self,
        keys: &MatchKeys<'_>,
    ) -> Result<Option<(String, MatchedBy)>, DbErr> {
        if !keys.reply_tokens.is_empty() {
            let found = session::Entity::find()
                .filter(session::Column::ReplyToken.is_in(keys.reply_tokens.iter().cloned()))
                .order_by(session::Column::CreatedAt, Order::Desc)
                .one(&self.db)
                .await?;
            if let Some(s) = found {
                return Ok(Some((s.id, MatchedBy::ReplyToken)));
            }
        }
        if !keys.message_ids.is_empty() {
            let ids = keys.message_ids.iter().cloned();
            let threads = email_message::Entity::find()
                .filter(email_message::Column::MessageId.is_in(ids.clone()))
                .limit(256)
                .all(&self.db)
                .await?;
            let sent = delivery::Entity::find()
                .filter(delivery::Column::Channel.eq("email"))
                .filter(delivery::Column::ProviderId.is_in(ids))
                .limit(256)
                .all(&self.db)
                .await?;
            // The most telling id wins: In-Reply-To before References.
            for id in keys.message_ids {
                let session = threads
                    .iter()
                    .filter(|t| &t.message_id == id)
                    .max_by_key(|t| t.id)
                    .map(|t| t.session_id.clone())
                    .or_else(|| {
                        sent.iter()
                            .find(|d| d.provider_id.as_ref() == Some(id))
                            .map(|d| d.session_id.clone())
                    });
                if let Some(session) = session {
                    return Ok(Some((session, MatchedBy::ThreadHeaders)));
                }
            }
        }
        for case_id in keys.case_ids {
            let condition = match salesforce::SalesforceId::parse(case_id) {
                Ok(id) => Condition::any()
                    .add(session::Column::SalesforceCaseId.eq(id.as_str()))
                    .add(session::Column::SalesforceCaseId15.eq(id.to_15())),
                Err(_) => continue,
            };
            let found = session::Entity::find()
                .filter(condition)
                .order_by(session::Column::CreatedAt, Order::Desc)
                .one(&self.db)
                .await?;
            if let Some(s) = found {
                return Ok(Some((s.id, MatchedBy::CaseThreadToken)));
            }
        }
        if let Some(from) = keys.open_case_from {
            let found = session::Entity::find()
                .filter(session::Column::CustomerEmail.eq(from.to_lowercase()))
                .filter(session::Column::Route.eq("case"))
                .filter(session::Column::Status.eq("escalated"))
                .filter(session::Column::SalesforceCaseId.is_not_null())
                .order_by(session::Column::CreatedAt, Order::Desc)
                .one(&self.db)
                .await?;
            if let Some(s) = found {
                return Ok(Some((s.id, MatchedBy::OpenCase)));
            }
        }
        Ok(None)
    }

    /// Records an inbound email in one transaction: its `inbound_emails` row and,
    /// when it was matched, its Case note (with the note's job), its Message-ID
    /// in the session's thread (direction `in`, so the next reply threads under
    /// it) and a `customer.email_received` event. `false` (nothing written) when
    /// an email with this id was recorded before.
    pub async fn record_inbound(&self, new: NewInbound<'_>) -> Result<bool, DbErr> {
        let txn = self.db.begin().await?;
        let t = now_ms();
        let inserted = inbound_email::Entity::insert(inbound_email::ActiveModel {
            id: Set(new.id.to_string()),
            state: Set(new.state.as_str().into()),
            session_id: Set(new.session_id.map(str::to_string)),
            message_id: Set(new.message_id.map(str::to_string)),
            from_address: Set(new.from_address.map(str::to_string)),
            subject: Set(new.subject.map(str::to_string)),
            size: Set(new.size),
            reason: Set(new.reason.map(str::to_string)),
            raw: Set(new.raw),
            received_at: Set(t),
            updated_at: Set(t),
        })
        .on_conflict(
            OnConflict::column(inbound_email::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 {
            return Ok(false);
        }
        if let (Some(session_id), Some((note_id, kind, body))) = (new.session_id, new.note) {
            enqueue_case_note_in(&txn, session_id, note_id, kind, body).await?;
            if let Some(message_id) = new.message_id {
                email_message::Entity::insert(email_message::ActiveModel {
                    session_id: Set(session_id.to_string()),
                    message_id: Set(message_id.to_string()),
                    direction: Set("in".into()),
                    created_at: Set(t),
                    ..Default::default()
                })
                .on_conflict(
                    OnConflict::columns([
                        email_message::Column::SessionId,
                        email_message::Column::MessageId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            }
            sea_orm::ActiveModelTrait::insert(
                event_row(
                    session_id,
                    "customer.email_received",
                    serde_json::json!({
                        "inbound_email_id": new.id,
                        "matched_by": new.matched_by.map(MatchedBy::as_str),
                        "note_id": note_id,
                    }),
                ),
                &txn,
            )
            .await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    /// The newest other session of the same customer (email, ignoring case)
    /// that holds a Case and was created no later than `session`: the Case a
    /// new escalation may join.
    pub async fn earlier_case_session(
        &self,
        session: &session::Model,
    ) -> Result<Option<session::Model>, DbErr> {
        let Some(email) = session.customer_email.as_deref() else {
            return Ok(None);
        };
        session::Entity::find()
            .filter(session::Column::CustomerEmail.eq(email.to_lowercase()))
            .filter(session::Column::Id.ne(session.id.as_str()))
            .filter(session::Column::SalesforceCaseId.is_not_null())
            .filter(session::Column::CreatedAt.lte(session.created_at))
            .order_by(session::Column::CreatedAt, Order::Desc)
            .order_by(session::Column::Id, Order::Desc)
            .one(&self.db)
            .await
    }

    pub async fn inbound_email(&self, id: &str) -> Result<Option<inbound_email::Model>, DbErr> {
        inbound_email::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
    }

    /// Up to `limit` inbound emails in `state`, newest first, after the
    /// `(received_at, id)` of the previous page's last row. The raw message is
    /// not read.
    pub async fn inbound_emails_page(
        &self,
        state: &str,
        after: Option<(i64, &str)>,
        limit: u64,
    ) -> Result<Vec<InboundSummary>, DbErr> {
        let mut query = inbound_email::Entity::find()
            .select_only()
            .columns([
                inbound_email::Column::Id,
                inbound_email::Column::State,
                inbound_email::Column::SessionId,
                inbound_email::Column::MessageId,
                inbound_email::Column::FromAddress,
                inbound_email::Column::Subject,
                inbound_email::Column::Size,
                inbound_email::Column::Reason,
                inbound_email::Column::ReceivedAt,
                inbound_email::Column::UpdatedAt,
            ])
            .filter(inbound_email::Column::State.eq(state));
        if let Some((received_at, id)) = after {
            query = query.filter(
                Condition::any()
                    .add(inbound_email::Column::ReceivedAt.lt(received_at))
                    .add(
                        Condition::all()
                            .add(inbound_email::Column::ReceivedAt.eq(received_at))
                            .add(inbound_email::Column::Id.lt(id)),
                    ),
            );
        }
        query
            .order_by(inbound_email::Column::ReceivedAt, Order::Desc)
            .order_by(inbound_email::Column::Id, Order::Desc)
            .limit(limit)
            .into_model::<InboundSummary>()
            .all(&self.db)
            .await
    }
}
