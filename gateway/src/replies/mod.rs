//! Rep replies on a Case reach the customer. Two ways to hear about them, one way to act:
//!
//! - [`push`]: `POST /salesforce/events`, called by the shipped Apex trigger (or the
//!   emulator), authenticated by an HMAC signature or a Named Credential JWT
//!   ([`salesforce::events`]); the event and its `sync_case_event` job are written in one
//!   transaction before the 202.
//! - [`poll`]: the `poll_case_replies` job, one per deployment, runs one SOQL query per
//!   interval across open escalated Cases and records what it finds the same way.
//! - [`sync`]: the `sync_case_event` job matches the event's Case to its newest session and
//!   queues an `agent.message` delivery on the session's own channel — or records why not.
//!
//! The record's 18-character id is the event id on both paths, so a reply pushed and then
//! polled is one event, and one message.

pub mod config;
pub mod poll;
pub mod push;
pub mod sync;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderMap;
use secrecy::ExposeSecret;

use salesforce::SalesforceId;
use salesforce::events::{self, CaseEvent, EventAuthError};

use config::PushAuth;

/// How a pushed or polled event was decided (`salesforce_events.outcome`).
pub const OUTCOMES: [&str; 6] = [
    "delivered",
    "ignored_unknown_case",
    "ignored_internal",
    "ignored_own_write",
    "ignored_no_target",
    "ignored_empty",
];
/// Who told the gateway first (`salesforce_events.source`).
pub const SOURCES: [&str; 2] = ["push", "poll"];

/// The org and the user the gateway's own Salesforce token acts as (from its identity URL),
/// as 18-character ids; `None` when the token came without a parseable identity URL.
pub(crate) async fn own_identity(
    client: &salesforce::Client,
) -> Result<Option<(SalesforceId, SalesforceId)>, salesforce::Error> {
    Ok(client.identity().await?.and_then(|(org, user)| {
        let org = SalesforceId::parse(&org).ok()?;
        let user = SalesforceId::parse(&user).ok()?;
        (org.key_prefix() == "00D" && user.key_prefix() == "005").then_some((org, user))
    }))
}

/// Push authentication and the counters `/metrics` shows. One per process.
#[derive(Debug, Default)]
pub struct Replies {
    auth: PushAuth,
    /// SOQL calls (query and queryMore) the poller made.
    poll_calls: AtomicU64,
    /// Calls the last completed poll made.
    last_poll_calls: AtomicU64,
    /// Events decided, by source × outcome (bounded: 2 × 6 counters).
    decided: [[AtomicU64; OUTCOMES.len()]; SOURCES.len()],
}

impl Replies {
    pub fn new(auth: PushAuth) -> Replies {
        Replies {
            auth,
            ..Replies::default()
        }
    }

    /// Whether pushed events can be authenticated at all.
    pub fn push_auth_configured(&self) -> bool {
        self.auth.any()
    }

    /// Checks a pushed request: the HMAC headers when present (and a secret is configured),
    /// else a bearer JWT (when certificates are configured). `now`: unix seconds.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<(), EventAuthError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let signature = header(events::SIGNATURE_HEADER);
        let timestamp = header(events::TIMESTAMP_HEADER);
        let bearer = header("authorization").and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
        if signature.is_some() || timestamp.is_some() {
            let secret = self
                .auth
                .hmac_secret
                .as_ref()
                .ok_or(EventAuthError::NotConfigured)?;
            return events::verify_signature(
                secret.expose_secret().as_bytes(),
                timestamp,
                signature,
                body,
                now,
            );
        }
        match (bearer, &self.auth.jwt) {
            (Some(token), Some(verifier)) => verifier.verify(token.trim(), now),
            (Some(_), None) => Err(EventAuthError::NotConfigured),
            (None, _) => Err(EventAuthError::Missing),
        }
    }

    /// Whether the event's org is acceptable (`case_replies.org_id`, when set).
    pub fn org_allowed(&self, event: &CaseEvent) -> bool {
        self.auth
            .org_id
            .as_ref()
            .is_none_or(|org| *org == event.org_id)
    }

    pub(crate) fn count_poll_run(&self, calls: u64) {
        self.poll_calls.fetch_add(calls, Ordering::Relaxed);
        self.last_poll_calls.store(calls, Ordering::Relaxed);
    }

    pub(crate) fn count_decided(&self, source: &str, outcome: &str) {
        let s = SOURCES.iter().position(|x| *x == source);
        let o = OUTCOMES.iter().position(|x| *x == outcome);
        if let (Some(s), Some(o)) = (s, o) {
            self.decided[s][o].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(calls so far, calls the last poll made)`.
    pub fn poll_calls(&self) -> (u64, u64) {
        (
            self.poll_calls.load(Ordering::Relaxed),
            self.last_poll_calls.load(Ordering::Relaxed),
        )
    }

    /// `(source, outcome, count)` for every pair, zeros included.
    pub fn decided(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::with_capacity(SOURCES.len() * OUTCOMES.len());
        for (s, source) in SOURCES.iter().enumerate() {
            for (o, outcome) in OUTCOMES.iter().enumerate() {
                out.push((
                    *source,
                    *outcome,
                    self.decided[s][o].load(Ordering::Relaxed),
                ));
            }
        }
        out
    }
}
