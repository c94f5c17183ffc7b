//! The checks that talk to Salesforce's REST API: a token, then the Case
//! fields the gateway writes, read with describe (no records are written).

use std::time::Duration;

use serde_json::Value;

use super::Check;
use crate::config::Config;

/// Session ids are up to 128 characters; the external-id field must hold them.
const SESSION_ID_MAX: u64 = 128;

pub async fn run(config: &Config) -> Vec<Check> {
    let Some(credentials) = config.salesforce.credentials.clone() else {
        return vec![Check::skip("salesforce.token", "no credentials to try")];
    };
    let client = match salesforce::Client::new(salesforce::ClientConfig {
        login_url: config.salesforce.login_url.clone(),
        api_version: config.salesforce.api_version.clone(),
        credentials: credentials.clone(),
        timeout: Duration::from_secs(config.salesforce.timeout_secs.min(30)),
        max_concurrency: 2,
    }) {
        Ok(client) => client,
        Err(e) => {
            return vec![Check::fail(
                "salesforce.token",
                format!("the credentials do not make a client: {e}"),
                "check [salesforce.credentials] (a PEM private key for jwt_bearer)",
            )];
        }
    };
    let mut out = Vec::new();
    let user = match client.identity().await {
        Ok(identity) => {
            let who = identity
                .as_ref()
                .map(|(org, user)| format!(" for user {user} in org {org}"))
                .unwrap_or_default();
            out.push(Check::pass(
                "salesforce.token",
                format!("obtained with the {} grant{who}", credentials.kind()),
            ));
            identity.map(|(_, user)| user)
        }
        Err(e) => {
            out.push(token_failure(&e, credentials.kind()));
            out.push(Check::skip("case.fields", "needs a Salesforce token"));
            return out;
        }
    };
    match client.describe("Case").await {
        Ok(describe) => out.extend(case_fields(config, &describe)),
        Err(e) => out.push(Check::fail(
            "case.fields",
            format!("describe Case failed: {e}"),
            "give the integration user read access to Case (the permission set in \
             deploy/salesforce)",
        )),
    }
    out.push(match client.describe("CaseComment").await {
        Ok(d) if d["createable"] == true => Check::pass(
            "case.comments",
            "the integration user may create CaseComments",
        ),
        Ok(_) => Check::fail(
            "case.comments",
            "CaseComment is not createable for the integration user",
            "grant Create on Cases (CaseComment follows the Case's access) in the permission set",
        ),
        Err(e) => Check::fail(
            "case.comments",
            format!("describe CaseComment failed: {e}"),
            "grant the integration user access to Cases",
        ),
    });
    out.push(super::replies_checks::poll_query_check(config, &client, user.as_deref()).await);
    out
}

/// What a refused token request most often means (the documented failure
/// modes: an app still activating, a pasted key, the wrong login URL).
fn token_failure(e: &salesforce::Error, grant: &str) -> Check {
    let detail = format!("no token with the {grant} grant: {e}");
    let fix = match e {
        salesforce::Error::OAuth { error, .. } => match error.as_str() {
            "invalid_client_id" | "invalid_client" => {
                "Salesforce does not know this consumer key/secret: a new External Client App \
                 takes 2–10 minutes to activate; otherwise copy the key and secret again"
            }
            "invalid_grant" => {
                "the app refused this user or grant: check salesforce.login_url (login vs test vs \
                 My Domain), that the user is pre-authorized (permission set on the app), and for \
                 jwt_bearer that the uploaded certificate matches the private key"
            }
            "unsupported_grant_type" => {
                "enable this flow on the External Client App (e.g. Client Credentials Flow with a \
                 Run As user)"
            }
            _ => "read the error above; the app's OAuth policies decide which grants work",
        },
        salesforce::Error::Transport { .. } => {
            "cannot reach the token endpoint: check salesforce.login_url and the network"
        }
        _ => "read the error above",
    };
    Check::fail("salesforce.token", detail, fix)
}

