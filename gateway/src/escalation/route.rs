//! Which Salesforce path an accepted escalation takes, and why. A channel that
//! prefers live messaging gets it when `[miaw]` is enabled, lists the channel,
//! and the office is open; otherwise the escalation becomes a Case and the
//! timeline records `route.fallback` with the reason.

use serde_json::{Value, json};

use channels::Route;

/// Why a route was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteReason {
    /// The channel prefers this route.
    Preferred,
    /// The channel prefers live messaging, which this gateway does not have configured.
    MessagingNotConfigured,
    /// Live messaging is configured, but not for this channel (`miaw.channels`).
    ChannelNotLive,
    /// Outside the configured office hours (`miaw.office_hours`).
    OutsideOfficeHours,
}

impl RouteReason {
    /// The reason as the `route.fallback` event says it.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Preferred => "the channel's preferred route",
            Self::MessagingNotConfigured => "live messaging is not configured",
            Self::ChannelNotLive => {
                "live messaging is not enabled for this channel (miaw.channels)"
            }
            Self::OutsideOfficeHours => "outside office hours",
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

/// What live messaging can take right now, for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// `[miaw]` is off.
    Off,
    /// On, but this channel is not in `miaw.channels`.
    NotForChannel,
    /// On for this channel, but the office is closed.
    Closed,
    /// On, for this channel, open.
    Open,
}

/// The route for a channel that prefers `preferred`, given what live messaging can take.
#[must_use]
pub fn choose(preferred: Route, live: Live) -> RouteChoice {
    let (route, reason) = match (preferred, live) {
        (Route::Case, _) => (Route::Case, RouteReason::Preferred),
        (Route::Messaging, Live::Open) => (Route::Messaging, RouteReason::Preferred),
        (Route::Messaging, Live::Off) => (Route::Case, RouteReason::MessagingNotConfigured),
        (Route::Messaging, Live::NotForChannel) => (Route::Case, RouteReason::ChannelNotLive),
        (Route::Messaging, Live::Closed) => (Route::Case, RouteReason::OutsideOfficeHours),
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
        for live in [Live::Off, Live::NotForChannel, Live::Closed, Live::Open] {
            let choice = choose(Route::Case, live);
            assert_eq!(choice.route, Route::Case);
            assert_eq!(choice.reason, RouteReason::Preferred);
            assert_eq!(choice.route_name(), "case");
            assert_eq!(choice.fallback_event(), None);
        }
    }

    #[test]
    fn messaging_falls_back_to_a_case_with_the_same_event_as_before() {
        let choice = choose(Route::Messaging, Live::Off);
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

    #[test]
    fn messaging_goes_live_only_when_open_for_the_channel() {
        let open = choose(Route::Messaging, Live::Open);
        assert_eq!(
            (open.route, open.fallback_event()),
            (Route::Messaging, None)
        );
        let closed = choose(Route::Messaging, Live::Closed);
        assert_eq!(closed.route, Route::Case);
        assert_eq!(
            closed.fallback_event().unwrap().1["reason"],
            "outside office hours"
        );
        let other = choose(Route::Messaging, Live::NotForChannel);
        assert_eq!(other.reason, RouteReason::ChannelNotLive);
    }
}
