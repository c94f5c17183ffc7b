//! OAuth 2.0 against the Salesforce token endpoint, and the shared token cache.
//!
//! Four grants are supported (reference notes §1): JWT bearer (RS256 assertion, the
//! recommended server-to-server flow), client credentials, username-password (legacy) and
//! refresh token. Every request is a form POST to `{login_url}/services/oauth2/token`.
//!
//! [`TokenCache`] keeps one access token for all callers. Salesforce's server-to-server
//! tokens carry no expiry, so the token is reused until an API call answers 401; the caller
//! then asks for [`TokenCache::refresh`] with the generation that failed, and all concurrent
//! callers share a single new token (single flight).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::ACCEPT;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use url::Url;

use crate::error::Error;

/// Grant type for the JWT bearer flow (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Lifetime of a JWT bearer assertion (Salesforce accepts at most 3 minutes).
const ASSERTION_LIFETIME_SECS: i64 = 180;

/// How the client authenticates. Deserializes from configuration with a `type` tag, e.g.
/// `{"type": "client_credentials", "client_id": "…", "client_secret": "…"}`.
/// Secrets are [`SecretString`]s: `Debug` prints `[REDACTED]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Credentials {
    /// OAuth 2.0 JWT bearer flow: an RS256 assertion signed with the app's private key.
    JwtBearer {
        /// Consumer key of the connected / external client app (`iss`).
        client_id: String,
        /// Salesforce username of the integration user (`sub`).
        username: String,
        /// PEM private key (PKCS#1 or PKCS#8) whose certificate is uploaded to the app.
        private_key_pem: SecretString,
        /// `aud`: `https://login.salesforce.com`, `https://test.salesforce.com`, or a site URL.
        audience: String,
    },
    /// OAuth 2.0 client credentials flow (needs a "Run As" user on the app; My Domain only).
    ClientCredentials {
        /// Consumer key.
        client_id: String,
        /// Consumer secret.
        client_secret: SecretString,
    },
    /// Legacy username-password flow; the password sent is `password + security_token`.
    Password {
        /// Consumer key.
        client_id: String,
        /// Consumer secret.
        client_secret: SecretString,
        /// Salesforce username.
        username: String,
        /// The user's password.
        password: SecretString,
        /// The user's security token (empty when the caller's IP is trusted).
        #[serde(default)]
        security_token: SecretString,
    },
    /// No credentials yet: no token request is sent and every call fails with the OAuth error
    /// `not_connected` (an auth failure, retried) until the client is given credentials with
    /// `Client::set_credentials` — an admin connecting the org in a console. Not configurable.
    #[serde(skip)]
    NotConnected,
    /// Refresh-token flow (a token from an earlier interactive authorization).
    RefreshToken {
        /// Consumer key.
        client_id: String,
        /// Consumer secret.
        client_secret: SecretString,
        /// The refresh token.
        refresh_token: SecretString,
    },
}

impl Credentials {
    /// The grant's configuration name (`jwt_bearer`, `client_credentials`, …), for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::JwtBearer { .. } => "jwt_bearer",
            Credentials::ClientCredentials { .. } => "client_credentials",
            Credentials::Password { .. } => "password",
            Credentials::RefreshToken { .. } => "refresh_token",
            Credentials::NotConnected => "not_connected",
        }
    }
}

/// The credentials, checked and ready to produce token requests.
enum Grant {
    Jwt {
        client_id: String,
        username: String,
        audience: String,
        key: EncodingKey,
    },
    ClientCredentials {
        client_id: String,
        client_secret: SecretString,
    },
    Password {
        client_id: String,
        client_secret: SecretString,
        username: String,
        password_and_token: SecretString,
    },
    Refresh {
        client_id: String,
        client_secret: SecretString,
        refresh_token: SecretString,
    },
    NotConnected,
}

