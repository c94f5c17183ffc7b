//! State of the OAuth web-server flow: callback URLs per app (configured plus added at
//! runtime), unredeemed authorization codes and the refresh tokens the flow issued. Every map
//! is bounded by `[web_flow]` limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{EmulatorConfig, WebFlowConfig, check_callback_url};
use crate::server::lock;

/// What an authorization code was issued for; the token request must match it.
#[derive(Debug, Clone)]
pub(crate) struct PendingCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) username: String,
    /// Granted scopes, space-separated.
    pub(crate) scope: String,
    /// The S256 `code_challenge`, when the request had one.
    pub(crate) code_challenge: Option<String>,
    issued: Instant,
}

/// A refresh token the web-server flow issued.
#[derive(Debug, Clone)]
pub(crate) struct IssuedRefresh {
    pub(crate) client_id: String,
    pub(crate) username: String,
    pub(crate) scope: String,
    issued: Instant,
}

/// Why a code could not be redeemed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CodeRefused {
    /// Unknown, already used, or issued to another app.
    Invalid,
    Expired,
}

#[derive(Debug, Default)]
struct Inner {
    callback_urls: HashMap<String, Vec<String>>,
    codes: HashMap<String, PendingCode>,
    refresh_tokens: HashMap<String, IssuedRefresh>,
}

/// The web-server flow's shared state.
#[derive(Debug)]
pub(crate) struct WebFlow {
    limits: WebFlowConfig,
    inner: Mutex<Inner>,
}

impl WebFlow {
    pub(crate) fn new(config: &EmulatorConfig) -> Self {
        let callback_urls = config
            .connected_apps
            .iter()
            .map(|a| (a.client_id.clone(), a.callback_urls.clone()))
            .collect();
        WebFlow {
            limits: config.web_flow.clone(),
            inner: Mutex::new(Inner {
                callback_urls,
                ..Inner::default()
            }),
        }
    }

    /// Whether `url` is exactly one of the app's callback URLs.
    pub(crate) fn is_callback(&self, client_id: &str, url: &str) -> bool {
        lock(&self.inner)
            .callback_urls
            .get(client_id)
            .is_some_and(|urls| urls.iter().any(|u| u == url))
    }

    /// Registers another callback URL for a known app (idempotent).
    pub(crate) fn add_callback_url(&self, client_id: &str, url: &str) -> Result<(), String> {
        check_callback_url(url)?;
        let mut inner = lock(&self.inner);
        let urls = inner
            .callback_urls
            .get_mut(client_id)
            .ok_or_else(|| format!("no connected app with client_id '{client_id}'"))?;
        if urls.iter().any(|u| u == url) {
            return Ok(());
        }
        if urls.len() >= self.limits.max_callback_urls {
            return Err(format!(
                "connected app '{client_id}' already has web_flow.max_callback_urls ({}) callback URLs",
                self.limits.max_callback_urls
            ));
        }
        urls.push(url.to_string());
        Ok(())
    }

    fn code_ttl(&self) -> Duration {
        Duration::from_secs(self.limits.code_ttl_secs)
    }

    /// Stores a fresh code. Expired codes are purged first; when the map is still full the
    /// oldest code is dropped.
    pub(crate) fn put_code(
        &self,
        code: String,
        client_id: &str,
        redirect_uri: &str,
        username: &str,
        scope: &str,
        code_challenge: Option<String>,
    ) {
        let ttl = self.code_ttl();
        let mut inner = lock(&self.inner);
        if inner.codes.len() >= self.limits.max_codes {
            inner.codes.retain(|_, c| c.issued.elapsed() <= ttl);
        }
        if inner.codes.len() >= self.limits.max_codes
            && let Some(oldest) = oldest_key(&inner.codes, |c| c.issued)
        {
            inner.codes.remove(&oldest);
        }
        inner.codes.insert(
            code,
            PendingCode {
                client_id: client_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                username: username.to_string(),
                scope: scope.to_string(),
                code_challenge,
                issued: Instant::now(),
            },
        );
    }

    /// Takes a code out (a code is good for one token request, whatever its outcome).
    pub(crate) fn take_code(
        &self,
        code: &str,
        client_id: &str,
    ) -> Result<PendingCode, CodeRefused> {
        let pending = lock(&self.inner)
            .codes
            .remove(code)
            .ok_or(CodeRefused::Invalid)?;
        if pending.client_id != client_id {
            return Err(CodeRefused::Invalid);
        }
        if pending.issued.elapsed() > self.code_ttl() {
            return Err(CodeRefused::Expired);
        }
        Ok(pending)
    }

    /// Codes held now (expired ones included until purged).
    #[cfg(test)]
    pub(crate) fn code_count(&self) -> usize {
        lock(&self.inner).codes.len()
    }

