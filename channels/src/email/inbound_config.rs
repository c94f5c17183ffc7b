//! `[channels.email.inbound]`: how customer replies reach `POST /channels/email/inbound`.
//! The settings arrive with the inbound route; until then the table takes no keys.

use serde::Deserialize;

/// `[channels.email.inbound]` (empty for now: the inbound route brings its settings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailInboundConfig {}
