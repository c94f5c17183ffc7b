//! Rolling-window rate limits (Salesforce's "per minute" limits for Enhanced Chat).
//!
//! The clock is a parameter: handlers pass `Instant::now()`, unit tests pass made-up instants.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The window every MIAW limit uses.
pub(crate) const MINUTE: Duration = Duration::from_secs(60);

/// The instants of the accepted hits in the last window. Bounded: never more than `limit`
/// entries (a refused hit is not recorded).
#[derive(Debug, Default)]
pub(crate) struct RollingWindow {
    hits: VecDeque<Instant>,
}

impl RollingWindow {
    /// Records a hit at `now` when fewer than `limit` hits fall in the `window` before it;
    /// otherwise returns how long until the oldest of them leaves the window (for `Retry-After`).
    pub(crate) fn try_hit(
        &mut self,
        now: Instant,
        limit: u32,
        window: Duration,
    ) -> Result<(), Duration> {
        while let Some(&oldest) = self.hits.front() {
            if now.saturating_duration_since(oldest) >= window {
                self.hits.pop_front();
            } else {
                break;
            }
        }
        if self.hits.len() >= limit as usize {
            let oldest = self.hits.front().copied().unwrap_or(now);
            return Err(window.saturating_sub(now.saturating_duration_since(oldest)));
        }
        self.hits.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_over_the_limit_and_recovers_as_hits_age_out() {
        let t0 = Instant::now();
        let mut w = RollingWindow::default();
        for s in 0..3 {
            assert!(w.try_hit(t0 + Duration::from_secs(s), 3, MINUTE).is_ok());
        }
        let wait = w
            .try_hit(t0 + Duration::from_secs(10), 3, MINUTE)
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        // The first hit leaves the window at t0 + 60 s: one slot again, not two.
        assert!(w.try_hit(t0 + MINUTE, 3, MINUTE).is_ok());
        assert!(w.try_hit(t0 + MINUTE, 3, MINUTE).is_err());
        assert!(w.hits.len() <= 3);
    }

    #[test]
    fn a_zero_limit_refuses_everything() {
        let mut w = RollingWindow::default();
        assert!(w.try_hit(Instant::now(), 0, MINUTE).is_err());
    }
}
