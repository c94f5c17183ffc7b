//! Configuration: compiled-in defaults, then a TOML file, then `HANDOFF_*`
//! environment variables (`HANDOFF_SALESFORCE__LOGIN_URL` → `salesforce.login_url`).
//! Secrets are `SecretString` and never printed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../handoff.default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub max_body_bytes: usize,
    /// The URL Salesforce (the Named Credential), the inbound-mail service and
    /// messaging providers reach this gateway at, e.g. `https://handoff.acme.example`.
    /// `handoff doctor` probes the inbound routes there; provider webhooks are verified
    /// over URLs rebuilt from it (without it they answer 503).
    #[serde(default)]
    pub public_url: Option<String>,
    pub salesforce: SalesforceConfig,
    pub case: CaseConfig,
    pub worker: WorkerConfig,
    pub idempotency: IdempotencyConfig,
    pub retention: RetentionConfig,
    pub http: HttpConfig,
    pub sandbox: SandboxConfig,
    #[serde(default)]
    pub notices: NoticesConfig,
    /// `[channels.<name>]` tables: built-in channels by their own name, bridges by any other
    /// (see `channels::ChannelConfig`). A built-in without a table runs with its defaults.
    #[serde(default)]
    pub channels: BTreeMap<String, channels::ChannelConfig>,
    /// Live messaging (Salesforce MIAW).
    pub miaw: crate::live::config::MiawConfig,
    /// Rep replies on Cases: push (`POST /salesforce/events`) and poll.
    pub case_replies: crate::replies::config::CaseRepliesConfig,
    /// The ops console at `/console` (docs/console.md).
    #[serde(default)]
    pub console: ConsoleConfig,
    /// The keys that seal every secret Handoff stores (docs/security.md).
    #[serde(default)]
    pub secrets: SecretsConfig,
}

/// `[secrets]`: AES-256-GCM keys, each with an id, for the secrets Handoff stores in its
/// database (the Salesforce refresh token, client secrets entered in the console). The first
/// key is the active one (new secrets are sealed with it); the others still open what they
/// sealed until `handoff keys rotate` re-seals everything with the active key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SecretsConfig {
    /// `id:base64-32-bytes` entries separated by commas, newlines or spaces
    /// (`HANDOFF_SECRETS__KEYS`); `handoff keys generate` prints one.
    pub keys: Option<secrecy::SecretString>,
    /// A file holding the same entries, one per line (`#` starts a comment).
    pub keys_file: Option<std::path::PathBuf>,
    /// Not a setting: with no key configured, seal with one random key that lives as long as
    /// the process (`crate::secrets::Keyring::ephemeral`). The sandbox, the demo, the
    /// benchmarks and the tests set it; a real `serve` without keys stores no secret.
    #[serde(skip)]
    pub ephemeral_fallback: bool,
}

/// `[console]`: the ops console.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConsoleConfig {
    /// Serve `/console` (on by default).
    pub enabled: bool,
    /// A console sign-in lasts this long.
    pub session_hours: u64,
    /// Cookies carry `Secure` and the `__Host-` prefix. Unset: when `public_url` is https.
    pub secure_cookies: Option<bool>,
    /// Sign in with Salesforce and "Connect Salesforce".
    pub salesforce: ConsoleSalesforceConfig,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            session_hours: 12,
            secure_cookies: None,
            salesforce: ConsoleSalesforceConfig::default(),
        }
    }
}

/// `[console.salesforce]`: the connected (or external client) app whose web-server flow
/// (authorization code + PKCE) signs operators in and connects the org. Its callback URL is
/// `{public_url}/console/oauth/callback`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConsoleSalesforceConfig {
    /// The app's consumer key. Unset: an admin may enter it in the console (stored sealed).
    pub client_id: Option<String>,
    /// The app's consumer secret, when the app requires one for the web-server flow.
    pub client_secret: Option<secrecy::SecretString>,
    /// Where operators log in (authorize and token endpoints). Default: `salesforce.login_url`.
    pub login_url: Option<String>,
    /// Who may sign in: Salesforce usernames, Profile names, PermissionSet API names. All
    /// empty: nobody signs in with Salesforce (local accounts only).
    pub allowed_users: Vec<String>,
    pub allowed_profiles: Vec<String>,
    pub allowed_permission_sets: Vec<String>,
    /// Who among them is an admin (retry, revoke, tokens, Connect Salesforce); everyone else
    /// signed in with Salesforce is a read-only operator.
    pub admin_users: Vec<String>,
    pub admin_profiles: Vec<String>,
    pub admin_permission_sets: Vec<String>,
}

