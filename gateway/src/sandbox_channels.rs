//! The SMS and WhatsApp provider emulators (`channel-emulator`: Twilio's Messages API and
//! Meta's WhatsApp Cloud API) that `handoff serve --sandbox`, `handoff demo` and
//! `handoff bench channels` run in-process, and the `[channels.sms]` / `[channels.whatsapp]`
//! settings that point the gateway at them.
//!
//! Each emulator listens on its own loopback port, posts customers' messages and status
//! reports, signed as the provider would, to the gateway's inbound routes under its public
//! URL, and records every message the gateway sends through its API.

use std::sync::Arc;

use channel_emulator::twilio::{TwilioEmulator, TwilioSettings};
use channel_emulator::whatsapp::{WhatsappEmulator, WhatsappSettings};
use secrecy::SecretString;
use serde::Serialize;
use tokio::net::TcpListener;

/// The number the sandbox's SMS channel sends from and receives on.
pub const SMS_NUMBER: &str = "+15550100000";
/// The WhatsApp template the sandbox's WhatsApp emulator approves and the channel sends
/// outside the 24-hour window.
pub const WHATSAPP_TEMPLATE: &str = "case_update";

/// How to reach the sandbox's Twilio emulator (in `GET /v1/sandbox` as `twilio_emulator`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TwilioSandbox {
    /// The emulator's base URL (`[channels.sms] api_url`); its control routes are under
    /// `/__emulator/twilio/` (a customer texting: `POST …/inbound`).
    pub url: String,
    pub account_sid: String,
    /// Authenticates API calls and signs the emulator's webhooks.
    pub auth_token: String,
    /// The SMS channel's number (`from`): customers text it.
    pub number: String,
}

/// How to reach the sandbox's WhatsApp Cloud API emulator (`whatsapp_emulator`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WhatsappSandbox {
    /// The emulator's base URL (`[channels.whatsapp] api_url`); control routes under
    /// `/__emulator/whatsapp/`.
    pub url: String,
    pub phone_number_id: String,
    pub access_token: String,
    /// Signs the emulator's webhooks (`X-Hub-Signature-256`).
    pub app_secret: String,
    pub verify_token: String,
    /// The approved template sent outside the 24-hour window.
    pub template: String,
}

/// The running emulators. Cloning shares them; they stop when the last clone is dropped.
#[derive(Clone, Default)]
pub struct ChannelEmulators {
    pub twilio: Option<Arc<TwilioEmulator>>,
    pub whatsapp: Option<Arc<WhatsappEmulator>>,
}

