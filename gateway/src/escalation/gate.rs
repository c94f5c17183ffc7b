//! Salesforce etiquette shared by every worker of a process: a circuit breaker
//! that stops calling a Salesforce that keeps failing, and a pause when the org's
//! daily API limit is reached. While the gate is open no job is claimed (so no
//! attempt is spent); once its interval passes, exactly one probe job may run,
//! and its outcome closes or reopens the gate.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use salesforce::ErrorClass;

/// Why the gate is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenReason {
    /// Salesforce answered `REQUEST_LIMIT_EXCEEDED`.
    RateLimited,
    /// Consecutive 5xx / lock / transport / auth failures.
    Unavailable,
}

/// What a worker may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Closed: work normally.
    Go,
    /// Half-open: this worker runs the single probe; report its outcome.
    Probe,
    /// Open: wait this long before asking again.
    Wait(Duration),
}

/// How an attempt went, as far as Salesforce's health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Salesforce answered (success, or a permanent error for this record).
    Answered,
    /// Salesforce failed with this class (Retryable, Auth or RateLimit).
    Failed(ErrorClass),
    /// The attempt never reached Salesforce (no job, a database error).
    NoCall,
}

#[derive(Debug, Clone)]
pub struct GateConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before one probe.
    pub open_for: Duration,
    /// How long all work pauses after `REQUEST_LIMIT_EXCEEDED` before one probe.
    pub rate_limit_pause: Duration,
}

#[derive(Debug)]
enum Mode {
    Closed,
    Open {
        until: Instant,
        reason: OpenReason,
    },
    HalfOpen {
        reason: OpenReason,
        probe_in_flight: bool,
    },
}

#[derive(Debug)]
struct State {
    mode: Mode,
    consecutive_failures: u32,
    opened_total: u64,
    probes_total: u64,
}

/// What `/readyz` and `/metrics` show.
#[derive(Debug, Clone, Serialize)]
pub struct GateSnapshot {
    pub state: &'static str,
    pub reason: Option<OpenReason>,
    pub consecutive_failures: u32,
    pub opened_total: u64,
    pub probes_total: u64,
}

#[derive(Debug)]
pub struct Gate {
    config: GateConfig,
    state: Mutex<State>,
}

