//! Which Salesforce path an accepted escalation takes, and why. Until live messaging (MIAW)
//! lands every escalation becomes a Case; a channel that prefers messaging gets the design's
//! fallback, recorded as a `route.fallback` event.

use serde_json::{Value, json};

use channels::Route;

/// Why a route was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteReason {
    /// The channel prefers this route.
    Preferred,
    /// The channel prefers live messaging, which this gateway does not have configured.
    MessagingNotConfigured,
}

impl RouteReason {
    /// The reason as the `route.fallback` event says it.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Preferred => "the channel's preferred route",
            Self::MessagingNotConfigured => "live messaging is not configured",
        }
    }
}

/// The route chosen for one escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteChoice {
    pub preferred: Route,
    pub route: Route,
    pub reason: RouteReason,
}

impl RouteChoice {
    /// The route's stored name (`case`, `messaging`).
    #[must_use]
    pub fn route_name(&self) -> &'static str {
        name(self.route)
    }

    /// The `route.fallback` event when the route is not the preferred one.
    #[must_use]
    pub fn fallback_event(&self) -> Option<(&'static str, Value)> {
        (self.route != self.preferred).then(|| {
            (
                "route.fallback",
                json!({
                    "preferred": name(self.preferred),
                    "route": name(self.route),
                    "reason": self.reason.describe(),
                }),
            )
        })
    }
}

fn name(route: Route) -> &'static str {
    match route {
        Route::Case => "case",
        Route::Messaging => "messaging",
    }
}

/// The route for a channel that prefers `preferred`.
#[must_use]
pub fn choose(preferred: Route) -> RouteChoice {
    let (route, reason) = match preferred {
        Route::Case => (Route::Case, RouteReason::Preferred),
        Route::Messaging => (Route::Case, RouteReason::MessagingNotConfigured),
    };
    RouteChoice {
        preferred,
        route,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_preferred_is_a_case_without_an_event() {
        let choice = choose(Route::Case);
        assert_eq!(choice.route, Route::Case);
        assert_eq!(choice.reason, RouteReason::Preferred);
        assert_eq!(choice.route_name(), "case");
        assert_eq!(choice.fallback_event(), None);
    }

    #[test]
    fn messaging_falls_back_to_a_case_with_the_same_event_as_before() {
        let choice = choose(Route::Messaging);
        assert_eq!(choice.route, Route::Case);
        assert_eq!(choice.reason, RouteReason::MessagingNotConfigured);
        assert_eq!(
            choice.fallback_event(),
            Some((
                "route.fallback",
                json!({
                    "preferred": "messaging",
                    "route": "case",
                    "reason": "live messaging is not configured",
                })
            ))
        );
    }
}
