//! Usage per key (API.md "Usage, events, metrics"): what the limiter counted, by outcome, per
//! minute, hour or day. The request path writes nothing for it: each rate window's counter is
//! read back from the table's stream and rolled up off the request path (`crate::usage`).

use std::collections::BTreeMap;
use std::ops::AddAssign;

use crate::domain::quota::MonthlyQuota;
use crate::domain::{CustomerId, Environment, KeyHash, KeyPrefix, Tier, UnixTime};

/// The bucket size of a usage series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    Minute,
    Hour,
    Day,
}

impl Granularity {
    pub fn parse(text: &str) -> Option<Granularity> {
        match text {
            "minute" => Some(Granularity::Minute),
            "hour" => Some(Granularity::Hour),
            "day" => Some(Granularity::Day),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    pub fn secs(self) -> i64 {
        match self {
            Granularity::Minute => 60,
            Granularity::Hour => 3_600,
            Granularity::Day => 86_400,
        }
    }

    /// How far back a series of this granularity may reach (API.md: "kept ≥ 2 h", "≥ 35
    /// days", "≥ 400 days"); the store keeps each a little longer.
    pub fn retention_secs(self) -> i64 {
        match self {
            Granularity::Minute => 2 * 3_600,
            Granularity::Hour => 35 * 86_400,
            Granularity::Day => 400 * 86_400,
        }
    }

    /// The start of the bucket `t` falls in (UTC).
    pub fn align(self, t: UnixTime) -> UnixTime {
        UnixTime::from_secs(t.secs() - t.secs().rem_euclid(self.secs()))
    }
}

/// Requests by the outcome the limiter gave them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub accepted: u64,
    pub rate_limited: u64,
    /// Refusals for a monthly quota.
    pub quota_exceeded: u64,
}

impl Counts {
    /// One rate window's outcomes: its counter holds every request it counted (refusals for
    /// the key itself, such as a wrong origin, are given back), the first `limit` passed the
    /// minute limit and the rest were refused; of those that passed, `quota_refused` were
    /// refused by the monthly quota (checked after the minute limit).
    pub fn of_window(count: u64, limit: u32, quota_refused: u64) -> Counts {
        let within = count.min(u64::from(limit));
        let quota_exceeded = quota_refused.min(within);
        Counts { accepted: within - quota_exceeded, rate_limited: count - within, quota_exceeded }
    }

    pub fn total(&self) -> u64 {
        self.accepted + self.rate_limited + self.quota_exceeded
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.accepted += other.accepted;
        self.rate_limited += other.rate_limited;
        self.quota_exceeded += other.quota_exceeded;
    }
}

/// The newest count of one rate window of a key, as the stream shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowCount {
    pub key_hash: KeyHash,
    /// `None` for a secret key's window; a publishable key counts per source IP, each in its
    /// own window (the IP's digest, never the IP).
    pub source: Option<String>,
    pub window_start: UnixTime,
    /// A minute's window, or a key's month (its quota's counter: `count` is the month's count).
    pub span: Span,
    pub count: u64,
    /// Requests the monthly quota refused (`q`): in a minute, for usage; in a month, for events.
    pub quota_refused: u64,
    /// When the stream saw this count (its record's creation time), if it says.
    pub seen_at: Option<UnixTime>,
}

/// What a counter counts: one minute's requests, or a key's month (keys with a quota).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    Minute,
    Month,
}

/// The limit events of API.md "Events (EventBridge)" that a rate window can raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitEventKind {
    /// The window's count reached 80 % of the limit (rounded up: 48 of 60).
    NearRateLimit,
    /// The window refused its first request.
    RateLimited,
    /// The month's count reached 90 % of the quota (rounded up).
    QuotaNear,
    /// The month refused its first request for the quota.
    QuotaExhausted,
}

