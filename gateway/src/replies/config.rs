//! `[case_replies]`: how the gateway hears about rep replies on Cases — pushed by the shipped
//! Apex trigger to `POST /salesforce/events`, polled with SOQL, or both.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use salesforce::SalesforceId;
use salesforce::events::JwtVerifier;

#[derive(Debug, Clone, Deserialize)]
pub struct CaseRepliesConfig {
    /// Serve `POST /salesforce/events`.
    pub push: bool,
    /// The HMAC secret the trigger signs with (`X-Handoff-Signature`).
    #[serde(default)]
    pub webhook_secret: Option<SecretString>,
    /// A file holding the secret instead (one line; surrounding whitespace dropped).
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// PEM files (X.509 certificates or RSA public keys) that verify Named Credential JWTs.
    #[serde(default)]
    pub jwt_certificates: Vec<PathBuf>,
    /// The JWT `iss` the Named Credential sends (required with certificates).
    #[serde(default)]
    pub jwt_issuer: Option<String>,
    /// The JWT `aud` (required with certificates), normally the gateway's URL.
    #[serde(default)]
    pub jwt_audience: Option<String>,
    /// When set, events for another org are refused (401).
    #[serde(default)]
    pub org_id: Option<String>,
    /// Poll Salesforce for replies (`poll_case_replies`, one replica at a time).
    pub poll: bool,
    pub poll_interval_secs: u64,
    /// Each poll re-reads this far behind the watermark; the event table dedupes.
    pub poll_overlap_secs: u64,
    /// Records per query page (Salesforce: 200–2000).
    pub poll_page_size: u16,
}

/// How pushed events are authenticated, resolved from the config at startup.
#[derive(Debug, Default)]
pub struct PushAuth {
    pub hmac_secret: Option<SecretString>,
    pub jwt: Option<JwtVerifier>,
    pub org_id: Option<SalesforceId>,
}

impl PushAuth {
    /// Whether any scheme is configured (without one, every push is refused).
    pub fn any(&self) -> bool {
        self.hmac_secret.is_some() || self.jwt.is_some()
    }
}

impl CaseRepliesConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=86_400).contains(&self.poll_interval_secs) {
            return Err(format!(
                "case_replies.poll_interval_secs must be between 1 and 86400, got {}",
                self.poll_interval_secs
            ));
        }
        if self.poll_overlap_secs > 86_400 {
            return Err(format!(
                "case_replies.poll_overlap_secs must be at most 86400, got {}",
                self.poll_overlap_secs
            ));
        }
        if !(200..=2000).contains(&self.poll_page_size) {
            return Err(format!(
                "case_replies.poll_page_size must be between 200 and 2000 (Salesforce's batch sizes), got {}",
                self.poll_page_size
            ));
        }
        if self.webhook_secret.is_some() && self.webhook_secret_file.is_some() {
            return Err("case_replies: set webhook_secret or webhook_secret_file, not both".into());
        }
        if !self.jwt_certificates.is_empty()
            && (self.jwt_issuer.as_deref().is_none_or(str::is_empty)
                || self.jwt_audience.as_deref().is_none_or(str::is_empty))
        {
            return Err(
                "case_replies.jwt_issuer and case_replies.jwt_audience are required with jwt_certificates".into(),
            );
        }
        if let Some(org) = &self.org_id {
            org_id(org)?;
        }
        Ok(())
    }

    /// Reads the secret file and the certificates. Errors name the setting and the file.
    pub fn push_auth(&self) -> Result<PushAuth, String> {
        let hmac_secret = match (&self.webhook_secret, &self.webhook_secret_file) {
            (Some(secret), _) if !secret.expose_secret().is_empty() => Some(secret.clone()),
            (_, Some(path)) => {
                let text = read(path, "case_replies.webhook_secret_file")?;
                let secret = text.trim();
                if secret.is_empty() {
                    return Err(format!(
                        "case_replies.webhook_secret_file {} is empty",
                        path.display()
                    ));
                }
                Some(SecretString::from(secret.to_string()))
            }
            _ => None,
        };
        let jwt = if self.jwt_certificates.is_empty() {
            None
        } else {
            let pems = self
                .jwt_certificates
                .iter()
                .map(|p| read(p, "case_replies.jwt_certificates"))
                .collect::<Result<Vec<_>, _>>()?;
            Some(
                JwtVerifier::new(
                    &pems,
                    self.jwt_issuer.as_deref().unwrap_or_default(),
                    self.jwt_audience.as_deref().unwrap_or_default(),
                )
                .map_err(|e| format!("case_replies.jwt_certificates: {e}"))?,
            )
        };
        let org_id = self.org_id.as_deref().map(org_id).transpose()?;
        Ok(PushAuth {
            hmac_secret,
            jwt,
            org_id,
        })
    }
}

