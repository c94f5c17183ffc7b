//! Customer messages from provider webhooks (SMS, WhatsApp, bridges): each is recorded with
//! everything it causes in one transaction — the dedupe row, a keyword's effect (opt-out,
//! opt-in, help), the message queued to the rep of a live session (or, for the end keyword,
//! its close requested) or noted on an open Case, or the polite answer to an unknown sender
//! (docs/channels/inbound.md).

use channels::{Capabilities, Keyword, OutboundKind, ReplyTarget};
use sea_orm::sea_query::{Expr, OnConflict, Order};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::json;

use super::case_notes::enqueue_case_note_in;
use super::inbound_match::{Candidate, candidates};
use super::live::{queue_customer_message_in, request_live_close_in};
use super::outbox::{enqueue_delivery_in, event_row};
use super::{NewDelivery, Queued, Store, inbound_message, now_ms, opt_out, session};
use crate::live::config::MiawConfig;

/// The note kind of a customer message written on a Case.
pub const NOTE_KIND_INBOUND_MESSAGE: &str = "inbound_message";

/// An unknown sender is answered at most once in this long (per channel and address): an
/// automatic answer costs money and must not be a loop or a pump.
pub const UNKNOWN_SENDER_REPLY_EVERY_MS: i64 = 24 * 60 * 60 * 1000;

/// The prefix of the `session_id` of deliveries that answer a message outside any session.
pub const INBOUND_SESSION_PREFIX: &str = "inbound:";

/// What became of an inbound message (`inbound_messages.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundMessageState {
    /// Queued to the rep of a live session.
    ToRep,
    /// Queued as a note on the session's open Case.
    CaseNote,
    /// An opt-out keyword: stored, the live session closed.
    OptOut,
    /// An opt-in keyword: the opt-out removed.
    OptIn,
    /// A help keyword: answered.
    Help,
    /// No session could take it.
    Unmatched,
    /// A live session matched but could not take it (its queue to the rep is full).
    Refused,
    /// The live chat's end keyword (`miaw.end_keyword`, which the customer is told): the live
    /// session is being closed; not passed to the rep.
    EndChat,
}

impl InboundMessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ToRep => "to_rep",
            Self::CaseNote => "case_note",
            Self::OptOut => "opt_out",
            Self::OptIn => "opt_in",
            Self::Help => "help",
            Self::Unmatched => "unmatched",
            Self::Refused => "refused",
            Self::EndChat => "end_chat",
        }
    }

    /// The states an operator can list by.
    pub const ALL: [&'static str; 8] = [
        "to_rep",
        "case_note",
        "opt_out",
        "opt_in",
        "help",
        "unmatched",
        "refused",
        "end_chat",
    ];
}

/// The channel that carries answers to the customer, when it delivers.
#[derive(Debug, Clone)]
pub struct Deliverer<'a> {
    pub channel: &'a str,
    pub capabilities: Capabilities,
}

/// One customer message to record, checked and bounded by the caller.
#[derive(Debug)]
pub struct NewInboundMessage<'a> {
    /// `<channel>:<provider message id>`, byte for byte.
    pub id: &'a str,
    /// The channel the webhook came in on.
    pub channel: &'a str,
    pub provider_message_id: &'a str,
    /// The session the provider named (bridges), if any.
    pub named_session: Option<&'a str>,
    /// The sender (E.164 for phone channels, the bridge address otherwise).
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    /// The message text as stored (never empty).
    pub text: &'a str,
    /// The attachments as JSON, when there are any.
    pub media: Option<String>,
    /// When the customer wrote (epoch ms, not later than when it arrived).
    pub at_ms: i64,
    /// Channels whose sessions this message may belong to: this one and those delivering
    /// through it.
    pub session_channels: &'a [String],
    /// Whether `from` may also be a bridge reply address (plugin channels).
    pub match_bridge_address: bool,
    /// A keyword, with the answer to send when there is one.
    pub keyword: Option<(Keyword, Option<String>)>,
    /// Where answers and opt-outs go: the delivering channel.
    pub deliverer: Option<Deliverer<'a>>,
    pub unknown_sender_reply: Option<String>,
    /// What the rep reads in a live session (the text and the attachment lines).
    pub rep_text: &'a str,
    /// The Case note for a Case session.
    pub note_body: &'a str,
    pub miaw: &'a MiawConfig,
    pub max_attempts: u32,
}

