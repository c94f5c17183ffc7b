//! Emulator configuration (TOML or JSON via serde). Every field has a default, so an
//! empty file (or `EmulatorConfig::default()`) gives a working org.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::schema::{CustomField, FieldDef, FieldKind};
use crate::tls::TlsConfig;

/// The whole emulated org.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EmulatorConfig {
    /// 15-character organization id (`00D…`). Tokens start with it; identity URLs use its 18-char form.
    pub org_id: String,
    /// Connected (or External Client) apps allowed at the token endpoint.
    pub connected_apps: Vec<ConnectedApp>,
    /// Users that can log in (password, JWT `sub`, client-credentials run-as).
    pub users: Vec<UserConfig>,
    /// `DailyApiRequests` maximum (the `MAX` in `Sforce-Limit-Info: api-usage=N/MAX`).
    pub daily_api_limit: u64,
    /// Custom fields added to the standard schema.
    pub custom_fields: Vec<CustomField>,
    /// First `CaseNumber` handed out (`1001` → `00001001`).
    pub case_number_start: u64,
    /// Accepted API versions (inclusive range of major numbers).
    pub api_versions: ApiVersions,
    /// Access tokens die after this many seconds (Salesforce's default session timeout is 2 hours).
    pub session_timeout_secs: u64,
    /// Maximum length of `EmailMessage.TextBody` / `HtmlBody` (the describe length is 32000;
    /// some orgs report 131072).
    pub email_body_max_length: usize,
    /// Autolaunched flows answerable at `actions/custom/flow/{name}`.
    pub flows: Vec<FlowConfig>,
    /// The OAuth web-server flow (authorization codes and the refresh tokens it issues).
    pub web_flow: WebFlowConfig,
    /// Base URL put in every absolute URL the emulator hands out (`instance_url`, the identity
    /// URL, the SOAP `serverUrl`): `scheme://host[:port]`, no path. Set it when clients reach the
    /// emulator through a proxy or another name. Default: the scheme and address it serves on.
    pub public_url: Option<String>,
    /// Serve HTTPS (absent: plain HTTP).
    pub tls: Option<TlsConfig>,
    /// Messaging for In-App and Web (Enhanced Chat) on the same URL, which is also the SCRT URL.
    pub miaw: MiawConfig,
    /// Where rep replies on Cases are posted (what Handoff's Apex trigger does on a real org).
    /// Absent: nothing is posted. Settable at runtime with `PUT /__emulator/case-webhook`.
    pub case_webhook: Option<CaseWebhookConfig>,
}

/// The case webhook: the emulator posts the rep-reply event (issue 8 contract §1) here after a
/// rep's public comment or outbound email, signed as the shipped Apex signs it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseWebhookConfig {
    /// Full URL of the gateway's `POST /salesforce/events`.
    pub url: String,
    /// Shared secret: adds `X-Handoff-Timestamp` and `X-Handoff-Signature: sha256=<hex>` over
    /// `timestamp + "." + body`.
    #[serde(default)]
    pub hmac_secret: Option<String>,
    /// Adds `Authorization: Bearer <JWT>` signed RS256 with the emulator's own key (its
    /// certificate is at `GET /__emulator/case-webhook/certificate`), as a Named Credential with
    /// the JWT protocol does.
    #[serde(default)]
    pub jwt: Option<CaseWebhookJwt>,
    /// Callout timeout (Apex's maximum is 120 s).
    #[serde(default = "default_webhook_timeout")]
    pub timeout_secs: u64,
}

/// The `iss` and `aud` claims of the webhook's JWT (`exp` = `iat` + 120 s, Salesforce's default).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseWebhookJwt {
    pub issuer: String,
    pub audience: String,
}

fn default_webhook_timeout() -> u64 {
    10
}

impl CaseWebhookConfig {
    /// Checks the URL and the timeout (1 to 120 s, Apex's callout limit).
    pub fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "case_webhook.url must start with http:// or https://, got '{}'",
                self.url
            ));
        }
        if reqwest::Url::parse(&self.url).is_err() {
            return Err(format!(
                "case_webhook.url '{}' is not a valid URL",
                self.url
            ));
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err("case_webhook.timeout_secs must be between 1 and 120".to_string());
        }
        if self.hmac_secret.as_deref().is_some_and(str::is_empty) {
            return Err("case_webhook.hmac_secret is empty; leave it out instead".to_string());
        }
        if let Some(jwt) = &self.jwt
            && (jwt.issuer.is_empty() || jwt.audience.is_empty())
        {
            return Err("case_webhook.jwt needs a non-empty issuer and audience".to_string());
        }
        Ok(())
    }
}

