//! Monthly quotas (API.md "Monthly quotas"): requests per calendar month (UTC) a key may make.
//! The store counts a key's month with an atomic `ADD` that returns the new value, so
//! concurrent callers each see a distinct count and exactly `limit` of them are accepted; a
//! refused request gives its count back, so raising the quota frees exactly the difference.

use serde::{Deserialize, Serialize};

use super::UnixTime;

/// The most a quota may be: far beyond any month of traffic, and exact in a JSON number.
pub const MAX_MONTHLY_QUOTA: u64 = 1_000_000_000_000;

/// A key's ceiling: `1..=MAX_MONTHLY_QUOTA` requests per calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MonthlyQuota(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("monthly_quota must be a whole number from 1 to 1000000000000")]
pub struct InvalidQuota;

impl MonthlyQuota {
    pub fn new(limit: u64) -> Result<MonthlyQuota, InvalidQuota> {
        match limit {
            1..=MAX_MONTHLY_QUOTA => Ok(MonthlyQuota(limit)),
            _ => Err(InvalidQuota),
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// 90 % of the quota, rounded up: the count that raises `apikey.quota_near`.
    pub fn near(self) -> u64 {
        (self.0 * 9).div_ceil(10)
    }
}

impl<'de> Deserialize<'de> for MonthlyQuota {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MonthlyQuota, D::Error> {
        // Any JSON number is read (a float or a negative one is refused by name, not by type).
        let value = serde_json::Number::deserialize(d)?;
        value.as_u64().ok_or(InvalidQuota).and_then(MonthlyQuota::new).map_err(serde::de::Error::custom)
    }
}

/// Can a key capped at `caller` give a key the quota `granted`? Only a quota no higher than
/// its own: never none, never more.
pub fn within(caller: Option<MonthlyQuota>, granted: Option<MonthlyQuota>) -> bool {
    match (caller, granted) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(cap), Some(q)) => q <= cap,
    }
}

/// The calendar month (UTC) a time falls in: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub start: UnixTime,
    pub end: UnixTime,
}

impl Month {
    pub fn of(t: UnixTime) -> Month {
        let days = t.secs().div_euclid(86_400);
        let (year, month, _) = civil_from_days(days);
        let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
        Month {
            start: UnixTime::from_secs(days_from_civil(year, month, 1) * 86_400),
            end: UnixTime::from_secs(days_from_civil(next_year, next_month, 1) * 86_400),
        }
    }
}

/// Howard Hinnant's `civil_from_days`: (year, month 1..=12, day 1..=31) of a day since the epoch.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Its inverse: the day since the epoch of a civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Where a key stands in its month after counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaStatus {
    pub limit: u64,
    pub remaining: u64,
    /// When the month ends (and the count starts again).
    pub reset_at: UnixTime,
    /// Whole seconds until then (at least 1): `Retry-After` of a refusal.
    pub reset_in_secs: u64,
    pub allowed: bool,
}

impl QuotaStatus {
    /// `count` is this request's position in the month (1-based, after the increment).
    pub fn decide(limit: MonthlyQuota, count: u64, now: UnixTime) -> QuotaStatus {
        let reset_at = Month::of(now).end;
        QuotaStatus {
            limit: limit.get(),
            remaining: limit.get().saturating_sub(count),
            reset_at,
            reset_in_secs: reset_at.secs().saturating_sub(now.secs()).max(1) as u64,
            allowed: count <= limit.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> UnixTime {
        let t = humantime::parse_rfc3339(text).unwrap();
        UnixTime::from_secs(t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64)
    }

    #[test]
    fn months_are_calendar_months_in_utc() {
        let m = Month::of(at("2026-12-02T00:05:00Z"));
        assert_eq!((m.start, m.end), (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z")));
        let feb = Month::of(at("2028-02-29T23:59:59Z"));
        assert_eq!((feb.start, feb.end), (at("2028-02-01T00:00:00Z"), at("2028-03-01T00:00:00Z")));
        let feb = Month::of(at("2027-02-10T12:00:00Z"));
        assert_eq!(feb.end.secs() - feb.start.secs(), 28 * 86_400);
        assert_eq!(Month::of(at("2027-01-01T00:00:00Z")).start, at("2027-01-01T00:00:00Z"));
        assert_eq!(Month::of(at("2026-12-31T23:59:59Z")).end, at("2027-01-01T00:00:00Z"));
        assert_eq!(Month::of(UnixTime::from_secs(0)).start, UnixTime::from_secs(0));
        // Every day of four centuries: each month starts on a day 1 and follows the last.
        let mut day = days_from_civil(1999, 12, 1);
        while day < days_from_civil(2401, 1, 1) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
            day += 1;
        }
    }

    #[test]
    fn exactly_the_quota_is_accepted_and_the_refusal_waits_for_the_month() {
        let q = MonthlyQuota::new(150).unwrap();
        let now = at("2026-12-31T23:59:00Z");
        let statuses: Vec<_> = (1..=200).map(|n| QuotaStatus::decide(q, n, now)).collect();
        assert_eq!(statuses.iter().filter(|s| s.allowed).count(), 150);
        assert_eq!((statuses[149].remaining, statuses[0].remaining), (0, 149));
        assert_eq!(statuses[150].reset_in_secs, 60);
        assert_eq!(statuses[150].reset_at, at("2027-01-01T00:00:00Z"));
    }

    #[test]
    fn quotas_are_whole_numbers_in_range() {
        for bad in ["0", "-1", "1.5", "1e13", "1000000000001", "\"5\"", "null"] {
            assert!(serde_json::from_str::<MonthlyQuota>(bad).is_err(), "{bad}");
        }
        assert_eq!(serde_json::from_str::<MonthlyQuota>("1000000000000").unwrap().get(), MAX_MONTHLY_QUOTA);
        assert_eq!(MonthlyQuota::new(60).unwrap().near(), 54);
        assert_eq!(MonthlyQuota::new(1).unwrap().near(), 1);
        assert_eq!(MonthlyQuota::new(MAX_MONTHLY_QUOTA).unwrap().near(), 900_000_000_000);
    }

    #[test]
    fn a_capped_caller_grants_no_more_than_its_cap() {
        let q = |n| Some(MonthlyQuota::new(n).unwrap());
        assert!(within(None, None) && within(None, q(5)));
        assert!(within(q(5), q(5)) && within(q(5), q(1)));
        assert!(!within(q(5), q(6)) && !within(q(5), None));
    }

    #[test]
    fn extreme_clocks_do_not_overflow() {
        for now in [-86_400 * 366, 0, 253_402_300_799, 4_102_444_800] {
            let s = QuotaStatus::decide(MonthlyQuota::new(1).unwrap(), u64::MAX, UnixTime::from_secs(now));
            assert!(!s.allowed && s.reset_in_secs >= 1);
        }
    }
}
