//! The checks that do not need a Salesforce REST session: the configuration's
//! own sanity, the database, the MIAW deployment, and whether the inbound
//! routes answer at the public URL.

use std::time::Duration;

use migrations::MigratorTrait;
use secrecy::ExposeSecret;
use url::Url;

use super::{Check, Options};
use crate::config::Config;

/// Credentials present and free of the pasting mistakes Salesforce answers
/// with an unhelpful `invalid_client_id`; the login and MIAW URLs well formed.
pub fn configuration(config: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(match &config.salesforce.credentials {
        None => Check::fail(
            "salesforce.credentials",
            "no [salesforce.credentials] configured",
            "set [salesforce.credentials] (type = \"jwt_bearer\" | \"client_credentials\" | …) \
             with the External Client App's consumer key; see docs/salesforce-setup.md",
        ),
        Some(credentials) => {
            let mut pasted = Vec::new();
            for (name, value) in credential_strings(credentials) {
                if value.trim() != value || value.is_empty() {
                    pasted.push(name);
                }
            }
            if pasted.is_empty() {
                Check::pass(
                    "salesforce.credentials",
                    format!("{} grant configured", credentials.kind()),
                )
            } else {
                Check::fail(
                    "salesforce.credentials",
                    format!(
                        "{} {} empty or has spaces or line breaks around it",
                        pasted.join(", "),
                        if pasted.len() == 1 { "is" } else { "are" }
                    ),
                    "copy the value again from Salesforce without surrounding whitespace",
                )
            }
        }
    });
    out.push(salesforce_url_check(
        "salesforce.login_url",
        &config.salesforce.login_url,
        "salesforce.login_url",
    ));
    if config.miaw.enabled {
        out.push(salesforce_url_check(
            "miaw.url",
            &config.miaw.url,
            "miaw.url",
        ));
    }
    out
}

/// The string parts of the credentials a person pastes (never printed).
fn credential_strings(credentials: &salesforce::Credentials) -> Vec<(&'static str, &str)> {
    use salesforce::Credentials as C;
    match credentials {
        C::JwtBearer {
            client_id,
            username,
            ..
        } => vec![("client_id", client_id), ("username", username)],
        C::ClientCredentials {
            client_id,
            client_secret,
        }
        | C::RefreshToken {
            client_id,
            client_secret,
            ..
        } => vec![
            ("client_id", client_id),
            ("client_secret", client_secret.expose_secret()),
        ],
        C::Password {
            client_id,
            client_secret,
            username,
            ..
        } => vec![
            ("client_id", client_id),
            ("client_secret", client_secret.expose_secret()),
            ("username", username),
        ],
        C::NotConnected => Vec::new(),
    }
}

/// An `https://` URL without a path (plain `http` only on loopback, for the
/// emulator), and not a Lightning (`lightning.force.com`) page address.
fn salesforce_url_check(id: &'static str, value: &str, setting: &str) -> Check {
    let fix = format!(
        "set {setting} to the org's base URL with https://, e.g. https://acme.my.salesforce.com \
         (no path)"
    );
    let Ok(url) = Url::parse(value) else {
        return Check::fail(
            id,
            format!("`{value}` is not a URL (is https:// missing?)"),
            fix,
        );
    };
    let loopback = url
        .host_str()
        .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]");
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Check::fail(id, format!("`{value}` does not use https"), fix);
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Check::fail(id, format!("`{value}` has a path"), fix);
    }
    if url
        .host_str()
        .is_some_and(|h| h.ends_with(".lightning.force.com"))
    {
        return Check::fail(
            id,
            format!("`{value}` is a Lightning page address, not the API domain"),
            "use the *.my.salesforce.com domain of the org (Setup → My Domain)",
        );
    }
    Check::pass(id, value.to_string())
}

/// The database answers and its schema is current.
pub async fn database(config: &Config) -> Check {
    let store = match crate::store::Store::open(&config.database_url).await {
        Ok(store) => store,
        Err(e) => {
            return Check::fail(
                "database",
                format!("cannot open the database: {e}"),
                "check database_url (HANDOFF_DATABASE_URL) and that the server is running",
            );
        }
    };
    match migrations::Migrator::get_pending_migrations(store.connection()).await {
        Ok(pending) if pending.is_empty() => Check::pass("database", "reachable, schema current"),
        Ok(pending) => Check::warn(
            "database",
            format!("{} migration(s) not applied yet", pending.len()),
            "run `handoff migrate` (or start `handoff serve`, which applies them)",
        ),
        Err(e) => Check::fail(
            "database",
            format!("cannot read the migration state: {e}"),
            "check the database user's permissions",
        ),
    }
}