/// The MIAW (Enhanced Chat custom client) side: deployments, pre-chat parameters, limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MiawConfig {
    /// Embedded Service deployments (`esDeveloperName`) of type Custom Client; token requests
    /// naming another one answer 400.
    pub deployments: Vec<String>,
    /// Custom parameters (hidden pre-chat fields): routing attribute keys the channel knows.
    /// Other keys are dropped silently; longer values answer 400.
    pub custom_parameters: Vec<CustomParameter>,
    /// Lifetime of the access tokens the emulator signs.
    pub token_ttl_secs: u64,
    /// Seconds between `ping` events on every SSE stream.
    pub ping_secs: u64,
    /// End-user messages accepted per conversation per rolling minute (then 429).
    pub messages_per_minute: u32,
    /// Token requests (both kinds and continuation) per org per rolling minute (then 429).
    pub token_requests_per_minute: u32,
    /// Events kept per end-user subject for `Last-Event-Id` replay; older ones are gone.
    pub replay_limit: usize,
    /// Conversations kept in memory; when full, the oldest closed one is forgotten, and with
    /// none closed a new conversation answers 503.
    pub max_conversations: usize,
    /// Whether a new conversation is routed (true) or fails with `NoAgentsAvailable`.
    pub agents_available: bool,
    /// Keys that verify customer identity JWTs (user verification).
    pub identity_keys: Vec<IdentityKey>,
}

/// A custom parameter of the messaging channel (`Channel Variable Name` and `Maximum Length`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CustomParameter {
    pub name: String,
    pub max_length: usize,
}

/// A user-verification key: RS256 customer identity JWTs with this `kid` and `iss`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdentityKey {
    pub kid: String,
    pub issuer: String,
    /// PEM public key (`BEGIN PUBLIC KEY`) or certificate.
    pub public_key_pem: String,
}

impl Default for MiawConfig {
    fn default() -> Self {
        let param = |name: &str, max_length| CustomParameter {
            name: name.to_string(),
            max_length,
        };
        MiawConfig {
            deployments: vec!["Handoff_Chat".to_string()],
            custom_parameters: vec![
                param("OpencxSessionId", 255),
                param("Chat_Consumer_Type", 80),
                param("Origin", 80),
                param("Priority", 40),
                param("Chat_language", 20),
                param("_firstName", 80),
                param("_lastName", 80),
                param("_email", 80),
                param("_subject", 255),
            ],
            token_ttl_secs: 3600,
            ping_secs: 15,
            messages_per_minute: 22,
            token_requests_per_minute: 200,
            replay_limit: 1000,
            max_conversations: 100_000,
            agents_available: true,
            identity_keys: Vec::new(),
        }
    }
}

/// A connected app / external client app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectedApp {
    pub client_id: String,
    pub client_secret: String,
    /// PEM public key (`BEGIN PUBLIC KEY`) or certificate (`BEGIN CERTIFICATE`) for the JWT bearer flow.
    #[serde(default)]
    pub jwt_public_key_pem: Option<String>,
    /// Username the client-credentials flow runs as. Without it that grant answers
    /// `invalid_grant` / `no client credentials user enabled`, as Salesforce does.
    #[serde(default)]
    pub run_as: Option<String>,
    /// Pre-issued refresh tokens this app accepts (besides those the web-server flow issues).
    #[serde(default)]
    pub refresh_tokens: Vec<RefreshTokenConfig>,
    /// Callback URLs of the web-server flow: `redirect_uri` must equal one of them exactly.
    /// More can be added at runtime with `EmulatorHandle::add_callback_url`.
    #[serde(default)]
    pub callback_urls: Vec<String>,
    /// Whether the `authorization_code` grant needs the client secret ("Require Secret for Web
    /// Server Flow", on by default in Salesforce).
    #[serde(default = "default_true")]
    pub require_secret_for_web_server_flow: bool,
    /// The app's selected OAuth scopes. A web-server flow without `scope` gets all of them; one
    /// asking for a scope outside them is refused with `invalid_scope`. `full` allows every
    /// scope except `refresh_token`/`offline_access`, which must be selected themselves.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

impl ConnectedApp {
    /// An app with a client id and secret and the defaults for everything else (no run-as
    /// user, no JWT key, no callback URLs, secret required, [`default_scopes`]).
    pub fn new(client_id: &str, client_secret: &str) -> Self {
        ConnectedApp {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            jwt_public_key_pem: None,
            run_as: None,
            refresh_tokens: Vec::new(),
            callback_urls: Vec::new(),
            require_secret_for_web_server_flow: true,
            scopes: default_scopes(),
        }
    }
}

