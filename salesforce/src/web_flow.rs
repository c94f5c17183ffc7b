//! The OAuth 2.0 web-server flow (authorization code + PKCE) against a Salesforce org, for
//! signing people in and for connecting the org interactively.
//!
//! The `oauth2` crate builds the authorize URL (state, PKCE S256 challenge, scopes) and the
//! code and revocation requests; they are sent by [`send`], an async function over this crate's
//! `reqwest` client (no redirects, bounded bodies). The token response is parsed with
//! Salesforce's extra fields ([`SalesforceExtra`]: `instance_url`, `id`, `issued_at`,
//! `signature`).
//!
//! Nothing here stores anything: the caller keeps the `state` and the PKCE verifier between
//! [`WebFlow::authorize`] and [`WebFlow::exchange`]. No error ever carries a token, a code, a
//! verifier or the client secret: token responses that do not parse are reported by field path
//! only, never with the body.

use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use reqwest::header::ACCEPT;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::error::Error;
use crate::ids::SalesforceId;
use crate::soql;

/// Largest response body read from the token, userinfo, query or revoke endpoints.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Most permission set assignments read for one user.
pub const MAX_PERMISSION_SETS: usize = 500;

/// Timeout of each request of the flow.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Salesforce's own fields of a token response.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SalesforceExtra {
    /// Base URL of the org for REST calls.
    pub instance_url: String,
    /// Identity URL `…/id/<OrgId>/<UserId>`.
    #[serde(default)]
    pub id: Option<String>,
    /// Epoch milliseconds, sent as a string.
    #[serde(default)]
    pub issued_at: Option<Value>,
    /// HMAC-SHA256 of `id` + `issued_at` with the consumer secret, base64.
    #[serde(default)]
    pub signature: Option<String>,
}

impl ExtraTokenFields for SalesforceExtra {}

/// A Salesforce token response as `oauth2` parses it.
pub type SalesforceTokenResponse = StandardTokenResponse<SalesforceExtra, BasicTokenType>;

/// `oauth2`'s client with the authorize and token endpoints set.
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    SalesforceTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The start of one round trip: send the browser to `url`, keep `state` and `pkce_verifier`
/// (secret; store it sealed) until the callback.
pub struct Authorize {
    /// The org's authorize URL with every parameter.
    pub url: Url,
    /// The `state` parameter (random, URL-safe); the callback must bring it back.
    pub state: String,
    /// The PKCE code verifier whose S256 challenge is in `url`.
    pub pkce_verifier: SecretString,
}

impl std::fmt::Debug for Authorize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorize").finish_non_exhaustive()
    }
}

/// What the code exchange gave.
#[derive(Debug)]
pub struct WebTokens {
    /// An access token of the user who signed in.
    pub access_token: SecretString,
    /// Present when the `refresh_token` (or `offline_access`) scope was granted.
    pub refresh_token: Option<SecretString>,
    /// Base URL of the org for REST calls.
    pub instance_url: Url,
    /// Identity URL `…/id/<OrgId>/<UserId>`, if sent.
    pub id_url: Option<String>,
    /// The scopes granted, if Salesforce listed them.
    pub scopes: Vec<String>,
}

/// Who signed in, from `/services/oauth2/userinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// The user's 18-character Id (`005…`).
    pub user_id: SalesforceId,
    /// The org's 18-character Id (`00D…`).
    pub organization_id: SalesforceId,
    /// The Salesforce username.
    pub preferred_username: String,
    /// Full name, when Salesforce sent one.
    pub name: Option<String>,
    /// Email address, when Salesforce sent one.
    pub email: Option<String>,
}

/// A user's Profile name and permission set API names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserAccess {
    pub profile: Option<String>,
    pub permission_sets: Vec<String>,
}

/// The web-server flow of one connected app against one login URL.
///
/// The app's consumer secret (when given) goes in the token request's form body, as
/// Salesforce documents; the authorize URL never carries it.
pub struct WebFlow {
    oauth: OAuthClient,
    revoke_url: Url,
    http: reqwest::Client,
    api_version: String,
}

impl std::fmt::Debug for WebFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebFlow")
            .field("client_id", self.oauth.client_id())
            .field("authorize", &self.oauth.auth_uri().as_str())
            .finish_non_exhaustive()
    }
}

