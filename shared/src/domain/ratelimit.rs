//! Fixed one-minute windows. The store increments a counter atomically (DynamoDB `ADD`
//! returns the new value), so concurrent callers each see a distinct count: exactly
//! `limit` of them are admitted per window.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::{KeyHash, KeyType, UnixTime};

pub const WINDOW_SECS: i64 = 60;

/// Who a window counts: a secret key (by hash), a publishable key per source IP (it is
/// shared by every visitor of a site, so one visitor cannot use up the others' budget), or
/// an anonymous source IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted<'a> {
    Key(&'a KeyHash),
    KeyFromIp(&'a KeyHash, &'a str),
    Ip(&'a str),
}

impl<'a> Counted<'a> {
    /// The window a key's requests count in.
    pub fn key(hash: &'a KeyHash, key_type: KeyType, source_ip: &'a str) -> Counted<'a> {
        match key_type {
            KeyType::Secret => Counted::Key(hash),
            KeyType::Publishable => Counted::KeyFromIp(hash, source_ip),
        }
    }
}

/// The source IPs this instance has seen over their anonymous limit, until their window
/// ends: further calls from them are refused without writing a counter (a flood of random
/// keys from one address costs no DynamoDB write once it is over). Bounded, so a flood of
/// addresses cannot grow it without limit; when full, counting simply goes on in DynamoDB.
#[derive(Debug, Default)]
pub struct IpBlock(Mutex<HashMap<String, RateLimitStatus>>);

const IP_BLOCK_CAPACITY: usize = 10_000;

impl IpBlock {
    /// The refusal still in force for `ip` at `now`, if any.
    pub fn refusal(&self, ip: &str, now: UnixTime) -> Option<RateLimitStatus> {
        let blocked = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let status = blocked.get(&ip_bucket(ip)).filter(|s| s.reset_at > now)?;
        let reset_in_secs = status.reset_at.secs().saturating_sub(now.secs()).max(1) as u64;
        Some(RateLimitStatus { reset_in_secs, ..status.clone() })
    }

    /// Remembers an over-limit status for `ip`.
    pub fn remember(&self, ip: &str, status: &RateLimitStatus, now: UnixTime) {
        if status.allowed {
            return;
        }
        let mut blocked = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() >= IP_BLOCK_CAPACITY {
            blocked.retain(|_, s| s.reset_at > now);
        }
        if blocked.len() < IP_BLOCK_CAPACITY {
            blocked.insert(ip_bucket(ip), status.clone());
        }
    }
}

/// The address a per-IP limit counts: an IPv4 address, or an IPv6 address's /64 (one
/// subscriber's whole network; counting single v6 addresses would give each caller 2^64
/// budgets). Text that is no address counts as itself.
pub fn ip_bucket(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
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
    fn ipv6_addresses_count_by_their_64() {
        assert_eq!(ip_bucket("2001:db8:1:2:3:4:5:6"), ip_bucket("2001:db8:1:2:ffff::1"));
        assert_ne!(ip_bucket("2001:db8:1:2::1"), ip_bucket("2001:db8:1:3::1"));
        assert_eq!(ip_bucket("198.51.100.7"), "198.51.100.7");
        assert_eq!(ip_bucket("unknown"), "unknown");
    }

    #[test]
    fn an_over_limit_ip_is_refused_until_its_window_ends() {
        let block = IpBlock::default();
        let now = UnixTime::from_secs(120 + 15);
        assert_eq!(block.refusal("1.2.3.4", now), None);
        block.remember("1.2.3.4", &RateLimitStatus::decide(60, 60, now), now);
        assert_eq!(block.refusal("1.2.3.4", now), None, "the 60th request is still allowed");
        block.remember("1.2.3.4", &RateLimitStatus::decide(60, 61, now), now);
        let refused = block.refusal("1.2.3.4", now).expect("over the limit");
        assert!(!refused.allowed);
        assert_eq!(refused.reset_in_secs, 45);
        assert_eq!(block.refusal("1.2.3.5", now), None, "per address");
        assert_eq!(block.refusal("1.2.3.4", UnixTime::from_secs(180)), None, "a new window");
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
