//! Whole-second UTC times: stored as numbers (comparable in DynamoDB conditions),
//! shown as RFC 3339 with a `Z`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(i64);

/// 9999-12-31T23:59:59Z, the last second RFC 3339's four-digit year can show.
const MAX_RFC3339_SECS: i64 = 253_402_300_799;

impl UnixTime {
    pub fn from_secs(secs: i64) -> UnixTime {
        UnixTime(secs)
    }

    pub fn now() -> UnixTime {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        UnixTime(secs as i64)
    }

    pub fn secs(self) -> i64 {
        self.0
    }

    /// The second a time in milliseconds falls in.
    pub fn from_millis(millis: i64) -> UnixTime {
        UnixTime(millis.div_euclid(1000))
    }

    /// Saturates at the ends of `i64` (request-supplied offsets never overflow).
    pub fn plus_secs(self, secs: i64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }

    /// `2026-11-25T12:00:00Z`; clamped to 1970-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z
    /// (the formatter fails past year 9999).
    pub fn rfc3339(self) -> String {
        let t = UNIX_EPOCH + Duration::from_secs(self.0.clamp(0, MAX_RFC3339_SECS) as u64);
        humantime::format_rfc3339_seconds(t).to_string()
    }
}

/// Milliseconds handed out within a stopped clock's second.
static FROZEN_TICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Wall-clock time that tests can move or stop (production does neither).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
    /// Non-zero: the clock is stopped at this time (plus later advances).
    frozen_at: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> UnixTime {
        match self.frozen_at.load(Ordering::Relaxed) {
            0 => UnixTime::now().plus_secs(self.offset_secs.load(Ordering::Relaxed)),
            at => UnixTime::from_secs(at),
        }
    }

    /// Now in milliseconds, for what must order events within a second (audit event ids). A
    /// stopped clock counts milliseconds within its second, so its events still order.
    pub fn now_millis(&self) -> i64 {
        match self.frozen_at.load(Ordering::Relaxed) {
            0 => {
                let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
                wall.saturating_add(self.offset_secs.load(Ordering::Relaxed).saturating_mul(1000))
            }
            at => at.saturating_mul(1000) + (FROZEN_TICKS.fetch_add(1, Ordering::Relaxed) % 1000) as i64,
        }
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, secs: i64) {
        if self.frozen_at.load(Ordering::Relaxed) != 0 {
            self.frozen_at.fetch_add(secs, Ordering::Relaxed);
        }
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }

    /// Stops the clock at its current time, so a test can sit exactly on a boundary.
    pub fn freeze(&self) -> UnixTime {
        let now = self.now();
        self.frozen_at.store(now.secs(), Ordering::Relaxed);
        now
    }
}

/// Serializes as an RFC 3339 string (for API bodies).
pub mod rfc3339 {
    use super::UnixTime;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &UnixTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.rfc3339())
    }

    pub mod option {
        use super::UnixTime;
        use serde::Serializer;

        pub fn serialize<S: Serializer>(t: &Option<UnixTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&t.rfc3339()),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_whole_seconds_with_z() {
        assert_eq!(UnixTime::from_secs(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(UnixTime::from_secs(1_795_000_000).rfc3339(), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn plus_secs_saturates() {
        assert_eq!(UnixTime::from_secs(i64::MAX).plus_secs(1).secs(), i64::MAX);
        assert_eq!(UnixTime::from_secs(i64::MAX).plus_secs(i64::MAX).secs(), i64::MAX);
        assert_eq!(UnixTime::from_secs(i64::MIN).plus_secs(-1).secs(), i64::MIN);
        assert_eq!(UnixTime::from_secs(i64::MIN).plus_secs(i64::MIN).secs(), i64::MIN);
        assert_eq!(UnixTime::from_secs(10).plus_secs(-20).secs(), -10);
        assert_eq!(UnixTime::from_secs(i64::MIN).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(UnixTime::from_secs(i64::MAX).rfc3339(), "9999-12-31T23:59:59Z");
        assert_eq!(UnixTime::from_secs(253_402_300_800).rfc3339(), "9999-12-31T23:59:59Z");
    }
}