impl LimitEventKind {
    pub fn detail_type(self) -> &'static str {
        match self {
            LimitEventKind::NearRateLimit => "apikey.near_rate_limit",
            LimitEventKind::RateLimited => "apikey.rate_limited",
            LimitEventKind::QuotaNear => "apikey.quota_near",
            LimitEventKind::QuotaExhausted => "apikey.quota_exhausted",
        }
    }

    /// The events a key's month with `count` requests and `refused` quota refusals has raised.
    pub fn raised_by_month(count: u64, refused: u64, quota: MonthlyQuota) -> Vec<LimitEventKind> {
        let mut raised = Vec::new();
        if count >= quota.near() || refused > 0 {
            raised.push(LimitEventKind::QuotaNear);
        }
        if refused > 0 {
            raised.push(LimitEventKind::QuotaExhausted);
        }
        raised
    }

    /// The events a secret key's window with `count` requests against `limit` has raised.
    /// Publishable keys' windows are per source IP: they raise none.
    pub fn raised(secret_key_window: bool, count: u64, limit: u32) -> Vec<LimitEventKind> {
        let limit = u64::from(limit);
        let mut raised = Vec::new();
        if secret_key_window && count >= (limit * 80).div_ceil(100) {
            raised.push(LimitEventKind::NearRateLimit);
        }
        if secret_key_window && count > limit {
            raised.push(LimitEventKind::RateLimited);
        }
        raised
    }
}

/// The source of every event this service publishes.
pub const EVENT_SOURCE: &str = "hatched.auth-edge";

/// One event for EventBridge: who, which window, never key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitEvent {
    pub kind: LimitEventKind,
    pub key_prefix: KeyPrefix,
    pub customer_id: CustomerId,
    pub environment: Environment,
    pub tier: Tier,
    pub limit: u64,
    pub count: u64,
    pub window_start: UnixTime,
    pub occurred_at: UnixTime,
}

impl LimitEvent {
    /// `<key_prefix>:<detail-type>:<window_start as unix seconds>`: the same for every delivery
    /// of one event, so a consumer can drop a redelivery.
    pub fn event_id(&self) -> String {
        format!("{}:{}:{}", self.key_prefix, self.kind.detail_type(), self.window_start.secs())
    }

    /// The event's `detail` (API.md).
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({
            "event_id": self.event_id(),
            "customer_id": self.customer_id.as_str(),
            "environment": self.environment.as_str(),
            "key_prefix": self.key_prefix.as_str(),
            "tier": self.tier.as_str(),
            "limit": self.limit,
            "count": self.count,
            "window_start": self.window_start.rfc3339(),
            "occurred_at": self.occurred_at.rfc3339(),
        })
    }
}

/// The most points one answer holds.
pub const MAX_POINTS: i64 = 1_000;
/// Points in a series when `from` is not given.
pub const DEFAULT_POINTS: i64 = 24;

/// A valid usage query: buckets `[from, to)`, aligned to the granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageQuery {
    pub granularity: Granularity,
    pub from: UnixTime,
    pub to: UnixTime,
}

/// Why a usage query is refused (400 `invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageQueryError {
    #[error("granularity must be minute, hour or day")]
    Granularity,
    #[error("{0} must be an RFC 3339 time")]
    Time(&'static str),
    #[error("from must be before to")]
    Empty,
    #[error("at most 1000 points per request")]
    TooMany,
    #[error("from is older than this granularity keeps")]
    TooOld,
    #[error("to is past the current bucket")]
    Future,
}

