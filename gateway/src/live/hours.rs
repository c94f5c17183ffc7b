//! Office hours of the live-messaging desk (design §2 fallback): outside them an escalation
//! becomes a Case instead of a live conversation.
//!
//! Windows are wall-clock times in the office's time zone, start inclusive, end exclusive, at
//! minute precision: `mon = ["09:00-17:00"]` is open from 09:00:00 to 16:59:59 local time on
//! Mondays, whatever the UTC offset that day. Consequences on daylight-saving days:
//! - a window (or part of one) inside the spring-forward gap never happens; a window that starts
//!   in the gap and ends after it opens at the transition (local 03:00 in Europe/Berlin);
//! - a window inside the repeated fall-back hour is open during both passes.
//!
//! A window cannot cross midnight: "22:00-02:00" is refused; write `mon = ["22:00-24:00"]` and
//! `tue = ["00:00-02:00"]`. Overlapping windows on one day are allowed (open during either).
//! Holidays are dates in the office's time zone (the whole local day is closed).
//! Time is always passed in; nothing here reads the clock.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{
    DateTime, Datelike, Days, Duration, LocalResult, NaiveDate, NaiveTime, Offset, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;
use serde::Deserialize;

/// The config section (named in validation errors).
const SECTION: &str = "miaw.office_hours";

/// Bound on the windows of one day.
const MAX_WINDOWS_PER_DAY: usize = 8;

/// Bound on the holiday list (years of public holidays fit many times over).
const MAX_HOLIDAYS: usize = 500;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

const MINUTES_PER_DAY: u32 = 24 * 60;

/// `[miaw.office_hours]`. Disabled (the default) means always open.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfficeHoursConfig {
    pub enabled: bool,
    /// IANA time zone name, e.g. "Europe/Berlin".
    pub time_zone: String,
    /// Day (`mon` … `sun`) → windows `"HH:MM-HH:MM"` (end may be `24:00`); a missing day is
    /// closed. At most [`MAX_WINDOWS_PER_DAY`] windows a day.
    pub weekly: BTreeMap<String, Vec<String>>,
    /// Closed local dates, `"YYYY-MM-DD"`. At most [`MAX_HOLIDAYS`].
    pub holidays: Vec<String>,
}

impl Default for OfficeHoursConfig {
    fn default() -> Self {
        OfficeHoursConfig {
            enabled: false,
            time_zone: "UTC".to_owned(),
            weekly: BTreeMap::new(),
            holidays: Vec::new(),
        }
    }
}

impl OfficeHoursConfig {
    /// Checks every setting, also while disabled (a typo should not wait for the day someone
    /// turns office hours on). Names the first bad setting and what to write instead.
    pub fn validate(&self) -> Result<(), String> {
        Schedule::parse(self).map(|_| ())
    }
}

/// When the desk is open, built from a validated [`OfficeHoursConfig`].
#[derive(Clone, Debug)]
pub struct OfficeHours {
    /// `None`: office hours are disabled, always open.
    schedule: Option<Schedule>,
}

impl OfficeHours {
    pub fn from_config(config: &OfficeHoursConfig) -> Result<Self, String> {
        let schedule = Schedule::parse(config)?;
        Ok(OfficeHours {
            schedule: config.enabled.then_some(schedule),
        })
    }

    /// Whether a live conversation may open at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.schedule.as_ref().is_none_or(|s| s.is_open(at))
    }

    /// The first instant at or after `at` when the desk is open (`at` itself when open now), to
    /// tell the customer when to come back. The search is bounded: 7 × (holidays + 3) days, so
    /// at most about 10 years with [`MAX_HOLIDAYS`]. `None` only when holidays (and windows that
    /// fall into daylight-saving gaps) swallow every window within it.
    pub fn next_opening(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.schedule {
            None => Some(at),
            Some(_) if self.is_open(at) => Some(at),
            Some(s) => s.next_opening_after(at),
        }
    }
}

/// A window in minutes since local midnight: `start` inclusive, `end` exclusive (≤ 1440).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    start: u32,
    end: u32,
}

