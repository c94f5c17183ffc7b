//! The web-server flow (authorization code + PKCE) against the emulator over real sockets:
//! authorize URL → the login form → the code → tokens → userinfo → profile and permission
//! sets → revoke.

use std::collections::HashMap;

use salesforce::{Error, WebFlow};
use secrecy::{ExposeSecret, SecretString};
use sf_emulator::config::{
    ADMIN_PROFILE, CONSOLE_ADMIN_PASSWORD, CONSOLE_ADMIN_PERMISSION_SET, CONSOLE_ADMIN_USERNAME,
};
use sf_emulator::{EmulatorConfig, EmulatorHandle};
use tokio::net::TcpListener;
use url::Url;

const CLIENT_ID: &str = "handoff-local-client";
const CLIENT_SECRET: &str = "handoff-local-secret";
const CALLBACK: &str = "http://127.0.0.1:9/console/oauth/callback";

async fn start() -> EmulatorHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emulator = sf_emulator::spawn(EmulatorConfig::default(), listener)
        .await
        .unwrap();
    emulator.add_callback_url(CLIENT_ID, CALLBACK).unwrap();
    emulator
}

/// Submits the emulator's login form for `authorize` and returns the callback URL it
/// redirects to.
async fn log_in(authorize: &Url, username: &str, password: &str) -> Url {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(authorize.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("username".into(), username.into()));
    form.push(("pw".into(), password.into()));
    let mut post = authorize.clone();
    post.set_query(None);
    let answer = http.post(post).form(&form).send().await.unwrap();
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"].to_str().unwrap();
    Url::parse(location).unwrap()
}

#[tokio::test]
async fn sign_in_round_trip() {
    let emulator = start().await;
    let flow = WebFlow::new(
        &emulator.url(),
        CLIENT_ID,
        Some(SecretString::from(CLIENT_SECRET)),
        CALLBACK,
    )
    .unwrap();
    let start = flow.authorize(&["api", "refresh_token", "openid"]);
    let callback = log_in(&start.url, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD).await;
    assert!(callback.as_str().starts_with(CALLBACK));
    let q: HashMap<String, String> = callback.query_pairs().into_owned().collect();
    assert_eq!(q["state"], start.state);
    let code = &q["code"];

    // The wrong verifier is refused, and uses the code up (as Salesforce does).
    let wrong = SecretString::from("x".repeat(64));
    let err = flow.exchange(code, &wrong).await.unwrap_err();
    assert!(
        matches!(&err, Error::OAuth { error, .. } if error == "invalid_grant"),
        "{err}"
    );
    assert!(!err.to_string().contains(code.as_str()));

    // Again with a fresh round trip and the right verifier.
    let start = flow.authorize(&["api", "refresh_token", "openid"]);
    let callback = log_in(&start.url, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD).await;
    let q: HashMap<String, String> = callback.query_pairs().into_owned().collect();
    let tokens = flow
        .exchange(&q["code"], &start.pkce_verifier)
        .await
        .unwrap();
    let refresh = tokens.refresh_token.clone().expect("refresh_token scope");
    assert!(tokens.scopes.iter().any(|s| s == "refresh_token"));
    // Single use.
    assert!(
        flow.exchange(&q["code"], &start.pkce_verifier)
            .await
            .is_err()
    );

    let me = flow
        .userinfo(&tokens.instance_url, &tokens.access_token)
        .await
        .unwrap();
    assert_eq!(me.preferred_username, CONSOLE_ADMIN_USERNAME);
    assert_eq!(me.user_id.key_prefix(), "005");
    assert!(
        tokens
            .id_url
            .as_deref()
            .unwrap()
            .ends_with(me.user_id.as_str())
    );
    let access = flow
        .profile_and_permission_sets(&tokens.instance_url, &tokens.access_token, &me.user_id)
        .await
        .unwrap();
    assert_eq!(access.profile.as_deref(), Some(ADMIN_PROFILE));
    assert_eq!(access.permission_sets, [CONSOLE_ADMIN_PERMISSION_SET]);

    // The refresh token works until it is revoked.
    let client = salesforce::Client::new(salesforce::ClientConfig::new(
        emulator.url(),
        salesforce::Credentials::RefreshToken {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            refresh_token: refresh.clone(),
        },
    ))
    .unwrap();
    let (_, user) = client.identity().await.unwrap().unwrap();
    assert_eq!(user, me.user_id.as_str());
    flow.revoke_refresh_token(&refresh).await.unwrap();
    let after = salesforce::Client::new(salesforce::ClientConfig::new(
        emulator.url(),
        salesforce::Credentials::RefreshToken {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            refresh_token: refresh.clone(),
        },
    ))
    .unwrap();
    let err = after.authenticate().await.unwrap_err();
    assert!(!err.to_string().contains(refresh.expose_secret()));

    // A revoked access token no longer reads userinfo.
    let start = flow.authorize(&["api", "openid"]);
    let callback = log_in(&start.url, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD).await;
    let q: HashMap<String, String> = callback.query_pairs().into_owned().collect();
    let tokens = flow
        .exchange(&q["code"], &start.pkce_verifier)
        .await
        .unwrap();
    assert!(tokens.refresh_token.is_none());
    flow.revoke_access_token(&tokens.access_token)
        .await
        .unwrap();
    let err = flow
        .userinfo(&tokens.instance_url, &tokens.access_token)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    assert!(
        !err.to_string()
            .contains(tokens.access_token.expose_secret())
    );
}

#[tokio::test]
async fn a_wrong_client_secret_is_an_oauth_error_without_secrets() {
    let emulator = start().await;
    let flow = WebFlow::new(
        &emulator.url(),
        CLIENT_ID,
        Some(SecretString::from("not-the-secret")),
        CALLBACK,
    )
    .unwrap();
    let start = flow.authorize(&["api", "openid"]);
    let callback = log_in(&start.url, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD).await;
    let q: HashMap<String, String> = callback.query_pairs().into_owned().collect();
    let err = flow
        .exchange(&q["code"], &start.pkce_verifier)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains("not-the-secret") && !text.contains(q["code"].as_str()));
}
