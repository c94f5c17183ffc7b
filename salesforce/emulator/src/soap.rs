//! `POST /services/Soap/u/{version}`: the SOAP partner `login()` call (username, and password
//! with the security token appended). Salesforce retires `login()` in Summer '27 and refuses it
//! from API 65.0; many scripts still use it, so the emulator answers it for 64.0 and earlier.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{StatusCode, header};

use crate::ids;
use crate::oauth::{constant_time_eq, new_session};
use crate::server::{AppState, lock};

/// The first API version without `login()`.
pub(crate) const LOGIN_REMOVED_IN: u32 = 65;

const ENVELOPE_OPEN: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body>"#;
const ENVELOPE_CLOSE: &str = "</soapenv:Body></soapenv:Envelope>";

/// Escapes text for an XML element.
pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The text of the first element whose local name is `name` (any namespace prefix).
fn element_text(xml: &str, name: &str) -> Option<String> {
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end = rest.find('>')?;
        let tag = &rest[..end];
        let qualified = tag.split_whitespace().next().unwrap_or_default();
        let local = qualified.rsplit(':').next().unwrap_or_default();
        if local == name && !tag.starts_with('/') {
            if tag.ends_with('/') {
                return Some(String::new());
            }
            let body = &rest[end + 1..];
            let close = body.find(&format!("</{qualified}>"))?;
            let text = &body[..close];
            let text = text
                .strip_prefix("<![CDATA[")
                .and_then(|t| t.strip_suffix("]]>"))
                .map(str::to_string)
                .unwrap_or_else(|| xml_unescape(text));
            return Some(text);
        }
        rest = &rest[end + 1..];
    }
    None
}

/// A SOAP fault, HTTP 500 as Salesforce sends them.
fn fault(fault_type: &str, code: &str, message: &str) -> Response {
    let message = xml_escape(message);
    let body = format!(
        "{ENVELOPE_OPEN}<soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring><detail><sf:{fault_type} xsi:type=\"sf:{fault_type}\"><sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{message}</sf:exceptionMessage></sf:{fault_type}></detail></soapenv:Fault>{ENVELOPE_CLOSE}"
    );
    xml(StatusCode::INTERNAL_SERVER_ERROR, body)
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
        body,
    )
        .into_response()
}

/// `POST /services/Soap/u/{version}`
pub(crate) async fn partner(
    State(state): State<Arc<AppState>>,
    Path(version): Path<String>,
    body: Bytes,
) -> Response {
    let major = version
        .strip_suffix(".0")
        .and_then(|m| m.parse::<u32>().ok())
        .filter(|m| (state.config.api_versions.min..=state.config.api_versions.max).contains(m));
    let Some(major) = major else {
        return fault(
            "UnexpectedErrorFault",
            "UNSUPPORTED_API_VERSION",
            &format!("Invalid Api version specified on URL: {version}"),
        );
    };
    let text = String::from_utf8_lossy(&body);
    if element_text(&text, "login").is_none() {
        return fault(
            "UnexpectedErrorFault",
            "INVALID_OPERATION",
            "The emulator answers only the login() call on the partner endpoint",
        );
    }
    if major >= LOGIN_REMOVED_IN {
        return fault(
            "UnexpectedErrorFault",
            "UNSUPPORTED_API_VERSION",
            &format!(
                "login() is not available in API version {LOGIN_REMOVED_IN}.0 and later; use OAuth"
            ),
        );
    }
    let username = element_text(&text, "username").unwrap_or_default();
    let password = element_text(&text, "password").unwrap_or_default();
    let user = state.config.user(&username).filter(|u| {
        let expected = format!("{}{}", u.password, u.security_token);
        constant_time_eq(password.as_bytes(), expected.as_bytes())
    });
    let Some(user) = user else {
        lock(&state.stats).reject("INVALID_LOGIN");
        return fault(
            "LoginFault",
            "INVALID_LOGIN",
            "Invalid username, password, security token; or user locked out.",
        );
    };
    let user_id = state.user_id(&user.username);
    let session = new_session(&state, &user_id);
    tracing::info!("SOAP login session issued");
    let org15 = &state.config.org_id;
    let org18 = ids::org_id18(org15);
    let url = &state.url;
    let e = |s: &str| xml_escape(s);
    let full_name = user.name.clone().unwrap_or_else(|| user.username.clone());
    let email = user.email.clone().unwrap_or_else(|| user.username.clone());
    let body = format!(
        "{ENVELOPE_OPEN}<loginResponse><result>\
<metadataServerUrl>{url}/services/Soap/m/{version}/{org15}</metadataServerUrl>\
<passwordExpired>false</passwordExpired><sandbox>false</sandbox>\
<serverUrl>{url}/services/Soap/u/{version}/{org15}</serverUrl>\
<sessionId>{session}</sessionId><userId>{user_id}</userId><userInfo>\
<accessibilityMode>false</accessibilityMode><currencySymbol>$</currencySymbol>\
<orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>\
<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>\
<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>\
<orgHasPersonAccounts>false</orgHasPersonAccounts>\
<organizationId>{org18}</organizationId><organizationMultiCurrency>false</organizationMultiCurrency>\
<organizationName>{org_name}</organizationName><profileId xsi:nil=\"true\"/><roleId xsi:nil=\"true\"/>\
<sessionSecondsValid>{valid}</sessionSecondsValid><userDefaultCurrencyIsoCode xsi:nil=\"true\"/>\
<userEmail>{email}</userEmail><userFullName>{full_name}</userFullName><userId>{user_id}</userId>\
<userLanguage>en_US</userLanguage><userLocale>en_US</userLocale><userName>{username}</userName>\
<userTimeZone>GMT</userTimeZone><userType>Standard</userType><userUiSkin>Theme3</userUiSkin>\
</userInfo></result></loginResponse>{ENVELOPE_CLOSE}",
        org_name = e(crate::config::ORG_NAME),
        valid = state.config.session_timeout_secs,
        email = e(&email),
        full_name = e(&full_name),
        username = e(&user.username),
    );
    xml(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::element_text;

    #[test]
    fn element_text_ignores_prefixes_and_unescapes() {
        let xml = r#"<env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>a@b.c</n1:username><n1:password>p&amp;&lt;x</n1:password></n1:login></env:Body>"#;
        assert_eq!(element_text(xml, "username").as_deref(), Some("a@b.c"));
        assert_eq!(element_text(xml, "password").as_deref(), Some("p&<x"));
        assert!(element_text(xml, "login").is_some());
        assert_eq!(element_text(xml, "missing"), None);
        assert_eq!(
            element_text("<password><![CDATA[a<b]]></password>", "password").as_deref(),
            Some("a<b")
        );
    }
}
