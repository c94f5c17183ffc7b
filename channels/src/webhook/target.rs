//! Which webhook URLs Handoff will POST to: the SSRF guard shared by the accept-time check of a
//! `reply_to.webhook_url` and the delivery-time check of the address a name resolves to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// The longest webhook URL accepted, in characters.
pub const MAX_URL_CHARS: usize = 2_048;

/// Why a webhook URL is refused. The texts never echo the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("is longer than 2048 characters")]
    TooLong,
    #[error("is not an absolute URL")]
    Unparseable,
    #[error("must use https")]
    NotHttps,
    #[error("must not carry a user name or password")]
    Userinfo,
    #[error(
        "points at a loopback, private, link-local or unspecified address, which this gateway \
         does not call"
    )]
    PrivateAddress,
}

/// Checks a webhook URL at accept time. With `allow_private` false (production), the URL must
/// be `https`, carry no userinfo, and not name `localhost` or an IP literal in a loopback,
/// private, link-local, shared or unspecified range. With `allow_private` true (tests, the
/// sandbox), those addresses are allowed, and a loopback receiver may use plain `http`.
///
/// # Errors
/// [`UrlProblem`].
pub fn check_webhook_url(raw: &str, allow_private: bool) -> Result<Url, UrlProblem> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(UrlProblem::TooLong);
    }
    let url = Url::parse(raw).map_err(|_| UrlProblem::Unparseable)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlProblem::Userinfo);
    }
    let host = url.host().ok_or(UrlProblem::Unparseable)?;
    let local = is_local_host(&host);
    match url.scheme() {
        "https" => {}
        "http" if allow_private && is_loopback_host(&host) => {}
        _ => return Err(UrlProblem::NotHttps),
    }
    if local && !allow_private {
        return Err(UrlProblem::PrivateAddress);
    }
    Ok(url)
}

fn is_local_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => is_localhost_name(name),
        Host::Ipv4(ip) => is_private_ip(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => is_private_ip(IpAddr::V6(*ip)),
    }
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => is_localhost_name(name),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Addresses a webhook must never reach unless private URLs are allowed: loopback, private
/// (RFC 1918, IPv6 unique local), link-local (cloud metadata lives at 169.254.169.254),
/// unspecified, shared (100.64/10), broadcast and multicast; IPv4-mapped IPv6 is checked as IPv4.
#[must_use]
pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_v4(v4),
            None => is_private_v6(v6),
        },
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || ip.is_multicast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_urls_must_be_public_https() {
        let ok = check_webhook_url("https://bot.example.com/handoff?x=1", false).unwrap();
        assert_eq!(ok.host_str(), Some("bot.example.com"));
        for (raw, problem) in [
            ("http://bot.example.com/h", UrlProblem::NotHttps),
            ("ftp://bot.example.com/h", UrlProblem::NotHttps),
            ("bot.example.com/h", UrlProblem::Unparseable),
            ("https://user:pw@bot.example.com/h", UrlProblem::Userinfo),
            ("https://user@bot.example.com/h", UrlProblem::Userinfo),
            ("https://localhost/h", UrlProblem::PrivateAddress),
            ("https://LOCALHOST./h", UrlProblem::PrivateAddress),
            ("https://api.localhost/h", UrlProblem::PrivateAddress),
            ("https://127.0.0.1/h", UrlProblem::PrivateAddress),
            ("https://127.1/h", UrlProblem::PrivateAddress),
            ("https://2130706433/h", UrlProblem::PrivateAddress),
            ("https://10.1.2.3/h", UrlProblem::PrivateAddress),
            ("https://172.16.0.1/h", UrlProblem::PrivateAddress),
            ("https://192.168.1.1/h", UrlProblem::PrivateAddress),
            ("https://169.254.169.254/latest", UrlProblem::PrivateAddress),
            ("https://0.0.0.0/h", UrlProblem::PrivateAddress),
            ("https://100.64.0.1/h", UrlProblem::PrivateAddress),
            ("https://[::1]/h", UrlProblem::PrivateAddress),
            ("https://[::]/h", UrlProblem::PrivateAddress),
            ("https://[fd00::1]/h", UrlProblem::PrivateAddress),
            ("https://[fe80::1]/h", UrlProblem::PrivateAddress),
            ("https://[::ffff:127.0.0.1]/h", UrlProblem::PrivateAddress),
        ] {
            assert_eq!(check_webhook_url(raw, false), Err(problem), "{raw}");
        }
        let long = format!("https://bot.example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert_eq!(check_webhook_url(&long, false), Err(UrlProblem::TooLong));
        assert!(check_webhook_url("https://8.8.8.8/h", false).is_ok());
        assert!(check_webhook_url("https://[2001:4860::8888]/h", false).is_ok());
    }

    #[test]
    fn allowing_private_urls_admits_a_loopback_receiver() {
        for raw in [
            "https://127.0.0.1:9/h",
            "http://127.0.0.1:9/h",
            "http://localhost:9/h",
            "http://[::1]:9/h",
            "https://10.0.0.2/h",
        ] {
            assert!(check_webhook_url(raw, true).is_ok(), "{raw}");
        }
        // Plain http stays loopback-only, and userinfo is refused either way.
        assert_eq!(
            check_webhook_url("http://10.0.0.2/h", true),
            Err(UrlProblem::NotHttps)
        );
        assert_eq!(
            check_webhook_url("http://bot.example.com/h", true),
            Err(UrlProblem::NotHttps)
        );
        assert_eq!(
            check_webhook_url("https://u:p@127.0.0.1/h", true),
            Err(UrlProblem::Userinfo)
        );
    }
}
