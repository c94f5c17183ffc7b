//! Errors of the emulators' Rust API (not the providers' HTTP errors, which are answers).

/// What can go wrong when a test drives an emulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No webhook URL is configured where the emulator must post.
    #[error("no webhook URL is configured for {0}")]
    NoWebhook(&'static str),
    /// An argument the real provider would never produce (the named field is wrong).
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The argument or field at fault.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// `replay_last_inbound` before any inbound request was sent.
    #[error("nothing to replay: no inbound request was sent yet")]
    NothingToReplay,
    /// The emulator holds as many entries as it keeps (see `docs/channels/emulators.md`).
    #[error("emulator limit reached: {0}")]
    LimitReached(&'static str),
    /// The webhook request could not be made or its answer not read.
    #[error("webhook request failed: {0}")]
    Request(#[from] reqwest::Error),
}

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }
}

/// Result of the emulators' Rust API.
pub type Result<T> = std::result::Result<T, Error>;