/// With live messaging on, the deployment answers an unauthenticated token
/// request (the same request every live session starts with).
pub async fn miaw(config: &Config) -> Check {
    if !config.miaw.enabled {
        return Check::skip(
            "miaw.deployment",
            "live messaging is off ([miaw] enabled = false)",
        );
    }
    // The identity key (user verification) and office hours, as `serve` loads them: an
    // incomplete PEM is a documented way for MIAW settings to fail.
    if let Err(e) = crate::live::Live::from_config(&config.miaw) {
        return Check::fail(
            "miaw.deployment",
            e,
            "fix the [miaw] setting named; a private key must be the whole PEM file, from \
             -----BEGIN to -----END",
        );
    }
    let client = match salesforce::miaw::MiawClient::new(config.miaw.client_config()) {
        Ok(client) => client,
        Err(e) => {
            return Check::fail(
                "miaw.deployment",
                format!("the MIAW settings do not make a client: {e}"),
                "check miaw.url, miaw.org_id and miaw.deployment",
            );
        }
    };
    match client.unauthenticated_token().await {
        Ok(_) => Check::pass(
            "miaw.deployment",
            format!(
                "deployment `{}` issued an end-user token",
                config.miaw.deployment
            ),
        ),
        Err(e) if e.is_retryable() => Check::fail(
            "miaw.deployment",
            format!("could not reach the MIAW API: {e}"),
            "check miaw.url: it is the SCRT URL (Setup → Embedded Service Deployments → Code \
             Snippet), with https://",
        ),
        Err(e) => Check::fail(
            "miaw.deployment",
            format!("the token request was refused: {e}"),
            "check miaw.org_id and miaw.deployment (the deployment's API name); the deployment \
             must be of type Custom Client and published, with an Omni-Channel flow routing \
             its messaging channel",
        ),
    }
}

/// The routes Salesforce and the mail service post to answer at the public
/// URL, and refuse an unsigned request (401).
pub async fn routes(config: &Config, options: &Options) -> Vec<Check> {
    let Some(base) = options
        .public_url
        .clone()
        .or_else(|| config.public_url.clone())
    else {
        return vec![Check::skip(
            "routes",
            "no public URL to probe (set public_url, or pass --public-url)",
        )];
    };
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(http) => http,
        Err(e) => return vec![Check::fail("routes", e.to_string(), "report this as a bug")],
    };
    let mut out = Vec::new();
    let mut routes = vec![("route.email_inbound", "/channels/email/inbound")];
    if config.case_replies.push {
        routes.insert(0, ("route.salesforce_events", "/salesforce/events"));
    }
    for (id, path) in routes {
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let check = match http
            .post(&url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
        {
            Ok(response) => match response.status().as_u16() {
                401 => Check::pass(id, format!("{url} answers and refuses unsigned requests")),
                404 => Check::fail(
                    id,
                    format!("{url} answered 404"),
                    "the route is off in this configuration, or a proxy rewrites the path; \
                     point the Named Credential / inbound-mail service at this exact URL",
                ),
                status if (200..300).contains(&status) => Check::fail(
                    id,
                    format!("{url} accepted an unsigned request ({status})"),
                    "configure its secret so unsigned requests are refused",
                ),
                status => Check::fail(
                    id,
                    format!("{url} answered {status}"),
                    "check the proxy in front of the gateway",
                ),
            },
            Err(e) => Check::fail(
                id,
                format!("cannot reach {url}: {}", without_url(&e)),
                "check public_url and that the gateway is running and reachable from outside",
            ),
        };
        out.push(check);
    }
    out
}

/// A reqwest error's text without the URL it carries.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    #[test]
    fn login_urls_are_checked_for_the_documented_mistakes() {
        let status = |v: &str| salesforce_url_check("x", v, "x").status;
        assert_eq!(status("https://acme.my.salesforce.com"), Status::Pass);
        assert_eq!(status("https://login.salesforce.com/"), Status::Pass);
        assert_eq!(
            status("http://127.0.0.1:8081"),
            Status::Pass,
            "the emulator"
        );
        assert_eq!(
            status("acme.my.salesforce.com"),
            Status::Fail,
            "no https://"
        );
        assert_eq!(status("http://acme.my.salesforce.com"), Status::Fail);
        assert_eq!(
            status("https://acme.my.salesforce.com/services"),
            Status::Fail
        );
        assert_eq!(status("https://acme.lightning.force.com"), Status::Fail);
    }
}