impl UsageQuery {
    /// Reads the query string's values (each optional) at `now`.
    pub fn new(
        granularity: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        now: UnixTime,
    ) -> Result<UsageQuery, UsageQueryError> {
        let granularity = match granularity {
            None => Granularity::Hour,
            Some(g) => Granularity::parse(g).ok_or(UsageQueryError::Granularity)?,
        };
        let step = granularity.secs();
        let time = |text: Option<&str>, field| {
            text.map(|t| parse_rfc3339(t).map(|t| granularity.align(t)).ok_or(UsageQueryError::Time(field))).transpose()
        };
        let (from, to) = (time(from, "from")?, time(to, "to")?);
        let current_end = granularity.align(now).plus_secs(step);
        let (from, to) = match (from, to) {
            (Some(from), Some(to)) => (from, to),
            (Some(from), None) => (from, current_end.min(from.plus_secs(MAX_POINTS * step))),
            (None, Some(to)) => (to.plus_secs(-DEFAULT_POINTS * step), to),
            (None, None) => (current_end.plus_secs(-DEFAULT_POINTS * step), current_end),
        };
        if from >= to {
            return Err(UsageQueryError::Empty);
        }
        if (to.secs() - from.secs()) / step > MAX_POINTS {
            return Err(UsageQueryError::TooMany);
        }
        if from < granularity.align(now.plus_secs(-granularity.retention_secs())) {
            return Err(UsageQueryError::TooOld);
        }
        if to > current_end {
            return Err(UsageQueryError::Future);
        }
        Ok(UsageQuery { granularity, from, to })
    }

    /// Every bucket's start, oldest first.
    pub fn starts(&self) -> impl Iterator<Item = UnixTime> + '_ {
        let step = self.granularity.secs();
        (0..(self.to.secs() - self.from.secs()) / step).map(move |i| self.from.plus_secs(i * step))
    }

    /// A point for every bucket, zeros where nothing was counted.
    pub fn dense(&self, counted: &BTreeMap<i64, Counts>) -> Vec<UsagePoint> {
        self.starts()
            .map(|start| UsagePoint { start, counts: counted.get(&start.secs()).copied().unwrap_or_default() })
            .collect()
    }
}

/// One bucket of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsagePoint {
    pub start: UnixTime,
    pub counts: Counts,
}

/// `2026-12-02T14:00:00Z`, `…T14:00:00.5Z` or `…T16:00:00+02:00` (RFC 3339; fractions
/// dropped). `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<UnixTime> {
    let text = text.trim();
    if text.len() < 20 || !text.is_ascii() {
        return None;
    }
    let (base, offset_secs) = match text.as_bytes()[text.len() - 1] {
        b'Z' | b'z' => (&text[..text.len() - 1], 0),
        _ => {
            let (base, offset) = text.split_at(text.len() - 6);
            let sign = match offset.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = offset[1..].split_once(':')?;
            if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
                return None;
            }
            let (h, m) = (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            (base, sign * (h * 3_600 + m * 60))
        }
    };
    let whole = base.split_once('.').map_or(base, |(whole, fraction)| {
        if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) { "" } else { whole }
    });
    let bytes = whole.as_bytes();
    if whole.len() != 19 || !matches!(bytes[10], b'T' | b't') {
        return None;
    }
    let t = humantime::parse_rfc3339(&format!("{}T{}Z", &whole[..10], &whole[11..])).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(UnixTime::from_secs(secs - offset_secs))
}