/// The Case fields the gateway writes: present, createable, long enough, and
/// for picklists restricted to their values, values the org accepts — what
/// would otherwise be accepted with 202 and refused by Salesforce later.
fn case_fields(config: &Config, describe: &Value) -> Vec<Check> {
    let fields: Vec<&Value> = describe["fields"]
        .as_array()
        .map(|f| f.iter().collect())
        .unwrap_or_default();
    let field = |name: &str| {
        fields
            .iter()
            .copied()
            .find(|f| f["name"].as_str() == Some(name))
    };
    let mut out = Vec::new();
    let case = &config.case;

    // Case_From__c = 'opencx'.
    out.push(match field(&case.from_field) {
        None => missing("case.from_field", &case.from_field, "Text(40)"),
        Some(f) if f["createable"] != true => not_createable("case.from_field", &case.from_field),
        Some(f) => match value_fits(f, &case.from_value) {
            Ok(()) => Check::pass(
                "case.from_field",
                format!("{} accepts '{}'", case.from_field, case.from_value),
            ),
            Err(why) => Check::fail(
                "case.from_field",
                format!("{}: {why}", case.from_field),
                "change the field in Salesforce or case.from_value",
            ),
        },
    });

    // The external-id field: the upsert key that makes a retried create one Case.
    out.push(match field(&case.external_id_field) {
        None => missing(
            "case.external_id_field",
            &case.external_id_field,
            "Text(128), External ID, Unique",
        ),
        Some(f) => {
            let length = f["length"].as_u64().unwrap_or(0);
            if f["externalId"] != true || f["unique"] != true {
                Check::fail(
                    "case.external_id_field",
                    format!(
                        "{} is {}{}",
                        case.external_id_field,
                        if f["externalId"] == true { "" } else { "not an External ID " },
                        if f["unique"] == true { "" } else { "not Unique" }
                    ),
                    "edit the field: tick External ID and Unique, so a retried escalation \
                     updates its Case instead of creating a second one",
                )
            } else if length < SESSION_ID_MAX {
                Check::fail(
                    "case.external_id_field",
                    format!(
                        "{} holds {length} characters; session ids have up to {SESSION_ID_MAX}",
                        case.external_id_field
                    ),
                    "make the field Text(128)",
                )
            } else if f["createable"] != true {
                not_createable("case.external_id_field", &case.external_id_field)
            } else {
                let sensitivity = if f["caseSensitive"] == true {
                    "case-sensitive (the gateway already keeps ids unique regardless of case)"
                } else {
                    "case-insensitive (the gateway keeps ids unique regardless of case, as it needs)"
                };
                Check::pass(
                    "case.external_id_field",
                    format!(
                        "{} is an External ID, Unique, {sensitivity}",
                        case.external_id_field
                    ),
                )
            }
        }
    });

    // Standard fields and the configured mappings.
    let mut problems = Vec::new();
    for name in [
        "Subject",
        "Description",
        "Origin",
        "Priority",
        "SuppliedEmail",
        "SuppliedName",
        "SuppliedPhone",
    ] {
        match field(name) {
            None => problems.push(format!("{name} is missing")),
            Some(f) if f["createable"] != true => problems.push(format!("{name} is read-only")),
            Some(_) => {}
        }
    }
    for (channel, origin) in &case.origin {
        if let Some(f) = field("Origin")
            && let Err(why) = value_fits(f, origin)
        {
            problems.push(format!("Origin for {channel}: {why}"));
        }
    }
    for (priority, value) in &case.priority {
        if let Some(f) = field("Priority")
            && let Err(why) = value_fits(f, value)
        {
            problems.push(format!("Priority for {priority}: {why}"));
        }
    }
    for (attribute, target) in &case.attribute_fields {
        match field(target) {
            None => problems.push(format!("attribute {attribute} → {target}: no such field")),
            Some(f) if f["createable"] != true => {
                problems.push(format!("attribute {attribute} → {target}: read-only"));
            }
            Some(_) => {}
        }
    }
    out.push(if problems.is_empty() {
        Check::pass(
            "case.mappings",
            "Subject, Description, Origin, Priority, Supplied* and every mapped field accept \
             what the gateway writes",
        )
    } else {
        Check::fail(
            "case.mappings",
            problems.join("; "),
            "fix the field in Salesforce, or case.origin / case.priority / \
             case.attribute_fields in the config",
        )
    });
    out
}

fn missing(id: &'static str, name: &str, kind: &str) -> Check {
    Check::fail(
        id,
        format!("Case has no field {name}"),
        format!(
            "deploy deploy/salesforce (sf project deploy start) or create {name} as {kind}, and \
             give the integration user edit access (the permission set)"
        ),
    )
}

fn not_createable(id: &'static str, name: &str) -> Check {
    Check::fail(
        id,
        format!("{name} is not writable by the integration user"),
        "grant Edit on the field (assign the Handoff permission set in deploy/salesforce)",
    )
}

/// Whether `value` fits the field: its length, and a restricted picklist's
/// active values.
fn value_fits(field: &Value, value: &str) -> Result<(), String> {
    let length = field["length"].as_u64().unwrap_or(u64::MAX);
    if length > 0 && value.chars().count() as u64 > length {
        let shown: String = value.chars().take(40).collect();
        return Err(format!("'{shown}…' is longer than {length} characters"));
    }
    if field["type"] == "picklist" && field["restrictedPicklist"] == true {
        let allowed: Vec<&str> = field["picklistValues"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter(|v| v["active"] != false)
                    .filter_map(|v| v["value"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        if !allowed.contains(&value) {
            return Err(format!(
                "'{value}' is not one of the restricted picklist's values ({})",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn restricted_picklists_and_lengths_are_enforced() {
        let restricted = json!({"type": "picklist", "restrictedPicklist": true, "length": 255,
            "picklistValues": [{"value": "Email", "active": true}, {"value": "Web", "active": false}]});
        assert!(value_fits(&restricted, "Email").is_ok());
        assert!(value_fits(&restricted, "Web").is_err(), "inactive");
        assert!(value_fits(&restricted, "Chat").is_err());
        let open = json!({"type": "picklist", "restrictedPicklist": false, "length": 255});
        assert!(value_fits(&open, "Chat").is_ok());
        let short = json!({"type": "string", "length": 5});
        assert!(value_fits(&short, "opencx").is_err());
        assert!(value_fits(&short, "openc").is_ok());
    }
}
