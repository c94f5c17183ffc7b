//! Counters for assertions and `GET /__emulator/stats`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A snapshot of the emulator's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stats {
    /// Authenticated `/services/data/vNN.0/…` calls counted against the daily limit
    /// (this is the `N` of `Sforce-Limit-Info: api-usage=N/MAX`).
    pub api_calls: u64,
    /// Requests to `/services/oauth2/token`, successful or not.
    pub token_requests: u64,
    /// Successful token grants.
    pub tokens_issued: u64,
    /// API calls per route, keyed like `"POST sobjects/Case"` or `"GET query"`.
    pub routes: BTreeMap<String, u64>,
    /// Calls refused before reaching a handler, keyed by error code
    /// (`INVALID_SESSION_ID`, `REQUEST_LIMIT_EXCEEDED`, `SERVER_UNAVAILABLE`, `UNABLE_TO_LOCK_ROW`,
    /// and `token:<error>` for failed token requests).
    pub rejected: BTreeMap<String, u64>,
    /// Responses dropped after their effects were committed.
    pub dropped_responses: u64,
}

impl Stats {
    pub(crate) fn reject(&mut self, code: &str) {
        *self.rejected.entry(code.to_string()).or_default() += 1;
    }

    pub(crate) fn route(&mut self, label: String) {
        *self.routes.entry(label).or_default() += 1;
    }
}
