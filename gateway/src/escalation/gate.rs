//! Salesforce etiquette shared by every worker of a process: a circuit breaker
//! that stops calling a Salesforce that keeps failing, and a pause when the org's
//! daily API limit is reached. While the gate is open no job is claimed (so no
//! attempt is spent); once its interval passes, exactly one probe job may run,
//! and its outcome closes or reopens the gate.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use salesforce::ErrorClass;

use crate::jobs::clock::{Clock, SystemClock};

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
        until: std::time::Instant,
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
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

/// A permit that must report an outcome. Dropped without one (the attempt
/// panicked or was abandoned), it reports [`CallOutcome::NoCall`], so a probe in
/// flight is always released and the gate never stays half-open waiting for it.
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    permit: Permit,
    reported: bool,
}

impl Ticket {
    pub fn permit(&self) -> Permit {
        self.permit
    }

    /// Reports how the attempt went.
    pub fn record(mut self, outcome: CallOutcome) {
        self.reported = true;
        self.gate.record(self.permit, outcome);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.reported {
            self.gate.record(self.permit, CallOutcome::NoCall);
        }
    }
}

impl Gate {
    pub fn new(config: GateConfig) -> Gate {
        Gate::with_clock(config, Arc::new(SystemClock))
    }

    /// A gate reading time from `clock` (tests advance it explicitly).
    pub fn with_clock(config: GateConfig, clock: Arc<dyn Clock>) -> Gate {
        Gate {
            config,
            clock,
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

    /// Like [`Gate::permit`], as a [`Ticket`] that reports `NoCall` if dropped
    /// without an outcome. `None`: wait this long.
    pub fn ticket(self: &Arc<Self>) -> Result<Ticket, Duration> {
        match self.permit() {
            Permit::Wait(wait) => Err(wait),
            permit => Ok(Ticket {
                gate: Arc::clone(self),
                permit,
                reported: false,
            }),
        }
    }

    /// A ticket for a permit already granted (the other jobs of a batch claimed
    /// under one `Go`).
    pub fn ticket_for(self: &Arc<Self>, permit: Permit) -> Ticket {
        Ticket {
            gate: Arc::clone(self),
            permit,
            reported: false,
        }
    }

    /// Asks whether this worker may call Salesforce now.
    pub fn permit(&self) -> Permit {
        let mut s = self.lock();
        let now = self.clock.now();
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
            until: self.clock.now() + wait,
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
    use crate::jobs::clock::ManualClock;

    /// A gate on a clock that moves only when the test says so (it used to read
    /// the wall clock, and each test slept 10–40 ms and trusted a 10–20 ms
    /// margin: on a loaded machine a sleep could overshoot a whole interval).
    fn gate(open_ms: u64) -> (Arc<Gate>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let gate = Gate::with_clock(
            GateConfig {
                failure_threshold: 3,
                open_for: Duration::from_millis(open_ms),
                rate_limit_pause: Duration::from_millis(open_ms * 2),
            },
            clock.clone(),
        );
        (Arc::new(gate), clock)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn opens_after_consecutive_failures_then_probes_once() {
        let (g, clock) = gate(30);
        for _ in 0..2 {
            assert_eq!(g.permit(), Permit::Go);
            g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        }
        assert_eq!(g.snapshot().state, "closed");
        g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        assert_eq!(g.snapshot().state, "open");
        clock.advance(ms(29));
        assert_eq!(g.permit(), Permit::Wait(ms(1)));
        clock.advance(ms(1));
        assert_eq!(g.permit(), Permit::Probe);
        // Only one probe at a time.
        assert!(matches!(g.permit(), Permit::Wait(_)));
        g.record(Permit::Probe, CallOutcome::Failed(ErrorClass::Retryable));
        assert_eq!(g.snapshot().state, "open");
        assert_eq!(g.permit(), Permit::Wait(ms(30)));
        clock.advance(ms(30));
        assert_eq!(g.permit(), Permit::Probe);
        g.record(Permit::Probe, CallOutcome::Answered);
        assert_eq!(g.snapshot().state, "closed");
        assert_eq!(g.permit(), Permit::Go);
        assert_eq!(g.snapshot().probes_total, 2);
        assert_eq!(g.snapshot().opened_total, 1);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let (g, _) = gate(30);
        g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        g.record(Permit::Go, CallOutcome::Answered);
        g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        assert_eq!(g.snapshot().state, "closed");
    }

    #[test]
    fn rate_limit_pauses_at_once_and_permanent_errors_do_not_count() {
        let (g, clock) = gate(30);
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
        clock.advance(ms(59));
        assert_eq!(g.permit(), Permit::Wait(ms(1)));
        clock.advance(ms(1));
        assert_eq!(g.permit(), Permit::Probe);
        g.record(Permit::Probe, CallOutcome::Failed(ErrorClass::RateLimit));
        assert_eq!(g.snapshot().state, "open");
    }

    #[test]
    fn a_probe_that_found_no_job_lets_another_probe() {
        let (g, clock) = gate(10);
        for _ in 0..3 {
            g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        }
        clock.advance(ms(10));
        assert_eq!(g.permit(), Permit::Probe);
        g.record(Permit::Probe, CallOutcome::NoCall);
        assert_eq!(g.permit(), Permit::Probe);
    }

    /// A probe whose attempt panicked used to leave the gate half-open with a
    /// probe "in flight" forever: no job was claimed again while `/readyz` said
    /// 200. A ticket dropped without an outcome now releases the probe.
    #[test]
    fn a_probe_ticket_dropped_without_an_outcome_releases_the_probe() {
        let (g, clock) = gate(10);
        for _ in 0..3 {
            g.record(Permit::Go, CallOutcome::Failed(ErrorClass::Retryable));
        }
        clock.advance(ms(10));
        let ticket = g.ticket().expect("a probe");
        assert_eq!(ticket.permit(), Permit::Probe);
        assert_eq!(g.ticket().unwrap_err(), ms(100), "one probe at a time");
        let panicked = std::thread::spawn(move || {
            let _held = ticket;
            panic!("the attempt panicked");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(g.ticket().expect("another probe").permit(), Permit::Probe);
    }
}
