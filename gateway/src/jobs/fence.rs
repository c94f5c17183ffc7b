//! The lease fence an attempt checks before each Salesforce call.
//!
//! A claimed job's lease runs to a deadline; each successful renewal moves it.
//! When renewals *fail* (the database is unreachable) the deadline stays put, and
//! once it passes another replica may already hold the job: the attempt must not
//! make another call. When a renewal finds the lease gone, the fence closes at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock::Clock;

/// The attempt no longer holds its job's lease (or cannot know that it does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Fenced {
    #[error("the job's lease was taken by another worker")]
    Lost,
    #[error("the job's lease expired without a successful renewal (is the database reachable?)")]
    Expired,
}

#[derive(Debug)]
pub struct Fence {
    clock: Arc<dyn Clock>,
    deadline: Mutex<Instant>,
    lost: AtomicBool,
}

impl Fence {
    /// A fence for a lease of `lease` taken at `taken_at` (read before the claim
    /// was sent, so the local deadline is never later than the database's).
    pub fn new(clock: Arc<dyn Clock>, taken_at: Instant, lease: Duration) -> Fence {
        Fence {
            clock,
            deadline: Mutex::new(taken_at + lease),
            lost: AtomicBool::new(false),
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// `Ok` while the lease is certainly held.
    pub fn check(&self) -> Result<(), Fenced> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(Fenced::Lost);
        }
        if self.clock.now() >= *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) {
            return Err(Fenced::Expired);
        }
        Ok(())
    }

    /// A renewal sent at `sent_at` succeeded: the lease runs `lease` from then.
    pub fn renewed(&self, sent_at: Instant, lease: Duration) {
        let mut deadline = self.deadline.lock().unwrap_or_else(|e| e.into_inner());
        *deadline = (*deadline).max(sent_at + lease);
    }

    /// A renewal found the lease gone.
    pub fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::clock::ManualClock;

    #[test]
    fn only_successful_renewals_move_the_deadline() {
        let clock = Arc::new(ManualClock::new());
        let lease = Duration::from_secs(3);
        let fence = Fence::new(clock.clone(), clock.now(), lease);
        clock.advance(Duration::from_secs(1));
        fence.renewed(clock.now(), lease);
        clock.advance(Duration::from_millis(2999));
        assert_eq!(fence.check(), Ok(()));
        // Renewals that error do not call `renewed`: the deadline passes.
        clock.advance(Duration::from_millis(1));
        assert_eq!(fence.check(), Err(Fenced::Expired));
    }

    #[test]
    fn a_lost_lease_closes_at_once() {
        let clock = Arc::new(ManualClock::new());
        let fence = Fence::new(clock.clone(), clock.now(), Duration::from_secs(3));
        fence.lose();
        assert_eq!(fence.check(), Err(Fenced::Lost));
    }
}
