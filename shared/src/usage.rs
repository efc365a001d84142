//! The usage service (API.md "Usage, events, metrics"). Counting stays where it was: the
//! request path's one counting write (`Store::count_request`: a secret key's month item, a
//! publishable key's per-IP minute window). The table's stream carries each counter's new
//! counts here, off the request path ([`Usage::roll_up`]:
//! the `usage-rollup` function deployed, `hatchctl serve` and the tests locally), and the
//! roll-up keeps per-minute, per-hour and per-day totals by outcome ([`Usage::series`]).

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;

use crate::domain::time::Clock;
use crate::domain::usage::{
    Counts, Granularity, LimitEvent, LimitEventKind, Span, UsagePoint, UsageQuery, UsageQueryError, WindowCount,
};
use crate::domain::{KeyHash, KeyPrefix, UnixTime};
use crate::store::{Claim, Store, StoreError};

/// A minute of one key (its prefix, the minute's start) and, for a publishable key, one bucket
/// of its source IPs: what one chain of roll-up writes records.
type MinuteOf = (String, i64, Option<String>);
/// Each window's member name and counts.
type Members = Vec<(String, Counts)>;

/// Write chains run at once (a minute's or an IP bucket's writes; a minute carried up).
const CONCURRENT_MINUTES: usize = 16;
/// How long a claim on an event's publication holds off other readers: far longer than a
/// `PutEvents` takes (5 s SDK timeout), so a claimant that failed or died is replaced soon.
const EVENT_LEASE_SECS: i64 = 30;

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
    /// Limit events published.
    pub events: usize,
}

/// Where limit events go: EventBridge deployed (`functions::usage_rollup`), a log line or a
/// test's bus locally.
pub trait EventSink {
    /// Publishes `events`; for each, whether it was delivered.
    fn publish(&self, events: &[LimitEvent]) -> impl std::future::Future<Output = Vec<bool>> + Send;
}

/// Limit events as log lines (the local API without a bus): delivered, as far as it goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSink;

