//! [`Backoff`]: delays between reconnects of a MIAW event stream (miaw.md §4.7).

use std::time::Duration;

use rand::Rng;

/// The first delay before jitter.
const INITIAL: Duration = Duration::from_secs(1);
/// The largest delay.
const CAP: Duration = Duration::from_secs(30);
/// Growth factor per attempt.
const FACTOR: f64 = 1.5;

/// Reconnect delays: 1 s × 1.5ⁿ capped at 30 s, with jitter; reset after a healthy connection.
///
/// The n-th delay (from 0) is drawn uniformly from `[b/2, b]` with `b = min(1 s × 1.5ⁿ, 30 s)`,
/// so many streams dropped at once (a MIAW restart) do not reconnect in lockstep, and no delay
/// exceeds 30 s.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// A backoff at its first attempt.
    pub fn new() -> Self {
        Backoff { attempt: 0 }
    }

    /// The delay before the next reconnect; each call moves one attempt on.
    pub fn next_delay(&mut self) -> Duration {
        let base = ceiling(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let fraction: f64 = rand::rng().random_range(0.5..=1.0);
        base.mul_f64(fraction)
    }

    /// Back to the first delay: call it once a connection has proved healthy (an event arrived).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// The delay before jitter of attempt `n`.
fn ceiling(n: u32) -> Duration {
    // 1.5⁹ ≈ 38 > 30: from attempt 9 on the cap holds, and the power stays small.
    let grown = INITIAL.mul_f64(FACTOR.powi(n.min(9) as i32));
    grown.min(CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_by_half_within_jitter_and_stop_at_the_cap() {
        let mut backoff = Backoff::new();
        for n in 0..50u32 {
            let base = ceiling(n);
            let delay = backoff.next_delay();
            assert!(delay <= base, "attempt {n}: {delay:?} > {base:?}");
            assert!(delay >= base / 2, "attempt {n}: {delay:?} < {:?}", base / 2);
            assert!(delay <= CAP);
        }
        assert_eq!(ceiling(0), Duration::from_secs(1));
        assert_eq!(ceiling(1), Duration::from_millis(1500));
        assert_eq!(ceiling(2), Duration::from_millis(2250));
        assert_eq!(ceiling(8), Duration::from_secs(1).mul_f64(1.5f64.powi(8)));
        assert_eq!(ceiling(9), CAP);
        assert_eq!(ceiling(u32::MAX), CAP);
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new();
        for _ in 0..20 {
            backoff.next_delay();
        }
        backoff.reset();
        let first = backoff.next_delay();
        assert!(first <= Duration::from_secs(1) && first >= Duration::from_millis(500));
    }
}