#[derive(Clone, Debug)]
struct Schedule {
    tz: Tz,
    /// Indexed by days from Monday.
    weekly: [Vec<Window>; 7],
    holidays: BTreeSet<NaiveDate>,
}

impl Schedule {
    fn parse(config: &OfficeHoursConfig) -> Result<Schedule, String> {
        let tz: Tz = config.time_zone.parse().map_err(|_| {
            format!(
                "{SECTION}.time_zone {:?} is not an IANA time zone; write one like \"Europe/Berlin\" or \"UTC\"",
                config.time_zone
            )
        })?;
        let mut weekly: [Vec<Window>; 7] = Default::default();
        for (day, windows) in &config.weekly {
            let Some(index) = DAY_NAMES.iter().position(|d| d == day) else {
                return Err(format!(
                    "{SECTION}.weekly.{day} is not a day; use {}",
                    DAY_NAMES.join(", ")
                ));
            };
            if windows.len() > MAX_WINDOWS_PER_DAY {
                return Err(format!(
                    "{SECTION}.weekly.{day} has {} windows; at most {MAX_WINDOWS_PER_DAY} are allowed",
                    windows.len()
                ));
            }
            for window in windows {
                weekly[index].push(parse_window(&format!("{SECTION}.weekly.{day}"), window)?);
            }
        }
        if config.enabled && weekly.iter().all(Vec::is_empty) {
            return Err(format!(
                "{SECTION}.weekly has no windows, so the desk would never open; add some like mon = [\"09:00-17:00\"] or set {SECTION}.enabled = false"
            ));
        }
        if config.holidays.len() > MAX_HOLIDAYS {
            return Err(format!(
                "{SECTION}.holidays has {} dates; at most {MAX_HOLIDAYS} are allowed (drop past ones)",
                config.holidays.len()
            ));
        }
        let holidays = config
            .holidays
            .iter()
            .map(|d| {
                parse_date(d).ok_or_else(|| {
                    format!("{SECTION}.holidays: {d:?} is not a date; write it as \"2026-12-25\"")
                })
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Schedule {
            tz,
            weekly,
            holidays,
        })
    }

    fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.tz).naive_local();
        let date = local.date();
        if self.holidays.contains(&date) {
            return false;
        }
        let minute = local.hour() * 60 + local.minute();
        self.windows(date)
            .iter()
            .any(|w| w.start <= minute && minute < w.end)
    }

    fn windows(&self, date: NaiveDate) -> &[Window] {
        &self.weekly[date.weekday().num_days_from_monday() as usize]
    }

    /// The desk only goes from closed to open when the wall clock reaches a window start or
    /// jumps (a UTC offset change, which also ends a spring-forward gap). So the answer is the
    /// earliest such instant after `at` at which the desk is open.
    fn next_opening_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first_date = at.with_timezone(&self.tz).date_naive().pred_opt()?;
        let horizon_days = 7 * (self.holidays.len() as u64 + 3);
        let mut best: Option<DateTime<Utc>> = None;
        for day in 0..=horizon_days {
            let date = first_date.checked_add_days(Days::new(day))?;
            let from = at.checked_add_days(Days::new(day))?;
            // Every candidate of this and later days is at or after this bound (a local date
            // starts at most 14 hours before the same UTC date): once the best is before it, stop.
            let bound = (date.and_time(NaiveTime::MIN).and_utc() - Duration::hours(26)).min(from);
            if best.is_some_and(|b| b <= bound) {
                break;
            }
            let mut consider = |candidate: DateTime<Utc>| {
                if candidate > at && self.is_open(candidate) && best.is_none_or(|b| candidate < b) {
                    best = Some(candidate);
                }
            };
            if !self.holidays.contains(&date) {
                for window in self.windows(date) {
                    let start = date.and_hms_opt(window.start / 60, window.start % 60, 0)?;
                    match self.tz.from_local_datetime(&start) {
                        LocalResult::Single(t) => consider(t.with_timezone(&Utc)),
                        LocalResult::Ambiguous(first, second) => {
                            consider(first.with_timezone(&Utc));
                            consider(second.with_timezone(&Utc));
                        }
                        // In a spring-forward gap: the transition below is the candidate.
                        LocalResult::None => {}
                    }
                }
            }
            if let Some(transition) = self.offset_change_in(from, from + Duration::days(1)) {
                consider(transition);
            }
        }
        best
    }

    /// The first whole second in `(from, to]` with another UTC offset than `from` (offsets
    /// change at whole seconds, at most once a day).
    fn offset_change_in(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let offset = |secs: i64| {
            DateTime::from_timestamp(secs, 0)
                .map(|t| self.tz.offset_from_utc_datetime(&t.naive_utc()).fix())
        };
        let (mut lo, mut hi) = (from.timestamp(), to.timestamp());
        let before = offset(lo)?;
        if offset(hi)? == before {
            return None;
        }
        // Invariant: offset(lo) == before != offset(hi).
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if offset(mid)? == before {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        DateTime::from_timestamp(hi, 0)
    }
}

