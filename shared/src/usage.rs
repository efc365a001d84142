//! The usage service (API.md "Usage, events, metrics"). Counting stays where it was: the
//! request path's one counting write per rate window (`Store::count_request`). The table's
//! stream carries each window's new count here, off the request path ([`Usage::roll_up`]:
//! the `usage-rollup` function deployed, `hatchctl serve` and the tests locally), and the
//! roll-up keeps per-minute, per-hour and per-day totals by outcome ([`Usage::series`]).

use std::collections::HashMap;

use futures::StreamExt;

use crate::domain::time::Clock;
use crate::domain::usage::{Counts, Granularity, UsagePoint, UsageQuery, UsageQueryError, WindowCount};
use crate::domain::{KeyHash, KeyPrefix, UnixTime};
use crate::store::{Store, StoreError};

/// Windows rolled up at once (each is a chain of up to four small writes).
const CONCURRENT_WINDOWS: usize = 16;

#[derive(Debug, Clone)]
pub struct Usage {
    store: Store,
    clock: Clock,
}

/// What one [`Usage::roll_up`] did (the roll-up function's answer to Lambda).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RolledUp {
    /// Distinct windows recorded.
    pub windows: usize,
    /// Windows of a hash no key has (an unknown key's count): nobody's usage.
    pub unknown: usize,
}

impl Usage {
    pub fn new(store: Store, clock: Clock) -> Usage {
        Usage { store, clock }
    }

    /// A usage query from the query string's values, at the current time.
    pub fn query(
        &self,
        granularity: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<UsageQuery, UsageQueryError> {
        UsageQuery::new(granularity, from, to, self.clock.now())
    }

    /// The key's series: a point for every bucket of `query`, oldest first.
    pub async fn series(&self, prefix: &KeyPrefix, query: &UsageQuery) -> Result<Vec<UsagePoint>, StoreError> {
        let counted = self.store.usage_buckets(prefix, query.granularity, query.from, query.to).await?;
        Ok(query.dense(&counted))
    }

    /// The key's totals over `[from, to)`, whole days (billing: a calendar month).
    pub async fn total(&self, prefix: &KeyPrefix, from: UnixTime, to: UnixTime) -> Result<Counts, StoreError> {
        let days = self.store.usage_buckets(prefix, Granularity::Day, from, to).await?;
        let mut total = Counts::default();
        for counts in days.into_values() {
            total += counts;
        }
        Ok(total)
    }

    /// Records the windows a batch of stream records showed (in stream order: the last
    /// reading of a window is its newest). Idempotent: a batch delivered again changes nothing.
    pub async fn roll_up(&self, readings: Vec<WindowCount>) -> Result<RolledUp, StoreError> {
        let mut newest: HashMap<(String, Option<String>, i64), WindowCount> = HashMap::new();
        for reading in readings {
            let id = (reading.key_hash.as_str().to_owned(), reading.source.clone(), reading.window_start.secs());
            newest.insert(id, reading);
        }
        let mut hashes: Vec<KeyHash> = newest.values().map(|w| w.key_hash.clone()).collect();
        hashes.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        hashes.dedup_by(|a, b| a.as_str() == b.as_str());
        let keys = self.store.keys_by_hash(&hashes).await?;
        let mut done = RolledUp::default();
        let mut writes = Vec::new();
        for window in newest.into_values() {
            match keys.get(window.key_hash.as_str()) {
                None => done.unknown += 1,
                Some(key) => {
                    let counts = Counts::of_window(window.count, key.tier.per_minute());
                    writes.push(async move { self.store.record_window(&key.prefix, &window, counts).await });
                }
            }
        }
        done.windows = writes.len();
        let mut results = futures::stream::iter(writes).buffer_unordered(CONCURRENT_WINDOWS);
        while let Some(result) = results.next().await {
            result?;
        }
        Ok(done)
    }
}