impl Grant {
    fn new(credentials: &Credentials) -> Result<Self, Error> {
        Ok(match credentials {
            Credentials::JwtBearer {
                client_id,
                username,
                private_key_pem,
                audience,
            } => Grant::Jwt {
                client_id: client_id.clone(),
                username: username.clone(),
                audience: audience.clone(),
                key: EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
                    .map_err(|_| {
                        Error::Invalid(
                            "jwt_bearer private_key_pem is not a PEM-encoded RSA private key"
                                .to_owned(),
                        )
                    })?,
            },
            Credentials::ClientCredentials {
                client_id,
                client_secret,
            } => Grant::ClientCredentials {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            },
            Credentials::Password {
                client_id,
                client_secret,
                username,
                password,
                security_token,
            } => Grant::Password {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                username: username.clone(),
                password_and_token: SecretString::from(format!(
                    "{}{}",
                    password.expose_secret(),
                    security_token.expose_secret()
                )),
            },
            Credentials::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => Grant::Refresh {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                refresh_token: refresh_token.clone(),
            },
            Credentials::NotConnected => Grant::NotConnected,
        })
    }

    /// The form fields of one token request. `rotated` is a refresh token returned by an
    /// earlier refresh, which replaces the configured one.
    fn form(
        &self,
        rotated: Option<&SecretString>,
    ) -> Result<Vec<(&'static str, SecretString)>, Error> {
        let s = |v: &str| SecretString::from(v);
        Ok(match self {
            Grant::Jwt {
                client_id,
                username,
                audience,
                key,
            } => vec![
                ("grant_type", s(JWT_BEARER_GRANT)),
                (
                    "assertion",
                    SecretString::from(jwt_assertion(
                        client_id,
                        username,
                        audience,
                        key,
                        Utc::now(),
                    )?),
                ),
            ],
            Grant::ClientCredentials {
                client_id,
                client_secret,
            } => vec![
                ("grant_type", s("client_credentials")),
                ("client_id", s(client_id)),
                ("client_secret", client_secret.clone()),
            ],
            Grant::Password {
                client_id,
                client_secret,
                username,
                password_and_token,
            } => vec![
                ("grant_type", s("password")),
                ("client_id", s(client_id)),
                ("client_secret", client_secret.clone()),
                ("username", s(username)),
                ("password", password_and_token.clone()),
            ],
            Grant::Refresh {
                client_id,
                client_secret,
                refresh_token,
            } => vec![
                ("grant_type", s("refresh_token")),
                ("client_id", s(client_id)),
                ("client_secret", client_secret.clone()),
                ("refresh_token", rotated.unwrap_or(refresh_token).clone()),
            ],
            Grant::NotConnected => {
                return Err(Error::OAuth {
                    status: 401,
                    error: NOT_CONNECTED.to_owned(),
                    description: "no Salesforce credentials yet: an admin connects the org in the console (/console/salesforce), or set salesforce.credentials".to_owned(),
                });
            }
        })
    }
}

/// The OAuth `error` of every call made while the client has [`Credentials::NotConnected`].
pub const NOT_CONNECTED: &str = "not_connected";

/// Claims of a Salesforce JWT bearer assertion.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AssertionClaims {
    /// Consumer key.
    pub iss: String,
    /// Username.
    pub sub: String,
    /// Audience (login/test URL).
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

/// Builds the signed RS256 assertion for the JWT bearer grant, expiring 180 s after `now`.
fn jwt_assertion(
    client_id: &str,
    username: &str,
    audience: &str,
    key: &EncodingKey,
    now: DateTime<Utc>,
) -> Result<String, Error> {
    let claims = AssertionClaims {
        iss: client_id.to_owned(),
        sub: username.to_owned(),
        aud: audience.to_owned(),
        exp: now.timestamp() + ASSERTION_LIFETIME_SECS,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
        .map_err(|e| Error::Invalid(format!("could not sign the JWT bearer assertion: {e}")))
}

/// A Salesforce access token and what came with it.
#[derive(Debug)]
pub struct AccessToken {
    secret: SecretString,
    /// Base URL for REST calls, e.g. `https://acme.my.salesforce.com`.
    pub instance_url: Url,
    /// Increases by one each time the cache obtains a new token; used for single-flight
    /// refresh (see [`TokenCache::refresh`]).
    pub generation: u64,
    /// `issued_at` (Salesforce sends epoch milliseconds as a string).
    pub issued_at: Option<DateTime<Utc>>,
    /// Identity URL `…/id/<OrgId>/<UserId>`.
    pub identity_url: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: Option<String>,
    /// Token type, normally `Bearer`.
    pub token_type: Option<String>,
}

impl AccessToken {
    /// The bearer token. Keep it out of logs and errors.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }
}

/// The token endpoint's success body. Only `access_token` and `instance_url` are required.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    instance_url: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    issued_at: Option<serde_json::Value>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    refresh_token: Option<SecretString>,
}

