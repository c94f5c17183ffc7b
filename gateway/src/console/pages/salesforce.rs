//! The Salesforce page's connection section: how this gateway authenticates to the org.
//! (The Connect Salesforce flow replaces [`connection_section`]'s body.)

use maud::{Markup, html};

use crate::console::session::Operator;
use crate::http::AppState;

/// `<section id="connection">`: the login URL and the configured grant.
pub fn connection_section(state: &AppState, _op: &Operator) -> Markup {
    let sf = &state.config.salesforce;
    let grant = sf.credentials.as_ref().map(salesforce::Credentials::kind);
    html! {
        section #connection {
            h2 { "Connection" }
            dl.facts {
                dt { "Login URL" } dd { (sf.login_url) }
                dt { "Grant" } dd #grant {
                    @match grant {
                        Some(kind) => (kind),
                        None => span.bad { "none configured ([salesforce.credentials])" },
                    }
                }
                dt { "API version" } dd { (sf.api_version) }
            }
        }
    }
}