/// What recording a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// Recorded before (a replayed webhook): nothing written.
    Duplicate,
    Recorded {
        state: InboundMessageState,
        session_id: Option<String>,
        /// Deliveries queued to the customer (answers).
        answers: usize,
    },
}

/// An inbound message without its text (what lists show).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct InboundMessageSummary {
    pub id: String,
    pub channel: String,
    pub provider_message_id: String,
    pub session_id: Option<String>,
    pub from_address: Option<String>,
    pub to_address: Option<String>,
    pub state: String,
    pub received_at: i64,
    pub updated_at: i64,
}

impl Store {
    /// Records one inbound message and its effects in one transaction. A message whose id was
    /// recorded before writes nothing ([`InboundOutcome::Duplicate`]).
    pub async fn record_inbound_message(
        &self,
        new: &NewInboundMessage<'_>,
    ) -> Result<InboundOutcome, DbErr> {
        let txn = self.db.begin().await?;
        let t = now_ms();
        let inserted = inbound_message::Entity::insert(inbound_message::ActiveModel {
            id: Set(new.id.to_string()),
            channel: Set(new.channel.to_string()),
            provider_message_id: Set(new.provider_message_id.to_string()),
            session_id: Set(None),
            from_address: Set(new.from.map(str::to_string)),
            to_address: Set(new.to.map(str::to_string)),
            state: Set(InboundMessageState::Unmatched.as_str().into()),
            text: Set(Some(new.text.to_string())),
            media: Set(new.media.clone()),
            received_at: Set(t),
            updated_at: Set(t),
        })
        .on_conflict(
            OnConflict::column(inbound_message::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 {
            txn.rollback().await?;
            return Ok(InboundOutcome::Duplicate);
        }
        let found = candidates(&txn, new).await?;
        let (state, session_id, answers) = match (&new.keyword, new.from) {
            (Some((keyword, answer)), Some(from)) => {
                keyword_effects(&txn, new, from, keyword, answer.as_deref(), &found).await?
            }
            _ => message_effects(&txn, new, &found).await?,
        };
        inbound_message::Entity::update_many()
            .col_expr(inbound_message::Column::State, Expr::value(state.as_str()))
            .col_expr(
                inbound_message::Column::SessionId,
                Expr::value(session_id.clone()),
            )
            .filter(inbound_message::Column::Id.eq(new.id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(InboundOutcome::Recorded {
            state,
            session_id,
            answers,
        })
    }

    pub async fn inbound_message(&self, id: &str) -> Result<Option<inbound_message::Model>, DbErr> {
        inbound_message::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
    }

    /// Up to `limit` inbound messages in `state`, newest first, after the `(received_at, id)`
    /// of the previous page's last row; without their text.
    pub async fn inbound_messages_page(
        &self,
        state: &str,
        after: Option<(i64, &str)>,
        limit: u64,
    ) -> Result<Vec<InboundMessageSummary>, DbErr> {
        use inbound_message::Column as C;
        let mut query = inbound_message::Entity::find()
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
            .filter(C::State.eq(state));
        if let Some((received_at, id)) = after {
            query = query.filter(
                Condition::any().add(C::ReceivedAt.lt(received_at)).add(
                    Condition::all()
                        .add(C::ReceivedAt.eq(received_at))
                        .add(C::Id.lt(id)),
                ),
            );
        }
        query
            .order_by(C::ReceivedAt, Order::Desc)
            .order_by(C::Id, Order::Desc)
            .limit(limit)
            .into_model::<InboundMessageSummary>()
            .all(&self.db)
            .await
    }
}

type Effects = (InboundMessageState, Option<String>, usize);

/// Opt-out, opt-in or help: acted on, never passed to the rep.
async fn keyword_effects(
    txn: &DatabaseTransaction,
    new: &NewInboundMessage<'_>,
    from: &str,
    keyword: &Keyword,
    answer: Option<&str>,
    found: &[Candidate],
) -> Result<Effects, DbErr> {
    let open: Vec<&Candidate> = found.iter().filter(|c| c.status != "closed").collect();
    let session_id = open.first().map(|c| c.id.clone());
    let deliverer = new.deliverer.as_ref().map_or(new.channel, |d| d.channel);
    let data = json!({"channel": deliverer, "inbound_message_id": new.id});
    match keyword {
        Keyword::OptOut => {
            opt_out::Entity::insert(opt_out::ActiveModel {
                channel: Set(deliverer.to_string()),
                address: Set(from.to_string()),
                opted_out_at: Set(now_ms()),
            })
            .on_conflict(
                OnConflict::columns([opt_out::Column::Channel, opt_out::Column::Address])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
            for session in &open {
                event_row(&session.id, "customer.opted_out", data.clone())
                    .insert(txn)
                    .await?;
                request_live_close_in(txn, &session.id, "opt_out", new.max_attempts).await?;
            }
            // The provider confirms an opt-out itself (and nothing may be sent after it).
            Ok((InboundMessageState::OptOut, session_id, 0))
        }
        Keyword::OptIn => {
            opt_out::Entity::delete_many()
                .filter(opt_out::Column::Channel.eq(deliverer))
                .filter(opt_out::Column::Address.eq(from))
                .exec(txn)
                .await?;
            for session in &open {
                event_row(&session.id, "customer.opted_in", data.clone())
                    .insert(txn)
                    .await?;
            }
            let answers = answer_outside_session(txn, new, from, "opt_in_answer", answer).await?;
            Ok((InboundMessageState::OptIn, session_id, answers))
        }
        Keyword::Help => {
            let answers = answer_outside_session(txn, new, from, "help_answer", answer).await?;
            Ok((InboundMessageState::Help, session_id, answers))
        }
    }
}

/// An ordinary message: to the rep of a live session, else a note on an open Case, else
/// unmatched (with the unknown-sender answer).
async fn message_effects(
    txn: &DatabaseTransaction,
    new: &NewInboundMessage<'_>,
    found: &[Candidate],
) -> Result<Effects, DbErr> {
    if let Some(live) = found.iter().find(|c| c.live_accepts) {
        // The opening notice tells the customer this word ends the chat, on every channel.
        if new
            .rep_text
            .trim()
            .eq_ignore_ascii_case(new.miaw.end_keyword.trim())
        {
            request_live_close_in(txn, &live.id, "end_keyword", new.max_attempts).await?;
            touch_last_message(txn, &live.id, new.at_ms).await?;
            return Ok((InboundMessageState::EndChat, Some(live.id.clone()), 0));
        }
        let parts = crate::escalation::mapper::live::customer_message_parts(
            &live.id,
            &format!("inbound/{}", new.id),
            new.rep_text,
            new.miaw,
        );
        let mut extra = serde_json::Map::new();
        extra.insert("inbound_message_id".into(), new.id.into());
        extra.insert("channel".into(), new.channel.into());
        let queued = queue_customer_message_in(
            txn,
            &live.id,
            &parts,
            new.miaw.max_queued_messages,
            new.max_attempts,
            extra,
        )
        .await?;
        touch_last_message(txn, &live.id, new.at_ms).await?;
        if queued == Queued::Queued {
            return Ok((InboundMessageState::ToRep, Some(live.id.clone()), 0));
        }
        event_row(
            &live.id,
            "inbound.refused",
            json!({
                "inbound_message_id": new.id,
                "reason": "the session's queue to the rep is full",
            }),
        )
        .insert(txn)
        .await?;
        return Ok((InboundMessageState::Refused, Some(live.id.clone()), 0));
    }
    let case = found
        .iter()
        .find(|c| c.route == "case" && c.salesforce_case_id.is_some() && c.status != "closed");
    if let Some(case) = case {
        let note_id = super::case_note_id(&case.id, &format!("inbound_message:{}", new.id));
        enqueue_case_note_in(
            txn,
            &case.id,
            &note_id,
            NOTE_KIND_INBOUND_MESSAGE,
            new.note_body,
        )
        .await?;
        event_row(
            &case.id,
            "inbound.case_note",
            json!({"inbound_message_id": new.id, "channel": new.channel, "note_id": note_id}),
        )
        .insert(txn)
        .await?;
        touch_last_message(txn, &case.id, new.at_ms).await?;
        return Ok((InboundMessageState::CaseNote, Some(case.id.clone()), 0));
    }
    let answers = match (new.from, &new.unknown_sender_reply) {
        (Some(from), Some(reply)) if !recently_answered(txn, new, from).await? => {
            answer_outside_session(txn, new, from, "unknown_sender_reply", Some(reply)).await?
        }
        _ => 0,
    };
    Ok((InboundMessageState::Unmatched, None, answers))
}

/// Whether an earlier unmatched message from `from` on this channel arrived within
/// [`UNKNOWN_SENDER_REPLY_EVERY_MS`] (it was answered then, or deliberately not).
async fn recently_answered(
    txn: &DatabaseTransaction,
    new: &NewInboundMessage<'_>,
    from: &str,
) -> Result<bool, DbErr> {
    let earlier = inbound_message::Entity::find()
        .select_only()
        .column(inbound_message::Column::Id)
        .filter(inbound_message::Column::Channel.eq(new.channel))
        .filter(inbound_message::Column::FromAddress.eq(from))
        .filter(inbound_message::Column::State.eq(InboundMessageState::Unmatched.as_str()))
        .filter(inbound_message::Column::Id.ne(new.id))
        .filter(inbound_message::Column::ReceivedAt.gt(now_ms() - UNKNOWN_SENDER_REPLY_EVERY_MS))
        .into_tuple::<String>()
        .one(txn)
        .await?;
    Ok(earlier.is_some())
}

/// Queues `text` to `from` through the delivering channel as deliveries of the pseudo-session
/// `inbound:<id>` (no session row). Nothing when there is no text, no delivering channel, or
/// the customer opted out there. Answers how many deliveries were queued.
async fn answer_outside_session(
    txn: &DatabaseTransaction,
    new: &NewInboundMessage<'_>,
    from: &str,
    purpose: &str,
    text: Option<&str>,
) -> Result<usize, DbErr> {
    let (Some(text), Some(deliverer)) = (text.filter(|t| !t.trim().is_empty()), &new.deliverer)
    else {
        return Ok(0);
    };
    if !deliverer.capabilities.delivers {
        return Ok(0);
    }
    let opted_out = opt_out::Entity::find_by_id((deliverer.channel.to_string(), from.to_string()))
        .one(txn)
        .await?
        .is_some();
    if opted_out {
        return Ok(0);
    }
    let session_id = format!("{INBOUND_SESSION_PREFIX}{}", new.id);
    let target = if channels::is_e164(from) {
        ReplyTarget::Phone {
            number: from.to_string(),
        }
    } else {
        ReplyTarget::Bridge {
            address: from.to_string(),
        }
    };
    let delivery = NewDelivery {
        id: crate::outbox::delivery_id(&session_id, purpose),
        session_id,
        channel: deliverer.channel.to_string(),
        kind: OutboundKind::SystemMessage,
        text: text.to_string(),
        sender_name: None,
        target,
    };
    let parts = crate::outbox::split_for(&deliverer.capabilities, delivery);
    for part in &parts {
        enqueue_delivery_in(txn, part, new.max_attempts).await?;
    }
    Ok(parts.len())
}

/// Moves the session's `customer_last_message_at` forward to `at_ms`.
async fn touch_last_message(
    txn: &DatabaseTransaction,
    session_id: &str,
    at_ms: i64,
) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::CustomerLastMessageAt, Expr::value(at_ms))
        .filter(session::Column::Id.eq(session_id))
        .filter(
            Condition::any()
                .add(session::Column::CustomerLastMessageAt.is_null())
                .add(session::Column::CustomerLastMessageAt.lt(at_ms)),
        )
        .exec(txn)
        .await
        .map(|_| ())
}
