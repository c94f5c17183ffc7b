//! Fault injection on send calls: a queue of faults, each firing on the next `count` sends.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A fault for the next `count` send calls (`POST …/Messages.json`, `POST …/messages`).
///
/// Faults queue in the order given; each send takes one firing from the fault at the front.
/// Over HTTP: `{"type": "rate_limit", "count": 2, "retry_after_secs": 1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answer 429 (Twilio code 20429, Graph code 130429) with `Retry-After`.
    RateLimit {
        /// How many sends it answers.
        count: u32,
        /// The `Retry-After` header value, in seconds.
        retry_after_secs: u64,
    },
    /// Answer this 5xx status with the provider's error body; nothing is sent.
    ServerError {
        /// How many sends it answers.
        count: u32,
        /// HTTP status, 500..=599.
        status: u16,
    },
    /// Wait before handling the send normally.
    Slow {
        /// How many sends it delays.
        count: u32,
        /// The delay, at most 60,000 ms.
        delay_ms: u64,
    },
}

/// Most faults queued at once.
pub(crate) const MAX_QUEUED: usize = 100;

impl Fault {
    /// How many sends it still applies to.
    pub fn count(&self) -> u32 {
        match self {
            Fault::RateLimit { count, .. }
            | Fault::ServerError { count, .. }
            | Fault::Slow { count, .. } => *count,
        }
    }

    fn count_mut(&mut self) -> &mut u32 {
        match self {
            Fault::RateLimit { count, .. }
            | Fault::ServerError { count, .. }
            | Fault::Slow { count, .. } => count,
        }
    }

    /// Checks the fault's fields; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.count() == 0 {
            return Err("count must be at least 1".into());
        }
        match self {
            Fault::RateLimit {
                retry_after_secs, ..
            } if *retry_after_secs > 86_400 => Err("retry_after_secs must be at most 86400".into()),
            Fault::ServerError { status, .. } if !(500..=599).contains(status) => {
                Err(format!("status must be between 500 and 599, got {status}"))
            }
            Fault::Slow { delay_ms, .. } if *delay_ms > 60_000 => {
                Err("delay_ms must be at most 60000".into())
            }
            _ => Ok(()),
        }
    }
}

/// What a fault decided for one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    None,
    Delay(Duration),
    RateLimit { retry_after_secs: u64 },
    ServerError { status: u16 },
}

/// The queue of pending faults.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    queue: VecDeque<Fault>,
}

impl FaultQueue {
    /// Queues a validated fault.
    pub(crate) fn push(&mut self, fault: Fault) -> Result<(), String> {
        fault.validate()?;
        if self.queue.len() >= MAX_QUEUED {
            return Err(format!("at most {MAX_QUEUED} faults can be queued"));
        }
        self.queue.push_back(fault);
        Ok(())
    }

    /// Takes one firing for the current send.
    pub(crate) fn take(&mut self) -> Injected {
        let Some(front) = self.queue.front_mut() else {
            return Injected::None;
        };
        let injected = match front {
            Fault::RateLimit {
                retry_after_secs, ..
            } => Injected::RateLimit {
                retry_after_secs: *retry_after_secs,
            },
            Fault::ServerError { status, .. } => Injected::ServerError { status: *status },
            Fault::Slow { delay_ms, .. } => Injected::Delay(Duration::from_millis(*delay_ms)),
        };
        let count = front.count_mut();
        *count -= 1;
        if *count == 0 {
            self.queue.pop_front();
        }
        injected
    }

    /// The pending faults with their remaining counts.
    pub(crate) fn pending(&self) -> Vec<Fault> {
        self.queue.iter().cloned().collect()
    }

    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_in_order_and_count_down() {
        let mut q = FaultQueue::default();
        q.push(Fault::RateLimit {
            count: 2,
            retry_after_secs: 3,
        })
        .unwrap();
        q.push(Fault::ServerError {
            count: 1,
            status: 503,
        })
        .unwrap();
        assert_eq!(
            q.take(),
            Injected::RateLimit {
                retry_after_secs: 3
            }
        );
        assert_eq!(q.pending()[0].count(), 1);
        assert_eq!(
            q.take(),
            Injected::RateLimit {
                retry_after_secs: 3
            }
        );
        assert_eq!(q.take(), Injected::ServerError { status: 503 });
        assert_eq!(q.take(), Injected::None);
    }

    #[test]
    fn invalid_faults_name_the_field() {
        let mut q = FaultQueue::default();
        let e = q
            .push(Fault::ServerError {
                count: 1,
                status: 404,
            })
            .unwrap_err();
        assert!(e.contains("status"), "{e}");
        let e = q
            .push(Fault::Slow {
                count: 0,
                delay_ms: 1,
            })
            .unwrap_err();
        assert!(e.contains("count"), "{e}");
        let json: Result<Fault, _> =
            serde_json::from_str(r#"{"type":"slow","count":1,"delay_ms":5,"extra":1}"#);
        assert!(json.is_err());
    }
}