/// The first second of month `month` (1–12) of `year`, UTC (days from the civil date,
/// H. Hinnant's algorithm).
pub fn month_start(year: i64, month: u32) -> Option<UnixTime> {
    if !(1..=12).contains(&month) || !(1970..=9999).contains(&year) {
        return None;
    }
    let (y, m) = if month <= 2 { (year - 1, i64::from(month) + 9) } else { (year, i64::from(month) - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(UnixTime::from_secs((era * 146_097 + doe - 719_468) * 86_400))
}

/// `YYYY-MM` → the month's `[start, end)`.
pub fn month_span(text: &str) -> Option<(UnixTime, UnixTime)> {
    let (y, m) = text.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (year, month) = (y.parse::<i64>().ok()?, m.parse::<u32>().ok()?);
    let start = month_start(year, month)?;
    let end = if month == 12 { month_start(year + 1, 1) } else { month_start(year, month + 1) }?;
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> UnixTime {
        parse_rfc3339(text).unwrap()
    }

    #[test]
    fn a_window_splits_at_its_limit() {
        assert_eq!(Counts::of_window(0, 60, 0), Counts::default());
        assert_eq!(Counts::of_window(60, 60, 0), Counts { accepted: 60, rate_limited: 0, quota_exceeded: 0 });
        assert_eq!(Counts::of_window(75, 60, 0), Counts { accepted: 60, rate_limited: 15, quota_exceeded: 0 });
        // Quota refusals come from the requests within the minute limit.
        assert_eq!(Counts::of_window(75, 60, 20), Counts { accepted: 40, rate_limited: 15, quota_exceeded: 20 });
        assert_eq!(Counts::of_window(5, 60, 9), Counts { accepted: 0, rate_limited: 0, quota_exceeded: 5 });
    }

    #[test]
    fn a_month_raises_quota_near_at_90_percent_rounded_up_and_exhausted_at_its_first_refusal() {
        use LimitEventKind::*;
        let q = MonthlyQuota::new(150).unwrap();
        assert_eq!(LimitEventKind::raised_by_month(134, 0, q), []);
        assert_eq!(LimitEventKind::raised_by_month(135, 0, q), [QuotaNear]);
        assert_eq!(LimitEventKind::raised_by_month(150, 0, q), [QuotaNear]);
        assert_eq!(LimitEventKind::raised_by_month(150, 1, q), [QuotaNear, QuotaExhausted]);
        assert_eq!(QuotaNear.detail_type(), "apikey.quota_near");
        assert_eq!(QuotaExhausted.detail_type(), "apikey.quota_exhausted");
    }

    #[test]
    fn only_secret_windows_raise_events_at_80_percent_rounded_up_and_past_the_limit() {
        use LimitEventKind::*;
        assert_eq!(LimitEventKind::raised(true, 47, 60), []);
        assert_eq!(LimitEventKind::raised(true, 48, 60), [NearRateLimit]);
        assert_eq!(LimitEventKind::raised(true, 60, 60), [NearRateLimit]);
        assert_eq!(LimitEventKind::raised(true, 61, 60), [NearRateLimit, RateLimited]);
        assert_eq!(LimitEventKind::raised(true, 480, 600), [NearRateLimit]);
        assert_eq!(LimitEventKind::raised(true, 479, 600), []);
        assert_eq!(LimitEventKind::raised(false, 6_001, 60), []);
    }

    #[test]
    fn event_ids_are_deterministic_and_details_hold_no_key_material() {
        let event = LimitEvent {
            kind: LimitEventKind::RateLimited,
            key_prefix: KeyPrefix::parse("hatch_live_Ab12Cd").unwrap(),
            customer_id: "acme".parse().unwrap(),
            environment: Environment::Live,
            tier: Tier::Free,
            limit: 60,
            count: 61,
            window_start: at("2026-12-02T14:00:00Z"),
            occurred_at: at("2026-12-02T14:00:31Z"),
        };
        assert_eq!(
            event.event_id(),
            format!("hatch_live_Ab12Cd:apikey.rate_limited:{}", at("2026-12-02T14:00:00Z").secs())
        );
        let detail = event.detail();
        let mut fields: Vec<&str> = detail.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "count",
                "customer_id",
                "environment",
                "event_id",
                "key_prefix",
                "limit",
                "occurred_at",
                "tier",
                "window_start"
            ]
        );
        assert_eq!(detail["window_start"], "2026-12-02T14:00:00Z");
    }

    #[test]
    fn times_parse_as_rfc3339_and_nothing_else() {
        assert_eq!(at("2026-12-02T14:00:00Z").rfc3339(), "2026-12-02T14:00:00Z");
        assert_eq!(at("2026-12-02T14:00:00.999Z"), at("2026-12-02T14:00:00Z"));
        assert_eq!(at("2026-12-02T16:30:00+02:30"), at("2026-12-02T14:00:00Z"));
        assert_eq!(at("2026-12-02T12:00:00-02:00"), at("2026-12-02T14:00:00Z"));
        for bad in [
            "",
            "2026-12-02",
            "2026-12-02 14:00:00Z",
            "2026-12-02T14:00:00",
            "2026-12-02T14:00:00+2:00",
            "2026-12-02T14:00:00++1:00",
            "2026-12-02T14:00:00+-1:30",
            "2026-12-02T14:00:00+01:+0",
            "2026-12-02T14:00:00+24:00",
            "2026-13-02T14:00:00Z",
            "2026-12-02T14:00:00.Z",
            "2026-12-02T14:00:00.1xZ",
            "２０２６-12-02T14:00:00Z",
            "1e9",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_default_series_is_the_24_buckets_ending_with_the_current_one() {
        let now = at("2026-12-02T14:37:12Z");
        let q = UsageQuery::new(None, None, None, now).unwrap();
        assert_eq!(q.granularity, Granularity::Hour);
        assert_eq!(q.to, at("2026-12-02T15:00:00Z"));
        assert_eq!(q.from, at("2026-12-01T15:00:00Z"));
        assert_eq!(q.starts().count(), 24);
        let q = UsageQuery::new(Some("minute"), None, None, now).unwrap();
        assert_eq!((q.from, q.to), (at("2026-12-02T14:14:00Z"), at("2026-12-02T14:38:00Z")));
    }

    #[test]
    fn bounds_align_down_and_are_checked() {
        let now = at("2026-12-02T14:37:12Z");
        let q = |g, f, t| UsageQuery::new(g, f, t, now);
        let day = q(Some("day"), Some("2026-11-01T13:00:00Z"), Some("2026-11-03T01:00:00Z")).unwrap();
        assert_eq!((day.from, day.to), (at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z")));
        assert_eq!(day.starts().count(), 2);
        assert_eq!(q(Some("week"), None, None), Err(UsageQueryError::Granularity));
        assert_eq!(q(None, Some("yesterday"), None), Err(UsageQueryError::Time("from")));
        assert_eq!(q(None, Some("2026-12-02T14:00:00Z"), Some("2026-12-02T14:59:59Z")), Err(UsageQueryError::Empty));
        assert_eq!(q(Some("minute"), Some("2026-12-02T12:40:00Z"), None).map(|q| q.starts().count()), Ok(118));
        assert_eq!(q(Some("minute"), Some("2026-12-02T12:36:00Z"), None), Err(UsageQueryError::TooOld));
        assert_eq!(q(Some("hour"), Some("2026-10-28T13:00:00Z"), None), Err(UsageQueryError::TooOld));
        assert!(q(Some("hour"), Some("2026-10-28T14:00:00Z"), None).is_ok());
        assert_eq!(q(Some("minute"), None, Some("2026-12-02T14:39:00Z")), Err(UsageQueryError::Future));
        assert!(q(Some("minute"), None, Some("2026-12-02T14:38:00Z")).is_ok());
        assert_eq!(
            q(Some("day"), Some("2025-01-01T00:00:00Z"), Some("2028-01-01T00:00:00Z")),
            Err(UsageQueryError::TooMany)
        );
    }

    #[test]
    fn series_are_dense() {
        let now = at("2026-12-02T14:37:12Z");
        let q =
            UsageQuery::new(Some("minute"), Some("2026-12-02T14:30:00Z"), Some("2026-12-02T14:33:00Z"), now).unwrap();
        let counted = BTreeMap::from([(at("2026-12-02T14:31:00Z").secs(), Counts::of_window(3, 60, 0))]);
        let points = q.dense(&counted);
        assert_eq!(points.len(), 3);
        assert_eq!(points[0].counts, Counts::default());
        assert_eq!(points[1].counts.accepted, 3);
        assert_eq!(points[2].start, at("2026-12-02T14:32:00Z"));
    }

    #[test]
    fn months_are_calendar_months() {
        assert_eq!(month_start(1970, 1), Some(UnixTime::from_secs(0)));
        let (start, end) = month_span("2024-02").unwrap();
        assert_eq!(
            (start.rfc3339().as_str(), end.rfc3339().as_str()),
            ("2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z")
        );
        assert_eq!(month_span("2026-12").map(|(_, e)| e.rfc3339()), Some("2027-01-01T00:00:00Z".into()));
        for bad in ["2026-13", "2026-1", "26-01", "2026-00", "x"] {
            assert_eq!(month_span(bad), None, "{bad}");
        }
    }
}
