//! Timer triggers: a cron expression in a time zone, or every N minutes.
//! Knows when a schedule fires next and the event it fires with (the shape
//! of Pipedream's timer events).

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};
use std::time::Duration;

/// When a workflow runs on its own.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A five-field cron expression (`0 9 * * 1-5`), read in `timezone`.
    Cron {
        /// The expression as written, for events and listings.
        expression: String,
        /// The parsed expression.
        cron: Box<croner::Cron>,
        /// The zone its fields are read in.
        timezone: Tz,
    },
    /// Every `interval`, counted from the deploy.
    Every {
        /// Time between runs (a second to a year).
        interval: Duration,
        /// The zone the event's local time is given in.
        timezone: Tz,
    },
}

/// The `[schedule]` table of a workflow file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleFile {
    /// A five-field cron expression; exclusive with `every_minutes`.
    pub cron: Option<String>,
    /// Minutes between runs; exclusive with `cron`.
    pub every_minutes: Option<f64>,
    /// An IANA time zone (`Europe/Berlin`); UTC if absent.
    pub timezone: Option<String>,
}

impl Schedule {
    /// Validates a `[schedule]` table; the error is one line naming the
    /// problem.
    pub fn parse(file: &ScheduleFile) -> Result<Self, String> {
        let timezone = match &file.timezone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                format!("schedule.timezone `{name}` is not an IANA time zone (like `Europe/Berlin` or `UTC`)")
            })?,
        };
        match (&file.cron, file.every_minutes) {
            (Some(expression), None) => {
                let fields = expression.split_whitespace().count();
                if fields != 5 {
                    return Err(format!(
                        "schedule.cron `{expression}` has {fields} fields; give five: minute hour day-of-month month day-of-week"
                    ));
                }
                let cron = expression
                    .parse::<croner::Cron>()
                    .map_err(|e| format!("schedule.cron `{expression}`: {e}"))?;
                Ok(Schedule::Cron { expression: expression.clone(), cron: Box::new(cron), timezone })
            }
            (None, Some(minutes)) => {
                if !(1.0 / 60.0..=525_600.0).contains(&minutes) {
                    return Err(format!(
                        "schedule.every_minutes = {minutes} must be between 1/60 (one second) and 525600 (a year)"
                    ));
                }
                Ok(Schedule::Every { interval: Duration::from_secs_f64(minutes * 60.0), timezone })
            }
            (Some(_), Some(_)) => Err("schedule: give `cron` or `every_minutes`, not both".into()),
            (None, None) => Err("schedule: needs `cron = \"0 9 * * *\"` or `every_minutes = 15`".into()),
        }
    }

    /// The first time strictly after `after_ms` (milliseconds since the
    /// epoch) at which the schedule fires; `None` if it never does again.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match self {
            Schedule::Every { interval, .. } => Some(after_ms + interval.as_millis() as i64),
            Schedule::Cron { cron, timezone, .. } => {
                let after = timezone.timestamp_millis_opt(after_ms).single()?;
                cron.find_next_occurrence(&after, false).ok().map(|next| next.timestamp_millis())
            }
        }
    }

    /// After firing the run due at `due_ms`, when the schedule fires next:
    /// the first time after `now_ms` (runs missed while the server was down
    /// are not made up); intervals keep their grid.
    pub fn next_after_firing(&self, due_ms: i64, now_ms: i64) -> Option<i64> {
        match self {
            Schedule::Every { interval, .. } => {
                let step = (interval.as_millis() as i64).max(1);
                let behind = (now_ms - due_ms).max(0);
                Some(due_ms + (behind / step + 1) * step)
            }
            Schedule::Cron { .. } => self.next_after(now_ms.max(due_ms)),
        }
    }

    /// The event of a run fired at `fired_ms`: `timestamp` (seconds),
    /// `cron` or `interval_seconds`, the time in the configured zone and
    /// in UTC.
    pub fn event(&self, fired_ms: i64) -> Value {
        let utc = Utc.timestamp_millis_opt(fired_ms).single().unwrap_or_default();
        let (timezone, mut event) = match self {
            Schedule::Cron { expression, timezone, .. } => (*timezone, json!({ "cron": expression })),
            Schedule::Every { interval, timezone } => {
                (*timezone, json!({ "interval_seconds": interval.as_secs_f64() }))
            }
        };
        event["timestamp"] = json!(fired_ms / 1000);
        event["timezone"] = json!(timezone.name());
        event["timezone_configured"] = time_parts(&utc.with_timezone(&timezone));
        event["timezone_utc"] = time_parts(&utc);
        event
    }

    /// A one-line description for listings.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Cron { expression, timezone, .. } => {
                format!("cron `{expression}` ({})", timezone.name())
            }
            Schedule::Every { interval, .. } => format!("every {}", humantime::format_duration(*interval)),
        }
    }
}

