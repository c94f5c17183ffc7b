//! The `Sforce-Limit-Info` response header.
//!
//! Salesforce sends it on every REST response, as `;`-separated `key=used/max` pairs where a
//! pair may carry an `(appName=…)` suffix:
//!
//! ```text
//! api-usage=18/5000
//! api-usage=25/5000; per-app-api-usage=17/250(appName=sample-app)
//! api-usage=10018/100000; api-bursts=1/750
//! ```

/// Name of the response header.
pub const LIMIT_INFO_HEADER: &str = "Sforce-Limit-Info";

/// API usage reported by Salesforce in `Sforce-Limit-Info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitInfo {
    /// `api-usage`: org-wide daily API requests `(used, max)`.
    pub api_usage: Option<(u64, u64)>,
    /// `per-app-api-usage`: `(used, max, appName)` for this connected app.
    pub per_app: Option<(u64, u64, String)>,
    /// `api-bursts`: `(used, max)` burst allowance.
    pub api_bursts: Option<(u64, u64)>,
    /// Any other `key=used/max` pair, in header order.
    pub others: Vec<(String, u64, u64)>,
}

impl LimitInfo {
    /// Parses the header value. Malformed pairs are skipped (a header is advisory and must
    /// never fail a request); an input with no valid pair gives an empty `LimitInfo`.
    pub fn parse(header: &str) -> Self {
        let mut info = LimitInfo::default();
        for part in header.split(';') {
            let Some((key, value)) = part.trim().split_once('=') else {
                continue;
            };
            let (numbers, app) = match value.split_once('(') {
                Some((numbers, rest)) => (numbers, app_name(rest)),
                None => (value, None),
            };
            let Some((used, max)) = numbers.trim().split_once('/') else {
                continue;
            };
            let (Ok(used), Ok(max)) = (used.trim().parse::<u64>(), max.trim().parse::<u64>())
            else {
                continue;
            };
            match key.trim() {
                "api-usage" => info.api_usage = Some((used, max)),
                "api-bursts" => info.api_bursts = Some((used, max)),
                "per-app-api-usage" => {
                    info.per_app = Some((used, max, app.unwrap_or_default().to_owned()));
                }
                other => info.others.push((other.to_owned(), used, max)),
            }
        }
        info
    }

    /// True when the header held no usable pair.
    pub fn is_empty(&self) -> bool {
        self.api_usage.is_none()
            && self.per_app.is_none()
            && self.api_bursts.is_none()
            && self.others.is_empty()
    }

    /// Remaining org-wide daily API requests, if reported.
    pub fn api_remaining(&self) -> Option<u64> {
        self.api_usage.map(|(used, max)| max.saturating_sub(used))
    }

    /// The highest used/max ratio among org-wide and per-app usage (0.0–1.0+), if any was
    /// reported. Useful for backing off before `REQUEST_LIMIT_EXCEEDED`.
    pub fn usage_ratio(&self) -> Option<f64> {
        let ratio = |used: u64, max: u64| {
            if max == 0 {
                1.0
            } else {
                used as f64 / max as f64
            }
        };
        let org = self.api_usage.map(|(u, m)| ratio(u, m));
        let app = self.per_app.as_ref().map(|(u, m, _)| ratio(*u, *m));
        match (org, app) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Extracts `x` from `appName=x)`.
fn app_name(rest: &str) -> Option<&str> {
    let inner = rest.split_once(')').map_or(rest, |(inner, _)| inner);
    inner
        .trim()
        .strip_prefix("appName=")
        .map(str::trim)
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_usage_only() {
        let info = LimitInfo::parse("api-usage=18/5000");
        assert_eq!(info.api_usage, Some((18, 5000)));
        assert_eq!(info.per_app, None);
        assert_eq!(info.api_remaining(), Some(4982));
        assert!(!info.is_empty());
    }

    #[test]
    fn per_app_usage_with_app_name() {
        let info =
            LimitInfo::parse("api-usage=25/5000; per-app-api-usage=17/250(appName=sample-app)");
        assert_eq!(info.api_usage, Some((25, 5000)));
        assert_eq!(info.per_app, Some((17, 250, "sample-app".to_owned())));
        assert!(info.others.is_empty());
        let ratio = info.usage_ratio().unwrap();
        assert!((ratio - 17.0 / 250.0).abs() < 1e-9, "{ratio}");
    }

    #[test]
    fn bursts_and_unknown_keys() {
        let info = LimitInfo::parse("api-usage=10018/100000; api-bursts=1/750;new-thing=3/4");
        assert_eq!(info.api_usage, Some((10018, 100_000)));
        assert_eq!(info.api_bursts, Some((1, 750)));
        assert_eq!(info.others, vec![("new-thing".to_owned(), 3, 4)]);
    }

    #[test]
    fn bursts_alone() {
        let info = LimitInfo::parse("api-bursts=1/750");
        assert_eq!(info.api_bursts, Some((1, 750)));
        assert_eq!(info.api_usage, None);
        assert_eq!(info.usage_ratio(), None);
    }

    #[test]
    fn malformed_pairs_are_skipped() {
        let info = LimitInfo::parse(
            "garbage; api-usage=x/5000; per-app-api-usage=1/2(appName=); api-bursts=5/",
        );
        assert_eq!(info.api_usage, None);
        assert_eq!(info.api_bursts, None);
        assert_eq!(info.per_app, Some((1, 2, String::new())));
        assert!(LimitInfo::parse("").is_empty());
        assert!(LimitInfo::parse(";;=;/").is_empty());
    }

    #[test]
    fn whitespace_is_tolerated() {
        let info = LimitInfo::parse("  api-usage = 7 / 10 ;per-app-api-usage=9/10( appName=x )");
        assert_eq!(info.api_usage, Some((7, 10)));
        assert_eq!(info.per_app, Some((9, 10, "x".to_owned())));
        assert!((info.usage_ratio().unwrap() - 0.9).abs() < 1e-9);
        assert_eq!(LimitInfo::parse("api-usage=0/0").usage_ratio(), Some(1.0));
    }
}
