//! Fault injection, settable at runtime (`EmulatorHandle::set_faults`, `PUT /__emulator/faults`).
//!
//! Faults apply to `/services/data` calls; the token endpoint only honours `token_error_next`.
//! Random faults draw from one RNG seeded with `seed`, so a run with a fixed seed and the same
//! request sequence injects the same faults.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The fault plan. `Default` injects nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// Delay added before every API call is handled.
    pub latency_ms: u64,
    /// Probability (0..=1) that an API call answers 503 `SERVER_UNAVAILABLE`.
    pub error_rate: f64,
    /// Probability (0..=1) that a write answers 400 `UNABLE_TO_LOCK_ROW`.
    pub lock_error_rate: f64,
    /// The next N API calls answer 503 `SERVER_UNAVAILABLE` (counts down).
    pub fail_next: u32,
    /// Every access token stops working after this many API calls (401 `INVALID_SESSION_ID`).
    pub token_expires_after_calls: Option<u32>,
    /// Overrides `daily_api_limit` from the config.
    pub daily_limit: Option<u64>,
    /// Probability (0..=1) that a call's effects are committed and then the connection is
    /// closed without any response bytes.
    pub drop_response_rate: f64,
    /// The next N API calls are committed and then dropped (counts down).
    pub drop_next: u32,
    /// The next N token requests answer 503 (counts down).
    pub token_error_next: u32,
    /// RNG seed for the random faults; `None` seeds from the OS.
    pub seed: Option<u64>,
}

impl Faults {
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("lock_error_rate", self.lock_error_rate),
            ("drop_response_rate", self.drop_response_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        Ok(())
    }
}

/// What the fault plan decided for one API call, before it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PreFault {
    None,
    ServerUnavailable,
    LockRow,
}

/// The live fault plan plus its RNG.
pub(crate) struct FaultState {
    pub(crate) faults: Faults,
    rng: StdRng,
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        let rng = rng_for(&faults);
        FaultState { faults, rng }
    }

    pub(crate) fn set(&mut self, faults: Faults) {
        self.rng = rng_for(&faults);
        self.faults = faults;
    }

    fn roll(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.random::<f64>() < rate
    }

    /// Decides 503 / lock faults for an API call (`is_write`: the call modifies records).
    pub(crate) fn before_call(&mut self, is_write: bool) -> PreFault {
        if self.faults.fail_next > 0 {
            self.faults.fail_next -= 1;
            return PreFault::ServerUnavailable;
        }
        let rate = self.faults.error_rate;
        if self.roll(rate) {
            return PreFault::ServerUnavailable;
        }
        let rate = self.faults.lock_error_rate;
        if is_write && self.roll(rate) {
            return PreFault::LockRow;
        }
        PreFault::None
    }

    /// Decides, after the call committed, whether its response is dropped.
    pub(crate) fn drop_response(&mut self) -> bool {
        if self.faults.drop_next > 0 {
            self.faults.drop_next -= 1;
            return true;
        }
        let rate = self.faults.drop_response_rate;
        self.roll(rate)
    }

    /// Whether this token request fails with 503.
    pub(crate) fn token_error(&mut self) -> bool {
        if self.faults.token_error_next > 0 {
            self.faults.token_error_next -= 1;
            return true;
        }
        false
    }
}

fn rng_for(faults: &Faults) -> StdRng {
    match faults.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    }
}
