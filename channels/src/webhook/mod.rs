//! Standard Webhooks (<https://www.standardwebhooks.com>): the signature Handoff puts on every
//! webhook it sends to chat and bridge receivers, the check it makes on webhooks it receives,
//! the HTTP sender, and the guard on which URLs it will call.

mod sender;
mod signature;
mod target;
mod timestamped;

pub(crate) use sender::retry_after;
pub use sender::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Envelope, EnvelopeData, WebhookSender};
pub use signature::{SecretError, TOLERANCE_SECS, VerifyError, WebhookSecret};
pub use target::{MAX_URL_CHARS, UrlProblem, check_webhook_url, is_private_ip};
pub use timestamped::{SIGNATURE_HEADER, TIMESTAMP_HEADER, TimestampedError, TimestampedSecret};

use crate::InboundRequest;

impl WebhookSecret {
    /// Verifies a received request's `webhook-id`, `webhook-timestamp` and `webhook-signature`
    /// headers over its exact body, against the time it was received.
    ///
    /// # Errors
    /// [`VerifyError`], e.g. [`VerifyError::MissingHeader`].
    pub fn verify_request(&self, request: &InboundRequest) -> Result<(), VerifyError> {
        let header =
            |name: &'static str| request.header(name).ok_or(VerifyError::MissingHeader(name));
        self.verify(
            header("webhook-id")?,
            header("webhook-timestamp")?,
            header("webhook-signature")?,
            &request.body,
            request.received_at,
        )
    }
}
