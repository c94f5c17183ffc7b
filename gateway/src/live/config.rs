//! `[miaw]`: the live-messaging deployment (Salesforce Messaging for In-App and
//! Web, custom-client API), which channels use it, the routing attributes sent
//! with each conversation, and the limits of the stream supervisor.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::hours::OfficeHoursConfig;
use super::messages::MessagesConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiawConfig {
    /// Off until `url`, `org_id` and `deployment` name a Custom Client deployment.
    pub enabled: bool,
    /// The deployment's SCRT URL (`https://<domain>.my.salesforce-scrt.com`).
    pub url: String,
    /// The org id (15 or 18 characters); sent as `X-Org-Id`.
    pub org_id: String,
    /// The Embedded Service deployment's API name (`esDeveloperName`).
    pub deployment: String,
    pub capabilities_version: String,
    pub timeout_secs: u64,
    /// Channels whose escalations open a live conversation; every other channel makes a Case.
    pub channels: Vec<String>,
    /// A customer message equal to this (ignoring case and surrounding space) ends the chat.
    pub end_keyword: String,
    /// Longer messages to the rep are split into parts of at most this many characters.
    pub max_message_chars: usize,
    /// The transcript goes to the rep in at most this many messages (the newest turns);
    /// a longer transcript is also attached whole as a text file.
    pub transcript_max_messages: usize,
    /// An escalation whose conversation cannot be opened this long after it was
    /// accepted (MIAW down, rate-limited) becomes a Case.
    pub open_deadline_secs: u64,
    /// How long a replica owns a session's event stream without renewing.
    pub stream_lease_secs: u64,
    /// How often the supervisor renews its leases and looks for streams to take.
    pub supervisor_interval_ms: u64,
    /// Event streams one replica holds at most.
    pub max_streams: usize,
    /// Customer messages the gateway posts to one conversation per rolling minute
    /// (Salesforce allows 22); more wait in the queue.
    pub messages_per_minute: u32,
    /// Messages waiting for the rep in one session at most; beyond, 429.
    pub max_queued_messages: usize,
    /// The longest value of a caller attribute passed on as a routing attribute
    /// (a custom parameter's Maximum Length; Salesforce refuses longer ones).
    pub attribute_max_chars: usize,
    /// Routing attribute names (the channel variable names configured in Salesforce).
    pub attribute_names: AttributeNames,
    /// `Chat_Consumer_Type` values.
    pub consumer_type: ConsumerTypes,
    /// `Origin` value per channel name; a channel not listed sends its own name.
    #[serde(default)]
    pub origin: BTreeMap<String, String>,
    /// `Priority` value per priority (low, medium, high, critical).
    pub priority: BTreeMap<String, String>,
    /// Caller `attributes` passed on as routing attributes; any other is dropped
    /// (and the drop recorded in the session's events).
    #[serde(default)]
    pub allowed_attributes: Vec<String>,
    /// Customer identity tokens for verified customers (user verification).
    #[serde(default)]
    pub identity: Option<IdentityConfig>,
    /// Overrides of the localized customer-facing messages.
    #[serde(default)]
    pub messages: MessagesConfig,
    #[serde(default)]
    pub office_hours: OfficeHoursConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeNames {
    pub session_id: String,
    pub consumer_type: String,
    pub origin: String,
    pub priority: String,
    pub language: String,
    /// The routing attribute a voice call's hand-over mode (`live_transfer`, `logged`) is sent
    /// in; empty (the default): not sent, since MIAW refuses attributes the deployment does
    /// not define.
    #[serde(default)]
    pub voice_mode: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerTypes {
    pub authenticated: String,
    pub anonymous: String,
}

/// The key customer identity JWTs are signed with (RS256), registered in
/// Salesforce's user verification settings under `kid` and `issuer`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    pub private_key_file: PathBuf,
    pub kid: String,
    pub issuer: String,
    /// The `aud` claim: the org's My Domain URL.
    pub audience: String,
    #[serde(default = "default_identity_ttl")]
    pub ttl_secs: u64,
}

fn default_identity_ttl() -> u64 {
    300
}

impl MiawConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Whether `channel` escalations go to live messaging.
    pub fn routes(&self, channel: &str) -> bool {
        self.enabled && self.channels.iter().any(|c| c == channel)
    }

    /// The client settings.
    pub fn client_config(&self) -> salesforce::miaw::MiawConfig {
        salesforce::miaw::MiawConfig {
            url: self.url.trim_end_matches('/').to_string(),
            org_id: self.org_id.clone(),
            deployment: self.deployment.clone(),
            capabilities_version: self.capabilities_version.clone(),
            timeout: self.timeout(),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.messages.validate()?;
        self.office_hours.validate()?;
        if !self.enabled {
            return Ok(());
        }
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") => {}
            _ => {
                return Err(format!(
                    "miaw.url must be the deployment's SCRT URL (https://…salesforce-scrt.com), got {:?}",
                    self.url
                ));
            }
        }
        if !matches!(self.org_id.len(), 15 | 18)
            || !self.org_id.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err("miaw.org_id must be the 15- or 18-character org id".into());
        }
        let api_name = |s: &str| {
            s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !api_name(&self.deployment) {
            return Err(format!(
                "miaw.deployment must be the deployment's API name (letters, digits, underscores), got {:?}",
                self.deployment
            ));
        }
        for (key, name) in [
            (
                "miaw.attribute_names.session_id",
                &self.attribute_names.session_id,
            ),
            (
                "miaw.attribute_names.consumer_type",
                &self.attribute_names.consumer_type,
            ),
            ("miaw.attribute_names.origin", &self.attribute_names.origin),
            (
                "miaw.attribute_names.priority",
                &self.attribute_names.priority,
            ),
            (
                "miaw.attribute_names.language",
                &self.attribute_names.language,
            ),
        ] {
            if !name.is_empty() && !api_name(name.trim_start_matches('_')) {
                return Err(format!(
                    "{key} must be a channel variable name (letters, digits, underscores) or empty to leave it out, got {name:?}"
                ));
            }
        }
        for name in &self.allowed_attributes {
            if !api_name(name.trim_start_matches('_')) {
                return Err(format!(
                    "miaw.allowed_attributes: {name:?} is not a channel variable name"
                ));
            }
        }
        if self.end_keyword.trim().is_empty() {
            return Err("miaw.end_keyword must not be empty".into());
        }
        if !(100..=100_000).contains(&self.max_message_chars) {
            return Err("miaw.max_message_chars must be between 100 and 100000".into());
        }
        if self.transcript_max_messages == 0 || self.transcript_max_messages > 20 {
            return Err("miaw.transcript_max_messages must be between 1 and 20".into());
        }
        if self.stream_lease_secs < 3 {
            return Err("miaw.stream_lease_secs must be at least 3 (renewed every third)".into());
        }
        if self.supervisor_interval_ms == 0
            || self.supervisor_interval_ms > self.stream_lease_secs * 1000 / 3
        {
            return Err(
                "miaw.supervisor_interval_ms must be between 1 and a third of miaw.stream_lease_secs"
                    .into(),
            );
        }
        if self.max_queued_messages == 0 || self.attribute_max_chars == 0 {
            return Err(
                "miaw.max_queued_messages and miaw.attribute_max_chars must be at least 1".into(),
            );
        }
        if self.max_streams == 0 || self.messages_per_minute == 0 || self.open_deadline_secs == 0 {
            return Err(
                "miaw.max_streams, miaw.messages_per_minute and miaw.open_deadline_secs must be at least 1"
                    .into(),
            );
        }
        for level in ["low", "medium", "high", "critical"] {
            if !self.priority.contains_key(level) {
                return Err(format!("miaw.priority.{level} is missing"));
            }
        }
        Ok(())
    }
}
