//! The emulator clock: wall-clock time plus an offset tests move forward
//! (`advance_clock`), so 24-hour windows can be aged without waiting.
//!
//! Only window bookkeeping reads it; resource dates and webhook timestamps stay wall-clock,
//! so a gateway's staleness checks are not tripped by an advanced clock.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::server::lock;

/// Wall-clock time shifted by an offset.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset: Mutex<chrono::Duration>,
}

impl Clock {
    /// Emulator time now.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now() + *lock(&self.offset)
    }

    /// Moves emulator time forward by `by` (saturating at about 10,000 years).
    pub(crate) fn advance(&self, by: Duration) {
        let step = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::days(3_650_000));
        let mut offset = lock(&self.offset);
        *offset = offset
            .checked_add(&step)
            .unwrap_or(chrono::Duration::days(3_650_000));
    }
}

/// The customer-service window of both providers: 24 hours after the customer's last message.
pub(crate) const WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// Whether a window opened by a customer message at `last` is still open at `now`.
pub(crate) fn window_open(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_some_and(|at| now - at < WINDOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_ages_the_window() {
        let clock = Clock::default();
        let opened = clock.now();
        assert!(window_open(Some(opened), clock.now()));
        clock.advance(Duration::from_secs(23 * 3600));
        assert!(window_open(Some(opened), clock.now()));
        clock.advance(Duration::from_secs(3600));
        assert!(!window_open(Some(opened), clock.now()));
        assert!(!window_open(None, clock.now()));
    }
}
