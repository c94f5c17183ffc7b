//! Checks for rep replies and the email channel: the push webhook's
//! authentication, the poll query (run once against the org, with what it
//! costs a day), the SMTP login, and the inbound-mail credentials.

use chrono::Utc;
use secrecy::ExposeSecret;

use salesforce::SalesforceId;

use super::Check;
use crate::config::Config;
use crate::replies::poll::poll_query;

/// Push: the route refuses everything unless a secret or JWT certificates are set.
pub fn push_auth(config: &Config) -> Check {
    let id = "case_replies.push_auth";
    if !config.case_replies.push {
        return Check::skip(id, "push is off ([case_replies] push = false)");
    }
    match config.case_replies.push_auth() {
        Err(e) => Check::fail(
            id,
            e,
            "fix the [case_replies] secret or certificate setting",
        ),
        Ok(auth) if !auth.any() => Check::fail(
            id,
            "POST /salesforce/events refuses every event: no webhook secret and no JWT certificate",
            "set case_replies.webhook_secret to the value in Salesforce's Handoff_Settings__c \
             (or configure jwt_certificates, jwt_issuer, jwt_audience for the Named Credential)",
        ),
        Ok(auth) => {
            let short = auth
                .hmac_secret
                .as_ref()
                .is_some_and(|s| s.expose_secret().len() < 32);
            let what = match (auth.hmac_secret.is_some(), auth.jwt.is_some()) {
                (true, true) => "HMAC secret and JWT certificates configured",
                (true, false) => "HMAC secret configured",
                _ => "JWT certificates configured",
            };
            if short {
                Check::warn(
                    id,
                    format!("{what}, but the secret is shorter than 32 characters"),
                    "use a random secret of at least 32 characters (openssl rand -hex 32)",
                )
            } else {
                Check::pass(id, what)
            }
        }
    }
}

/// The poll query, run once: valid SOQL on this org, and its daily cost.
pub async fn poll_query_check(
    config: &Config,
    client: &salesforce::Client,
    user: Option<&str>,
) -> Check {
    let id = "case_replies.poll_query";
    let Some(user) = user.and_then(|u| SalesforceId::parse(u).ok()) else {
        return Check::skip(
            id,
            "the token carries no user id to exclude the gateway's own writes",
        );
    };
    let soql = match poll_query(&config.case, &user, Utc::now()) {
        Ok(soql) => soql,
        Err(e) => {
            return Check::fail(
                id,
                format!("the poll query cannot be built: {e}"),
                "check case.from_value",
            );
        }
    };
    match client.query(&soql).await {
        Ok(page) => {
            let open = page.total_size;
            let page = u64::from(config.case_replies.poll_page_size.max(1));
            let pages = open.div_ceil(page).max(1);
            let interval = config.case_replies.poll_interval_secs.max(1);
            let per_day = 86_400 / interval * pages;
            let state = if config.case_replies.poll {
                format!("polling every {interval} s costs about {per_day} API calls a day")
            } else {
                format!(
                    "polling is off; at {interval} s it would cost about {per_day} API calls a day"
                )
            };
            Check::pass(id, format!("valid; {open} open escalated Case(s); {state}"))
        }
        Err(e) => Check::fail(
            id,
            format!("Salesforce refused the poll query: {e}"),
            "the integration user needs read access to Case, CaseComment and EmailMessage (the \
             permission set in deploy/salesforce), and case.from_field must exist",
        ),
    }
}

/// The SMTP relay accepts a connection and the login.
pub async fn smtp(config: &Config) -> Check {
    let id = "email.smtp";
    let Some(channels::ChannelConfig::Email(email)) = config.channels.get("email") else {
        return Check::skip(id, "no [channels.email] table");
    };
    let Some(smtp) = &email.smtp else {
        return Check::skip(
            id,
            "no [channels.email.smtp]: email escalations work, replies are not emailed",
        );
    };
    let channel = match email.build("email") {
        Ok(channel) => channel,
        Err(e) => return Check::fail(id, e.to_string(), "fix [channels.email]"),
    };
    let target = format!("{}:{} ({:?})", smtp.host, smtp.port(), smtp.tls).to_lowercase();
    match channel.check_smtp().await {
        Ok(()) => Check::pass(id, format!("{target} accepted the connection and login")),
        Err(e) => Check::fail(
            id,
            format!("{target}: {e}"),
            "check channels.email.smtp host, port, tls and credentials; a 535 means the relay \
             refused the username or password",
        ),
    }
}

/// Inbound mail: without a secret or path token every customer answer is refused.
pub fn inbound_auth(config: &Config) -> Check {
    let id = "email.inbound_auth";
    let Some(channels::ChannelConfig::Email(email)) = config.channels.get("email") else {
        return Check::skip(id, "no [channels.email] table");
    };
    match email.inbound.credentials() {
        Err(e) => Check::fail(id, e, "fix [channels.email.inbound]"),
        Ok(c) if c.hmac.is_none() && c.path_token.is_none() => Check::warn(
            id,
            "POST /channels/email/inbound refuses every email: no hmac_secret and no path_token",
            "set channels.email.inbound.hmac_secret (or path_token) to what the inbound-mail \
             service signs with, so customers' answers reach their Case",
        ),
        Ok(_) => Check::pass(id, "inbound mail is authenticated"),
    }
}
