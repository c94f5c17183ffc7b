//! MIAW fault injection (`PUT /__emulator/miaw/faults`): dropped streams, delayed events and
//! failing calls. Separate from the REST fault plan (`/__emulator/faults`).

use serde::{Deserialize, Serialize};

/// The MIAW operations a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Token,
    Continuation,
    CreateConversation,
    SendMessage,
    SendFile,
    EndSession,
    CloseConversation,
    Sse,
}

/// "The next `times` calls of `operation` answer `status`."
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailPlan {
    pub operation: Operation,
    pub status: u16,
    pub times: u32,
    /// `send_message` only: the message is accepted (recorded, echoed) and then the
    /// answer is `status` anyway — a response lost after the work was done.
    #[serde(default)]
    pub after_commit: bool,
}

/// The MIAW fault plan. `Default` injects nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MiawFaults {
    /// Every SSE stream is closed by the server this many seconds after it opened.
    pub drop_stream_every_secs: Option<u64>,
    /// Each event is held this long on every stream before it is written (pings are not).
    pub delay_events_ms: u64,
    /// Failing calls, counted down as they fire. At most [`MAX_FAIL_PLANS`] entries.
    pub fail: Vec<FailPlan>,
}

/// Bound on `fail` entries.
pub const MAX_FAIL_PLANS: usize = 32;

impl MiawFaults {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.fail.len() > MAX_FAIL_PLANS {
            return Err(format!("at most {MAX_FAIL_PLANS} fail entries"));
        }
        if self.drop_stream_every_secs == Some(0) {
            return Err("drop_stream_every_secs must be at least 1 (or null)".into());
        }
        for plan in &self.fail {
            if !(400..=599).contains(&plan.status) {
                return Err(format!(
                    "fail status must be a 4xx or 5xx code, got {}",
                    plan.status
                ));
            }
        }
        Ok(())
    }

    /// Takes one failure for `operation`, if one is planned (and not an after-commit one): its status.
    pub(crate) fn take(&mut self, operation: Operation) -> Option<u16> {
        self.take_plan(operation, false)
    }

    /// Takes one after-commit failure for `operation`, if one is planned: its status.
    pub(crate) fn take_after_commit(&mut self, operation: Operation) -> Option<u16> {
        self.take_plan(operation, true)
    }

    fn take_plan(&mut self, operation: Operation, after_commit: bool) -> Option<u16> {
        let plan = self
            .fail
            .iter_mut()
            .find(|p| p.operation == operation && p.times > 0 && p.after_commit == after_commit)?;
        plan.times -= 1;
        let status = plan.status;
        self.fail.retain(|p| p.times > 0);
        Some(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_down_per_operation() {
        let mut f = MiawFaults {
            fail: vec![FailPlan {
                operation: Operation::SendMessage,
                status: 503,
                times: 2,
                after_commit: false,
            }],
            ..Default::default()
        };
        assert_eq!(f.take(Operation::Token), None);
        assert_eq!(f.take(Operation::SendMessage), Some(503));
        assert_eq!(f.take(Operation::SendMessage), Some(503));
        assert_eq!(f.take(Operation::SendMessage), None);
        assert!(f.fail.is_empty());
    }

    #[test]
    fn validation_refuses_nonsense() {
        let bad = MiawFaults {
            drop_stream_every_secs: Some(0),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = MiawFaults {
            fail: vec![FailPlan {
                operation: Operation::Sse,
                status: 200,
                times: 1,
                after_commit: false,
            }],
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
