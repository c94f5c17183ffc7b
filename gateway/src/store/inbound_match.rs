//! Which sessions an inbound provider message may belong to: the session a bridge names (if it
//! is a session of one of the message's channels), then the customer's sessions on those
//! channels, newest first — by E.164 phone, and for bridges by the session's reply address.

use sea_orm::sea_query::{Expr, Order};
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::inbound_messages::NewInboundMessage;
use super::{LiveState, live_session, session};

/// Sessions looked at per address rule (the newest ones).
const CANDIDATES_PER_RULE: u64 = 20;

/// A session an inbound message may belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub route: String,
    pub status: String,
    pub salesforce_case_id: Option<String>,
    /// Whether its live conversation takes customer messages now.
    pub live_accepts: bool,
}

#[derive(Debug, FromQueryResult)]
struct Row {
    id: String,
    channel: String,
    route: String,
    status: String,
    salesforce_case_id: Option<String>,
}

fn columns<E: EntityTrait>(select: sea_orm::Select<E>) -> sea_orm::Select<E> {
    select.select_only().columns([
        session::Column::Id,
        session::Column::Channel,
        session::Column::Route,
        session::Column::Status,
        session::Column::SalesforceCaseId,
    ])
}

/// The candidates, most telling first: the named session, then by address, newest first.
/// Bounded: at most one named session and [`CANDIDATES_PER_RULE`] per address rule.
pub(super) async fn candidates(
    txn: &DatabaseTransaction,
    new: &NewInboundMessage<'_>,
) -> Result<Vec<Candidate>, DbErr> {
    let mut rows: Vec<Row> = Vec::new();
    if let Some(named) = new.named_session {
        let found = columns(session::Entity::find())
            .filter(session::Column::Id.eq(named))
            .into_model::<Row>()
            .one(txn)
            .await?;
        // A bridge may only speak for sessions of its own channels.
        rows.extend(found.filter(|r| new.session_channels.contains(&r.channel)));
    }
    if let Some(from) = new.from {
        let channels = new.session_channels.iter().cloned();
        let open = || {
            columns(session::Entity::find())
                .filter(session::Column::Channel.is_in(channels.clone()))
                .filter(session::Column::Status.ne("closed"))
                .order_by(session::Column::CreatedAt, Order::Desc)
                .order_by(session::Column::Id, Order::Desc)
                .limit(CANDIDATES_PER_RULE)
        };
        if channels::is_e164(from) {
            rows.extend(
                open()
                    .filter(session::Column::CustomerPhoneE164.eq(from))
                    .into_model::<Row>()
                    .all(txn)
                    .await?,
            );
        }
        if new.match_bridge_address {
            rows.extend(
                open()
                    .filter(reply_address_is(txn, from)?)
                    .into_model::<Row>()
                    .all(txn)
                    .await?,
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    rows.retain(|r| seen.insert(r.id.clone()));
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let live: Vec<(String, String)> = if ids.is_empty() {
        Vec::new()
    } else {
        live_session::Entity::find()
            .select_only()
            .columns([live_session::Column::SessionId, live_session::Column::State])
            .filter(live_session::Column::SessionId.is_in(ids))
            .into_tuple()
            .all(txn)
            .await?
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            let live_accepts = live.iter().any(|(id, state)| {
                *id == r.id && LiveState::parse(state).is_some_and(LiveState::accepts_messages)
            });
            Candidate {
                id: r.id,
                route: r.route,
                status: r.status,
                salesforce_case_id: r.salesforce_case_id,
                live_accepts,
            }
        })
        .collect())
}

/// Sessions whose stored reply target is the bridge address `address`: the exact JSON the
/// payload holds for it (`"reply_to":{"type":"bridge","address":…}`), found case-sensitively
/// (a JSON string value cannot contain that fragment unescaped, so nothing else matches).
fn reply_address_is(txn: &DatabaseTransaction, address: &str) -> Result<Condition, DbErr> {
    use sea_orm::ConnectionTrait;
    let target = channels::ReplyTarget::Bridge {
        address: address.to_string(),
    };
    let json = serde_json::to_string(&target)
        .map_err(|e| DbErr::Custom(format!("a reply target does not serialize: {e}")))?;
    let fragment = format!("\"reply_to\":{json}");
    let contains = match txn.get_database_backend() {
        DbBackend::Postgres => Expr::cust_with_values("strpos(payload, $1) > 0", [fragment]),
        _ => Expr::cust_with_values("instr(payload, ?) > 0", [fragment]),
    };
    Ok(Condition::all().add(contains))
}