impl EventSink for LogSink {
    async fn publish(&self, events: &[LimitEvent]) -> Vec<bool> {
        for event in events {
            tracing::info!(detail_type = event.kind.detail_type(), detail = %event.detail(), "limit event (no bus: logged)");
        }
        vec![true; events.len()]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RollUpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Some events did not reach the bus, or another reader still holds them: the batch must
    /// come again (they are published then, or found published).
    #[error("{0} limit events are not published yet")]
    Undelivered(usize),
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
    /// reading of a window is its newest), then publishes the limit events they raised, each
    /// once. Idempotent: a batch delivered again changes nothing and publishes nothing twice.
    pub async fn roll_up<S: EventSink>(&self, readings: Vec<WindowCount>, sink: &S) -> Result<RolledUp, RollUpError> {
        // A key's month and its first minute start at the same second: the span tells them apart.
        let mut newest: HashMap<(String, Option<String>, i64, Span), WindowCount> = HashMap::new();
        for reading in readings {
            let id = (
                reading.key_hash.as_str().to_owned(),
                reading.source.clone(),
                reading.window_start.secs(),
                reading.span,
            );
            newest.insert(id, reading);
        }
        let mut hashes: Vec<KeyHash> = newest.values().map(|w| w.key_hash.clone()).collect();
        hashes.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        hashes.dedup_by(|a, b| a.as_str() == b.as_str());
        let windows: Vec<&WindowCount> = newest.values().collect();
        let (keys, held) = futures::try_join!(self.store.keys_by_hash(&hashes), self.store.window_counts(&windows))?;
        for window in newest.values_mut() {
            let item = held.get(&crate::store::window_pk_of(window));
            if let Some((count, refused)) = item.and_then(|item| crate::store::held_in(window, item)) {
                (window.count, window.quota_refused) = (count, refused);
            }
        }
        let mut done = RolledUp::default();
        let mut raised = Vec::new();
        // One write chain per minute of a key (and, for a publishable key's per-IP windows, per
        // bucket of IPs), however many windows the batch holds.
        let mut minutes: BTreeMap<MinuteOf, (&KeyPrefix, Members)> = BTreeMap::new();
        for window in newest.into_values() {
            let Some(key) = keys.get(window.key_hash.as_str()) else {
                done.unknown += 1;
                continue;
            };
            done.windows += 1;
            let event = |kind, limit| LimitEvent {
                kind,
                key_prefix: key.prefix.clone(),
                customer_id: key.customer_id.clone(),
                environment: key.environment,
                tier: key.tier,
                limit,
                count: window.count,
                window_start: window.window_start,
                occurred_at: window.seen_at.unwrap_or_else(|| self.clock.now()),
            };
            if window.span == Span::Month {
                // A month counts no usage (its minutes do); it raises the quota's events, against
                // the quota the key holds now.
                let Some(quota) = key.monthly_quota else { continue };
                for kind in LimitEventKind::raised_by_month(window.count, window.quota_refused, quota) {
                    raised.push(event(kind, quota.get()));
                }
                continue;
            }
            let limit = key.tier.per_minute();
            // A key dead before the window began has its requests counted, then given back: a
            // reading in between is no event. One revoked or expired later was live then.
            let start = window.window_start;
            let live = key.revoked_at.is_none_or(|t| t > start) && key.expires_at.is_none_or(|t| t > start);
            for kind in LimitEventKind::raised(live && window.source.is_none(), window.count, limit) {
                raised.push(event(kind, u64::from(limit)));
            }
            let bucket = window.source.as_ref().map(|ip| ip.chars().take(2).collect::<String>());
            // 16 hex digits of the IP's digest name it within its bucket.
            let member = window.source.as_ref().map_or_else(|| "k".to_owned(), |ip| ip.chars().take(16).collect());
            let id = (key.prefix.as_str().to_owned(), window.window_start.secs(), bucket);
            minutes
                .entry(id)
                .or_insert_with(|| (&key.prefix, Vec::new()))
                .1
                .push((member, Counts::of_window(window.count, limit, window.quota_refused)));
        }
        let writes = minutes.into_iter().map(|((_, minute, bucket), (prefix, members))| async move {
            let written = self.store.record_minute(prefix, minute, bucket.as_deref(), &members).await?;
            Ok::<_, StoreError>(written.map(|total| (prefix, minute, total)))
        });
        // Each minute is carried up once, with the newest totals its bucket writes saw (a higher
        // version of the minute item holds every write before it).
        let mut newest_minutes: HashMap<(&str, i64), (&KeyPrefix, Counts, i64)> = HashMap::new();
        let mut results = futures::stream::iter(writes).buffer_unordered(CONCURRENT_MINUTES);
        while let Some(result) = results.next().await {
            if let Some((prefix, minute, (counts, version))) = result? {
                let entry = newest_minutes.entry((prefix.as_str(), minute)).or_insert((prefix, counts, version));
                if version > entry.2 {
                    *entry = (prefix, counts, version);
                }
            }
        }
        let carries = newest_minutes.into_iter().map(|((_, minute), (prefix, counts, version))| async move {
            self.store.carry_up(prefix, minute, counts, version).await
        });
        let mut results = futures::stream::iter(carries).buffer_unordered(CONCURRENT_MINUTES);
        while let Some(result) = results.next().await {
            result?;
        }
        done.events = self.publish(raised, sink).await?;
        Ok(done)
    }

    /// Claims each event (skipping those already published), publishes the claimed ones and
    /// marks those delivered; the number delivered.
    async fn publish<S: EventSink>(&self, raised: Vec<LimitEvent>, sink: &S) -> Result<usize, RollUpError> {
        let now = self.clock.now();
        let mut claimed = Vec::new();
        let mut undelivered = 0;
        for event in raised {
            let lease = now.plus_secs(EVENT_LEASE_SECS);
            match self.store.claim_event(&event.key_prefix, event.kind, event.window_start, now, lease).await? {
                Claim::Mine => claimed.push(event),
                Claim::Published => {}
                Claim::Held => undelivered += 1,
            }
        }
        let delivered = if claimed.is_empty() { Vec::new() } else { sink.publish(&claimed).await };
        for (event, ok) in claimed.iter().zip(delivered.iter().copied().chain(std::iter::repeat(false))) {
            if ok {
                self.store.mark_published(&event.key_prefix, event.kind, event.window_start).await?;
            } else {
                undelivered += 1;
            }
        }
        match undelivered {
            0 => Ok(claimed.len()),
            n => Err(RollUpError::Undelivered(n)),
        }
    }
}