/// How the HTTP server protects itself from slow and numerous clients.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpConfig {
    /// A connection whose request headers have not all arrived after this long is closed.
    pub header_read_timeout_secs: u64,
    /// A request body not fully received this long after its headers is answered
    /// 408 and the connection closed.
    pub body_read_timeout_secs: u64,
    /// API requests handled at once; more are answered 503 + `Retry-After` at once
    /// (health endpoints are never shed). Request bodies held in memory are bounded
    /// by `max_in_flight × max_body_bytes`.
    pub max_in_flight: usize,
    /// Open `GET /v1/sessions/{id}/stream` subscriptions at most.
    pub max_session_streams: usize,
}

/// `handoff serve --sandbox`.
#[derive(Debug, Clone, Deserialize)]
pub struct SandboxConfig {
    /// `/v1/sandbox` hands out an admin token to anyone who asks, so sandbox mode
    /// refuses a listen address other than loopback unless this is true
    /// (`--sandbox-allow-remote`).
    pub allow_remote: bool,
}

/// Messages the gateway itself sends to customers (`system.message`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct NoticesConfig {
    /// Sent when a session that wanted live messaging became a Case;
    /// `{case_number}` is replaced by the CaseNumber.
    pub case_created: String,
}

impl Default for NoticesConfig {
    fn default() -> Self {
        NoticesConfig {
            case_created: "Thanks for waiting. Your request has been passed to our support team \
                           as case {case_number}; we will reply here."
                .into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SalesforceConfig {
    /// Token endpoint host: login/test.salesforce.com or the My Domain URL.
    pub login_url: String,
    pub api_version: String,
    pub timeout_secs: u64,
    pub max_concurrency: usize,
    pub breaker_failure_threshold: u32,
    pub breaker_open_secs: u64,
    pub rate_limit_pause_secs: u64,
    /// How Handoff authenticates (`type` = jwt_bearer | client_credentials | password | refresh_token).
    #[serde(default)]
    pub credentials: Option<salesforce::Credentials>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CaseConfig {
    pub from_field: String,
    pub from_value: String,
    pub external_id_field: String,
    /// channel name → Case.Origin value.
    pub origin: BTreeMap<String, String>,
    /// low|medium|high|critical → Case.Priority value.
    pub priority: BTreeMap<String, String>,
    /// caller attribute name → Case field API name (the allow-list).
    pub attribute_fields: BTreeMap<String, String>,
    /// A new Case-path escalation from a customer whose earlier Handoff Case is
    /// still open joins that Case (a follow-up comment block) instead of opening
    /// another.
    #[serde(default = "append_to_open_case_default")]
    pub append_to_open_case: bool,
}

fn append_to_open_case_default() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerConfig {
    pub concurrency: usize,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub poll_interval_ms: u64,
    pub lease_secs: u64,
}

/// The `Idempotency-Key` header of the HTTP API.
#[derive(Debug, Clone, Deserialize)]
pub struct IdempotencyConfig {
    /// How long a key and its stored response are kept (0: never replayed).
    pub retention_hours: u64,
    /// After this long an in-flight key is presumed abandoned and may be taken over.
    pub lock_timeout_secs: u64,
}

impl IdempotencyConfig {
    pub fn policy(&self) -> crate::store::IdempotencyPolicy {
        crate::store::IdempotencyPolicy {
            retention_ms: (self.retention_hours * 3_600_000) as i64,
            lock_timeout_ms: (self.lock_timeout_secs * 1000) as i64,
        }
    }
}

/// How long finished sessions keep their data (docs/retention.md).
#[derive(Debug, Clone, Deserialize)]
pub struct RetentionConfig {
    /// Run the sweep inside `handoff serve` (`handoff retention run` works either way).
    pub enabled: bool,
    pub interval_secs: u64,
    pub erase_payload_after_days: u32,
    pub erase_event_data_after_days: u32,
    /// 0: events and jobs rows are kept.
    pub delete_timeline_after_days: u32,
}

impl RetentionConfig {
    pub fn policy(&self) -> crate::store::RetentionPolicy {
        let days = |d: u32| chrono::Duration::days(i64::from(d));
        crate::store::RetentionPolicy {
            erase_payload_after: days(self.erase_payload_after_days),
            erase_event_data_after: days(self.erase_event_data_after_days),
            delete_timeline_after: (self.delete_timeline_after_days > 0)
                .then(|| days(self.delete_timeline_after_days)),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let r = self;
        if r.erase_payload_after_days == 0 || r.erase_event_data_after_days == 0 {
            return Err(ConfigError(
                "retention.erase_payload_after_days and retention.erase_event_data_after_days must be at least 1".into(),
            ));
        }
        if r.delete_timeline_after_days != 0
            && r.delete_timeline_after_days
                < r.erase_event_data_after_days
                    .max(r.erase_payload_after_days)
        {
            return Err(ConfigError(format!(
                "retention.delete_timeline_after_days ({}) must be 0 (keep) or at least the erase periods",
                r.delete_timeline_after_days
            )));
        }
        if r.interval_secs == 0 {
            return Err(ConfigError(
                "retention.interval_secs must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// A configuration problem, naming the setting and what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Defaults → optional file → environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new().merge(Toml::string(DEFAULTS));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "config file {} does not exist; create it (see deploy/handoff.example.toml) or drop --config",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("HANDOFF_").split("__").ignore(&["config"]));
        let config: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The built-in defaults alone (the demo, the sandbox and tests start from these).
    pub fn defaults() -> Config {
        Figment::new()
            .merge(Toml::string(DEFAULTS))
            .extract()
            .expect("built-in defaults parse")
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.retention.validate()?;
        self.miaw.validate().map_err(ConfigError)?;
        self.case_replies.validate().map_err(ConfigError)?;
        if self.max_body_bytes < 1024 {
            return Err(ConfigError("max_body_bytes must be at least 1024".into()));
        }
        if !self.salesforce.api_version.starts_with('v') {
            return Err(ConfigError(format!(
                "salesforce.api_version must look like \"v66.0\", got {:?}",
                self.salesforce.api_version
            )));
        }
        if self.salesforce.breaker_failure_threshold == 0 || self.salesforce.max_concurrency == 0 {
            return Err(ConfigError(
                "salesforce.breaker_failure_threshold and salesforce.max_concurrency must be at least 1".into(),
            ));
        }
        if self.worker.lease_secs < 3 {
            return Err(ConfigError(
                "worker.lease_secs must be at least 3 (the lease is renewed every third of it)"
                    .into(),
            ));
        }
        if self.worker.concurrency == 0 || self.worker.max_attempts == 0 {
            return Err(ConfigError(
                "worker.concurrency and worker.max_attempts must be at least 1".into(),
            ));
        }
        for (key, name) in [
            ("case.from_field", &self.case.from_field),
            ("case.external_id_field", &self.case.external_id_field),
        ] {
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
                return Err(ConfigError(format!(
                    "{key} must be a Salesforce field API name, got {name:?}"
                )));
            }
        }
        if self.idempotency.retention_hours > 24 * 366 {
            return Err(ConfigError(format!(
                "idempotency.retention_hours must be at most {} (a year), got {}",
                24 * 366,
                self.idempotency.retention_hours
            )));
        }
        if !(1..=86_400).contains(&self.idempotency.lock_timeout_secs) {
            return Err(ConfigError(format!(
                "idempotency.lock_timeout_secs must be between 1 and 86400, got {}",
                self.idempotency.lock_timeout_secs
            )));
        }
        for (key, value) in [
            (
                "http.header_read_timeout_secs",
                self.http.header_read_timeout_secs,
            ),
            (
                "http.body_read_timeout_secs",
                self.http.body_read_timeout_secs,
            ),
        ] {
            if !(1..=3600).contains(&value) {
                return Err(ConfigError(format!(
                    "{key} must be between 1 and 3600 seconds, got {value}"
                )));
            }
        }
        if !(1..=100_000).contains(&self.http.max_session_streams) {
            return Err(ConfigError(format!(
                "http.max_session_streams must be between 1 and 100000, got {}",
                self.http.max_session_streams
            )));
        }
        if !(1..=100_000).contains(&self.http.max_in_flight) {
            return Err(ConfigError(format!(
                "http.max_in_flight must be between 1 and 100000, got {}",
                self.http.max_in_flight
            )));
        }
        for level in ["low", "medium", "high", "critical"] {
            if !self.case.priority.contains_key(level) {
                return Err(ConfigError(format!("case.priority.{level} is missing")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn load(toml: &str) -> Result<Config, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(toml.as_bytes()).expect("write config");
        Config::load(Some(file.path()))
    }

    /// A file's `[channels.<name>]` tables merge into the built-in defaults: settings without
    /// `type` keep the default table's type, other names add bridges.
    #[test]
    fn channel_tables_merge_into_the_defaults_and_build_the_registry() {
        let config = load(
            r#"
            [channels.sms]
            enabled = false

            [channels.chat]
            webhook_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

            [channels.line]
            type = "bridge"
            url = "https://line-bridge.example.com/handoff"
            secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            "#,
        )
        .expect("config loads");
        let registry = channels::Registry::from_config(&config.channels).expect("registry");
        assert_eq!(
            registry.names(),
            ["email", "chat", "whatsapp", "voice", "line"]
        );
        let chat = registry.get(&channels::ChannelKind::Chat).expect("chat");
        assert!(chat.capabilities().delivers);
        assert!(
            !format!("{config:?}").contains("MfKQ"),
            "secrets stay hidden"
        );
    }

    /// `[channels.email.inbound]` merges into the default email table; `[case]
    /// append_to_open_case` defaults to on.
    #[test]
    fn inbound_email_settings_load_from_the_file() {
        let config = load(
            r#"
            [channels.email]
            reply_to = "support+{token}@acme.example"

            [channels.email.inbound]
            hmac_secret = "0123456789abcdef0123"
            max_bytes = 1048576
            append_as = "email_message"
            append_new_conversations = false
            "#,
        )
        .expect("config loads");
        assert!(config.case.append_to_open_case);
        let inbound = crate::inbound::InboundSettings::from_config(&config).expect("valid");
        assert_eq!(inbound.max_bytes, 1_048_576);
        assert_eq!(inbound.append_as, channels::email::AppendAs::EmailMessage);
        assert!(!inbound.append_new_conversations);
        assert!(inbound.credentials.hmac.is_some() && inbound.credentials.path_token.is_none());
        assert_eq!(
            inbound.reply_to.as_deref(),
            Some("support+{token}@acme.example")
        );
        assert!(!format!("{config:?}").contains("0123456789abcdef0123"));
        let err = load("[channels.email.inbound]\nappend_as = \"fax\"\n").unwrap_err();
        // Figment names the table (the adapter enum is tagged by `type`) and the valid values.
        let err = err.to_string();
        assert!(
            err.contains("channels.email") && err.contains("email_message"),
            "{err}"
        );
    }

    /// `[channels.email]` with its `smtp` table (merged into the default table) makes email
    /// deliver; the password can come from the environment.
    #[test]
    fn an_email_table_with_a_relay_makes_email_deliver() {
        let config = load(
            r#"
            [channels.email]
            from = "Acme Support <support@acme.example>"
            reply_to = "support+{token}@acme.example"

            [channels.email.smtp]
            host = "127.0.0.1"
            port = 2525
            tls = "plain"
            username = "handoff"
            password = "smtp-pass-123"
            "#,
        )
        .expect("config loads");
        let registry = channels::Registry::from_config(&config.channels).expect("registry");
        let email = registry.get(&channels::ChannelKind::Email).expect("email");
        assert!(email.capabilities().delivers);
        assert!(!format!("{config:?}").contains("smtp-pass-123"));
        let defaults = channels::Registry::from_config(&Config::defaults().channels).unwrap();
        assert!(
            !defaults
                .get(&channels::ChannelKind::Email)
                .unwrap()
                .capabilities()
                .delivers,
            "no relay, no delivery"
        );
        let err = load("[channels.email.smtp]\nhost = \"127.0.0.1\"\n")
            .map(|c| channels::Registry::from_config(&c.channels).map(|_| ()))
            .expect("config loads")
            .unwrap_err();
        assert!(err.to_string().starts_with("channels.email.from:"), "{err}");
    }

    #[test]
    fn a_bad_channel_table_names_the_setting() {
        let config = load("[channels.sms]\ntype = \"voice\"\n").expect("config loads");
        let err = channels::Registry::from_config(&config.channels).unwrap_err();
        assert!(err.to_string().starts_with("channels.sms.type:"), "{err}");
        let err = load("[channels.fax]\nurl = \"https://fax.example.com\"\n").unwrap_err();
        assert!(err.to_string().contains("type"), "{err}");
    }
}