fn default_true() -> bool {
    true
}

/// `api`, `id`, `openid`, `refresh_token` (a refresh token is issued by default).
pub fn default_scopes() -> Vec<String> {
    ["api", "id", "openid", "refresh_token"]
        .map(String::from)
        .to_vec()
}

/// Limits of the OAuth web-server flow.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct WebFlowConfig {
    /// An authorization code dies after this many seconds (Salesforce: 15 minutes).
    pub code_ttl_secs: u64,
    /// Unredeemed codes held at once; expired ones are purged first, then the oldest.
    pub max_codes: usize,
    /// Refresh tokens issued by the flow held at once; past it the oldest is forgotten.
    pub max_refresh_tokens: usize,
    /// Callback URLs per connected app (configured plus added at runtime).
    pub max_callback_urls: usize,
}

impl Default for WebFlowConfig {
    fn default() -> Self {
        WebFlowConfig {
            code_ttl_secs: 900,
            max_codes: 10_000,
            max_refresh_tokens: 10_000,
            max_callback_urls: 100,
        }
    }
}

/// A pre-issued refresh token and the user it logs in as.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefreshTokenConfig {
    pub token: String,
    pub username: String,
}

/// A user of the org.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserConfig {
    pub username: String,
    pub password: String,
    /// Appended to the password in the username-password flow.
    #[serde(default)]
    pub security_token: String,
    /// Full name (`User.Name`); defaults to the username.
    #[serde(default)]
    pub name: Option<String>,
    /// `User.Email`; defaults to the username.
    #[serde(default)]
    pub email: Option<String>,
    /// Name of the user's Profile (`User.Profile.Name`).
    #[serde(default = "default_profile")]
    pub profile: String,
    /// API names of the permission sets assigned to the user (`PermissionSetAssignment`).
    #[serde(default)]
    pub permission_sets: Vec<String>,
}

/// `System Administrator`.
pub fn default_profile() -> String {
    ADMIN_PROFILE.to_string()
}

impl UserConfig {
    /// A user with a password, the default profile and no security token or permission sets.
    pub fn new(username: &str, password: &str) -> Self {
        UserConfig {
            username: username.to_string(),
            password: password.to_string(),
            security_token: String::new(),
            name: None,
            email: None,
            profile: default_profile(),
            permission_sets: Vec::new(),
        }
    }
}

/// Inclusive range of accepted API major versions (`v20.0` … `v67.0`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiVersions {
    pub min: u32,
    pub max: u32,
}

/// A configured autolaunched flow that creates one record per input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlowConfig {
    /// Flow API name, the last path segment of `actions/custom/flow/{name}`.
    pub name: String,
    /// Object the flow creates (default `Case`).
    #[serde(default = "default_flow_object")]
    pub creates: String,
    /// Flow input variable → field of the created record.
    #[serde(default)]
    pub mapping: BTreeMap<String, String>,
    /// Field values set on every created record (input values win).
    #[serde(default)]
    pub defaults: serde_json::Map<String, serde_json::Value>,
}

fn default_flow_object() -> String {
    "Case".to_string()
}