impl ChannelEmulators {
    /// Starts the Twilio emulator on loopback, posting inbound SMS to
    /// `{public_url}/channels/sms/inbound`, with the demo account
    /// ([`channel_emulator::twilio::DEMO_ACCOUNT_SID`]).
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start_twilio(public_url: &str) -> Result<Arc<TwilioEmulator>, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot bind a port for the Twilio emulator: {e}"))?;
        let settings = TwilioSettings {
            webhook_url: Some(format!(
                "{}/channels/sms/inbound",
                public_url.trim_end_matches('/')
            )),
            ..TwilioSettings::default()
        };
        TwilioEmulator::serve(settings, listener)
            .await
            .map(Arc::new)
            .map_err(|e| format!("the Twilio emulator: {e}"))
    }

    /// Starts the WhatsApp Cloud API emulator on loopback, posting to
    /// `{public_url}/channels/whatsapp/inbound`, with the demo number and app and
    /// [`WHATSAPP_TEMPLATE`] approved.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start_whatsapp(public_url: &str) -> Result<Arc<WhatsappEmulator>, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot bind a port for the WhatsApp emulator: {e}"))?;
        let settings = WhatsappSettings {
            webhook_url: Some(format!(
                "{}/channels/whatsapp/inbound",
                public_url.trim_end_matches('/')
            )),
            templates: vec![WHATSAPP_TEMPLATE.into()],
            ..WhatsappSettings::default()
        };
        WhatsappEmulator::serve(settings, listener)
            .await
            .map(Arc::new)
            .map_err(|e| format!("the WhatsApp emulator: {e}"))
    }

    /// Starts both emulators (see [`Self::start_twilio`], [`Self::start_whatsapp`]).
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(public_url: &str) -> Result<ChannelEmulators, String> {
        Ok(ChannelEmulators {
            twilio: Some(Self::start_twilio(public_url).await?),
            whatsapp: Some(Self::start_whatsapp(public_url).await?),
        })
    }

    /// `GET /v1/sandbox`'s `twilio_emulator`.
    #[must_use]
    pub fn twilio_info(&self) -> Option<TwilioSandbox> {
        self.twilio.as_ref().map(|t| TwilioSandbox {
            url: t.url(),
            account_sid: t.account_sid().to_owned(),
            auth_token: TwilioSettings::default().auth_token,
            number: SMS_NUMBER.into(),
        })
    }

    /// `GET /v1/sandbox`'s `whatsapp_emulator`.
    #[must_use]
    pub fn whatsapp_info(&self) -> Option<WhatsappSandbox> {
        self.whatsapp.as_ref().map(|w| {
            let defaults = WhatsappSettings::default();
            WhatsappSandbox {
                url: w.url(),
                phone_number_id: w.phone_number_id().to_owned(),
                access_token: defaults.access_token,
                app_secret: defaults.app_secret,
                verify_token: defaults.verify_token,
                template: WHATSAPP_TEMPLATE.into(),
            }
        })
    }
}

/// Whether `[channels.sms]` is on and names no Twilio account of its own (the sandbox then
/// points it at its emulator).
#[must_use]
pub fn sms_unconfigured(config: &channels::SmsConfig) -> bool {
    config.enabled
        && config.account_sid.is_none()
        && config.auth_token.is_none()
        && config.auth_token_file.is_none()
        && config.from.is_none()
        && config.messaging_service_sid.is_none()
}

/// Whether `[channels.whatsapp]` is the Cloud API, on, with no credentials of its own.
#[must_use]
pub fn whatsapp_unconfigured(config: &channels::WhatsappConfig) -> bool {
    match config {
        channels::WhatsappConfig::CloudApi(c) => {
            c.enabled
                && c.phone_number_id.is_none()
                && c.access_token.is_none()
                && c.access_token_file.is_none()
                && c.app_secret.is_none()
                && c.app_secret_file.is_none()
        }
        channels::WhatsappConfig::Twilio(_) => false,
    }
}

/// Points `[channels.sms]` at the Twilio emulator (account, token, number, API URL); its
/// other settings (keywords, segments, answers) stay as configured.
pub fn point_sms_at(config: &mut channels::SmsConfig, twilio: &TwilioEmulator) {
    config.account_sid = Some(twilio.account_sid().to_owned());
    config.auth_token = Some(SecretString::from(TwilioSettings::default().auth_token));
    config.from = Some(SMS_NUMBER.into());
    config.api_url = twilio.url();
}

/// Points `[channels.whatsapp]` (Cloud API) at the WhatsApp emulator, with
/// [`WHATSAPP_TEMPLATE`] for messages outside the 24-hour window unless a template is
/// configured; its other settings stay as configured.
pub fn point_whatsapp_at(config: &mut channels::WhatsappConfig, whatsapp: &WhatsappEmulator) {
    let channels::WhatsappConfig::CloudApi(c) = config else {
        return;
    };
    let defaults = WhatsappSettings::default();
    c.phone_number_id = Some(whatsapp.phone_number_id().to_owned());
    c.access_token = Some(SecretString::from(defaults.access_token));
    c.app_secret = Some(SecretString::from(defaults.app_secret));
    c.verify_token = Some(SecretString::from(defaults.verify_token));
    c.api_url = whatsapp.url();
    if c.template.is_none() {
        c.template = Some(channels::whatsapp::TemplateConfig {
            name: WHATSAPP_TEMPLATE.into(),
            language: "en_US".into(),
            body_parameter: true,
        });
    }
}