    /// Remembers an issued refresh token, forgetting the oldest when full.
    pub(crate) fn put_refresh(&self, token: String, client_id: &str, username: &str, scope: &str) {
        let mut inner = lock(&self.inner);
        if inner.refresh_tokens.len() >= self.limits.max_refresh_tokens
            && let Some(oldest) = oldest_key(&inner.refresh_tokens, |r| r.issued)
        {
            inner.refresh_tokens.remove(&oldest);
        }
        inner.refresh_tokens.insert(
            token,
            IssuedRefresh {
                client_id: client_id.to_string(),
                username: username.to_string(),
                scope: scope.to_string(),
                issued: Instant::now(),
            },
        );
    }

    /// The issued refresh token, if it is live and belongs to `client_id`.
    pub(crate) fn refresh(&self, token: &str, client_id: &str) -> Option<IssuedRefresh> {
        lock(&self.inner)
            .refresh_tokens
            .get(token)
            .filter(|r| r.client_id == client_id)
            .cloned()
    }

    /// Forgets an issued refresh token; whether it was one.
    pub(crate) fn revoke_refresh(&self, token: &str) -> bool {
        lock(&self.inner).refresh_tokens.remove(token).is_some()
    }
}

fn oldest_key<V>(map: &HashMap<String, V>, at: impl Fn(&V) -> Instant) -> Option<String> {
    map.iter()
        .min_by_key(|(_, v)| at(v))
        .map(|(k, _)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(max_codes: usize, ttl: u64) -> WebFlow {
        let mut config = EmulatorConfig::default();
        config.web_flow.max_codes = max_codes;
        config.web_flow.code_ttl_secs = ttl;
        config.web_flow.max_refresh_tokens = 2;
        WebFlow::new(&config)
    }

    #[test]
    fn codes_are_single_use_bound_to_the_app_and_bounded() {
        let f = flow(2, 900);
        f.put_code("a".into(), "app", "http://x/cb", "u", "api", None);
        assert_eq!(f.take_code("a", "other").unwrap_err(), CodeRefused::Invalid);
        // The failed attempt used the code up.
        assert_eq!(f.take_code("a", "app").unwrap_err(), CodeRefused::Invalid);
        f.put_code("b".into(), "app", "http://x/cb", "u", "api", None);
        f.put_code("c".into(), "app", "http://x/cb", "u", "api", None);
        f.put_code("d".into(), "app", "http://x/cb", "u", "api", None);
        assert_eq!(f.code_count(), 2);
        // The oldest went.
        assert_eq!(f.take_code("b", "app").unwrap_err(), CodeRefused::Invalid);
        assert_eq!(f.take_code("d", "app").unwrap().username, "u");
    }

    #[test]
    fn expired_codes_are_refused_and_purged_when_full() {
        let f = flow(1, 1);
        f.put_code("a".into(), "app", "http://x/cb", "u", "api", None);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(f.take_code("a", "app").unwrap_err(), CodeRefused::Expired);
        f.put_code("b".into(), "app", "http://x/cb", "u", "api", None);
        std::thread::sleep(Duration::from_millis(1100));
        f.put_code("c".into(), "app", "http://x/cb", "u", "api", None);
        assert_eq!(f.code_count(), 1);
    }

    #[test]
    fn refresh_tokens_are_bounded_and_revocable() {
        let f = flow(1, 900);
        f.put_refresh("r1".into(), "app", "u", "api");
        f.put_refresh("r2".into(), "app", "u", "api");
        f.put_refresh("r3".into(), "app", "u", "api");
        assert!(f.refresh("r1", "app").is_none());
        assert!(f.refresh("r3", "other").is_none());
        assert!(f.refresh("r3", "app").is_some());
        assert!(f.revoke_refresh("r3"));
        assert!(f.refresh("r3", "app").is_none());
    }

    #[test]
    fn callback_urls_are_exact_checked_and_bounded() {
        let mut config = EmulatorConfig::default();
        config.web_flow.max_callback_urls = 1;
        let f = WebFlow::new(&config);
        let id = crate::config::DEFAULT_CLIENT_ID;
        assert!(f.add_callback_url("ghost", "http://x/cb").is_err());
        assert!(f.add_callback_url(id, "not a url").is_err());
        assert!(f.add_callback_url(id, "http://x/cb#frag").is_err());
        f.add_callback_url(id, "http://x/cb").unwrap();
        f.add_callback_url(id, "http://x/cb").unwrap();
        assert!(f.add_callback_url(id, "http://x/other").is_err());
        assert!(f.is_callback(id, "http://x/cb"));
        assert!(!f.is_callback(id, "http://x/cb/"));
        assert!(!f.is_callback(id, "HTTP://x/cb"));
    }
}