fn org_id(s: &str) -> Result<SalesforceId, String> {
    SalesforceId::parse(s)
        .ok()
        .filter(|id| id.key_prefix() == "00D")
        .ok_or_else(|| {
            format!("case_replies.org_id must be a 15- or 18-character org id starting with 00D, got {s:?}")
        })
}

fn read(path: &Path, setting: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("{setting}: cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn defaults() -> CaseRepliesConfig {
        crate::Config::defaults().case_replies
    }

    #[test]
    fn the_defaults_push_without_auth_and_do_not_poll() {
        let config = defaults();
        assert!(config.push && !config.poll);
        assert_eq!(config.poll_interval_secs, 10);
        config.validate().unwrap();
        assert!(!config.push_auth().unwrap().any());
    }

    #[test]
    fn bad_settings_are_named() {
        let check = |change: fn(&mut CaseRepliesConfig), setting: &str| {
            let mut config = defaults();
            change(&mut config);
            let err = config.validate().unwrap_err();
            assert!(err.contains(setting), "{setting}: {err}");
        };
        check(
            |c| c.poll_interval_secs = 0,
            "case_replies.poll_interval_secs",
        );
        check(|c| c.poll_page_size = 100, "case_replies.poll_page_size");
        check(
            |c| c.poll_overlap_secs = 100_000,
            "case_replies.poll_overlap_secs",
        );
        check(
            |c| c.jwt_certificates = vec!["cert.pem".into()],
            "case_replies.jwt_issuer",
        );
        check(
            |c| c.org_id = Some("500Hu000020yLuH".into()),
            "case_replies.org_id",
        );
        check(
            |c| {
                c.webhook_secret = Some("s".into());
                c.webhook_secret_file = Some("f".into());
            },
            "webhook_secret_file",
        );
    }

    #[test]
    fn secrets_and_certificates_are_read_from_files() {
        let mut secret = tempfile::NamedTempFile::new().unwrap();
        secret.write_all(b"  from-a-file\n").unwrap();
        let cert = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../salesforce/tests/fixtures/test-only-rsa-cert.pem");
        let mut config = defaults();
        config.webhook_secret_file = Some(secret.path().to_path_buf());
        config.jwt_certificates = vec![cert];
        config.jwt_issuer = Some("iss".into());
        config.jwt_audience = Some("aud".into());
        config.org_id = Some("00D5g000004Hnd0".into());
        config.validate().unwrap();
        let auth = config.push_auth().unwrap();
        assert_eq!(
            auth.hmac_secret.as_ref().unwrap().expose_secret(),
            "from-a-file"
        );
        assert!(auth.jwt.is_some());
        assert_eq!(auth.org_id.unwrap().as_str(), "00D5g000004Hnd0EAC");

        config.jwt_certificates = vec!["/nonexistent/cert.pem".into()];
        let err = config.push_auth().unwrap_err();
        assert!(
            err.starts_with("case_replies.jwt_certificates: cannot read"),
            "{err}"
        );
        config.jwt_certificates = vec![secret.path().to_path_buf()];
        let err = config.push_auth().unwrap_err();
        assert!(
            err.contains("not an RSA certificate or public key"),
            "{err}"
        );
    }
}