impl WebFlow {
    /// The flow of the app `client_id` (with its consumer secret, when the app requires one for
    /// the web-server flow) at `login_url` (`https://login.salesforce.com`, a My Domain URL,
    /// …), coming back to `redirect_url`, which must be one of the app's callback URLs
    /// exactly. Sends nothing.
    pub fn new(
        login_url: &str,
        client_id: &str,
        client_secret: Option<SecretString>,
        redirect_url: &str,
    ) -> Result<Self, Error> {
        let base = http_url(login_url)
            .ok_or_else(|| Error::Invalid("login_url is not an http(s) URL".to_owned()))?;
        let base = base.as_str().trim_end_matches('/');
        let redirect = http_url(redirect_url)
            .filter(|u| u.fragment().is_none())
            .ok_or_else(|| {
                Error::Invalid("redirect_url is not an http(s) URL without a #fragment".to_owned())
            })?;
        if client_id.is_empty() || client_id.len() > 256 {
            return Err(Error::Invalid(
                "client_id must be 1 to 256 characters".to_owned(),
            ));
        }
        let endpoint = |path: &str| format!("{base}/services/oauth2/{path}");
        let bad = |_| Error::Invalid("login_url does not make valid endpoint URLs".to_owned());
        let mut oauth = oauth2::Client::new(ClientId::new(client_id.to_owned()))
            .set_auth_uri(AuthUrl::new(endpoint("authorize")).map_err(bad)?)
            .set_token_uri(TokenUrl::new(endpoint("token")).map_err(bad)?)
            .set_redirect_uri(RedirectUrl::from_url(redirect))
            // Salesforce documents client_id / client_secret in the form body.
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = client_secret {
            oauth = oauth.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            // Tokens go to the endpoints named here and nowhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("handoff-salesforce/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid(format!("could not build the HTTP client: {e}")))?;
        let revoke_url = Url::parse(&endpoint("revoke")).map_err(bad)?;
        Ok(WebFlow {
            oauth,
            revoke_url,
            http,
            api_version: "v66.0".to_owned(),
        })
    }

    /// Uses REST API `version` (e.g. `v66.0`) for the profile and permission set queries.
    pub fn with_api_version(mut self, version: &str) -> Self {
        version.clone_into(&mut self.api_version);
        self
    }

    /// The authorize URL for `scopes` (e.g. `["api", "refresh_token", "openid"]`) with a fresh
    /// random `state` and a PKCE S256 challenge.
    pub fn authorize(&self, scopes: &[&str]) -> Authorize {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .oauth
            .authorize_url(CsrfToken::new_random)
            .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())))
            .set_pkce_challenge(challenge)
            .url();
        Authorize {
            url,
            state: state.secret().clone(),
            pkce_verifier: SecretString::from(verifier.secret().clone()),
        }
    }

    /// Exchanges an authorization code (with the PKCE verifier of its round trip) for tokens.
    pub async fn exchange(&self, code: &str, verifier: &SecretString) -> Result<WebTokens, Error> {
        if code.is_empty() || code.len() > 4096 {
            return Err(Error::Invalid(
                "authorization code must be 1 to 4096 characters".to_owned(),
            ));
        }
        let http = |request: HttpRequest| send(self.http.clone(), request);
        let response = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_owned()))
            .request_async(&http)
            .await
            .map_err(token_error)?;
        web_tokens(response)
    }

    /// Revokes a refresh token (and the access tokens it issued) at
    /// `{login_url}/services/oauth2/revoke`.
    pub async fn revoke_refresh_token(&self, refresh_token: &SecretString) -> Result<(), Error> {
        self.revoke(refresh_token).await
    }

    /// Revokes an access token.
    pub async fn revoke_access_token(&self, access_token: &SecretString) -> Result<(), Error> {
        self.revoke(access_token).await
    }

    /// Salesforce's revoke endpoint takes the token alone (`token=…`). Sent by hand: `oauth2`
    /// refuses a revocation URL that is not https, and the emulator is plain http.
    async fn revoke(&self, token: &SecretString) -> Result<(), Error> {
        let mut response = self
            .http
            .post(self.revoke_url.clone())
            .header(ACCEPT, "application/json")
            .form(&[("token", token.expose_secret())])
            .send()
            .await
            .map_err(|e| Error::transport(&e))?;
        let status = response.status();
        let body = read_bounded(&mut response).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(Error::from_oauth_response(status.as_u16(), &body))
        }
    }

    /// Who the token belongs to: `GET {base_url}/services/oauth2/userinfo` (`base_url` is the
    /// instance URL or the login URL).
    pub async fn userinfo(
        &self,
        base_url: &Url,
        access_token: &SecretString,
    ) -> Result<UserInfo, Error> {
        let url = join(base_url, "/services/oauth2/userinfo")?;
        let body = self.get(url, access_token).await?;
        parse_userinfo(&body)
    }

    /// The user's Profile name and the API names of their permission sets, read with their
    /// own token by SOQL (at most [`MAX_PERMISSION_SETS`] assignments).
    pub async fn profile_and_permission_sets(
        &self,
        instance_url: &Url,
        access_token: &SecretString,
        user_id: &SalesforceId,
    ) -> Result<UserAccess, Error> {
        let id = soql::quote(user_id.as_str()).map_err(|e| Error::Invalid(e.to_string()))?;
        let profile_rows = self
            .query(
                instance_url,
                access_token,
                &format!("SELECT Profile.Name FROM User WHERE Id = {id} LIMIT 1"),
            )
            .await?;
        let profile = profile_rows
            .first()
            .and_then(|row| row.get("Profile"))
            .and_then(|p| p.get("Name"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let assignments = self
            .query(
                instance_url,
                access_token,
                &format!(
                    "SELECT PermissionSet.Name FROM PermissionSetAssignment WHERE AssigneeId = {id} LIMIT {MAX_PERMISSION_SETS}"
                ),
            )
            .await?;
        let permission_sets = assignments
            .iter()
            .filter_map(|row| row.get("PermissionSet")?.get("Name")?.as_str())
            .map(str::to_owned)
            .collect();
        Ok(UserAccess {
            profile,
            permission_sets,
        })
    }

    /// One page of a SOQL query's records.
    async fn query(
        &self,
        instance_url: &Url,
        access_token: &SecretString,
        soql: &str,
    ) -> Result<Vec<Value>, Error> {
        let mut url = join(
            instance_url,
            &format!("/services/data/{}/query", self.api_version),
        )?;
        url.query_pairs_mut().append_pair("q", soql);
        let body = self.get(url, access_token).await?;
        let page: Value = serde_json::from_slice(&body)
            .map_err(|_| Error::Decode("query response is not JSON".to_owned()))?;
        match page.get("records") {
            Some(Value::Array(records)) => Ok(records.clone()),
            _ => Err(Error::Decode(
                "query response has no records list".to_owned(),
            )),
        }
    }

    async fn get(&self, url: Url, access_token: &SecretString) -> Result<Vec<u8>, Error> {
        let mut response = self
            .http
            .get(url)
            .bearer_auth(access_token.expose_secret())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Error::transport(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_bounded(&mut response).await?;
        if !status.is_success() {
            return Err(Error::from_response(status.as_u16(), &headers, &body));
        }
        Ok(body)
    }
}

/// The async HTTP function `oauth2` sends its requests with.
async fn send(http: reqwest::Client, request: HttpRequest) -> Result<HttpResponse, Error> {
    let request = reqwest::Request::try_from(request)
        .map_err(|_| Error::Invalid("could not build the OAuth request".to_owned()))?;
    let mut response = http
        .execute(request)
        .await
        .map_err(|e| Error::transport(&e))?;
    let mut answer = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    let body = read_bounded(&mut response).await?;
    answer
        .body(body)
        .map_err(|_| Error::Decode("unreadable OAuth response".to_owned()))
}

/// Reads a body of at most [`MAX_BODY_BYTES`].
async fn read_bounded(response: &mut reqwest::Response) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Error::transport(&e))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Error::Decode(format!(
                "response body is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns `oauth2`'s error into ours without the response body (it would hold tokens).
fn token_error(e: RequestTokenError<Error, BasicErrorResponse>) -> Error {
    match e {
        RequestTokenError::ServerResponse(r) => Error::OAuth {
            status: 400,
            error: r.error().to_string(),
            description: r.error_description().cloned().unwrap_or_default(),
        },
        RequestTokenError::Request(e) => e,
        RequestTokenError::Parse(e, _body) => Error::Decode(format!(
            "token response is not what Salesforce sends (at `{}`)",
            e.path()
        )),
        RequestTokenError::Other(detail) => Error::Decode(format!("token endpoint: {detail}")),
    }
}

fn web_tokens(response: SalesforceTokenResponse) -> Result<WebTokens, Error> {
    let extra = response.extra_fields();
    let instance_url = http_url(&extra.instance_url).ok_or_else(|| {
        Error::Decode("token response instance_url is not an http(s) URL".to_owned())
    })?;
    if response.access_token().secret().is_empty() {
        return Err(Error::Decode(
            "token response has an empty access_token".to_owned(),
        ));
    }
    Ok(WebTokens {
        access_token: SecretString::from(response.access_token().secret().clone()),
        refresh_token: response
            .refresh_token()
            .map(|t| SecretString::from(t.secret().clone()))
            .filter(|t| !t.expose_secret().is_empty()),
        instance_url,
        id_url: extra.id.clone(),
        scopes: response
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
    })
}

fn parse_userinfo(body: &[u8]) -> Result<UserInfo, Error> {
    #[derive(Deserialize)]
    struct Raw {
        user_id: String,
        organization_id: String,
        preferred_username: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        email: Option<String>,
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|e| {
        let detail = e.to_string();
        if detail.starts_with("missing field") {
            Error::Decode(format!("userinfo: {detail}"))
        } else {
            Error::Decode("userinfo response is not the expected JSON object".to_owned())
        }
    })?;
    let id = |value: &str, prefix: &str, field: &str| {
        SalesforceId::parse(value)
            .ok()
            .filter(|id| id.key_prefix() == prefix)
            .ok_or_else(|| Error::Decode(format!("userinfo {field} is not a {prefix} Id")))
    };
    let user_id = id(&raw.user_id, "005", "user_id")?;
    let organization_id = id(&raw.organization_id, "00D", "organization_id")?;
    if raw.preferred_username.is_empty() || raw.preferred_username.len() > 255 {
        return Err(Error::Decode(
            "userinfo preferred_username must be 1 to 255 characters".to_owned(),
        ));
    }
    let bounded = |v: Option<String>| v.filter(|v| !v.is_empty() && v.len() <= 255);
    Ok(UserInfo {
        user_id,
        organization_id,
        preferred_username: raw.preferred_username,
        name: bounded(raw.name),
        email: bounded(raw.email),
    })
}

fn http_url(text: &str) -> Option<Url> {
    Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

fn join(base: &Url, path: &str) -> Result<Url, Error> {
    Url::parse(&format!("{}{path}", base.as_str().trim_end_matches('/')))
        .map_err(|_| Error::Invalid("could not build the request URL".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use sha2::{Digest, Sha256};

    fn flow() -> WebFlow {
        WebFlow::new(
            "https://acme.my.salesforce.com/",
            "consumer-key",
            Some(SecretString::from("consumer-secret")),
            "https://handoff.example/console/oauth/callback",
        )
        .unwrap()
    }

    #[test]
    fn authorize_url_carries_state_pkce_and_scopes() {
        let flow = flow();
        let a = flow.authorize(&["api", "refresh_token", "openid"]);
        assert_eq!(
            a.url.as_str().split('?').next().unwrap(),
            "https://acme.my.salesforce.com/services/oauth2/authorize"
        );
        let q: std::collections::HashMap<String, String> =
            a.url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "consumer-key");
        assert_eq!(
            q["redirect_uri"],
            "https://handoff.example/console/oauth/callback"
        );
        assert_eq!(q["scope"], "api refresh_token openid");
        assert_eq!(q["state"], a.state);
        assert_eq!(q["code_challenge_method"], "S256");
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(a.pkce_verifier.expose_secret()));
        assert_eq!(q["code_challenge"], expected);
        assert!(!q.contains_key("client_secret"));
        assert!(!a.url.as_str().contains("consumer-secret"));
        // Fresh randomness every time.
        let b = flow.authorize(&["openid"]);
        assert_ne!(a.state, b.state);
        assert_ne!(
            a.pkce_verifier.expose_secret(),
            b.pkce_verifier.expose_secret()
        );
        assert!(a.state.len() >= 16);
        assert!(!format!("{a:?}").contains(&a.state));
    }

    #[test]
    fn bad_configuration_is_refused() {
        let bad = [
            ("ftp://x", "id", "https://h/cb"),
            ("https://x", "", "https://h/cb"),
            ("https://x", "id", "not a url"),
            ("https://x", "id", "https://h/cb#frag"),
        ];
        for (login, id, redirect) in bad {
            assert!(
                matches!(
                    WebFlow::new(login, id, None, redirect),
                    Err(Error::Invalid(_))
                ),
                "{login} {id} {redirect}"
            );
        }
    }

    #[test]
    fn token_response_with_salesforce_fields() {
        let body = br#"{"access_token":"00Dxx!AQ.secret","refresh_token":"5Aep861.rt",
            "signature":"c2ln","scope":"api refresh_token openid","instance_url":"https://acme.my.salesforce.com",
            "id":"https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
            "token_type":"Bearer","issued_at":"1700000000000"}"#;
        let parsed: SalesforceTokenResponse = serde_json::from_slice(body).unwrap();
        let tokens = web_tokens(parsed).unwrap();
        assert_eq!(tokens.access_token.expose_secret(), "00Dxx!AQ.secret");
        assert_eq!(
            tokens.refresh_token.as_ref().unwrap().expose_secret(),
            "5Aep861.rt"
        );
        assert_eq!(
            tokens.instance_url.as_str(),
            "https://acme.my.salesforce.com/"
        );
        assert!(
            tokens
                .id_url
                .as_deref()
                .unwrap()
                .ends_with("/005xx000001SwiUAAS")
        );
        assert_eq!(tokens.scopes, ["api", "refresh_token", "openid"]);
        let debug = format!("{tokens:?}");
        assert!(
            !debug.contains("secret") && !debug.contains("5Aep861"),
            "{debug}"
        );

        let bad_instance: SalesforceTokenResponse = serde_json::from_slice(
            br#"{"access_token":"a","token_type":"Bearer","instance_url":"javascript:alert(1)"}"#,
        )
        .unwrap();
        assert!(matches!(web_tokens(bad_instance), Err(Error::Decode(_))));
    }

    #[tokio::test]
    async fn token_errors_never_carry_the_body() {
        let body = br#"{"access_token":"TOPSECRET","token_type":"Bearer"}"#.to_vec();
        let parse_err = oauth2_error_for(&body).await;
        assert!(matches!(parse_err, RequestTokenError::Parse(..)));
        let err = token_error(parse_err);
        let text = err.to_string();
        assert!(!text.contains("TOPSECRET"), "{text}");
        assert!(text.contains("token response"), "{text}");
    }

    /// A `Parse` error as oauth2 builds it for a body missing `instance_url`.
    async fn oauth2_error_for(body: &[u8]) -> RequestTokenError<Error, BasicErrorResponse> {
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .unwrap();
        let client: OAuthClient = flow().oauth;
        let http = move |_request: HttpRequest| {
            let response = response.clone();
            async move { Ok::<_, Error>(response) }
        };
        client
            .exchange_code(AuthorizationCode::new("code".into()))
            .request_async(&http)
            .await
            .unwrap_err()
    }

    #[test]
    fn userinfo_is_checked() {
        let ok = br#"{"sub":"https://x/id/00D/005","user_id":"005xx000001SwiUAAS",
            "organization_id":"00Dxx0000001gPLEAY","preferred_username":"ada@acme.example",
            "name":"Ada Admin","email":"ada@acme.example","email_verified":true}"#;
        let info = parse_userinfo(ok).unwrap();
        assert_eq!(info.user_id.as_str(), "005xx000001SwiUAAS");
        assert_eq!(info.organization_id.as_str(), "00Dxx0000001gPLEAY");
        assert_eq!(info.preferred_username, "ada@acme.example");
        assert_eq!(info.name.as_deref(), Some("Ada Admin"));

        for bad in [
            &br#"{"user_id":"00Dxx0000001gPLEAY","organization_id":"00Dxx0000001gPLEAY","preferred_username":"a"}"#[..],
            br#"{"user_id":"005xx000001SwiUAAS","organization_id":"x","preferred_username":"a"}"#,
            br#"{"user_id":"005xx000001SwiUAAS","organization_id":"00Dxx0000001gPLEAY","preferred_username":""}"#,
            br#"{"organization_id":"00Dxx0000001gPLEAY","preferred_username":"a"}"#,
            b"<html>",
        ] {
            assert!(matches!(parse_userinfo(bad), Err(Error::Decode(_))));
        }
    }
}
