//! The counting write every keyed request makes (API.md "Counting"), and its give-backs.
//!
//! - A secret key is counted in one item per key and month, `RL#Q#<hash>#<month start>`:
//!   `ADD count :1, m<i> :1` returns the month's count (its quota) and minute `i`'s (its rate
//!   limit) from one write. An update expression cannot reset a counter when a minute turns,
//!   so each minute has its own attribute: `m<i>`, `i` the minute of the month. The write also
//!   sets `w` to the minute it changed (the usage roll-up reads that minute from the stream
//!   record's image, and only that one), and removes minute `i - 2`'s marks (the previous
//!   minute stays, for a request still in flight across the turn).
//! - A silence leaves the last busy minute's marks behind. The write returns the whole item, so
//!   the instance sees them and removes them with its next counting write to that item: no
//!   write of their own. Should 32 gather anyway (each request served by a new instance), the
//!   minute's first request removes them with one more write, whatever its verdict, beside its
//!   other bookkeeping (`Auth::check`).
//! - A publishable key is counted per key and source IP and minute,
//!   `RL#KIP#<hash>#<ip digest>#<minute start>`, so one visitor cannot spend the others' minute;
//!   that item cannot carry the month, so a key with a quota also counts its month item.
//! - A source IP without a usable key: `RL#IP#<ip digest>#<minute start>`.
//!
//! `ADD` is atomic and returns the new value, so concurrent requests see distinct counts.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{Store, StoreError, classify, internal, n, partition, s};
use crate::domain::quota::Month;
use crate::domain::ratelimit::{Counted, window_expiry, window_start};
use crate::domain::{KeyHash, UnixTime};

/// Stale minute marks a month item may gather before a request sweeps them with a write of
/// its own: the item then holds about 350 bytes (348 measured, by names and digits), far under
/// the 1 KB one write unit covers.
pub const STALE_MARKS_SWEPT_AT: usize = 32;

/// The most stale marks one write removes: its expression stays far under DynamoDB's 4 KB.
const MARKS_PER_WRITE: usize = 64;

/// Month items whose stale marks this instance saw: removed by its next counting write to the
/// same item. Bounded, so a flood of keys cannot grow it; a mark it forgets is swept later.
#[derive(Debug, Default)]
pub struct StaleMarks(std::sync::Mutex<HashMap<String, Vec<String>>>);

const STALE_MARKS_ITEMS: usize = 10_000;

impl StaleMarks {
    fn take(&self, pk: &str) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(pk).unwrap_or_default()
    }

    fn note(&self, pk: &str, marks: Vec<String>) {
        let mut items = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if marks.is_empty() {
            items.remove(pk);
            return;
        }
        // Full (a flood of keys, or months gone by): start again. A mark forgotten is swept by
        // a minute's first request once 32 have gathered.
        if items.len() >= STALE_MARKS_ITEMS && !items.contains_key(pk) {
            items.clear();
        }
        items.insert(pk.to_owned(), marks);
    }
}

/// The month item's attribute naming the minute whose marks its last write changed.
pub const WRITTEN_MINUTE: &str = "w";

/// What a counting write returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tally {
    /// The minute's count, this request included.
    pub minute: u64,
    /// The month's count, this request included: counted by the same write for a secret key,
    /// `None` for a publishable key (its month is counted apart), an anonymous IP, or a secret
    /// key counted in its minute only ([`Store::count_key_minute`]).
    pub month: Option<u64>,
    /// Stale minute marks for [`Store::sweep_marks`], told to a minute's first request once
    /// [`STALE_MARKS_SWEPT_AT`] have gathered (the instance had not seen them to remove them).
    pub sweep: Vec<String>,
}

/// A minute's mark on a month item: its count (`m<i>`) or its quota refusals (`q<i>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Count(i64),
    QuotaRefused(i64),
}

impl Mark {
    pub fn name(self) -> String {
        match self {
            Mark::Count(i) => format!("m{i}"),
            Mark::QuotaRefused(i) => format!("q{i}"),
        }
    }

    /// The mark an attribute name is, if any (`count`, `q`, `ttl`, `pk`... are not).
    pub fn parse(name: &str) -> Option<Mark> {
        let (kind, digits) = name.split_at_checked(1)?;
        if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let i = digits.parse().ok()?;
        match kind {
            "m" => Some(Mark::Count(i)),
            "q" => Some(Mark::QuotaRefused(i)),
            _ => None,
        }
    }

    pub fn minute(self) -> i64 {
        match self {
            Mark::Count(i) | Mark::QuotaRefused(i) => i,
        }
    }
}

/// The minute of its month `t` falls in, from 0.
pub fn minute_of_month(month: Month, t: UnixTime) -> i64 {
    (t.secs() - month.start.secs()).div_euclid(60)
}