/// Parses a successful token response into a token of the given generation, plus a rotated
/// refresh token if the server sent one.
pub(crate) fn parse_token_response(
    body: &[u8],
    generation: u64,
) -> Result<(AccessToken, Option<SecretString>), Error> {
    let response: TokenResponse = serde_json::from_slice(body).map_err(|e| {
        // serde's "invalid type" messages quote values; only name missing fields.
        let detail = e.to_string();
        if detail.starts_with("missing field") {
            Error::Decode(format!("token response: {detail}"))
        } else {
            Error::Decode(format!(
                "token response is not the expected JSON object (line {}, column {})",
                e.line(),
                e.column()
            ))
        }
    })?;
    let instance_url = Url::parse(&response.instance_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| {
            Error::Decode("token response instance_url is not an http(s) URL".to_owned())
        })?;
    if response.access_token.expose_secret().is_empty() {
        return Err(Error::Decode(
            "token response has an empty access_token".to_owned(),
        ));
    }
    let issued_at = response.issued_at.as_ref().and_then(|v| {
        let millis = match v {
            serde_json::Value::String(s) => s.parse::<i64>().ok()?,
            serde_json::Value::Number(n) => n.as_i64()?,
            _ => return None,
        };
        DateTime::from_timestamp_millis(millis)
    });
    Ok((
        AccessToken {
            secret: response.access_token,
            instance_url,
            generation,
            issued_at,
            identity_url: response.id,
            scope: response.scope,
            token_type: response.token_type,
        },
        response.refresh_token,
    ))
}

#[derive(Default)]
struct CacheState {
    current: Option<Arc<AccessToken>>,
    /// Generation of the last token obtained.
    generation: u64,
    /// Result of the most recent failed attempt, shared with callers that waited on it.
    last_error: Option<Error>,
    /// A refresh token rotated by the server, replacing the configured one.
    rotated_refresh_token: Option<SecretString>,
}

