//! Usage roll-ups, written off the request path from the table's stream (`crate::usage`):
//! - `USE#<prefix>` / `M#<minute>`: a secret key's window (`a_k`, `r_k`; `q_k` once its quota
//!   refused one), or a publishable key's 256 IP buckets' totals (`a3f`, `r3f`, version `s3f`);
//! - `USE#<prefix>` / `M#<minute>#<bucket>`: a publishable key's per-IP windows whose digest
//!   starts with `<bucket>` (`a_<ip digest>`, `r_<…>`);
//! - `USE#<prefix>` / `H#<hour>`: the minute totals (`a00`…`a59`, `r00`…; `q00`… where a quota
//!   refused), kept a day;
//! - `USE#<prefix>` / `D#<day>`: the hour totals, kept 36 days;
//! - `USE#<prefix>` / `B#<64-day block>`: the day totals, kept 401 days past the block;
//! - `USE#<prefix>` / `E#<detail-type>#<window>`: a limit event's publication (`pending`,
//!   `published`), so each is published once and a failed publication is tried again.
//!
//! Stream records come at least once, and windows of one key arrive on different shards, so
//! every write is idempotent and ordered by version: a window's member is *set* to its newest
//! count; each item counts its writes (`v`); a total is written one level up only over an
//! older version of the item below (`s<nn>`), so a late writer never puts an older total back.
//! A total reads one item (`ReturnValues`), whatever the traffic: the stream is the only
//! writer; a level item holds at most 256 slots, a bucket item its share of a minute's IPs.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::{
    Item, Mark, Store, StoreError, WRITTEN_MINUTE, classify, is_condition_failure, key_window_pk, minute_of_month,
    month_pk, n, partition, s,
};
use crate::domain::quota::Month;
use crate::domain::ratelimit::WINDOW_SECS;
use crate::domain::usage::{Counts, Granularity, LimitEventKind, Span, WindowCount};
use crate::domain::{KeyHash, KeyPrefix, UnixTime};

/// One level of the roll-up: items of `span` seconds holding totals of `slot` seconds.
struct Level {
    tag: &'static str,
    span: i64,
    slot: i64,
    /// How long past its end an item is kept (TTL).
    keep: i64,
}

/// Kept past the stream's 24 h like the minute items, so a late record finds its hour.
const HOURS: Level = Level { tag: "H", span: 3_600, slot: 60, keep: 25 * 3_600 };
const DAYS: Level = Level { tag: "D", span: 86_400, slot: 3_600, keep: 36 * 86_400 };
const BLOCKS: Level = Level { tag: "B", span: 64 * 86_400, slot: 86_400, keep: 401 * 86_400 };
/// A minute item gathers its windows while stream records for them may still come: past the
/// stream's 24-hour retention. (Were it gone, a late record would start it again at version
/// 1, below the version its hour slot holds, and change nothing.)
const MINUTE_KEEP_SECS: i64 = 25 * 3_600;
/// Members set per `UpdateItem` (two names and two values each: far inside DynamoDB's limits
/// on an expression).
const MEMBERS_PER_UPDATE: usize = 40;

impl Level {
    fn start_of(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.span)
    }

    fn sort_key(&self, start: i64) -> String {
        format!("{}#{:012}", self.tag, start.max(0))
    }

    /// The level whose members are buckets of `granularity`.
    fn holding(granularity: Granularity) -> &'static Level {
        match granularity {
            Granularity::Minute => &HOURS,
            Granularity::Hour => &DAYS,
            Granularity::Day => &BLOCKS,
        }
    }
}

/// What [`Store::claim_event`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours to publish (then [`Store::mark_published`]).
    Mine,
    /// Published already: nothing to do.
    Published,
    /// Another claimant's, still in its lease: not published yet, so not done either.
    Held,
}

/// Event markers outlive the stream's 24-hour retention past their window (a minute, or a
/// month of at most 31 days): no record can claim them again.
fn event_marker_keep_secs(kind: LimitEventKind) -> i64 {
    match kind {
        LimitEventKind::NearRateLimit | LimitEventKind::RateLimited => 2 * 86_400,
        LimitEventKind::QuotaNear | LimitEventKind::QuotaExhausted => 33 * 86_400,
    }
}

