//! Pagination of every list the API returns: `?limit=` and an opaque
//! `?cursor=` taken from the previous answer's `next_cursor` (`null` on the
//! last page). Orders are stable (keyset on unique keys), so rows written while
//! a client pages are neither skipped nor repeated.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ApiError;

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: u64 = 100;
/// The largest `limit` accepted.
pub const MAX_LIMIT: u64 = 500;

/// What a list endpoint reads from its query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<K> {
    pub limit: u64,
    /// Resume after this key (`None`: the first page).
    pub after: Option<K>,
}

/// A listing's key, written into cursors. `tag` keeps a cursor of one list from
/// being taken for another's.
pub trait CursorKey: Sized {
    const TAG: &'static str;
    fn encode(&self) -> String;
    fn decode(text: &str) -> Option<Self>;
}

/// Reads `limit` and `cursor`; anything malformed is a 400 naming the parameter.
pub fn request<K: CursorKey>(
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<PageRequest<K>, ApiError> {
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "invalid_limit",
                    Some("limit".into()),
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let after = match cursor {
        None => None,
        Some(text) => Some(decode::<K>(text).ok_or_else(|| {
            ApiError::invalid(
                "invalid_cursor",
                Some("cursor".into()),
                "cursor is not one this list returned; pass next_cursor as given, or drop it to start over",
            )
        })?),
    };
    Ok(PageRequest { limit, after })
}

fn decode<K: CursorKey>(text: &str) -> Option<K> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let rest = text.strip_prefix(K::TAG)?.strip_prefix(':')?;
    K::decode(rest)
}

/// The cursor that resumes after `key`.
pub fn cursor<K: CursorKey>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", K::TAG, key.encode()))
}

/// Splits `limit + 1` fetched rows into the page and the next cursor.
pub fn finish<T, K: CursorKey>(
    mut rows: Vec<T>,
    limit: u64,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, Option<String>) {
    if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        let next = rows.last().map(|last| cursor(&key(last)));
        (rows, next)
    } else {
        (rows, None)
    }
}

/// Lists keyed by an integer id (jobs, events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdKey<const TAG: char>(pub i64);

impl CursorKey for IdKey<'j'> {
    const TAG: &'static str = "jobs";
    fn encode(&self) -> String {
        self.0.to_string()
    }
    fn decode(text: &str) -> Option<Self> {
        text.parse().ok().map(IdKey)
    }
}

impl CursorKey for IdKey<'e'> {
    const TAG: &'static str = "events";
    fn encode(&self) -> String {
        self.0.to_string()
    }
    fn decode(text: &str) -> Option<Self> {
        text.parse().ok().map(IdKey)
    }
}

/// A session's deliveries, oldest first: `(created_at ms, delivery id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryKey {
    pub created_at: i64,
    pub id: String,
}

impl CursorKey for DeliveryKey {
    const TAG: &'static str = "deliveries";
    fn encode(&self) -> String {
        format!("{}|{}", self.created_at, self.id)
    }
    fn decode(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('|')?;
        let well_formed = (1..=64).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !well_formed {
            return None;
        }
        Some(DeliveryKey {
            created_at: at.parse().ok()?,
            id: id.to_string(),
        })
    }
}

/// Sessions found by any id, newest first: `(created_at, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub id: String,
}

impl CursorKey for SessionKey {
    const TAG: &'static str = "sessions";
    fn encode(&self) -> String {
        format!(
            "{}|{}",
            self.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            self.id
        )
    }
    fn decode(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('|')?;
        let created_at = chrono::DateTime::parse_from_rfc3339(at)
            .ok()?
            .with_timezone(&chrono::Utc);
        crate::escalation::request::SessionId::parse(id).ok()?;
        Some(SessionKey {
            created_at,
            id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_do_not_cross_lists() {
        let c = cursor(&IdKey::<'j'>(42));
        assert_eq!(
            request::<IdKey<'j'>>(None, Some(&c)).expect("ok").after,
            Some(IdKey(42))
        );
        assert!(request::<IdKey<'e'>>(None, Some(&c)).is_err());
        assert!(request::<IdKey<'j'>>(None, Some("not a cursor")).is_err());
        for bad in ["0", "-1", "501", "ten", ""] {
            assert!(request::<IdKey<'j'>>(Some(bad), None).is_err(), "{bad}");
        }
        let key = SessionKey {
            created_at: chrono::Utc::now(),
            id: "Mix-A".into(),
        };
        assert_eq!(
            request::<SessionKey>(Some("5"), Some(&cursor(&key))).expect("ok"),
            PageRequest {
                limit: 5,
                after: Some(key)
            }
        );
    }
}