impl Gate {
    pub fn new(config: GateConfig) -> Gate {
        Gate {
            config,
            state: Mutex::new(State {
                mode: Mode::Closed,
                consecutive_failures: 0,
                opened_total: 0,
                probes_total: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave it inconsistent (every
        // update is a single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks whether this worker may call Salesforce now.
    pub fn permit(&self) -> Permit {
        let mut s = self.lock();
        let now = Instant::now();
        match s.mode {
            Mode::Closed => Permit::Go,
            Mode::Open { until, .. } if now < until => Permit::Wait(until - now),
            Mode::Open { reason, .. } => {
                s.mode = Mode::HalfOpen {
                    reason,
                    probe_in_flight: true,
                };
                s.probes_total += 1;
                Permit::Probe
            }
            Mode::HalfOpen {
                probe_in_flight: true,
                ..
            } => Permit::Wait(Duration::from_millis(100)),
            Mode::HalfOpen { reason, .. } => {
                s.mode = Mode::HalfOpen {
                    reason,
                    probe_in_flight: true,
                };
                s.probes_total += 1;
                Permit::Probe
            }
        }
    }

    /// Reports how an attempt made under `permit` went.
    pub fn record(&self, permit: Permit, outcome: CallOutcome) {
        let mut s = self.lock();
        let probing = permit == Permit::Probe;
        match outcome {
            CallOutcome::Answered => {
                s.consecutive_failures = 0;
                if probing || !matches!(s.mode, Mode::Open { .. }) {
                    if !matches!(s.mode, Mode::Closed) {
                        tracing::info!("Salesforce answers again; resuming work.");
                    }
                    s.mode = Mode::Closed;
                }
            }
            CallOutcome::Failed(ErrorClass::RateLimit) => {
                s.consecutive_failures = 0;
                self.open(
                    &mut s,
                    OpenReason::RateLimited,
                    self.config.rate_limit_pause,
                );
            }
            CallOutcome::Failed(ErrorClass::Permanent) => {
                // The record was refused; Salesforce itself is fine.
                s.consecutive_failures = 0;
                if probing {
                    s.mode = Mode::Closed;
                }
            }
            CallOutcome::Failed(_) => {
                s.consecutive_failures += 1;
                if probing || s.consecutive_failures >= self.config.failure_threshold {
                    let reason = match s.mode {
                        Mode::HalfOpen { reason, .. } | Mode::Open { reason, .. } => reason,
                        Mode::Closed => OpenReason::Unavailable,
                    };
                    let wait = match reason {
                        OpenReason::RateLimited => self.config.rate_limit_pause,
                        OpenReason::Unavailable => self.config.open_for,
                    };
                    self.open(&mut s, reason, wait);
                }
            }
            CallOutcome::NoCall => {
                if probing && let Mode::HalfOpen { reason, .. } = s.mode {
                    s.mode = Mode::HalfOpen {
                        reason,
                        probe_in_flight: false,
                    };
                }
            }
        }
    }

    fn open(&self, s: &mut State, reason: OpenReason, wait: Duration) {
        // Counted once per pause: a failed probe extends it.
        if matches!(s.mode, Mode::Closed) {
            s.opened_total += 1;
            tracing::warn!(reason = ?reason, wait_ms = wait.as_millis() as u64, "Pausing Salesforce work.");
        }
        s.mode = Mode::Open {
            until: Instant::now() + wait,
            reason,
        };
    }

    pub fn snapshot(&self) -> GateSnapshot {
        let s = self.lock();
        let (state, reason) = match s.mode {
            Mode::Closed => ("closed", None),
            Mode::Open { reason, .. } => ("open", Some(reason)),
            Mode::HalfOpen { reason, .. } => ("half_open", Some(reason)),
        };
        GateSnapshot {
            state,
            reason,
            consecutive_failures: s.consecutive_failures,
            opened_total: s.opened_total,
            probes_total: s.probes_total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(open_ms: u64) -> Gate {
        Gate::new(GateConfig {
            failure_threshold: 3,
            open_for: Duration::from_millis(open_ms),
            rate_limit_pause: Duration::from_millis(open_ms * 2),
        })
    }

    #[test]
    fn opens_after_consecutive_failures_then_probes_once() {
        let g = gate(30);
        for _ in 0..2 {
            assert_eq!(g.permit(), Permit::Go);
            g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        }
        assert_eq!(g.snapshot().state, "closed");
        g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        assert_eq!(g.snapshot().state, "open");
        assert!(matches!(g.permit(), Permit::Wait(_)));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(g.permit(), Permit::Probe);
        // Only one probe at a time.
        assert!(matches!(g.permit(), Permit::Wait(_)));
        g.record(Permit::Probe, CallOutcome::Failed(ErrorClass::Retryable));
        assert_eq!(g.snapshot().state, "open");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(g.permit(), Permit::Probe);
        g.record(Permit::Probe, CallOutcome::Answered);
        assert_eq!(g.snapshot().state, "closed");
        assert_eq!(g.permit(), Permit::Go);
        assert_eq!(g.snapshot().probes_total, 2);
        assert_eq!(g.snapshot().opened_total, 1);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let g = gate(30);
        g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        g.record(Permit::Go, CallOutcome::Answered);
        g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        assert_eq!(g.snapshot().state, "closed");
    }

    #[test]
    fn rate_limit_pauses_at_once_and_permanent_errors_do_not_count() {
        let g = gate(30);
        g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Permanent));
        g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Permanent));
        g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Permanent));
        assert_eq!(g.snapshot().state, "closed");
        g.record(Permit::Go, CallOutcome::Failed(ErrorClass::RateLimit));
        let snap = g.snapshot();
        assert_eq!(
            (snap.state, snap.reason),
            ("open", Some(OpenReason::RateLimited))
        );
        // The pause is the rate-limit one (60 ms), not the breaker's (30 ms).
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(g.permit(), Permit::Wait(_)));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(g.permit(), Permit::Probe);
        g.record(Permit::Probe, CallOutcome::Failed(ErrorClass::RateLimit));
        assert_eq!(g.snapshot().state, "open");
    }

    #[test]
    fn a_probe_that_found_no_job_lets_another_probe() {
        let g = gate(10);
        for _ in 0..3 {
            g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        }
        std::thread::sleep(Duration::from_millis(15));
        assert_eq!(g.permit(), Permit::Probe);
        g.record(Permit::Probe, CallOutcome::NoCall);
        assert_eq!(g.permit(), Permit::Probe);
    }
}