/// `E#<detail-type>#<window>`: one event of one window (sorts apart from the roll-up items).
fn event_sort_key(kind: LimitEventKind, window: UnixTime) -> String {
    format!("E#{}#{:012}", kind.detail_type(), window.secs().max(0))
}

fn usage_pk(prefix: &KeyPrefix) -> String {
    format!("{}{}", partition::USAGE, prefix.as_str())
}

/// A stream record's numbers: its item's number attributes by name.
pub type Numbers = HashMap<String, i64>;

/// The windows a stream record's item shows, if it is a key's counter (anonymous per-IP
/// windows and every other item are not usage). Inverse of `month_pk` and `key_window_pk` in
/// `store/counting.rs`.
/// - A key's month item `RL#Q#…`: the month (`count`, `q`) and, for a secret key, the minute
///   the write changed (`w`; its marks `m<w>`, `q<w>`). A sweep changes no minute: its record
///   shows the minute the write before it changed, again, which changes nothing.
/// - A publishable key's window `RL#KIP#…`: that minute from that IP (`count`, `q`).
pub fn windows_of(pk: &str, numbers: &Numbers, seen_at: Option<UnixTime>) -> Vec<WindowCount> {
    windows_in(pk, numbers, seen_at).unwrap_or_default()
}

fn windows_in(pk: &str, numbers: &Numbers, seen_at: Option<UnixTime>) -> Option<Vec<WindowCount>> {
    let rest = pk.strip_prefix(partition::RATE_WINDOW)?;
    let get = |name: &str| numbers.get(name).map(|n| u64::try_from((*n).max(0)).unwrap_or(0));
    let window = |key_hash: &KeyHash, source, start, span, count, quota_refused| WindowCount {
        key_hash: key_hash.clone(),
        source,
        window_start: start,
        span,
        count,
        quota_refused,
        seen_at,
    };
    if let Some(rest) = rest.strip_prefix("Q#") {
        let (hash, start) = rest.split_once('#')?;
        let (hash, start) = (KeyHash::from_stored(hash)?, UnixTime::from_secs(start.parse::<i64>().ok()?));
        let month = Month::of(start);
        if month.start != start {
            return None;
        }
        let mut windows = vec![window(&hash, None, start, Span::Month, get("count")?, get("q").unwrap_or(0))];
        if let Some(i) = numbers.get(WRITTEN_MINUTE).copied()
            && let Some(count) = get(&Mark::Count(i).name())
        {
            let refused = get(&Mark::QuotaRefused(i).name()).unwrap_or(0);
            windows.push(window(&hash, None, start.plus_secs(i * WINDOW_SECS), Span::Minute, count, refused));
        }
        return Some(windows);
    }
    let mut parts = rest.strip_prefix("KIP#")?.split('#');
    let (hash, ip, start) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || ip.len() < 16 || !ip.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let start = start.parse::<i64>().ok().filter(|s| s.rem_euclid(WINDOW_SECS) == 0)?;
    let hash = KeyHash::from_stored(hash)?;
    let (count, refused) = (get("count")?, get("q").unwrap_or(0));
    Some(vec![window(&hash, Some(ip.to_owned()), UnixTime::from_secs(start), Span::Minute, count, refused)])
}

/// The item a window's counts are read back from (`windows_of`'s inverse).
pub fn window_pk_of(window: &WindowCount) -> String {
    match (&window.source, window.span) {
        (Some(ip), Span::Minute) => key_window_pk(&window.key_hash, ip, window.window_start.secs()),
        _ => month_pk(&window.key_hash, Month::of(window.window_start)),
    }
}

/// A window's counts as its item holds them now, if it still holds them (a minute's marks go
/// two minutes on, an item at its TTL).
pub fn held_in(window: &WindowCount, item: &Numbers) -> Option<(u64, u64)> {
    let get = |name: &str| item.get(name).map(|n| u64::try_from((*n).max(0)).unwrap_or(0));
    match (&window.source, window.span) {
        (None, Span::Minute) => {
            let i = minute_of_month(Month::of(window.window_start), window.window_start);
            Some((get(&Mark::Count(i).name())?, get(&Mark::QuotaRefused(i).name()).unwrap_or(0)))
        }
        _ => Some((get("count")?, get("q").unwrap_or(0))),
    }
}