/// A key's month item: `RL#Q#<hash>#<month start>` (a rate window's partition, so the grants
/// that count a request count its month; the usage roll-up reads it back: `usage::windows_of`).
pub(crate) fn month_pk(hash: &KeyHash, month: Month) -> String {
    format!("{}Q#{}#{}", partition::RATE_WINDOW, hash.as_str(), month.start.secs())
}

/// A month's item is kept past the stream's 24 hours after its month, so the roll-up of its
/// last records still finds it.
fn month_expiry(month: Month) -> UnixTime {
    month.end.plus_secs(2 * 86_400)
}

/// A minute window's partition: a publishable key's per source IP, or an anonymous IP's.
fn window_pk(counted: &Counted<'_>, now: UnixTime) -> Option<String> {
    let start = window_start(now).secs();
    match counted {
        Counted::Key(_) => None,
        Counted::KeyFromIp(hash, ip) => Some(key_window_pk(hash, &ip_digest(ip), start)),
        Counted::Ip(ip) => Some(format!("{}IP#{}#{start}", partition::RATE_WINDOW, ip_digest(ip))),
    }
}

/// A publishable key's window: `RL#KIP#<hash>#<ip digest>#<start>` (the usage roll-up reads
/// these back: `usage::windows_of`).
pub(crate) fn key_window_pk(hash: &KeyHash, ip_digest: &str, start: i64) -> String {
    format!("{}KIP#{}#{ip_digest}#{start}", partition::RATE_WINDOW, hash.as_str())
}

/// IPs are not validated ids: hashed, so arbitrary text never shapes a key.
fn ip_digest(ip: &str) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(crate::domain::ratelimit::ip_bucket(ip).as_bytes()))
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok())
}

/// The marks of minutes before `minute - 1` on a month item, oldest first: no request changes
/// them again (a give-back follows its count within the function's 10 s timeout).
fn stale_marks(item: &HashMap<String, AttributeValue>, minute: i64) -> Vec<String> {
    let mut stale: Vec<Mark> =
        item.keys().filter_map(|name| Mark::parse(name)).filter(|m| m.minute() < minute - 1).collect();
    stale.sort_unstable_by_key(|m| (m.minute(), m.name()));
    stale.into_iter().map(Mark::name).collect()
}

impl Store {
    /// Counts one request: a secret key's minute and month in its month item, anything else
    /// in its minute window.
    pub async fn count_request(&self, counted: &Counted<'_>, now: UnixTime) -> Result<Tally, StoreError> {
        match (counted, window_pk(counted, now)) {
            (Counted::Key(hash), _) => self.count_in_month(hash, now, true).await,
            (_, Some(pk)) => {
                let minute = self.add_to_counter(pk, window_expiry(now), 1, 0).await?;
                Ok(Tally { minute, ..Tally::default() })
            }
            (_, None) => Err(internal("count_request", "a window without a partition")),
        }
    }

    /// Counts a request of a secret key in its minute only (`ADD m<i> :1`, no month): for a key
    /// this instance has seen over its minute limit, whose refusals then cost one write each
    /// instead of a count and a give-back. A request its minute then admits counts its month
    /// with [`Store::count_month`].
    pub async fn count_key_minute(&self, hash: &KeyHash, now: UnixTime) -> Result<Tally, StoreError> {
        self.count_in_month(hash, now, false).await
    }