pub const DEFAULT_CLIENT_ID: &str = "handoff-local-client";
pub const DEFAULT_CLIENT_SECRET: &str = "handoff-local-secret";
pub const DEFAULT_USERNAME: &str = "integration@handoff.local";
pub const DEFAULT_PASSWORD: &str = "handoff-password";
pub const DEFAULT_SECURITY_TOKEN: &str = "handoff-token";
/// The console administrator of the default config (sign in at the login page).
pub const CONSOLE_ADMIN_USERNAME: &str = "admin@handoff.emulator";
pub const CONSOLE_ADMIN_PASSWORD: &str = "admin-password";
/// The read-only console operator of the default config.
pub const CONSOLE_OPERATOR_USERNAME: &str = "ops@handoff.emulator";
pub const CONSOLE_OPERATOR_PASSWORD: &str = "ops-password";
/// Permission sets the default users hold (what a gateway can require).
pub const CONSOLE_ADMIN_PERMISSION_SET: &str = "Handoff_Console_Admin";
pub const CONSOLE_OPERATOR_PERMISSION_SET: &str = "Handoff_Console_Operator";
/// Profile names.
pub const ADMIN_PROFILE: &str = "System Administrator";
pub const STANDARD_PROFILE: &str = "Standard User";
pub const DEFAULT_ORG_ID: &str = "00D5g000004Hnd0";
/// `Organization.Name` of the emulated org.
pub const ORG_NAME: &str = "Handoff Emulated Org";

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            org_id: DEFAULT_ORG_ID.to_string(),
            connected_apps: vec![ConnectedApp {
                client_id: DEFAULT_CLIENT_ID.to_string(),
                client_secret: DEFAULT_CLIENT_SECRET.to_string(),
                jwt_public_key_pem: None,
                run_as: Some(DEFAULT_USERNAME.to_string()),
                refresh_tokens: Vec::new(),
                callback_urls: Vec::new(),
                require_secret_for_web_server_flow: true,
                scopes: default_scopes(),
            }],
            users: vec![
                UserConfig {
                    security_token: DEFAULT_SECURITY_TOKEN.to_string(),
                    name: Some("Handoff Integration".to_string()),
                    ..UserConfig::new(DEFAULT_USERNAME, DEFAULT_PASSWORD)
                },
                UserConfig {
                    name: Some("Ada Admin".to_string()),
                    permission_sets: vec![CONSOLE_ADMIN_PERMISSION_SET.to_string()],
                    ..UserConfig::new(CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD)
                },
                UserConfig {
                    name: Some("Oscar Operator".to_string()),
                    profile: STANDARD_PROFILE.to_string(),
                    permission_sets: vec![CONSOLE_OPERATOR_PERMISSION_SET.to_string()],
                    ..UserConfig::new(CONSOLE_OPERATOR_USERNAME, CONSOLE_OPERATOR_PASSWORD)
                },
            ],
            daily_api_limit: 100_000,
            custom_fields: default_custom_fields(),
            case_number_start: 1001,
            api_versions: ApiVersions::default(),
            session_timeout_secs: 7200,
            email_body_max_length: 32_000,
            flows: Vec::new(),
            public_url: None,
            tls: None,
            miaw: MiawConfig::default(),
            case_webhook: None,
            web_flow: WebFlowConfig::default(),
        }
    }
}

impl Default for ApiVersions {
    fn default() -> Self {
        ApiVersions { min: 20, max: 67 }
    }
}

/// The custom fields Handoff's Salesforce package adds to Case.
pub fn default_custom_fields() -> Vec<CustomField> {
    let string_field = |name: &str, label: &str, length: usize| FieldDef {
        name: name.to_string(),
        label: label.to_string(),
        kind: FieldKind::String,
        length: Some(length),
        length_in_bytes: false,
        required: false,
        createable: true,
        updateable: true,
        external_id: false,
        unique: false,
        default: None,
        reference_to: None,
        relationship_name: None,
    };
    vec![
        CustomField {
            object: "Case".to_string(),
            field: string_field("Case_From__c", "Case From", 255),
        },
        CustomField {
            object: "Case".to_string(),
            field: FieldDef {
                external_id: true,
                unique: true,
                ..string_field("Handoff_Session_Id__c", "Handoff Session Id", 128)
            },
        },
    ]
}

