//! Fixed one-minute windows. The store increments a counter atomically (DynamoDB `ADD`
//! returns the new value), so concurrent callers each see a distinct count: exactly
//! `limit` of them are admitted per window.

use crate::domain::{KeyHash, UnixTime};

pub const WINDOW_SECS: i64 = 60;

/// Who a window counts: a key (by hash) or an anonymous source IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted<'a> {
    Key(&'a KeyHash),
    Ip(&'a str),
}

/// Until when a window's counter must be kept: a little past its minute, so late readers
/// still see it.
pub fn window_expiry(now: UnixTime) -> UnixTime {
    window_start(now).plus_secs(2 * WINDOW_SECS)
}

pub fn window_start(now: UnixTime) -> UnixTime {
    UnixTime::from_secs(now.secs().saturating_sub(now.secs().rem_euclid(WINDOW_SECS)))
}

/// The outcome of counting one request in its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub limit: u32,
    pub remaining: u32,
    pub reset_at: UnixTime,
    pub reset_in_secs: u64,
    pub allowed: bool,
}

impl RateLimitStatus {
    /// `count` is this request's position in the window (1-based, after the increment).
    pub fn decide(limit: u32, count: u64, now: UnixTime) -> RateLimitStatus {
        let reset_at = window_start(now).plus_secs(WINDOW_SECS);
        RateLimitStatus {
            limit,
            remaining: (limit as u64).saturating_sub(count) as u32,
            reset_at,
            reset_in_secs: reset_at.secs().saturating_sub(now.secs()).max(1) as u64,
            allowed: count <= limit as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_limit_requests_pass() {
        let now = UnixTime::from_secs(120 + 15);
        let statuses: Vec<_> = (1..=61).map(|n| RateLimitStatus::decide(60, n, now)).collect();
        assert_eq!(statuses.iter().filter(|s| s.allowed).count(), 60);
        assert_eq!(statuses[59].remaining, 0);
        assert_eq!(statuses[0].remaining, 59);
        assert!(!statuses[60].allowed);
        assert_eq!(statuses[60].reset_at, UnixTime::from_secs(180));
        assert_eq!(statuses[60].reset_in_secs, 45);
    }

    #[test]
    fn windows_are_per_minute() {
        assert_eq!(window_start(UnixTime::from_secs(60)), window_start(UnixTime::from_secs(119)));
        assert_ne!(window_start(UnixTime::from_secs(119)), window_start(UnixTime::from_secs(120)));
        assert_eq!(window_expiry(UnixTime::from_secs(119)), UnixTime::from_secs(180));
    }

    #[test]
    fn extreme_clocks_do_not_overflow() {
        for now in [i64::MIN, i64::MIN + 1, -1, i64::MAX - 1, i64::MAX] {
            let now = UnixTime::from_secs(now);
            let status = RateLimitStatus::decide(60, u64::MAX, now);
            assert!(!status.allowed);
            assert!((1..=60).contains(&status.reset_in_secs), "{status:?}");
            assert!(window_start(now) <= now);
            let _ = window_expiry(now);
        }
    }
}