/// `"HH:MM-HH:MM"`, start before end, end up to `24:00`.
fn parse_window(setting: &str, text: &str) -> Result<Window, String> {
    let malformed = || {
        format!("{setting}: {text:?} is not a window; write it as \"09:00-17:00\" (24-hour clock)")
    };
    let (start, end) = text.split_once('-').ok_or_else(malformed)?;
    let start = parse_minutes(start)
        .filter(|m| *m < MINUTES_PER_DAY)
        .ok_or_else(malformed)?;
    let end = parse_minutes(end).ok_or_else(malformed)?;
    if end < start {
        return Err(format!(
            "{setting}: {text:?} crosses midnight; split it into \"{}-24:00\" on this day and \"00:00-{}\" on the next",
            &text[..5],
            &text[6..]
        ));
    }
    if end == start {
        return Err(format!(
            "{setting}: {text:?} is empty; the end must be after the start"
        ));
    }
    Ok(Window { start, end })
}

/// `"HH:MM"` → minutes since midnight, `00:00` to `24:00`.
fn parse_minutes(text: &str) -> Option<u32> {
    let b = text.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
        return None;
    }
    let digit = |i: usize| u32::from(b[i] - b'0');
    let (hour, minute) = (digit(0) * 10 + digit(1), digit(3) * 10 + digit(4));
    let minutes = hour * 60 + minute;
    (minute < 60 && minutes <= MINUTES_PER_DAY).then_some(minutes)
}