/// One access token shared by every caller, with single-flight refresh.
pub struct TokenCache {
    http: reqwest::Client,
    endpoint: Url,
    grant: Grant,
    kind: &'static str,
    state: Mutex<CacheState>,
    /// Completed token attempts (success or failure); read before waiting on the lock so a
    /// waiter can tell that an attempt finished while it waited.
    attempts: AtomicU64,
    requests: AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("endpoint", &self.endpoint.as_str())
            .field("grant", &self.kind)
            .field("token_requests", &self.token_requests())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache that obtains tokens from `{login_url}/services/oauth2/token` with `http`.
    /// Checks the credentials (e.g. that a JWT private key parses) but sends nothing.
    pub fn new(
        http: reqwest::Client,
        login_url: &str,
        credentials: &Credentials,
    ) -> Result<Self, Error> {
        let base = Url::parse(login_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                Error::Invalid(format!("login_url {login_url:?} is not an http(s) URL"))
            })?;
        let endpoint = Url::parse(&format!(
            "{}/services/oauth2/token",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|e| Error::Invalid(format!("login_url: {e}")))?;
        Ok(TokenCache {
            http,
            endpoint,
            grant: Grant::new(credentials)?,
            kind: credentials.kind(),
            state: Mutex::new(CacheState::default()),
            attempts: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    /// The current token, fetching one if there is none yet.
    pub async fn token(&self) -> Result<Arc<AccessToken>, Error> {
        self.obtain(None).await
    }

    /// Replaces the token of generation `failed_generation`, which Salesforce rejected.
    ///
    /// Single flight: the first caller to get here with the current generation fetches a
    /// new token; callers that were waiting meanwhile (or that report an older generation)
    /// get the newer token without another request. If the fetch fails, the callers that
    /// waited on it get the same error.
    pub async fn refresh(&self, failed_generation: u64) -> Result<Arc<AccessToken>, Error> {
        self.obtain(Some(failed_generation)).await
    }

    /// Number of requests sent to the token endpoint.
    pub fn token_requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    async fn obtain(&self, failed_generation: Option<u64>) -> Result<Arc<AccessToken>, Error> {
        let attempts_seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if let Some(token) = &state.current
            && failed_generation != Some(token.generation)
        {
            return Ok(Arc::clone(token));
        }
        if self.attempts.load(Ordering::Acquire) != attempts_seen
            && let Some(err) = &state.last_error
        {
            // An attempt finished (and failed) while we waited for the lock.
            return Err(err.clone());
        }
        let generation = state.generation + 1;
        let result = self
            .fetch(generation, state.rotated_refresh_token.as_ref())
            .await;
        let outcome = match result {
            Ok((token, rotated)) => {
                let token = Arc::new(token);
                state.generation = generation;
                state.current = Some(Arc::clone(&token));
                state.last_error = None;
                if rotated.is_some() {
                    state.rotated_refresh_token = rotated;
                }
                tracing::info!(
                    grant = self.kind,
                    generation,
                    "salesforce access token obtained"
                );
                Ok(token)
            }
            Err(err) => {
                // A token that was reported as rejected must not be handed out again.
                if failed_generation.is_some() {
                    state.current = None;
                }
                state.last_error = Some(err.clone());
                tracing::warn!(
                    grant = self.kind,
                    status = err.status(),
                    error_code = err.code(),
                    "salesforce token request failed"
                );
                Err(err)
            }
        };
        self.attempts.fetch_add(1, Ordering::AcqRel);
        outcome
    }

    async fn fetch(
        &self,
        generation: u64,
        rotated: Option<&SecretString>,
    ) -> Result<(AccessToken, Option<SecretString>), Error> {
        let form = self.grant.form(rotated)?;
        let exposed: Vec<(&str, &str)> =
            form.iter().map(|(k, v)| (*k, v.expose_secret())).collect();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let answer = async {
            let response = self
                .http
                .post(self.endpoint.clone())
                .header(ACCEPT, "application/json")
                .form(&exposed)
                .send()
                .await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.bytes().await?))
        }
        .await;
        crate::metrics::record(
            "token",
            started.elapsed(),
            match &answer {
                Ok((status, _)) => crate::metrics::Outcome::Answered(status.as_u16()),
                Err(_) => crate::metrics::Outcome::Transport,
            },
        );
        let (status, body) = answer.map_err(|e| Error::transport(&e))?;
        if !status.is_success() {
            return Err(Error::from_oauth_response(status.as_u16(), &body));
        }
        parse_token_response(&body, generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const PRIVATE_KEY: &str = include_str!("../tests/fixtures/test-only-rsa-private.pem");
    const PUBLIC_KEY: &str = include_str!("../tests/fixtures/test-only-rsa-public.pem");

    fn form_map(grant: &Grant) -> Vec<(String, String)> {
        grant
            .form(None)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.expose_secret().to_owned()))
            .collect()
    }

    #[tokio::test]
    async fn not_connected_sends_nothing_and_says_how_to_connect() {
        let cache = TokenCache::new(
            reqwest::Client::new(),
            // Nothing listens here: a request would be a transport error, not not_connected.
            "http://127.0.0.1:9",
            &Credentials::NotConnected,
        )
        .unwrap();
        let err = cache.token().await.unwrap_err();
        assert!(
            matches!(&err, Error::OAuth { error, .. } if error == NOT_CONNECTED),
            "{err}"
        );
        assert!(err.to_string().contains("/console/salesforce"));
        assert_eq!(err.class(), crate::ErrorClass::Auth);
        assert_eq!(cache.token_requests(), 0);
        // It cannot be configured.
        assert!(
            serde_json::from_value::<Credentials>(serde_json::json!({"type": "not_connected"}))
                .is_err()
        );
    }

    #[test]
    fn credentials_deserialize_with_a_type_tag() {
        let c: Credentials = serde_json::from_str(
            r#"{"type":"client_credentials","client_id":"id","client_secret":"shh"}"#,
        )
        .unwrap();
        assert_eq!(c.kind(), "client_credentials");
        let debug = format!("{c:?}");
        assert!(!debug.contains("shh"), "{debug}");
        assert!(debug.contains("REDACTED"), "{debug}");

        let p: Credentials = serde_json::from_str(
            r#"{"type":"password","client_id":"id","client_secret":"s","username":"u@x","password":"pw"}"#,
        )
        .unwrap();
        let Credentials::Password { security_token, .. } = &p else {
            panic!()
        };
        assert_eq!(security_token.expose_secret(), "");

        let j: Credentials = serde_json::from_value(serde_json::json!({
            "type": "jwt_bearer", "client_id": "id", "username": "u@x",
            "private_key_pem": PRIVATE_KEY, "audience": "https://login.salesforce.com"
        }))
        .unwrap();
        assert_eq!(j.kind(), "jwt_bearer");
        assert!(!format!("{j:?}").contains("PRIVATE KEY"));

        let r: Credentials = serde_json::from_str(
            r#"{"type":"refresh_token","client_id":"id","client_secret":"s","refresh_token":"rt"}"#,
        )
        .unwrap();
        assert_eq!(r.kind(), "refresh_token");

        assert!(serde_json::from_str::<Credentials>(r#"{"type":"magic"}"#).is_err());
        assert!(
            serde_json::from_str::<Credentials>(
                r#"{"type":"client_credentials","client_id":"id"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn form_fields_per_grant() {
        let cc = Grant::new(&Credentials::ClientCredentials {
            client_id: "handoff-local-client".into(),
            client_secret: "handoff-local-secret".into(),
        })
        .unwrap();
        assert_eq!(
            form_map(&cc),
            vec![
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), "handoff-local-client".into()),
                ("client_secret".into(), "handoff-local-secret".into()),
            ]
        );

        let pw = Grant::new(&Credentials::Password {
            client_id: "c".into(),
            client_secret: "s".into(),
            username: "integration@handoff.local".into(),
            password: "handoff-password".into(),
            security_token: "handoff-token".into(),
        })
        .unwrap();
        let form = form_map(&pw);
        assert!(form.contains(&("grant_type".into(), "password".into())));
        assert!(form.contains(&("username".into(), "integration@handoff.local".into())));
        assert!(form.contains(&("password".into(), "handoff-passwordhandoff-token".into())));

        let rt = Grant::new(&Credentials::RefreshToken {
            client_id: "c".into(),
            client_secret: "s".into(),
            refresh_token: "old".into(),
        })
        .unwrap();
        assert!(form_map(&rt).contains(&("grant_type".into(), "refresh_token".into())));
        assert!(form_map(&rt).contains(&("refresh_token".into(), "old".into())));
        let rotated = SecretString::from("new");
        let with_rotation: Vec<_> = rt
            .form(Some(&rotated))
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.expose_secret().to_owned()))
            .collect();
        assert!(with_rotation.contains(&("refresh_token", "new".to_owned())));
    }

    #[test]
    fn jwt_assertion_is_rs256_with_salesforce_claims() {
        let grant = Grant::new(&Credentials::JwtBearer {
            client_id: "3MVG9-consumer-key".into(),
            username: "integration@handoff.local".into(),
            private_key_pem: PRIVATE_KEY.into(),
            audience: "https://login.salesforce.com".into(),
        })
        .unwrap();
        let before = Utc::now().timestamp();
        let form = form_map(&grant);
        assert_eq!(form[0], ("grant_type".into(), JWT_BEARER_GRANT.into()));
        assert_eq!(form[1].0, "assertion");
        let assertion = &form[1].1;

        let header = jsonwebtoken::decode_header(assertion).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://login.salesforce.com"]);
        validation.set_issuer(&["3MVG9-consumer-key"]);
        let decoded = jsonwebtoken::decode::<AssertionClaims>(
            assertion,
            &DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.claims.sub, "integration@handoff.local");
        let lifetime = decoded.claims.exp - before;
        assert!((180..=182).contains(&lifetime), "exp is now+{lifetime}s");

        // A different key must not verify it.
        let other = DecodingKey::from_secret(b"not the key");
        assert!(
            jsonwebtoken::decode::<AssertionClaims>(
                assertion,
                &other,
                &Validation::new(Algorithm::HS256)
            )
            .is_err()
        );
    }

    #[test]
    fn a_bad_private_key_is_refused_up_front() {
        let err = Grant::new(&Credentials::JwtBearer {
            client_id: "c".into(),
            username: "u".into(),
            private_key_pem: "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"
                .into(),
            audience: "https://login.salesforce.com".into(),
        })
        .err()
        .unwrap();
        assert!(matches!(err, Error::Invalid(_)));
        assert!(!err.to_string().contains("nope"));
    }

    #[test]
    fn token_responses_from_the_reference() {
        // restforce auth_success_response.json (no token_type).
        let (token, rotated) = parse_token_response(
            br#"{"id":"https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P","issued_at":"1278448832702","instance_url":"https://na1.salesforce.com","signature":"0CmxinZir53Yex7nE0TD+zMpvIWYGb/bdJh6XfOH6EQ=","access_token":"00Dx0000000BV7z!AR8AQ"}"#,
            3,
        )
        .unwrap();
        assert_eq!(token.secret().expose_secret(), "00Dx0000000BV7z!AR8AQ");
        assert_eq!(token.instance_url.as_str(), "https://na1.salesforce.com/");
        assert_eq!(token.generation, 3);
        assert_eq!(
            token.issued_at.unwrap().timestamp_millis(),
            1_278_448_832_702
        );
        assert!(rotated.is_none());
        assert!(!format!("{token:?}").contains("AR8AQ"));

        // simple-salesforce fixture, with token_type and scope, no issued_at.
        let (token, _) = parse_token_response(
            br#"{"access_token": "12345", "scope": "web api", "instance_url": "https://na15.salesforce.com", "id": "https://na15.salesforce.com/id/00Di0000000icUB/0DFi00000008UYO", "token_type": "Bearer"}"#,
            1,
        )
        .unwrap();
        assert_eq!(token.scope.as_deref(), Some("web api"));
        assert_eq!(token.token_type.as_deref(), Some("Bearer"));
        assert!(token.issued_at.is_none());

        let (_, rotated) = parse_token_response(
            br#"{"access_token":"a","instance_url":"https://x.my.salesforce.com","refresh_token":"r2"}"#,
            1,
        )
        .unwrap();
        assert_eq!(rotated.unwrap().expose_secret(), "r2");
    }

    #[test]
    fn bad_token_responses_do_not_leak_values() {
        let missing = parse_token_response(br#"{"instance_url":"https://x"}"#, 1).unwrap_err();
        assert!(missing.to_string().contains("access_token"), "{missing}");
        let wrong = parse_token_response(
            br#"{"access_token":12345678,"instance_url":"https://x"}"#,
            1,
        )
        .unwrap_err();
        assert!(!wrong.to_string().contains("12345678"), "{wrong}");
        let bad_url = parse_token_response(br#"{"access_token":"t","instance_url":"ftp://x"}"#, 1)
            .unwrap_err();
        assert!(matches!(bad_url, Error::Decode(_)));
    }

    #[test]
    fn login_url_must_be_http() {
        let creds = Credentials::ClientCredentials {
            client_id: "c".into(),
            client_secret: "s".into(),
        };
        let http = reqwest::Client::new();
        let cache =
            TokenCache::new(http.clone(), "https://acme.my.salesforce.com/", &creds).unwrap();
        assert_eq!(
            cache.endpoint.as_str(),
            "https://acme.my.salesforce.com/services/oauth2/token"
        );
        assert!(TokenCache::new(http.clone(), "acme.my.salesforce.com", &creds).is_err());
        assert!(TokenCache::new(http, "file:///etc/passwd", &creds).is_err());
    }
}