/// Sums the `a…` and `r…` members of a usage item.
fn totals(item: &HashMap<String, AttributeValue>) -> Counts {
    let mut counts = Counts::default();
    for (name, value) in item {
        let number = value.as_n().ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match name.as_bytes().first() {
            Some(b'a') => counts.accepted += number,
            Some(b'r') => counts.rate_limited += number,
            Some(b'q') => counts.quota_exceeded += number,
            _ => {}
        }
    }
    counts
}

fn version_of(item: &HashMap<String, AttributeValue>) -> i64 {
    item.get("v").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

impl Store {
    /// The items the windows are counted in as they are now (consistent batch reads of 100):
    /// their number attributes, by partition key. The stream says which windows changed, the
    /// table what they hold. Its records of one item are in order on DynamoDB, but an emulator
    /// may append them out of order, and a reading taken from the table is right either way.
    /// An item already gone (its TTL) is absent.
    pub async fn window_counts(&self, windows: &[&WindowCount]) -> Result<HashMap<String, Numbers>, StoreError> {
        let mut pks: Vec<String> = windows.iter().map(|w| window_pk_of(w)).collect();
        pks.sort_unstable();
        pks.dedup();
        let keys: Vec<Item> =
            pks.into_iter().map(|pk| HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s("RL"))])).collect();
        let mut items = HashMap::new();
        for item in self.batch_get_consistent("window_counts", keys).await? {
            let pk = item.get("pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let numbers =
                item.iter().filter_map(|(name, v)| Some((name.clone(), v.as_n().ok()?.parse::<i64>().ok()?))).collect();
            items.insert(pk, numbers);
        }
        Ok(items)
    }

    /// Records the newest counts of windows of one minute of `prefix`; the minute item's totals
    /// and version after it, or `None` when a newer total of this bucket was already there (its
    /// writer carries the minute up). `bucket` is `None` for a secret key's one window (member
    /// `k`, in the minute item itself); for a publishable key's per-IP windows it is the first
    /// two hex digits of their IPs' digests: the members go to that bucket's item (at most 256
    /// per minute), whose total becomes a versioned slot of the minute item, so no item grows
    /// with the number of visitors a site has.
    pub async fn record_minute(
        &self,
        prefix: &KeyPrefix,
        minute: i64,
        bucket: Option<&str>,
        members: &[(String, Counts)],
    ) -> Result<Option<(Counts, i64)>, StoreError> {
        if members.is_empty() {
            return Ok(None);
        }
        let pk = usage_pk(prefix);
        let minute_sk = format!("M#{:012}", minute.max(0));
        let keep = minute + 60 + MINUTE_KEEP_SECS;
        match bucket {
            None => Ok(Some(self.set_members(&pk, &minute_sk, members, keep).await?)),
            Some(bucket) => {
                let (total, version) = self.set_members(&pk, &format!("{minute_sk}#{bucket}"), members, keep).await?;
                self.put_slot(&pk, &minute_sk, bucket, total, version, keep).await
            }
        }
    }

    /// Carries a minute's totals (as of the minute item's `version`) up the hour, day and block
    /// items: once per minute and batch, with the newest version the batch wrote.
    pub async fn carry_up(
        &self,
        prefix: &KeyPrefix,
        minute: i64,
        counts: Counts,
        version: i64,
    ) -> Result<(), StoreError> {
        let pk = usage_pk(prefix);
        let (mut below, mut below_start, mut below_version) = (counts, minute, version);
        for level in [&HOURS, &DAYS, &BLOCKS] {
            let start = level.start_of(below_start);
            let slot = format!("{:02}", (below_start - start) / level.slot);
            let keep = start + level.span + level.keep;
            match self.put_slot(&pk, &level.sort_key(start), &slot, below, below_version, keep).await? {
                Some((total, version)) => (below, below_start, below_version) = (total, start, version),
                // A newer total of that slot is already there: its writer carries it up.
                None => break,
            }
        }
        Ok(())
    }

    /// Sets each member's counts (`a_<member>`, `r_<member>`) on one item, a few dozen per
    /// `UpdateItem`; the item's totals and version after the last.
    async fn set_members(
        &self,
        pk: &str,
        sk: &str,
        members: &[(String, Counts)],
        ttl: i64,
    ) -> Result<(Counts, i64), StoreError> {
        let mut item = HashMap::new();
        for chunk in members.chunks(MEMBERS_PER_UPDATE) {
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_names("#v", "v")
                .expression_attribute_values(":ttl", n(ttl))
                .expression_attribute_values(":one", n(1));
            let mut sets = vec!["#ttl = :ttl".to_owned()];
            for (i, (member, counts)) in chunk.iter().enumerate() {
                sets.push(format!("#a{i} = :a{i}, #r{i} = :r{i}"));
                update = update
                    .expression_attribute_names(format!("#a{i}"), format!("a_{member}"))
                    .expression_attribute_names(format!("#r{i}"), format!("r_{member}"))
                    .expression_attribute_values(format!(":a{i}"), n(counts.accepted as i64))
                    .expression_attribute_values(format!(":r{i}"), n(counts.rate_limited as i64));
                // Only where the quota refused something (a count only grows, so a member that
                // has one keeps it): keys without quotas keep their items as they were.
                if counts.quota_exceeded > 0 {
                    sets.push(format!("#q{i} = :q{i}"));
                    update = update
                        .expression_attribute_names(format!("#q{i}"), format!("q_{member}"))
                        .expression_attribute_values(format!(":q{i}"), n(counts.quota_exceeded as i64));
                }
            }
            let out = update
                .update_expression(format!("SET {} ADD #v :one", sets.join(", ")))
                .return_values(ReturnValue::AllNew)
                .send()
                .await
                .map_err(|e| classify("record_window", e))?;
            item = out.attributes.unwrap_or_default();
        }
        Ok((totals(&item), version_of(&item)))
    }

    /// Sets slot `slot` of a roll-up item to `counts` unless a newer version is there; the
    /// item's new totals and version, or `None` when it was newer.
    async fn put_slot(
        &self,
        pk: &str,
        sk: &str,
        slot: &str,
        counts: Counts,
        version: i64,
        ttl: i64,
    ) -> Result<Option<(Counts, i64)>, StoreError> {
        let mut update = self.client.update_item();
        update = match counts.quota_exceeded {
            0 => update.update_expression("SET #a = :a, #r = :r, #s = :s, #ttl = :ttl ADD #v :one"),
            refused => update
                .update_expression("SET #a = :a, #r = :r, #q = :q, #s = :s, #ttl = :ttl ADD #v :one")
                .expression_attribute_names("#q", format!("q{slot}"))
                .expression_attribute_values(":q", n(refused as i64)),
        };
        let out = update
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .condition_expression("attribute_not_exists(#s) OR #s < :s")
            .expression_attribute_names("#a", format!("a{slot}"))
            .expression_attribute_names("#r", format!("r{slot}"))
            .expression_attribute_names("#s", format!("s{slot}"))
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#v", "v")
            .expression_attribute_values(":a", n(counts.accepted as i64))
            .expression_attribute_values(":r", n(counts.rate_limited as i64))
            .expression_attribute_values(":s", n(version))
            .expression_attribute_values(":ttl", n(ttl))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                Ok(Some((totals(&item), version_of(&item))))
            }
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(classify("record_window", e)),
        }
    }

    /// Claims the publication of a window's event until `lease_until`: one claimant at a time
    /// (whatever reads the stream, however often), and a claim whose publisher failed or
    /// vanished is claimed again once its lease ends, so an event is never lost.
    pub async fn claim_event(
        &self,
        prefix: &KeyPrefix,
        kind: LimitEventKind,
        window: UnixTime,
        now: UnixTime,
        lease_until: UnixTime,
    ) -> Result<Claim, StoreError> {
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(usage_pk(prefix)))
            .key("sk", s(event_sort_key(kind, window)))
            .update_expression("SET #st = :pending, #lease = :until, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#st) OR (#st = :pending AND #lease < :now)")
            .expression_attribute_names("#st", "state")
            .expression_attribute_names("#lease", "lease_until")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":until", n(lease_until.secs()))
            .expression_attribute_values(":now", n(now.secs()))
            .expression_attribute_values(":ttl", n(window.secs() + event_marker_keep_secs(kind)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(Claim::Mine),
            Err(e) if is_condition_failure(&e) => {
                // The item as the condition found it (`ALL_OLD`): no read, no grant beyond the write.
                let state = match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                        failed.item().and_then(|i| i.get("state")).and_then(|v| v.as_s().ok()).cloned()
                    }
                    _ => None,
                };
                Ok(if state.as_deref() == Some("published") { Claim::Published } else { Claim::Held })
            }
            Err(e) => Err(classify("claim_event", e)),
        }
    }

    /// Records that a claimed event reached EventBridge.
    pub async fn mark_published(
        &self,
        prefix: &KeyPrefix,
        kind: LimitEventKind,
        window: UnixTime,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(usage_pk(prefix)))
            .key("sk", s(event_sort_key(kind, window)))
            .update_expression("SET #st = :published")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":published", s("published"))
            .send()
            .await
            .map_err(|e| classify("mark_published", e))?;
        Ok(())
    }

    /// Every bucket of `granularity` in `[from, to)` that counted something, by start.
    pub async fn usage_buckets(
        &self,
        prefix: &KeyPrefix,
        granularity: Granularity,
        from: UnixTime,
        to: UnixTime,
    ) -> Result<BTreeMap<i64, Counts>, StoreError> {
        let level = Level::holding(granularity);
        let first = level.sort_key(level.start_of(from.secs()));
        let last = level.sort_key(level.start_of(to.secs() - 1));
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
            .expression_attribute_values(":pk", s(usage_pk(prefix)))
            .expression_attribute_values(":first", s(first))
            .expression_attribute_values(":last", s(last))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut buckets = BTreeMap::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| classify("usage_buckets", e))?;
            let Some(start) = item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .and_then(|sk| sk.split_once('#'))
                .and_then(|(_, start)| start.parse::<i64>().ok())
            else {
                continue;
            };
            for (name, value) in &item {
                let (kind, slot) = name.split_at(1.min(name.len()));
                let Ok(slot) = slot.parse::<i64>() else { continue };
                let number = value.as_n().ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                let bucket = start + slot * level.slot;
                if bucket < from.secs() || bucket >= to.secs() {
                    continue;
                }
                let counts: &mut Counts = buckets.entry(bucket).or_default();
                match kind {
                    "a" => counts.accepted += number,
                    "r" => counts.rate_limited += number,
                    "q" => counts.quota_exceeded += number,
                    _ => {}
                }
            }
        }
        Ok(buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn numbers(pairs: &[(&str, i64)]) -> Numbers {
        pairs.iter().map(|(name, n)| ((*name).to_owned(), *n)).collect()
    }

    #[test]
    fn a_publishable_keys_window_is_read_back_from_its_partition_key() {
        let ip = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let pk = format!("RL#KIP#{HASH}#{ip}#1764684000");
        let w = windows_of(&pk, &numbers(&[("count", 3), ("q", 1), ("ttl", 9)]), None);
        assert_eq!(w.len(), 1);
        let w = &w[0];
        assert_eq!((w.key_hash.as_str(), w.source.as_deref(), w.window_start.secs()), (HASH, Some(ip), 1764684000));
        assert_eq!((w.span, w.count, w.quota_refused), (Span::Minute, 3, 1));
        assert_eq!(window_pk_of(w), pk);
        assert_eq!(held_in(w, &numbers(&[("count", 5)])), Some((5, 0)));
        assert_eq!(windows_of(&pk, &numbers(&[("count", -1)]), None)[0].count, 0);
    }

    #[test]
    fn a_month_item_shows_its_month_and_the_minute_its_write_changed() {
        // 2025-12-01T00:00:00Z; minutes 10 (stale), 40 and 41; the write changed minute 40 (a
        // request counted at its end refused after minute 41 began).
        let pk = format!("RL#Q#{HASH}#1764547200");
        let item = numbers(&[("count", 150), ("q", 2), ("m10", 4), ("m40", 7), ("q40", 2), ("m41", 1), ("w", 40)]);
        let w = windows_of(&pk, &item, None);
        let seen: Vec<_> = w.iter().map(|w| (w.span, w.window_start.secs(), w.count, w.quota_refused)).collect();
        assert_eq!(seen, [(Span::Month, 1764547200, 150, 2), (Span::Minute, 1764547200 + 40 * 60, 7, 2)]);
        assert!(w.iter().all(|w| window_pk_of(w) == pk && w.source.is_none()));
        // Read back: the minute's marks while they last, then nothing (the stream's reading stays).
        assert_eq!(held_in(&w[1], &item), Some((7, 2)));
        assert_eq!(held_in(&w[1], &numbers(&[("count", 151), ("m42", 1)])), None);
        assert_eq!(held_in(&w[0], &numbers(&[("count", 151)])), Some((151, 0)));
        // A publishable key's month (no marks, no `w`): the month alone.
        assert_eq!(windows_of(&pk, &numbers(&[("count", 3)]), None).len(), 1);
        // A `w` whose marks are gone (swept): the month alone.
        assert_eq!(windows_of(&pk, &numbers(&[("count", 1), ("w", 3)]), None).len(), 1);
    }

    #[test]
    fn nothing_else_is_a_window() {
        let ip = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        for other in [
            format!("RL#IP#{HASH}#1764684000"),
            format!("RL#K#{HASH}#1764684000"),
            format!("RL#KIP#{HASH}#{ip}#1764684001"),
            format!("RL#KIP#{HASH}#1764684000"),
            format!("RL#KIP#{HASH}#xyz#1764684000"),
            format!("KEY#{HASH}"),
            "USE#hk_x#M".to_owned(),
            format!("RL#Q#{HASH}#1764684000"),
            format!("RL#Q#{HASH}"),
            "RL#Q#nothex#1764547200".to_owned(),
        ] {
            assert_eq!(windows_of(&other, &numbers(&[("count", 1), ("m1", 1)]), None), [], "{other}");
        }
        assert_eq!(windows_of(&format!("RL#Q#{HASH}#1764547200"), &numbers(&[("m1", 1)]), None), [], "no count");
    }

    #[test]
    fn each_granularity_is_read_from_the_level_holding_it() {
        assert_eq!(Level::holding(Granularity::Minute).slot, Granularity::Minute.secs());
        assert_eq!(Level::holding(Granularity::Hour).slot, Granularity::Hour.secs());
        assert_eq!(Level::holding(Granularity::Day).slot, Granularity::Day.secs());
        // Members are two digits: a level never holds more than 100 slots.
        for level in [&HOURS, &DAYS, &BLOCKS] {
            assert!(level.span / level.slot <= 100 && level.span % level.slot == 0);
        }
        // Each level is kept at least as long as API.md promises its granularity.
        for g in [Granularity::Minute, Granularity::Hour, Granularity::Day] {
            assert!(Level::holding(g).keep >= g.retention_secs());
        }
        assert_eq!(HOURS.sort_key(3_600), "H#000000003600");
    }

    #[test]
    fn totals_sum_every_member_of_each_kind() {
        let item = HashMap::from([
            ("a_k".to_owned(), AttributeValue::N("5".into())),
            ("a_0123456789abcdef".to_owned(), AttributeValue::N("2".into())),
            ("r_k".to_owned(), AttributeValue::N("1".into())),
            ("q_k".to_owned(), AttributeValue::N("3".into())),
            ("s00".to_owned(), AttributeValue::N("9".into())),
            ("v".to_owned(), AttributeValue::N("4".into())),
            ("ttl".to_owned(), AttributeValue::N("99".into())),
            ("pk".to_owned(), AttributeValue::S("USE#x".into())),
        ]);
        assert_eq!(totals(&item), Counts { accepted: 7, rate_limited: 1, quota_exceeded: 3 });
        assert_eq!(version_of(&item), 4);
    }
}