fn time_parts<Z: TimeZone>(time: &DateTime<Z>) -> Value
where
    Z::Offset: std::fmt::Display,
{
    json!({
        "iso8601": {
            "date": time.format("%Y-%m-%d").to_string(),
            "time": time.format("%H:%M:%S").to_string(),
            "timestamp": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "timezone": time.format("%:z").to_string(),
        },
        "year": time.year(),
        "month": time.month(),
        "day_of_month": time.day(),
        "hour": time.hour(),
        "minute": time.minute(),
        "second": time.second(),
        "day_of_week": time.weekday().to_string(),
    })
}

/// Milliseconds since the epoch of an RFC 3339 time, for tests and
/// messages.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

/// An RFC 3339 UTC time for milliseconds since the epoch.
pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: Option<&str>, every: Option<f64>, tz: Option<&str>) -> Result<Schedule, String> {
        Schedule::parse(&ScheduleFile {
            cron: cron.map(Into::into),
            every_minutes: every,
            timezone: tz.map(Into::into),
        })
    }

    #[test]
    fn cron_fires_at_local_time_across_a_dst_change() {
        let nine_in_berlin = schedule(Some("0 9 * * *"), None, Some("Europe/Berlin")).unwrap();
        // Berlin moves to summer time on 2026-03-29: 9:00 is 08:00Z before, 07:00Z after.
        let before = parse_rfc3339_ms("2026-03-28T12:00:00Z").unwrap();
        let next = nine_in_berlin.next_after(before).unwrap();
        assert_eq!(rfc3339(next), "2026-03-29T07:00:00Z");
        assert_eq!(rfc3339(nine_in_berlin.next_after(next).unwrap()), "2026-03-30T07:00:00Z");
        let first = nine_in_berlin.next_after(parse_rfc3339_ms("2026-03-27T12:00:00Z").unwrap()).unwrap();
        assert_eq!(rfc3339(first), "2026-03-28T08:00:00Z");

        let event = nine_in_berlin.event(next);
        assert_eq!(event["cron"], "0 9 * * *");
        assert_eq!(event["timestamp"], next / 1000);
        assert_eq!(event["timezone_configured"]["hour"], 9);
        assert_eq!(event["timezone_configured"]["iso8601"]["timezone"], "+02:00");
        assert_eq!(event["timezone_utc"]["hour"], 7);
        assert_eq!(event["timezone"], "Europe/Berlin");
    }

    #[test]
    fn intervals_count_from_the_last_fire() {
        let every = schedule(None, Some(15.0), None).unwrap();
        assert_eq!(every.next_after(1_000), Some(1_000 + 900_000));
        assert_eq!(every.event(1_000)["interval_seconds"], 900.0);
        assert_eq!(every.next_after_firing(1_000, 1_000), Some(901_000));
        assert_eq!(every.next_after_firing(1_000, 901_000), Some(1_801_000), "a whole interval missed");
        assert_eq!(every.next_after_firing(1_000, 5_000_000), Some(5_401_000));
    }

    #[test]
    fn bad_schedules_get_one_line_errors() {
        for (cron, every, tz, expected) in [
            (Some("0 9 * *"), None, None, "has 4 fields"),
            (Some("99 9 * * *"), None, None, "schedule.cron `99 9 * * *`"),
            (None, Some(0.0), None, "must be between"),
            (Some("* * * * *"), Some(5.0), None, "not both"),
            (None, None, None, "needs `cron"),
            (Some("* * * * *"), None, Some("Mars/Olympus"), "not an IANA time zone"),
        ] {
            let error = schedule(cron, every, tz).unwrap_err();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains('\n'));
        }
    }
}
