//! Rep replies on Cases: the console a rep uses to post a comment or send an email on a Case
//! (`/__emulator/cases/{caseId}/…`), and the case webhook that then posts the rep-reply event
//! to the gateway exactly as Handoff's Apex trigger does on a real org (issue 8 contract §1).
//!
//! Not Salesforce's API; unauthenticated (the emulator is a local tool); snake_case JSON in,
//! errors `{"message"}` for bad requests and unknown Cases, Salesforce's
//! `[{"message","errorCode","fields"}]` when the record itself is refused (`STRING_TOO_LONG`).
//!
//! Bounds: webhook events waiting to be posted [`QUEUE_LIMIT`] (beyond it an event is recorded as
//! a failed delivery, never posted); delivery attempts kept [`DELIVERY_LOG_LIMIT`].

pub(crate) mod console;
pub(crate) mod webhook;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::routing::{get, post, put};
use tokio::sync::mpsc;

use crate::config::CaseWebhookConfig;
use crate::server::AppState;

pub use webhook::{CaseWebhookDelivery, JWT_TTL_SECS, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// Events queued for the webhook and not yet posted.
pub const QUEUE_LIMIT: usize = 1_000;
/// Delivery attempts kept for `GET /__emulator/case-webhook/deliveries` (oldest dropped).
pub const DELIVERY_LOG_LIMIT: usize = 1_000;

/// The case-webhook state of one emulator.
pub(crate) struct Cases {
    /// The webhook in force (config at start, then `PUT /__emulator/case-webhook`).
    pub(crate) webhook: Mutex<Option<CaseWebhookConfig>>,
    /// The last [`DELIVERY_LOG_LIMIT`] attempts, oldest first.
    pub(crate) deliveries: Mutex<VecDeque<CaseWebhookDelivery>>,
    /// The emulator's RSA key and certificate for JWTs, made on first use (key generation takes
    /// a moment, and most emulators never sign one).
    pub(crate) signer: OnceLock<Result<webhook::Signer, String>>,
    /// Events for the one sender task (FIFO, so events go out in commit order).
    pub(crate) queue: mpsc::Sender<webhook::Outgoing>,
    /// The sender task's end of the queue, taken when the server starts.
    pub(crate) queue_rx: Mutex<Option<mpsc::Receiver<webhook::Outgoing>>>,
}

impl Cases {
    pub(crate) fn new(webhook: Option<CaseWebhookConfig>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_LIMIT);
        Cases {
            webhook: Mutex::new(webhook),
            deliveries: Mutex::new(VecDeque::new()),
            signer: OnceLock::new(),
            queue,
            queue_rx: Mutex::new(Some(rx)),
        }
    }
}

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/__emulator/cases/{case_id}/comments",
            post(console::comment),
        )
        .route("/__emulator/cases/{case_id}/emails", post(console::email))
        .route(
            "/__emulator/case-webhook",
            put(webhook::put_config).get(webhook::get_config),
        )
        .route(
            "/__emulator/case-webhook/certificate",
            get(webhook::certificate),
        )
        .route(
            "/__emulator/case-webhook/deliveries",
            get(webhook::deliveries),
        )
}
