//! An in-process signal that a session has new deliveries, for
//! `GET /v1/sessions/{id}/stream` subscribers on this replica: they read the
//! outbox when poked (and every second anyway, for deliveries another replica
//! wrote). Bounded: a slow subscriber misses pokes (it lags), never memory.

use std::sync::Arc;

use tokio::sync::broadcast;

/// Pokes kept for a slow subscriber before it lags (and re-reads the outbox).
const CAPACITY: usize = 1024;

#[derive(Clone, Debug)]
pub struct Feed {
    sender: broadcast::Sender<Arc<str>>,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    pub fn new() -> Feed {
        let (sender, _) = broadcast::channel(CAPACITY);
        Feed { sender }
    }

    /// Says `session_id` has new deliveries (nobody listening is fine).
    pub fn publish(&self, session_id: &str) {
        let _ = self.sender.send(Arc::from(session_id));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.sender.subscribe()
    }
}