impl EmulatorConfig {
    /// Checks the parts that would otherwise fail later in confusing ways.
    pub fn validate(&self) -> Result<(), String> {
        if self.org_id.len() != 15
            || !self.org_id.starts_with("00D")
            || !self.org_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(format!(
                "org_id must be a 15-character id starting with 00D, got '{}'",
                self.org_id
            ));
        }
        if let Some(url) = &self.public_url {
            public_host(url)?;
        }
        if self.api_versions.min > self.api_versions.max {
            return Err("api_versions.min is greater than api_versions.max".to_string());
        }
        for app in &self.connected_apps {
            if let Some(run_as) = &app.run_as
                && self.user(run_as).is_none()
            {
                return Err(format!(
                    "connected app '{}' runs as unknown user '{run_as}'",
                    app.client_id
                ));
            }
            for rt in &app.refresh_tokens {
                if self.user(&rt.username).is_none() {
                    return Err(format!(
                        "refresh token of app '{}' names unknown user '{}'",
                        app.client_id, rt.username
                    ));
                }
            }
            if app.callback_urls.len() > self.web_flow.max_callback_urls {
                return Err(format!(
                    "connected app '{}' has more than web_flow.max_callback_urls ({}) callback URLs",
                    app.client_id, self.web_flow.max_callback_urls
                ));
            }
            for url in &app.callback_urls {
                check_callback_url(url)
                    .map_err(|e| format!("callback_urls of app '{}': {e}", app.client_id))?;
            }
            for scope in &app.scopes {
                if scope.is_empty()
                    || !scope
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!(
                        "scopes of app '{}': '{scope}' is not a scope name",
                        app.client_id
                    ));
                }
            }
            if let Some(pem) = &app.jwt_public_key_pem {
                crate::oauth::decoding_key(pem)
                    .map_err(|e| format!("jwt_public_key_pem of app '{}': {e}", app.client_id))?;
            }
        }
        for user in &self.users {
            check_profile_name(&user.profile)
                .map_err(|e| format!("user '{}': {e}", user.username))?;
            for ps in &user.permission_sets {
                check_permission_set_name(ps)
                    .map_err(|e| format!("user '{}': {e}", user.username))?;
            }
        }
        if self.web_flow.code_ttl_secs == 0
            || self.web_flow.max_codes == 0
            || self.web_flow.max_refresh_tokens == 0
        {
            return Err(
                "web_flow.code_ttl_secs, max_codes and max_refresh_tokens must be at least 1"
                    .to_string(),
            );
        }
        if self.miaw.ping_secs == 0 {
            return Err("miaw.ping_secs must be at least 1".to_string());
        }
        if self.miaw.replay_limit == 0 || self.miaw.max_conversations == 0 {
            return Err("miaw.replay_limit and miaw.max_conversations must be at least 1".into());
        }
        if let Some(hook) = &self.case_webhook {
            hook.validate()?;
        }
        for key in &self.miaw.identity_keys {
            crate::oauth::decoding_key(&key.public_key_pem)
                .map_err(|e| format!("miaw.identity_keys '{}': {e}", key.kid))?;
        }
        Ok(())
    }

    /// The public URL without a trailing slash, if configured.
    pub(crate) fn public_url(&self) -> Option<String> {
        self.public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_string())
    }

    pub(crate) fn user(&self, username: &str) -> Option<&UserConfig> {
        self.users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(username))
    }

    pub(crate) fn app(&self, client_id: &str) -> Option<&ConnectedApp> {
        self.connected_apps
            .iter()
            .find(|a| a.client_id == client_id)
    }
}

/// Longest callback URL accepted.
pub const MAX_CALLBACK_URL_LEN: usize = 2000;

/// A callback URL must be absolute (`scheme://…`), without a fragment, at most
/// [`MAX_CALLBACK_URL_LEN`] characters. Matching against `redirect_uri` is exact.
pub fn check_callback_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_CALLBACK_URL_LEN {
        return Err(format!(
            "callback URL is longer than {MAX_CALLBACK_URL_LEN} characters"
        ));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("callback URL '{url}' is not an absolute URL: {e}"))?;
    if parsed.cannot_be_a_base() || parsed.fragment().is_some() {
        return Err(format!(
            "callback URL '{url}' must be scheme://host/path without a fragment"
        ));
    }
    Ok(())
}

/// A Profile name: 1 to 255 characters, no control characters.
fn check_profile_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(format!(
            "profile '{name}' must be 1 to 255 printable characters"
        ));
    }
    Ok(())
}

/// A permission set API name: a letter first, then letters, digits and single underscores,
/// not ending with one, at most 80 characters (Salesforce's developer-name rule).
fn check_permission_set_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 80
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.contains("__")
        && !name.ends_with('_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "permission set '{name}' is not an API name (a letter, then letters, digits and single underscores, at most 80)"
        ))
    }
}

