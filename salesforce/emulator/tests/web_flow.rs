//! The OAuth web-server flow over real sockets: the login page, codes with PKCE, the
//! `authorization_code` grant, refresh and revoke of the tokens it issues, userinfo, and the
//! Profile / PermissionSet records a gateway checks after sign-in.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{V, read, spawn};
use serde_json::Value;
use sf_emulator::config::{
    CONSOLE_ADMIN_PASSWORD, CONSOLE_ADMIN_USERNAME, CONSOLE_OPERATOR_PASSWORD,
    CONSOLE_OPERATOR_USERNAME, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
};
use sf_emulator::{ConnectedApp, EmulatorConfig, EmulatorHandle};
use sha2::{Digest, Sha256};

const CALLBACK: &str = "http://127.0.0.1:9/console/oauth/callback";
const VERIFIER: &str = "k3-Vx.9_q~verifier-with-enough-entropy-for-rfc-7636-0123456789";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

struct Flow {
    sf: EmulatorHandle,
    http: reqwest::Client,
}

impl Flow {
    async fn new(config: EmulatorConfig) -> Flow {
        let sf = spawn(config).await;
        sf.add_callback_url(DEFAULT_CLIENT_ID, CALLBACK).unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Flow { sf, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sf.url())
    }

    /// The authorize request's parameters for the default app with PKCE.
    fn request(&self, redirect_uri: &str, state: &str) -> Vec<(String, String)> {
        [
            ("response_type", "code"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    async fn show(&self, params: &[(String, String)]) -> reqwest::Response {
        self.http
            .get(self.url("/services/oauth2/authorize"))
            .query(params)
            .send()
            .await
            .unwrap()
    }

    async fn submit(
        &self,
        params: &[(String, String)],
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let mut form = params.to_vec();
        form.push(("username".into(), username.into()));
        form.push(("pw".into(), password.into()));
        self.http
            .post(self.url("/services/oauth2/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Signs in at the login page; returns the code from the redirect (checking `state`).
    async fn code(&self, redirect_uri: &str, username: &str, password: &str) -> String {
        let params = self.request(redirect_uri, "st-123");
        let page = self.show(&params).await;
        assert_eq!(page.status(), 200);
        let resp = self.submit(&params, username, password).await;
        assert_eq!(resp.status(), 302, "{:?}", resp.text().await);
        let location = reqwest::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        assert_eq!(
            format!(
                "{}://{}{}",
                location.scheme(),
                location.authority(),
                location.path()
            ),
            redirect_uri
        );
        let q: Vec<(String, String)> = location.query_pairs().into_owned().collect();
        assert!(q.contains(&("state".into(), "st-123".into())));
        q.into_iter().find(|(k, _)| k == "code").unwrap().1
    }

    async fn exchange(&self, form: &[(&str, &str)]) -> common::Resp {
        read(
            self.http
                .post(self.url("/services/oauth2/token"))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn redeem(&self, code: &str, redirect_uri: &str, verifier: &str) -> common::Resp {
        self.exchange(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
            ("code_verifier", verifier),
        ])
        .await
    }

    async fn query(&self, token: &str, soql: &str) -> common::Resp {
        read(
            self.http
                .get(self.url(&format!("{V}/query")))
                .query(&[("q", soql)])
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn userinfo(&self, token: &str) -> (u16, String) {
        let r = self
            .http
            .get(self.url("/services/oauth2/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

fn location(resp: &reqwest::Response) -> Option<reqwest::Url> {
    resp.headers()
        .get("location")
        .map(|l| reqwest::Url::parse(l.to_str().unwrap()).unwrap())
}

fn query_of(url: &reqwest::Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

fn oauth_error(r: &common::Resp) -> (u16, &str, &str) {
    (
        r.status,
        r.body["error"].as_str().unwrap_or_default(),
        r.body["error_description"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_login_page_carries_the_request_and_has_the_documented_fields() {
    let f = Flow::new(EmulatorConfig::default()).await;
    let resp = f.show(&f.request(CALLBACK, "abc")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/html;charset=UTF-8"
    );
    let page = resp.text().await.unwrap();
    for needle in [
        r#"id="username" name="username""#,
        r#"id="password" name="pw""#,
        r#"id="Login""#,
        r#"<input type="hidden" name="state" value="abc">"#,
        r#"<input type="hidden" name="code_challenge_method" value="S256">"#,
        r#"action="/services/oauth2/authorize""#,
    ] {
        assert!(page.contains(needle), "{needle} missing from {page}");
    }
    assert!(!page.contains("<script"), "no script on the page");
    for external in ["src=", "href=", "<link", "@import", "url("] {
        assert!(!page.contains(external), "no external assets: {external}");
    }
}

#[tokio::test]
async fn code_flow_with_pkce_gives_a_token_for_rest_userinfo_profile_and_permission_sets() {
    let f = Flow::new(EmulatorConfig::default()).await;
    let code = f
        .code(CALLBACK, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD)
        .await;
    assert!(code.starts_with("aPrx"));
    let r = f.redeem(&code, CALLBACK, VERIFIER).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let token = r.body["access_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("00D5g000004Hnd0!"));
    assert!(
        r.body["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("5Aep861")
    );
    assert_eq!(r.body["scope"], "api id openid refresh_token");
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["instance_url"], f.sf.url());
    assert!(r.body["signature"].as_str().is_some());
    assert_eq!(r.body["issued_at"].as_str().unwrap().len(), 13);
    let id_url = r.body["id"].as_str().unwrap().to_string();
    let user_id = id_url.rsplit('/').next().unwrap().to_string();
    assert!(user_id.starts_with("005"));

    let (status, text) = f.userinfo(&token).await;
    assert_eq!(status, 200, "{text}");
    let info: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(info["sub"], id_url.as_str());
    assert_eq!(info["user_id"], user_id.as_str());
    assert_eq!(info["preferred_username"], CONSOLE_ADMIN_USERNAME);
    assert_eq!(info["nickname"], "admin");
    assert_eq!(info["name"], "Ada Admin");
    assert_eq!(info["given_name"], "Ada");
    assert_eq!(info["family_name"], "Admin");
    assert_eq!(info["email"], CONSOLE_ADMIN_USERNAME);
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["active"], true);
    assert_eq!(info["user_type"], "STANDARD");
    assert_eq!(info["organization_id"], "00D5g000004Hnd0EAC");
    assert_eq!(
        info["urls"]["rest"],
        format!("{}/services/data/v{{version}}/", f.sf.url())
    );
    // POST answers the same.
    let posted = f
        .http
        .post(f.url("/services/oauth2/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);

    let r = f
        .query(
            &token,
            &format!("SELECT Id, Username, Profile.Name FROM User WHERE Id = '{user_id}'"),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["totalSize"], 1);
    let rec = &r.body["records"][0];
    assert_eq!(rec["Username"], CONSOLE_ADMIN_USERNAME);
    assert_eq!(rec["Profile"]["Name"], "System Administrator");
    assert_eq!(rec["Profile"]["attributes"]["type"], "Profile");
    let r = f
        .query(
            &token,
            &format!(
                "SELECT PermissionSet.Name FROM PermissionSetAssignment WHERE AssigneeId = '{user_id}'"
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["totalSize"], 1);
    assert_eq!(
        r.body["records"][0]["PermissionSet"]["Name"],
        "Handoff_Console_Admin"
    );
}

#[tokio::test]
async fn the_operator_signs_in_with_the_standard_profile_and_its_permission_set() {
    let f = Flow::new(EmulatorConfig::default()).await;
    let code = f
        .code(
            CALLBACK,
            CONSOLE_OPERATOR_USERNAME,
            CONSOLE_OPERATOR_PASSWORD,
        )
        .await;
    let r = f.redeem(&code, CALLBACK, VERIFIER).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let token = r.body["access_token"].as_str().unwrap();
    let user_id = r.body["id"].as_str().unwrap().rsplit('/').next().unwrap();
    let r = f
        .query(
            token,
            &format!("SELECT Profile.Name FROM User WHERE Id = '{user_id}'"),
        )
        .await;
    assert_eq!(r.body["records"][0]["Profile"]["Name"], "Standard User");
    let r = f
        .query(
            token,
            &format!(
                "SELECT PermissionSet.Name, PermissionSet.Label FROM PermissionSetAssignment WHERE AssigneeId = '{user_id}'"
            ),
        )
        .await;
    assert_eq!(r.body["totalSize"], 1);
    assert_eq!(
        r.body["records"][0]["PermissionSet"]["Name"],
        "Handoff_Console_Operator"
    );
    assert_eq!(
        r.body["records"][0]["PermissionSet"]["Label"],
        "Handoff Console Operator"
    );
    // Profiles and permission sets are read-only through the API.
    let r = read(
        f.http
            .post(f.url(&format!("{V}/sobjects/Profile")))
            .bearer_auth(token)
            .json(&serde_json::json!({"Name": "Hacker"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "INVALID_TYPE_FOR_OPERATION");
}

#[tokio::test]
async fn a_wrong_verifier_or_none_is_refused_and_uses_the_code_up() {
    let f = Flow::new(EmulatorConfig::default()).await;
    let code = f
        .code(CALLBACK, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD)
        .await;
    let wrong = "x".repeat(43);
    let r = f.redeem(&code, CALLBACK, &wrong).await;
    assert_eq!(
        oauth_error(&r),
        (400, "invalid_grant", "invalid code verifier")
    );
    let r = f.redeem(&code, CALLBACK, VERIFIER).await;
    assert_eq!(
        oauth_error(&r),
        (400, "invalid_grant", "invalid authorization code")
    );
    let code = f
        .code(CALLBACK, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD)
        .await;
    let r = f
        .exchange(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ])
        .await;
    assert_eq!(
        oauth_error(&r),
        (400, "invalid_grant", "invalid code verifier")
    );
}

#[tokio::test]
async fn a_code_is_single_use() {
    let f = Flow::new(EmulatorConfig::default()).await;
    let code = f
        .code(CALLBACK, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD)
        .await;
    assert_eq!(f.redeem(&code, CALLBACK, VERIFIER).await.status, 200);
    let r = f.redeem(&code, CALLBACK, VERIFIER).await;
    assert_eq!(
        oauth_error(&r),
        (400, "invalid_grant", "invalid authorization code")
    );
    let r = f.redeem("aPrxmadeup", CALLBACK, VERIFIER).await;
    assert_eq!(
        oauth_error(&r),
        (400, "invalid_grant", "invalid authorization code")
    );
}

#[tokio::test]
async fn a_code_redeemed_with_another_redirect_uri_is_refused() {
    let f = Flow::new(EmulatorConfig::default()).await;
    let other = "http://127.0.0.1:9/other/callback";
    f.sf.add_callback_url(DEFAULT_CLIENT_ID, other).unwrap();
    let code = f
        .code(CALLBACK, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD)
        .await;
    let r = f.redeem(&code, other, VERIFIER).await;
    assert_eq!(
        oauth_error(&r),
        (
            400,
            "redirect_uri_mismatch",
            "redirect_uri must match configuration"
        )
    );
}

#[tokio::test]
async fn the_client_secret_is_required_unless_the_app_says_otherwise() {
    let mut config = EmulatorConfig::default();
    config.connected_apps.push(ConnectedApp {
        require_secret_for_web_server_flow: false,
        callback_urls: vec![CALLBACK.into()],
        ..ConnectedApp::new("public-app", "public-secret")
    });
    let f = Flow::new(config).await;
    let code = f
        .code(CALLBACK, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD)
        .await;
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", DEFAULT_CLIENT_ID),
        ("code_verifier", VERIFIER),
    ];
    let r = f.exchange(&base).await;
    assert_eq!(
        oauth_error(&r),
        (400, "invalid_client", "invalid client credentials")
    );
    // The public app: no secret needed, but a wrong one still fails.
    let mut params = f.request(CALLBACK, "s");
    params[1].1 = "public-app".into();
    let resp = f
        .submit(&params, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD)
        .await;
    let code = query_of(&location(&resp).unwrap())
        .into_iter()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", "public-app"),
        ("code_verifier", VERIFIER),
    ];
    let r = f.exchange(&form).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = f
        .exchange(&[
            ("grant_type", "authorization_code"),
            ("code", "whatever"),
            ("redirect_uri", CALLBACK),
            ("client_id", "public-app"),
            ("client_secret", "wrong"),
        ])
        .await;
    assert_eq!(oauth_error(&r).1, "invalid_client");
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_unknown_app_gets_an_error_page_not_a_redirect() {
    let f = Flow::new(EmulatorConfig::default()).await;
    let evil = "https://evil.example/steal";
    let resp = f.show(&f.request(evil, "s")).await;
    assert_eq!(resp.status(), 400);
    assert!(location(&resp).is_none());
    let page = resp.text().await.unwrap();
    assert!(page.contains("redirect_uri_mismatch"), "{page}");
    assert!(!page.contains(evil));
    // A trailing slash is another URL.
    let resp = f.show(&f.request(&format!("{CALLBACK}/"), "s")).await;
    assert_eq!(resp.status(), 400);
    // The login form is checked the same way.
    let resp = f
        .submit(
            &f.request(evil, "s"),
            CONSOLE_ADMIN_USERNAME,
            CONSOLE_ADMIN_PASSWORD,
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert!(location(&resp).is_none());
    let mut params = f.request(CALLBACK, "s");
    params[1].1 = "ghost".into();
    let resp = f.show(&params).await;
    assert_eq!(resp.status(), 400);
    assert!(location(&resp).is_none());
    assert!(resp.text().await.unwrap().contains("invalid_client_id"));
}

#[tokio::test]
async fn other_request_errors_are_sent_to_the_callback_with_state() {
    let f = Flow::new(EmulatorConfig::default()).await;
    let cases: [(&str, &str, &str); 5] = [
        ("response_type", "token", "unsupported_response_type"),
        ("code_challenge_method", "plain", "invalid_request"),
        ("code_challenge", "too-short", "invalid_request"),
        ("scope", "api web", "invalid_scope"),
        ("prompt", "none", "login_required"),
    ];
    for (name, value, error) in cases {
        let mut params = f.request(CALLBACK, "keep-me");
        match params.iter_mut().find(|(k, _)| k == name) {
            Some(p) => p.1 = value.into(),
            None => params.push((name.into(), value.into())),
        }
        let resp = f.show(&params).await;
        assert_eq!(resp.status(), 302, "{name}={value}");
        let to = location(&resp).unwrap();
        assert!(to.as_str().starts_with(CALLBACK));
        let q = query_of(&to);
        assert!(q.contains(&("error".into(), error.into())), "{name}: {q:?}");
        assert!(q.iter().any(|(k, _)| k == "error_description"));
        assert!(q.contains(&("state".into(), "keep-me".into())));
    }
}

#[tokio::test]
async fn a_wrong_password_shows_the_login_page_again() {
    let f = Flow::new(EmulatorConfig::default()).await;
    let params = f.request(CALLBACK, "s");
    for (user, pw) in [
        (CONSOLE_ADMIN_USERNAME, "nope"),
        (CONSOLE_ADMIN_USERNAME, ""),
        ("nobody@handoff.emulator", CONSOLE_ADMIN_PASSWORD),
        (CONSOLE_ADMIN_USERNAME, CONSOLE_OPERATOR_PASSWORD),
    ] {
        let resp = f.submit(&params, user, pw).await;
        assert_eq!(resp.status(), 200);
        assert!(location(&resp).is_none());
        let page = resp.text().await.unwrap();
        assert!(
            page.contains(
                r#"<div id="error" role="alert">Please check your username and password."#
            ),
            "{page}"
        );
        assert!(page.contains(r#"id="password""#));
        assert!(page.contains(r#"<input type="hidden" name="client_id""#));
        assert!(!page.contains(pw) || pw.is_empty());
    }
}

#[tokio::test]
async fn hostile_values_are_escaped_on_the_page() {
    let f = Flow::new(EmulatorConfig::default()).await;
    let hostile_cb = r#"http://127.0.0.1:9/cb?x="><script>alert(1)</script>"#;
    f.sf.add_callback_url(DEFAULT_CLIENT_ID, hostile_cb)
        .unwrap();
    let state = r#""><script>alert('s')</script><x y=""#;
    let mut params = f.request(hostile_cb, state);
    params.push(("login_hint".into(), "<img src=x onerror=alert(2)>".into()));
    let resp = f.show(&params).await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(page.contains("&quot;&gt;&lt;script&gt;alert(&#39;s&#39;)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    // The escaped values come back intact through the form.
    let resp = f
        .submit(&params, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD)
        .await;
    assert_eq!(resp.status(), 302);
    let q = query_of(&location(&resp).unwrap());
    assert!(q.contains(&("state".into(), state.into())));
    assert!(q.contains(&("x".into(), r#""><script>alert(1)</script>"#.into())));
    // A wrong password re-renders with the hostile username escaped.
    let resp = f.submit(&params, "<b>who</b>", "x").await;
    let page = resp.text().await.unwrap();
    assert!(!page.contains("<b>who"));
    assert!(page.contains("&lt;b&gt;who&lt;/b&gt;"));
}

#[tokio::test]
async fn the_refresh_token_from_the_code_flow_refreshes_and_revokes() {
    let f = Flow::new(EmulatorConfig::default()).await;
    let code = f
        .code(
            CALLBACK,
            CONSOLE_OPERATOR_USERNAME,
            CONSOLE_OPERATOR_PASSWORD,
        )
        .await;
    let r = f.redeem(&code, CALLBACK, VERIFIER).await;
    let first = r.body["access_token"].as_str().unwrap().to_string();
    let refresh = r.body["refresh_token"].as_str().unwrap().to_string();
    let r = f
        .exchange(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ])
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.get("refresh_token").is_none());
    assert_eq!(r.body["scope"], "api id openid refresh_token");
    let second = r.body["access_token"].as_str().unwrap().to_string();
    let (status, text) = f.userinfo(&second).await;
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(info["preferred_username"], CONSOLE_OPERATOR_USERNAME);
    // Another app cannot use it.
    let r = f
        .exchange(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "other"),
        ])
        .await;
    assert_eq!(oauth_error(&r).1, "invalid_client_id");
    // Revoking the refresh token ends it and every access token it gave.
    let revoked = f
        .http
        .post(f.url("/services/oauth2/revoke"))
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let r = f
        .exchange(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ])
        .await;
    assert_eq!(
        oauth_error(&r),
        (400, "invalid_grant", "expired access/refresh token")
    );
    for token in [&first, &second] {
        let (status, text) = f.userinfo(token).await;
        assert_eq!((status, text.as_str()), (403, "Bad_OAuth_Token"));
        let r = f.query(token, "SELECT Id FROM User").await;
        assert_eq!(r.status, 401);
    }
}

#[tokio::test]
async fn userinfo_refuses_missing_and_bad_tokens_as_text() {
    let f = Flow::new(EmulatorConfig::default()).await;
    let (status, text) = f.userinfo("00D5g000004Hnd0!bogus").await;
    assert_eq!((status, text.as_str()), (403, "Bad_OAuth_Token"));
    let r = f
        .http
        .get(f.url("/services/oauth2/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "Missing_OAuth_Token");
}

#[tokio::test]
async fn callback_urls_come_from_config_too_and_bad_ones_are_refused() {
    let mut config = EmulatorConfig::default();
    config.connected_apps[0].callback_urls =
        vec!["https://gw.example/console/oauth/callback".into()];
    let sf = spawn(config.clone()).await;
    assert!(sf.add_callback_url("ghost", CALLBACK).is_err());
    assert!(
        sf.add_callback_url(DEFAULT_CLIENT_ID, "relative/path")
            .is_err()
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .get(format!("{}/services/oauth2/authorize", sf.url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", "https://gw.example/console/oauth/callback"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    config.connected_apps[0].callback_urls = vec!["not a url".into()];
    assert!(config.validate().unwrap_err().contains("callback_urls"));
    let mut config = EmulatorConfig::default();
    config.users[1].permission_sets = vec!["Bad Name".into()];
    assert!(config.validate().unwrap_err().contains("permission set"));
}
