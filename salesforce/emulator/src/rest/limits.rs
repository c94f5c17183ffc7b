//! `GET limits`: the org limits the emulator actually enforces.

use serde_json::json;

use super::Reply;
use crate::server::{AppState, lock};

/// `{"DailyApiRequests":{"Max":…,"Remaining":…}}`, counting this call.
pub(crate) fn get(state: &AppState) -> Reply {
    let max = state.daily_limit();
    let used = lock(&state.stats).api_calls;
    Reply::ok(json!({
        "DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(used)},
    }))
}
