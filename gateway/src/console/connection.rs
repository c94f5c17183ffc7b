//! The org connection an admin made with "Connect Salesforce", and the connected app the
//! console's OAuth flows use.
//!
//! Stored as two sealed secrets: `salesforce.refresh_token` and `salesforce.connection`
//! (JSON: instance_url, username, user_id, org_id, connected_at, plus login_url and client_id
//! so a restarted gateway can refresh with it). While a connection is stored, the gateway's
//! Salesforce client uses it (refresh-token grant) instead of `salesforce.credentials`.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::secrets::Keyring;
use crate::store::Store;

/// Secret name of the connected user's refresh token.
pub const REFRESH_TOKEN: &str = "salesforce.refresh_token";
/// Secret name of the connection's description (JSON, sealed too).
pub const CONNECTION: &str = "salesforce.connection";
/// Secret name of a consumer key entered in the console (not secret; stored alike).
pub const CONSOLE_CLIENT_ID: &str = "console.salesforce.client_id";
/// Secret name of a consumer secret entered in the console.
pub const CONSOLE_CLIENT_SECRET: &str = "console.salesforce.client_secret";

/// What "Connect Salesforce" connected.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Connection {
    pub instance_url: String,
    pub username: String,
    pub user_id: String,
    pub org_id: String,
    /// RFC 3339.
    pub connected_at: String,
    /// Where the refresh token is exchanged (the login URL of the flow).
    pub login_url: String,
    /// The consumer key of the app that issued the refresh token.
    pub client_id: String,
}

/// The connected app the console's OAuth flows use.
#[derive(Clone, Debug)]
pub struct App {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// Authorize and token endpoints live here.
    pub login_url: String,
    /// Whether the consumer key and secret come from the config file (else from the console).
    pub from_config: bool,
}

/// The app from `[console.salesforce]`, else the consumer key and secret an admin entered in
/// the console; `None` when neither is set.
pub async fn app(config: &Config, store: &Store, keys: &Keyring) -> Result<Option<App>, String> {
    let sf = &config.console.salesforce;
    let login_url = sf
        .login_url
        .clone()
        .unwrap_or_else(|| config.salesforce.login_url.clone());
    if let Some(client_id) = &sf.client_id {
        return Ok(Some(App {
            client_id: client_id.clone(),
            client_secret: sf.client_secret.clone(),
            login_url,
            from_config: true,
        }));
    }
    let Some(client_id) = store
        .get_secret(keys, CONSOLE_CLIENT_ID)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let client_secret = store
        .get_secret(keys, CONSOLE_CLIENT_SECRET)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(App {
        client_id: client_id.expose_secret().to_owned(),
        client_secret,
        login_url,
        from_config: false,
    }))
}

/// The stored connection, if any (its description only).
pub async fn load(store: &Store, keys: &Keyring) -> Result<Option<Connection>, String> {
    let Some(json) = store
        .get_secret(keys, CONNECTION)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    serde_json::from_str(json.expose_secret())
        .map(Some)
        .map_err(|_| format!("the stored {CONNECTION} is not a connection description"))
}

/// Stores a connection and its refresh token (both sealed).
pub async fn save(
    store: &Store,
    keys: &Keyring,
    connection: &Connection,
    refresh_token: &SecretString,
) -> Result<(), String> {
    let json = serde_json::to_string(connection).map_err(|e| e.to_string())?;
    store
        .put_secret(keys, REFRESH_TOKEN, refresh_token)
        .await
        .map_err(|e| e.to_string())?;
    store
        .put_secret(keys, CONNECTION, &SecretString::from(json))
        .await
        .map_err(|e| e.to_string())
}

/// Deletes the stored connection; whether there was one.
pub async fn delete(store: &Store) -> Result<bool, String> {
    let a = store
        .delete_secret(REFRESH_TOKEN)
        .await
        .map_err(|e| e.to_string())?;
    let b = store
        .delete_secret(CONNECTION)
        .await
        .map_err(|e| e.to_string())?;
    Ok(a || b)
}

/// The credentials of the stored connection (refresh-token grant) and the login URL to use
/// them at, or `None` when nothing is connected. The consumer secret is the app's (config,
/// else the one entered in the console); an app without one sends an empty secret.
pub async fn stored_credentials(
    config: &Config,
    store: &Store,
    keys: &Keyring,
) -> Result<Option<(String, salesforce::Credentials)>, String> {
    let Some(connection) = load(store, keys).await? else {
        return Ok(None);
    };
    let Some(refresh_token) = store
        .get_secret(keys, REFRESH_TOKEN)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let secret = match app(config, store, keys).await? {
        Some(app) if app.client_id == connection.client_id => app.client_secret,
        _ => None,
    };
    Ok(Some((
        connection.login_url.clone(),
        salesforce::Credentials::RefreshToken {
            client_id: connection.client_id,
            client_secret: secret.unwrap_or_else(|| SecretString::from("")),
            refresh_token,
        },
    )))
}
