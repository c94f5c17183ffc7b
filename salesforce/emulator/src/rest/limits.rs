//! `GET limits`: the org limits of a Developer Edition org, `{"Name":{"Max":n,"Remaining":n}}`.
//! `DailyApiRequests` is the limit the emulator enforces (counting this call); `DataStorageMB`
//! shrinks with the records stored (2 KB each, as Salesforce counts most records); the others
//! are reported at their maximum, since nothing in the emulator consumes them.

use serde_json::{Map, Value, json};

use super::Reply;
use crate::server::{AppState, lock};
use crate::store::Store;

/// Fixed limits and their maxima (a Developer Edition org's values).
const FIXED: &[(&str, u64)] = &[
    ("ConcurrentAsyncGetReportInstances", 200),
    ("ConcurrentSyncReportRuns", 20),
    ("DailyAsyncApexExecutions", 250_000),
    ("DailyAsyncApexTests", 500),
    ("DailyBulkApiBatches", 15_000),
    ("DailyBulkV2QueryFileStorageMB", 976_562),
    ("DailyBulkV2QueryJobs", 10_000),
    ("DailyDurableGenericStreamingApiEvents", 10_000),
    ("DailyDurableStreamingApiEvents", 10_000),
    ("DailyGenericStreamingApiEvents", 10_000),
    ("DailyStandardVolumePlatformEvents", 10_000),
    ("DailyStreamingApiEvents", 10_000),
    ("DailyWorkflowEmails", 405),
    ("DurableStreamingApiConcurrentClients", 20),
    ("FileStorageMB", 20),
    ("HourlyAsyncReportRuns", 1_200),
    ("HourlyDashboardRefreshes", 200),
    ("HourlyDashboardResults", 5_000),
    ("HourlyDashboardStatuses", 999_999_999),
    ("HourlyODataCallout", 10_000),
    ("HourlyPublishedPlatformEvents", 50_000),
    ("HourlyPublishedStandardVolumePlatformEvents", 1_000),
    ("HourlySyncReportRuns", 500),
    ("HourlyTimeBasedWorkflow", 50),
    ("MassEmail", 10),
    ("MonthlyPlatformEventsUsageEntitlement", 0),
    ("PermissionSets", 1_500),
    ("SingleEmail", 15),
    ("StreamingApiConcurrentClients", 20),
];

const DATA_STORAGE_MB: u64 = 5;
const RECORD_KB: u64 = 2;

/// Runs with the store locked by the dispatcher (`store` is that guard's data).
pub(crate) fn get(state: &AppState, store: &Store) -> Reply {
    let max = state.daily_limit();
    let used = lock(&state.stats).api_calls;
    let records = store.record_count() as u64;
    let data_used_mb = (records * RECORD_KB).div_ceil(1024);
    let mut out = Map::new();
    let entry = |max: u64, remaining: u64| json!({"Max": max, "Remaining": remaining});
    out.insert(
        "DailyApiRequests".into(),
        entry(max, max.saturating_sub(used)),
    );
    out.insert(
        "DataStorageMB".into(),
        entry(
            DATA_STORAGE_MB,
            DATA_STORAGE_MB.saturating_sub(data_used_mb),
        ),
    );
    for (name, max) in FIXED {
        out.insert((*name).into(), entry(*max, *max));
    }
    Reply::ok(Value::Object(out))
}
