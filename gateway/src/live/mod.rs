//! Live messaging: a session on the messaging route becomes a Salesforce
//! Messaging for In-App and Web (MIAW) conversation. `open` creates it (the
//! `open_conversation` job), `send` posts the queued messages to the rep in
//! order (`send_to_rep`), `end` ends it from our side (`end_conversation`), and
//! the `supervisor` holds one event stream per live session — through a lease,
//! so exactly one replica applies each session's events — and turns what the
//! rep does into outbox deliveries (`escalation/mapper/live.rs` says what each
//! event means). `messages` holds the localized customer-facing texts and
//! `hours` the office hours.

pub mod config;
mod end;
pub mod hours;
pub mod messages;
mod open;
mod send;
pub mod supervisor;

use std::sync::Arc;

use salesforce::miaw::{IdentitySigner, MiawClient};

use self::config::MiawConfig;
use self::hours::OfficeHours;
use self::messages::LocalizedMessages;

/// Everything live messaging needs at run time, built once from `[miaw]`.
pub struct Live {
    pub client: MiawClient,
    pub messages: LocalizedMessages,
    pub hours: OfficeHours,
    /// Signs customer identity tokens for verified customers, when configured.
    pub signer: Option<IdentitySigner>,
}

impl Live {
    /// `None` when live messaging is off.
    pub fn from_config(config: &MiawConfig) -> Result<Option<Arc<Live>>, String> {
        if !config.enabled {
            return Ok(None);
        }
        let client = MiawClient::new(config.client_config())
            .map_err(|e| format!("miaw: cannot build the client: {e}"))?;
        let signer = match &config.identity {
            None => None,
            Some(identity) => {
                let pem = std::fs::read_to_string(&identity.private_key_file).map_err(|e| {
                    format!(
                        "miaw.identity.private_key_file: cannot read {}: {e}",
                        identity.private_key_file.display()
                    )
                })?;
                Some(
                    IdentitySigner::from_pem(
                        &pem,
                        &identity.kid,
                        &identity.issuer,
                        &identity.audience,
                        std::time::Duration::from_secs(identity.ttl_secs),
                    )
                    .map_err(|e| format!("miaw.identity: {e}"))?,
                )
            }
        };
        let hours = OfficeHours::from_config(&config.office_hours)
            .map_err(|e| format!("miaw.office_hours: {e}"))?;
        Ok(Some(Arc::new(Live {
            client,
            messages: LocalizedMessages::new(&config.messages),
            hours,
            signer,
        })))
    }
}

/// The MIAW `language` for a BCP-47 tag (`en-US` → `en_US`).
pub fn salesforce_language(tag: &str) -> String {
    tag.replace('-', "_")
}