    /// `ADD count :1, m<i> :1 SET w = :i REMOVE m<i-2>, q<i-2>, <stale marks seen before>` on a
    /// secret key's month item (without `count` when `with_month` is false).
    async fn count_in_month(&self, hash: &KeyHash, now: UnixTime, with_month: bool) -> Result<Tally, StoreError> {
        let month = Month::of(now);
        let minute = minute_of_month(month, now);
        let pk = month_pk(hash, month);
        let mut removed: Vec<String> = match minute >= 2 {
            true => vec![Mark::Count(minute - 2).name(), Mark::QuotaRefused(minute - 2).name()],
            false => Vec::new(),
        };
        // Marks seen stale then are stale now, unless the clock went back: checked again, as a
        // path both added and removed fails the write.
        let seen: Vec<String> = self
            .stale_marks
            .take(&pk)
            .into_iter()
            .filter(|name| Mark::parse(name).is_some_and(|m| m.minute() < minute - 2))
            .take(MARKS_PER_WRITE)
            .collect();
        removed.extend(seen);
        let placeholders: Vec<String> = (0..removed.len()).map(|i| format!("#r{i}")).collect();
        let added = if with_month { "#count :one, #m :one" } else { "#m :one" };
        let mut expression = format!("ADD {added} SET #ttl = if_not_exists(#ttl, :ttl), #w = :w");
        if !removed.is_empty() {
            expression = format!("{expression} REMOVE {}", placeholders.join(", "));
        }
        let mut update = self
            .month_update(hash, month, minute)
            .update_expression(expression)
            .expression_attribute_names("#m", Mark::Count(minute).name())
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew);
        if with_month {
            update = update.expression_attribute_names("#count", "count");
        }
        for (placeholder, name) in placeholders.iter().zip(&removed) {
            update = update.expression_attribute_names(placeholder, name);
        }
        let out = update.send().await.map_err(|e| classify("count_request", e))?;
        let item = out.attributes.unwrap_or_default();
        let count = |name: &str| number(&item, name).map(|c| c.max(0) as u64);
        let Some(minute_count) = count(&Mark::Count(minute).name()) else {
            return Err(internal("count_request", "no count returned"));
        };
        let month_count = match with_month {
            true => Some(count("count").ok_or_else(|| internal("count_request", "no count returned"))?),
            false => None,
        };
        let mut stale = stale_marks(&item, minute);
        let mut sweep = Vec::new();
        // Only the minute's first request sweeps: a burst sees the same marks in every answer.
        if stale.len() >= STALE_MARKS_SWEPT_AT && minute_count == 1 {
            sweep = stale.drain(..stale.len().min(MARKS_PER_WRITE)).collect();
        }
        self.stale_marks.note(&pk, stale);
        Ok(Tally { minute: minute_count, month: month_count, sweep })
    }

    /// Gives back a count taken by [`Store::count_request`] (a request the key refused): a
    /// secret key's minute and month, anything else its minute.
    pub async fn uncount_request(&self, counted: &Counted<'_>, now: UnixTime) -> Result<(), StoreError> {
        match (counted, window_pk(counted, now)) {
            (Counted::Key(hash), _) => {
                let month = Month::of(now);
                let minute = minute_of_month(month, now);
                self.month_update(hash, month, minute)
                    .update_expression("ADD #count :minus, #m :minus SET #ttl = if_not_exists(#ttl, :ttl), #w = :w")
                    .expression_attribute_names("#count", "count")
                    .expression_attribute_names("#m", Mark::Count(minute).name())
                    .expression_attribute_values(":minus", n(-1))
                    .send()
                    .await
                    .map_err(|e| classify("uncount_request", e))?;
                Ok(())
            }
            (_, Some(pk)) => self.add_to_counter(pk, window_expiry(now), -1, 0).await.map(|_| ()),
            (_, None) => Err(internal("uncount_request", "a window without a partition")),
        }
    }

    /// Counts one request in its key's month: a publishable key's with a quota, or a secret
    /// key's counted in its minute only; the month's new count.
    pub async fn count_month(&self, hash: &KeyHash, month: Month) -> Result<u64, StoreError> {
        self.add_to_counter(month_pk(hash, month), month_expiry(month), 1, 0).await
    }

    /// Gives back a month's count (a request refused before its quota, or by its minute limit),
    /// leaving its minute counted.
    pub async fn uncount_month(&self, hash: &KeyHash, month: Month) -> Result<u64, StoreError> {
        self.add_to_counter(month_pk(hash, month), month_expiry(month), -1, 0).await
    }

    /// A request refused by its key's monthly quota: its month count is given back (so a raised
    /// quota frees exactly the difference) and the refusal noted on the month (`q`), for the
    /// `apikey.quota_exhausted` event, and on the minute it stays counted in, for usage: one
    /// write for a secret key (`q<i>` on the same item), two for a publishable key.
    pub async fn refuse_for_quota(
        &self,
        counted: &Counted<'_>,
        hash: &KeyHash,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let month = Month::of(now);
        match window_pk(counted, now) {
            None => {
                let minute = minute_of_month(month, now);
                self.month_update(hash, month, minute)
                    .update_expression(
                        "ADD #count :minus, #q :one, #qm :one SET #ttl = if_not_exists(#ttl, :ttl), #w = :w",
                    )
                    .expression_attribute_names("#count", "count")
                    .expression_attribute_names("#q", "q")
                    .expression_attribute_names("#qm", Mark::QuotaRefused(minute).name())
                    .expression_attribute_values(":minus", n(-1))
                    .expression_attribute_values(":one", n(1))
                    .send()
                    .await
                    .map_err(|e| classify("refuse_for_quota", e))?;
                Ok(())
            }
            Some(pk) => {
                let (minute, month) = futures::join!(
                    self.add_to_counter(pk, window_expiry(now), 0, 1),
                    self.add_to_counter(month_pk(hash, month), month_expiry(month), -1, 1),
                );
                minute.and(month).map(|_| ())
            }
        }
    }

    /// Removes stale minute marks a counting write told of ([`Tally::sweep`]) from the key's
    /// month item: idempotent, and never the current or previous minute's. Marks it could not
    /// remove are remembered for the next counting write.
    pub async fn sweep_marks(&self, hash: &KeyHash, at: UnixTime, marks: &[String]) -> Result<(), StoreError> {
        if marks.is_empty() {
            return Ok(());
        }
        let pk = month_pk(hash, Month::of(at));
        let swept = self.remove_marks(&pk, marks).await;
        if swept.is_err() {
            self.stale_marks.note(&pk, marks.to_vec());
        }
        swept
    }

    async fn remove_marks(&self, pk: &str, marks: &[String]) -> Result<(), StoreError> {
        let placeholders: Vec<String> = (0..marks.len()).map(|i| format!("#s{i}")).collect();
        let mut update = self.counter_update(pk).update_expression(format!("REMOVE {}", placeholders.join(", ")));
        for (placeholder, name) in placeholders.iter().zip(marks) {
            update = update.expression_attribute_names(placeholder, name);
        }
        update.send().await.map_err(|e| classify("sweep_marks", e))?;
        Ok(())
    }

    /// An update of the counter item `pk` (every counter's sort key is `RL`).
    fn counter_update(
        &self,
        pk: impl Into<String>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table).key("pk", s(pk)).key("sk", s("RL"))
    }

    /// An update of a key's month item that changes `minute`'s marks, with `#ttl`, `:ttl`, and
    /// `#w`/`:w` (the minute) bound (DynamoDB refuses a name bound but not used).
    fn month_update(
        &self,
        hash: &KeyHash,
        month: Month,
        minute: i64,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.counter_update(month_pk(hash, month))
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#w", WRITTEN_MINUTE)
            .expression_attribute_values(":ttl", n(month_expiry(month).secs()))
            .expression_attribute_values(":w", n(minute))
    }

    /// `ADD count :delta, q :refused` on a counter item; its new count.
    async fn add_to_counter(&self, pk: String, expires: UnixTime, delta: i64, refused: i64) -> Result<u64, StoreError> {
        let mut update = self
            .counter_update(pk)
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(delta))
            .expression_attribute_values(":ttl", n(expires.secs()))
            .return_values(ReturnValue::UpdatedNew);
        update = match refused {
            0 => update.update_expression("ADD #count :one SET #ttl = if_not_exists(#ttl, :ttl)"),
            _ => update
                .update_expression("ADD #count :one, #q :q SET #ttl = if_not_exists(#ttl, :ttl)")
                .expression_attribute_names("#q", "q")
                .expression_attribute_values(":q", n(refused)),
        };
        let out = update.send().await.map_err(|e| classify("count_request", e))?;
        out.attributes()
            .and_then(|a| a.get("count"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .map(|count| count.max(0) as u64)
            .ok_or_else(|| internal("count_request", "no count returned"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keys_are_per_minute_and_never_hold_raw_ips() {
        let ip = Counted::Ip("10.0.0.1");
        let at = |secs| window_pk(&ip, UnixTime::from_secs(secs)).unwrap();
        assert_eq!(at(60), at(119));
        assert_ne!(at(119), at(120));
        assert!(!at(0).contains("10.0.0.1"));
    }

    #[test]
    fn minute_marks_name_their_minute_and_nothing_else_is_one() {
        for mark in [Mark::Count(0), Mark::Count(44_639), Mark::QuotaRefused(7)] {
            assert_eq!(Mark::parse(&mark.name()), Some(mark));
        }
        for other in ["count", "q", "ttl", "pk", "m", "mx1", "m-1", "m123456", "n12", "m1.5"] {
            assert_eq!(Mark::parse(other), None, "{other}");
        }
        let month = Month::of(UnixTime::from_secs(1_764_547_200)); // 2025-12-01
        assert_eq!(minute_of_month(month, month.start), 0);
        assert_eq!(minute_of_month(month, month.start.plus_secs(59)), 0);
        assert_eq!(minute_of_month(month, month.start.plus_secs(60)), 1);
        assert_eq!(minute_of_month(month, month.end.plus_secs(-1)), 31 * 24 * 60 - 1);
    }

    #[test]
    fn stale_marks_are_the_minutes_before_the_previous_one_oldest_first() {
        let mut item: HashMap<String, AttributeValue> =
            [97, 3, 98, 99, 100].map(|i| (Mark::Count(i).name(), n(1))).into();
        item.insert(Mark::QuotaRefused(3).name(), n(1));
        item.insert("count".into(), n(40));
        item.insert("q".into(), n(1));
        item.insert("w".into(), n(100));
        assert_eq!(stale_marks(&item, 100), ["m3", "q3", "m97", "m98"], "99 and 100 are not stale");
        let marks = StaleMarks::default();
        marks.note("a", vec!["m3".into()]);
        assert_eq!(marks.take("a"), ["m3"]);
        assert!(marks.take("a").is_empty(), "taken once");
    }
}