/// `"YYYY-MM-DD"` exactly.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let digits = [0, 1, 2, 3, 5, 6, 8, 9];
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits.iter().all(|&i| b[i].is_ascii_digit())
    {
        return None;
    }
    let year: i32 = text[..4].parse().ok()?;
    let month: u32 = text[5..7].parse().ok()?;
    let day: u32 = text[8..].parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    fn hours(zone: &str, weekly: &[(&str, &[&str])], holidays: &[&str]) -> OfficeHours {
        OfficeHours::from_config(&config(zone, weekly, holidays)).expect("valid config")
    }

    fn config(zone: &str, weekly: &[(&str, &[&str])], holidays: &[&str]) -> OfficeHoursConfig {
        OfficeHoursConfig {
            enabled: true,
            time_zone: zone.to_owned(),
            weekly: weekly
                .iter()
                .map(|(d, w)| ((*d).to_owned(), w.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
            holidays: holidays.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    const WEEKDAYS: [(&str, &[&str]); 5] = [
        ("mon", &["09:00-17:00"]),
        ("tue", &["09:00-17:00"]),
        ("wed", &["09:00-17:00"]),
        ("thu", &["09:00-17:00"]),
        ("fri", &["09:00-17:00"]),
    ];

    #[test]
    fn disabled_is_always_open_and_is_the_default() {
        let config = OfficeHoursConfig::default();
        assert!(!config.enabled);
        assert_eq!(config.validate(), Ok(()));
        let office = OfficeHours::from_config(&config).expect("valid");
        let sunday_night = utc("2026-12-27T03:00:00Z");
        assert!(office.is_open(sunday_night));
        assert_eq!(office.next_opening(sunday_night), Some(sunday_night));
    }

    #[test]
    fn config_deserializes_from_toml_with_defaults_and_refuses_unknown_fields() {
        use figment::providers::{Format, Toml};
        let extract = |toml: &str| {
            figment::Figment::from(Toml::string(toml))
                .extract_inner::<OfficeHoursConfig>("miaw.office_hours")
                .map_err(|e| e.to_string())
        };
        let parsed = extract(
            r#"
            [miaw.office_hours]
            enabled = true
            weekly.mon = ["09:00-12:00", "13:00-17:00"]
            weekly.sat = ["10:00-14:00"]
            holidays = ["2026-12-25"]
            "#,
        )
        .expect("parses");
        assert_eq!(parsed.time_zone, "UTC");
        assert_eq!(parsed.weekly["mon"], ["09:00-12:00", "13:00-17:00"]);
        assert_eq!(parsed.holidays, ["2026-12-25"]);
        assert_eq!(parsed.validate(), Ok(()));
        let unknown = extract("[miaw.office_hours]\ntimezone = \"Europe/Berlin\"\n");
        assert!(
            unknown
                .expect_err("unknown field")
                .to_string()
                .contains("timezone")
        );
    }

    #[test]
    fn windows_are_local_start_inclusive_end_exclusive() {
        let office = hours("Europe/Berlin", &WEEKDAYS, &[]);
        // Monday 2026-01-12, CET (UTC+1).
        assert!(!office.is_open(utc("2026-01-12T07:59:59Z")));
        assert!(office.is_open(utc("2026-01-12T08:00:00Z")));
        assert!(office.is_open(utc("2026-01-12T15:59:59Z")));
        assert!(!office.is_open(utc("2026-01-12T16:00:00Z")));
        // Monday 2026-07-13, CEST (UTC+2): the same local window is an hour earlier in UTC.
        assert!(office.is_open(utc("2026-07-13T07:00:00Z")));
        assert!(!office.is_open(utc("2026-07-13T15:00:00Z")));
        // Saturday.
        assert!(!office.is_open(utc("2026-07-11T10:00:00Z")));
    }

    #[test]
    fn day_boundaries_follow_the_local_date() {
        let office = hours("America/New_York", &[("mon", &["00:00-24:00"])], &[]);
        // Sunday 2026-01-11 23:59:59 EST = Monday 04:59:59 UTC: still Sunday locally.
        assert!(!office.is_open(utc("2026-01-12T04:59:59Z")));
        assert!(office.is_open(utc("2026-01-12T05:00:00Z")));
        assert!(office.is_open(utc("2026-01-13T04:59:59Z")));
        assert!(!office.is_open(utc("2026-01-13T05:00:00Z")));
        assert_eq!(
            office.next_opening(utc("2026-01-13T05:00:00Z")),
            Some(utc("2026-01-19T05:00:00Z"))
        );
    }

    #[test]
    fn holidays_are_local_dates() {
        let office = hours(
            "Asia/Tokyo",
            &[
                ("thu", &["00:00-24:00"]),
                ("fri", &["00:00-24:00"]),
                ("sat", &["00:00-24:00"]),
            ],
            &["2026-12-25"],
        );
        // 2026-12-24T23:30Z is Friday 2026-12-25 08:30 in Tokyo: the holiday, though the UTC
        // date is the 24th.
        assert!(!office.is_open(utc("2026-12-24T23:30:00Z")));
        // 2026-12-24T14:59Z is Thursday 23:59 in Tokyo: open.
        assert!(office.is_open(utc("2026-12-24T14:59:00Z")));
        // 2026-12-25T15:00Z is Saturday the 26th 00:00 in Tokyo: open, though the UTC date is the
        // holiday.
        assert!(office.is_open(utc("2026-12-25T15:00:00Z")));
        assert_eq!(
            office.next_opening(utc("2026-12-24T23:30:00Z")),
            Some(utc("2026-12-25T15:00:00Z"))
        );
    }

    #[test]
    fn next_opening_skips_nights_weekends_and_holidays() {
        let office = hours("Europe/Berlin", &WEEKDAYS, &["2026-12-25", "2026-12-28"]);
        // Open now: now.
        let open = utc("2026-12-22T10:00:00Z");
        assert_eq!(office.next_opening(open), Some(open));
        // Tuesday evening → Wednesday 09:00 CET.
        assert_eq!(
            office.next_opening(utc("2026-12-22T17:00:00Z")),
            Some(utc("2026-12-23T08:00:00Z"))
        );
        // Before opening on the same day → that day's opening.
        assert_eq!(
            office.next_opening(utc("2026-12-23T05:00:00Z")),
            Some(utc("2026-12-23T08:00:00Z"))
        );
        // Thursday evening: Friday the 25th and Monday the 28th are holidays → Tuesday the 29th.
        assert_eq!(
            office.next_opening(utc("2026-12-24T18:00:00Z")),
            Some(utc("2026-12-29T08:00:00Z"))
        );
    }

    #[test]
    fn next_opening_crosses_into_summer_time() {
        // Friday 2026-03-27 evening (CET) → Monday 2026-03-30 09:00 CEST = 07:00 UTC.
        let office = hours("Europe/Berlin", &WEEKDAYS, &[]);
        assert_eq!(
            office.next_opening(utc("2026-03-27T17:00:00Z")),
            Some(utc("2026-03-30T07:00:00Z"))
        );
        // And back: Friday 2026-10-23 (CEST) → Monday 2026-10-26 09:00 CET = 08:00 UTC.
        assert_eq!(
            office.next_opening(utc("2026-10-23T16:00:00Z")),
            Some(utc("2026-10-26T08:00:00Z"))
        );
    }

    #[test]
    fn spring_forward_gap_in_berlin() {
        // Sunday 2026-03-29: at 01:00 UTC local time jumps from 02:00 CET to 03:00 CEST.
        let office = hours(
            "Europe/Berlin",
            &[("sun", &["02:00-02:30", "02:15-03:30"])],
            &[],
        );
        // 00:59:59 UTC is 01:59:59 CET: closed.
        assert!(!office.is_open(utc("2026-03-29T00:59:59Z")));
        // The "02:15-03:30" window opens at the transition (03:00 CEST) and closes at 03:30 CEST.
        assert_eq!(
            office.next_opening(utc("2026-03-29T00:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        assert!(office.is_open(utc("2026-03-29T01:29:59Z")));
        assert!(!office.is_open(utc("2026-03-29T01:30:00Z")));
        // "02:00-02:30" never happens that day; a week later it opens at 02:00 CEST.
        let gap_only = hours("Europe/Berlin", &[("sun", &["02:00-02:30"])], &[]);
        assert_eq!(
            gap_only.next_opening(utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-04-05T00:00:00Z"))
        );
    }

    #[test]
    fn fall_back_hour_in_berlin_is_open_twice() {
        // Sunday 2026-10-25: at 01:00 UTC local time goes back from 03:00 CEST to 02:00 CET.
        let office = hours("Europe/Berlin", &[("sun", &["02:00-02:30"])], &[]);
        assert!(office.is_open(utc("2026-10-25T00:00:00Z"))); // 02:00 CEST
        assert!(!office.is_open(utc("2026-10-25T00:30:00Z"))); // 02:30 CEST
        assert!(office.is_open(utc("2026-10-25T01:00:00Z"))); // 02:00 CET
        assert!(!office.is_open(utc("2026-10-25T01:30:00Z"))); // 02:30 CET
        assert_eq!(
            office.next_opening(utc("2026-10-25T00:45:00Z")),
            Some(utc("2026-10-25T01:00:00Z"))
        );
        // A window the clock jumps back into opens at the jump itself, not at its start.
        let jumped_into = hours("Europe/Berlin", &[("sun", &["01:30-02:30"])], &[]);
        assert!(!jumped_into.is_open(utc("2026-10-25T00:45:00Z"))); // 02:45 CEST
        assert_eq!(
            jumped_into.next_opening(utc("2026-10-25T00:45:00Z")),
            Some(utc("2026-10-25T01:00:00Z"))
        );
    }

    #[test]
    fn next_opening_searches_past_holidays_and_gives_up_after_the_horizon() {
        // Only Mondays, and the next 4 Mondays are holidays: the horizon is 7 × (4 + 3) days, so
        // the 5th Monday (2027-02-01) is still found.
        let holidays = ["2027-01-04", "2027-01-11", "2027-01-18", "2027-01-25"];
        let office = hours("UTC", &[("mon", &["09:00-10:00"])], &holidays);
        assert_eq!(
            office.next_opening(utc("2027-01-03T12:00:00Z")),
            Some(utc("2027-02-01T09:00:00Z"))
        );
        // Only a window inside the spring-forward gap (never happens on the last Sunday of
        // March), and every other Sunday of 200 weeks a holiday: 196 holidays give a horizon of
        // 199 weeks, which holds no opening, so the search stops with None.
        let first_sunday = NaiveDate::from_ymd_opt(2027, 1, 3).expect("date");
        let sundays: Vec<String> = (0..200)
            .map(|week| first_sunday + Duration::weeks(week))
            .filter(|d| !(d.month() == 3 && d.day() + 7 > 31))
            .map(|d| d.to_string())
            .collect();
        assert_eq!(sundays.len(), 196);
        let sundays: Vec<&str> = sundays.iter().map(String::as_str).collect();
        let gap_only = hours("Europe/Berlin", &[("sun", &["02:00-02:30"])], &sundays);
        assert_eq!(gap_only.next_opening(utc("2027-01-01T00:00:00Z")), None);
    }

    /// The first open minute, found the slow way (offsets in these zones change on whole
    /// minutes, so a minute scan from a whole minute sees every opening).
    fn first_open_minute(office: &OfficeHours, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (0..14 * 24 * 60)
            .map(|m| at + Duration::minutes(m))
            .find(|t| office.is_open(*t))
    }

    #[test]
    fn next_opening_agrees_with_a_minute_by_minute_scan_around_daylight_saving_changes() {
        let schedule: [(&str, &[&str]); 4] = [
            ("sat", &["00:00-00:30", "23:00-24:00"]),
            (
                "sun",
                &[
                    "00:00-00:20",
                    "00:40-01:00",
                    "01:45-02:15",
                    "02:20-02:40",
                    "22:00-22:10",
                ],
            ),
            ("mon", &["09:00-09:01"]),
            ("wed", &["12:00-13:00"]),
        ];
        // Santiago changes at midnight, Lord Howe by 30 minutes, Chatham at 02:45/03:45 local.
        let cases = [
            (
                "Europe/Berlin",
                ["2026-03-27T00:00:00Z", "2026-10-23T00:00:00Z"],
            ),
            (
                "America/Santiago",
                ["2026-04-02T00:00:00Z", "2026-09-03T00:00:00Z"],
            ),
            (
                "Australia/Lord_Howe",
                ["2026-04-02T00:00:00Z", "2026-10-01T00:00:00Z"],
            ),
            (
                "Pacific/Chatham",
                ["2026-04-02T00:00:00Z", "2026-09-24T00:00:00Z"],
            ),
            (
                "America/New_York",
                ["2026-03-06T00:00:00Z", "2026-10-30T00:00:00Z"],
            ),
        ];
        for (zone, starts) in cases {
            let office = hours(zone, &schedule, &[]);
            for start in starts {
                // Every 37 minutes across four days around the change.
                for step in 0..(4 * 24 * 60 / 37) {
                    let at = utc(start) + Duration::minutes(37 * step);
                    assert_eq!(
                        office.next_opening(at),
                        first_open_minute(&office, at),
                        "{zone} from {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn validate_names_every_bad_setting() {
        let long_day: Vec<&str> = vec!["09:00-10:00"; MAX_WINDOWS_PER_DAY + 1];
        let too_many_holidays: Vec<String> = vec!["2026-12-25".to_owned(); MAX_HOLIDAYS + 1];
        let mut many = config("UTC", &[("mon", &["09:00-17:00"])], &[]);
        many.holidays = too_many_holidays;
        let mut disabled_but_bad = config("Mars/Olympus", &[], &[]);
        disabled_but_bad.enabled = false;
        let cases: Vec<(OfficeHoursConfig, &str)> = vec![
            (
                config("Europe/Berlinn", &WEEKDAYS, &[]),
                "miaw.office_hours.time_zone \"Europe/Berlinn\" is not an IANA time zone",
            ),
            (
                config("", &WEEKDAYS, &[]),
                "miaw.office_hours.time_zone \"\" is not an IANA time zone",
            ),
            (
                disabled_but_bad,
                "miaw.office_hours.time_zone \"Mars/Olympus\"",
            ),
            (
                config("UTC", &[("monday", &["09:00-17:00"])], &[]),
                "miaw.office_hours.weekly.monday is not a day",
            ),
            (
                config("UTC", &[("Mon", &["09:00-17:00"])], &[]),
                "miaw.office_hours.weekly.Mon is not a day",
            ),
            (
                config("UTC", &[("mon", &long_day)], &[]),
                "miaw.office_hours.weekly.mon has 9 windows",
            ),
            (
                config("UTC", &[("mon", &["9:00-17:00"])], &[]),
                "miaw.office_hours.weekly.mon: \"9:00-17:00\" is not a window",
            ),
            (
                config("UTC", &[("mon", &["09:00 - 17:00"])], &[]),
                "miaw.office_hours.weekly.mon: \"09:00 - 17:00\" is not a window",
            ),
            (
                config("UTC", &[("mon", &["09:00-17:60"])], &[]),
                "miaw.office_hours.weekly.mon: \"09:00-17:60\" is not a window",
            ),
            (
                config("UTC", &[("mon", &["09:00-24:01"])], &[]),
                "miaw.office_hours.weekly.mon: \"09:00-24:01\" is not a window",
            ),
            (
                config("UTC", &[("mon", &["24:00-24:00"])], &[]),
                "miaw.office_hours.weekly.mon: \"24:00-24:00\" is not a window",
            ),
            (
                config("UTC", &[("mon", &["09:00"])], &[]),
                "miaw.office_hours.weekly.mon: \"09:00\" is not a window",
            ),
            (
                config("UTC", &[("mon", &["aa:bb-cc:dd"])], &[]),
                "miaw.office_hours.weekly.mon: \"aa:bb-cc:dd\" is not a window",
            ),
            (
                config("UTC", &[("mon", &["17:00-09:00"])], &[]),
                "miaw.office_hours.weekly.mon: \"17:00-09:00\" crosses midnight",
            ),
            (
                config("UTC", &[("fri", &["22:00-02:00"])], &[]),
                "miaw.office_hours.weekly.fri: \"22:00-02:00\" crosses midnight; split it into \"22:00-24:00\" on this day and \"00:00-02:00\" on the next",
            ),
            (
                config("UTC", &[("mon", &["09:00-09:00"])], &[]),
                "miaw.office_hours.weekly.mon: \"09:00-09:00\" is empty",
            ),
            (
                config("UTC", &[], &[]),
                "miaw.office_hours.weekly has no windows",
            ),
            (
                config("UTC", &[("mon", &[])], &[]),
                "miaw.office_hours.weekly has no windows",
            ),
            (many, "miaw.office_hours.holidays has 501 dates"),
            (
                config("UTC", &WEEKDAYS, &["2026-02-30"]),
                "miaw.office_hours.holidays: \"2026-02-30\" is not a date",
            ),
            (
                config("UTC", &WEEKDAYS, &["2026-12-5"]),
                "miaw.office_hours.holidays: \"2026-12-5\" is not a date",
            ),
            (
                config("UTC", &WEEKDAYS, &["25/12/2026"]),
                "miaw.office_hours.holidays: \"25/12/2026\" is not a date",
            ),
            (
                config("UTC", &WEEKDAYS, &["2026-12-25T00:00"]),
                "miaw.office_hours.holidays: \"2026-12-25T00:00\" is not a date",
            ),
        ];
        for (config, expected) in cases {
            let err = config.validate().expect_err(expected);
            assert!(err.starts_with(expected), "{err}\n  expected: {expected}");
            assert_eq!(OfficeHours::from_config(&config).err(), Some(err));
        }
    }
}