/// The host of a public URL (`https://sf.example.test:8443` → `sf.example.test`), or why the
/// URL is not usable as a base: it must be `http(s)://host[:port]` with no path, query or user.
pub(crate) fn public_host(url: &str) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "public_url '{url}' {why}; give scheme://host[:port], e.g. https://sf.example.test:8443"
        ))
    };
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return bad("must start with http:// or https://");
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() {
        return bad("has no host");
    }
    if authority.contains(['/', '?', '#', '@', ' ']) {
        return bad("has a path, query, fragment or user part");
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default().to_string()
    } else {
        authority.split(':').next().unwrap_or_default().to_string()
    };
    if host.is_empty() {
        return bad("has no host");
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use figment::Figment;
    use figment::providers::{Format, Serialized, Toml};

    use super::*;

    #[test]
    fn toml_overrides_merge_with_defaults() {
        let toml = r#"
            org_id = "00D000000000001"
            daily_api_limit = 50

            [[custom_fields]]
            object = "Case"
            name = "Legacy_Key__c"
            label = "Legacy Key"
            kind = "string"
            length = 64
            external_id = true

            [[flows]]
            name = "Create_Case"
            mapping = { subject = "Subject" }
            defaults = { Origin = "Chat" }
        "#;
        let config: EmulatorConfig = Figment::from(Serialized::defaults(EmulatorConfig::default()))
            .merge(Toml::string(toml))
            .extract()
            .unwrap();
        config.validate().unwrap();
        assert_eq!(config.daily_api_limit, 50);
        assert_eq!(config.users[0].username, DEFAULT_USERNAME);
        assert_eq!(config.connected_apps[0].client_id, DEFAULT_CLIENT_ID);
        let field = &config.custom_fields[0].field;
        assert!(field.createable && field.updateable && field.external_id && !field.unique);
        assert_eq!(config.flows[0].creates, "Case");
        assert_eq!(config.flows[0].mapping["subject"], "Subject");
        // JSON round trip keeps everything.
        let json = serde_json::to_string(&config).unwrap();
        let back: EmulatorConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.org_id, "00D000000000001");
        assert_eq!(back.custom_fields.len(), 1);
    }

    #[test]
    fn case_webhook_from_toml_with_default_timeout_and_validation() {
        let parse = |toml: &str| -> EmulatorConfig {
            Figment::from(Serialized::defaults(EmulatorConfig::default()))
                .merge(Toml::string(toml))
                .extract()
                .unwrap()
        };
        assert_eq!(EmulatorConfig::default().case_webhook, None);
        let c = parse(
            r#"
            [case_webhook]
            url = "http://127.0.0.1:8080/salesforce/events"
            hmac_secret = "s"
            jwt = { issuer = "00D5g000004Hnd0EAC", audience = "https://gw" }
        "#,
        );
        let hook = c.case_webhook.clone().unwrap();
        assert_eq!(hook.timeout_secs, 10);
        assert_eq!(hook.jwt.unwrap().audience, "https://gw");
        c.validate().unwrap();
        let bad = parse("[case_webhook]\nurl = \"localhost:8080\"\n");
        assert!(bad.validate().unwrap_err().contains("http://"));
        let bad = parse("[case_webhook]\nurl = \"http://x\"\ntimeout_secs = 121\n");
        assert!(bad.validate().unwrap_err().contains("timeout_secs"));
    }

    #[test]
    fn a_miaw_section_merges_with_its_defaults() {
        let toml = r#"
            [miaw]
            messages_per_minute = 5
            custom_parameters = [{ name = "Only_One", max_length = 10 }]
        "#;
        let config: EmulatorConfig = Figment::from(Serialized::defaults(EmulatorConfig::default()))
            .merge(Toml::string(toml))
            .extract()
            .unwrap();
        config.validate().unwrap();
        assert_eq!(config.miaw.messages_per_minute, 5);
        assert_eq!(config.miaw.deployments, vec!["Handoff_Chat".to_string()]);
        assert_eq!(config.miaw.custom_parameters.len(), 1);
        assert_eq!(config.miaw.token_requests_per_minute, 200);
        // A config written before MIAW existed still loads, with the defaults.
        let old: EmulatorConfig = serde_json::from_str(r#"{"org_id":"00D000000000001"}"#).unwrap();
        assert_eq!(old.miaw, MiawConfig::default());
        let mut bad = EmulatorConfig::default();
        bad.miaw.ping_secs = 0;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn validation_catches_bad_settings() {
        let mut c = EmulatorConfig {
            org_id: "001000000000001".into(),
            ..EmulatorConfig::default()
        };
        assert!(c.validate().is_err());
        c.org_id = DEFAULT_ORG_ID.into();
        c.connected_apps[0].run_as = Some("ghost@example.com".into());
        assert!(c.validate().is_err());
        c.connected_apps[0].run_as = None;
        c.connected_apps[0].jwt_public_key_pem = Some("not a key".into());
        assert!(c.validate().is_err());
        c.connected_apps[0].jwt_public_key_pem = None;
        assert!(c.validate().is_ok());
        for bad in [
            "sf.example.test",
            "https://",
            "https://h/x",
            "ftp://h",
            "https://u@h",
        ] {
            c.public_url = Some(bad.into());
            assert!(c.validate().is_err(), "{bad}");
        }
        c.public_url = Some("https://sf.example.test:8443/".into());
        assert!(c.validate().is_ok());
        assert_eq!(public_host("https://[::1]:9").unwrap(), "::1");
    }
}
