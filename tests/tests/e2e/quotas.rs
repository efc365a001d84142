//! Monthly quotas (API.md "Monthly quotas"): exact under concurrency, a refusal until the month
//! ends, a raised quota on the next request, and never a key above its creator's cap.

use aws_sdk_dynamodb::types::AttributeValue;
use hatched::domain::quota::{Month, MonthlyQuota};
use hatched::domain::{UnixTime, audit::AuditAction};
use hatched_tests::prelude::*;
use serde_json::{Value, json};

const GATES: &str = "/api/v1/gates";
const KEYS: &str = "/api/v1/keys";

fn capped(n: u64, tier: Tier) -> KeyOptions {
    KeyOptions { tier: Some(tier), monthly_quota: Some(Some(MonthlyQuota::new(n).unwrap())), ..plain() }
}

fn list_gates(key: &str) -> Call {
    Call::new("GET", GATES).key(key)
}

fn validate(key: &str) -> Call {
    Call::new("POST", "/api/v1/keys/validate").json(&json!({ "key": key }))
}

/// The clock stopped `secs_before` the end of the current month.
fn before_month_end(t: &TestApp, secs_before: i64) -> UnixTime {
    let now = t.app.clock.freeze();
    let end = Month::of(now).end;
    t.app.clock.advance(end.secs() - secs_before - now.secs());
    t.app.clock.now()
}

/// Writes to a key's month item (`RL#Q#…`) since the last `take_writes`.
fn month_writes(t: &TestApp) -> usize {
    let writes = t.calls.take_writes();
    writes.iter().filter(|(_, b)| b["Key"]["pk"]["S"].as_str().unwrap_or("").starts_with("RL#Q#")).count()
}

async fn statuses(t: &TestApp, calls: Vec<Call>) -> Vec<Answer> {
    futures::future::join_all(calls.into_iter().map(|c| t.send(c))).await
}

#[tokio::test]
async fn two_hundred_concurrent_requests_against_150_left_accept_exactly_150() {
    let t = TestApp::new().await.with_customer().await;
    // Enterprise: 6,000 a minute, so only the quota refuses.
    let (key, prefix) = t.issue(Secret, Live, capped(150, Tier::Enterprise)).await;
    let now = before_month_end(&t, 3_600);
    let answers = statuses(&t, (0..200).map(|_| list_gates(&key)).collect()).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!((ok, refused.len()), (150, 50), "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    for a in &refused {
        assert_eq!(a.code(), "quota_exceeded", "{}", a.body);
        assert_eq!(a.header("retry-after"), Some("3600"), "until the month ends");
    }
    // Refusals give their count back: the month holds exactly what was accepted.
    let v = t.send(validate(&key)).await;
    assert_eq!(v.body, json!({ "valid": false, "code": "quota_exceeded", "prefix": prefix }), "{}", v.body);
    assert_eq!(v.header("retry-after"), Some("3600"));
    // Usage counts each request once, under the outcome it got.
    t.roll_up_usage().await;
    let admin = t.issue(Secret, Live, tier(Tier::Enterprise)).await.0;
    let minute = now.secs() - now.secs().rem_euclid(60);
    let from = UnixTime::from_secs(minute).rfc3339();
    let to = UnixTime::from_secs(minute + 60).rfc3339();
    let path = format!("/api/v1/keys/{prefix}/usage?granularity=minute&from={from}&to={to}");
    let usage = t.send(Call::new("GET", &path).key(&admin)).await;
    assert_eq!(usage.status, 200, "{}", usage.body);
    let point = &usage.body["points"][0];
    assert_eq!(
        (&point["accepted"], &point["rate_limited"], &point["quota_exceeded"]),
        (&json!(150), &json!(0), &json!(51)),
        "{point}"
    );
}

#[tokio::test]
async fn a_raised_quota_applies_on_the_next_request_and_a_new_month_starts_again() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (key, prefix) = t.issue(Secret, Live, capped(3, Tier::Free)).await;
    let now = before_month_end(&t, 90);
    for _ in 0..3 {
        assert_eq!(t.send(list_gates(&key)).await.status, 200);
    }
    let refused = t.send(list_gates(&key)).await;
    assert_eq!((refused.status, refused.code()), (429, "quota_exceeded"), "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("90"));
    // A refusal is no slower way in: still refused, nothing counted beyond the quota.
    assert_eq!(t.send(list_gates(&key)).await.status, 429);

    let raise = Call::new("PATCH", &format!("{KEYS}/{prefix}")).key(&admin).json(&json!({ "monthly_quota": 5 }));
    let raised = t.send(raise).await;
    assert_eq!((raised.status, &raised.body["monthly_quota"]), (200, &json!(5)), "{}", raised.body);
    // Exactly the difference: the refusals gave their counts back.
    assert_eq!(t.send(list_gates(&key)).await.status, 200, "a raised quota applies at once");
    let v = t.send(validate(&key)).await;
    assert_eq!(v.body["valid"], json!(true), "{}", v.body);
    let end = Month::of(now).end;
    assert_eq!(v.body["quota"], json!({ "limit": 5, "remaining": 0, "reset_at": end.rfc3339() }));
    assert_eq!(t.send(list_gates(&key)).await.status, 429);

    // The next month starts from nothing.
    t.app.clock.advance(90);
    let v = t.send(validate(&key)).await;
    let next_end = Month::of(end).end;
    assert_eq!(v.body["quota"], json!({ "limit": 5, "remaining": 4, "reset_at": next_end.rfc3339() }), "{}", v.body);

    // Removed: no quota, no quota object; the change is audited.
    let lift = Call::new("PATCH", &format!("{KEYS}/{prefix}")).key(&admin).json(&json!({ "monthly_quota": null }));
    assert_eq!(t.send(lift).await.body["monthly_quota"], Value::Null);
    for _ in 0..10 {
        assert_eq!(t.send(list_gates(&key)).await.status, 200);
    }
    let v = t.send(validate(&key)).await;
    assert!(v.body.get("quota").is_none(), "{}", v.body);
    let audit = t.send(Call::new("GET", &format!("/api/v1/audit-events?target={prefix}")).key(&admin)).await;
    let changes: Vec<&Value> = audit.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == json!(AuditAction::KeyUpdated.as_str()))
        .map(|e| &e["changes"]["monthly_quota"])
        .collect();
    assert_eq!(changes, [&json!({ "old": 5, "new": null }), &json!({ "old": 3, "new": 5 })], "{}", audit.body);
}

#[tokio::test]
async fn a_capped_caller_cannot_lift_a_key_above_its_own_cap() {
    let t = TestApp::new().await.with_customer().await;
    let (capped_admin, _) = t.issue(Secret, Live, capped(1_000, Tier::Enterprise)).await;
    let (_, uncapped) = t.issue(Secret, Live, tier(Tier::Free)).await;
    let create = |body: Value| Call::new("POST", KEYS).key(&capped_admin).json(&body);

    // Without monthly_quota, a key gets its creator's.
    let inherited = t.send(create(json!({ "type": "secret" }))).await;
    assert_eq!((inherited.status, &inherited.body["record"]["monthly_quota"]), (201, &json!(1_000)));
    let lower = t.send(create(json!({ "type": "publishable", "monthly_quota": 10 }))).await;
    assert_eq!((lower.status, &lower.body["record"]["monthly_quota"]), (201, &json!(10)), "{}", lower.body);
    for above in [json!(1_001), Value::Null] {
        let a = t.send(create(json!({ "type": "secret", "monthly_quota": above }))).await;
        assert_eq!((a.status, a.code()), (403, "insufficient_scope"), "{above}: {}", a.body);
        assert!(a.body["error"]["message"].as_str().unwrap().contains("monthly_quota"), "{}", a.body);
    }
    let prefix = lower.body["record"]["prefix"].as_str().unwrap().to_owned();
    let patch =
        |prefix: &str, body: Value| Call::new("PATCH", &format!("{KEYS}/{prefix}")).key(&capped_admin).json(&body);
    for above in [json!(5_000), Value::Null] {
        let a = t.send(patch(&prefix, json!({ "monthly_quota": above }))).await;
        assert_eq!((a.status, a.code()), (403, "insufficient_scope"), "{above}: {}", a.body);
    }
    assert_eq!(t.send(patch(&prefix, json!({ "monthly_quota": 1_000 }))).await.status, 200);
    // An uncapped key is more than a capped caller may manage, even to cap it.
    let a = t.send(patch(&uncapped, json!({ "monthly_quota": 10 }))).await;
    assert_eq!((a.status, a.code()), (403, "insufficient_scope"), "{}", a.body);
    let revoke = t.send(Call::new("DELETE", &format!("{KEYS}/{uncapped}")).key(&capped_admin)).await;
    assert_eq!(revoke.status, 403, "{}", revoke.body);

    // Not a quota: refused as input, nothing written.
    for bad in [json!(0), json!(-5), json!(1.5), json!("10"), json!(1_000_000_000_001u64)] {
        let a = t.send(create(json!({ "type": "secret", "monthly_quota": bad }))).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{bad}: {}", a.body);
    }
}

#[tokio::test]
async fn a_publishable_key_quota_counts_every_visitor_together() {
    let t = TestApp::new().await.with_customer().await;
    let options = KeyOptions { scopes: Some(vec!["read:buddies".into()]), ..capped(5, Tier::Free) };
    let (key, _) = t.issue(Publishable, Live, options).await;
    let calls = (0..12).map(|i| list_gates(&key).from_ip(&format!("198.51.100.{}", i % 4))).collect();
    let answers = statuses(&t, calls).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(ok, 5, "{:?}", answers.iter().map(|a| (a.status, a.code().to_owned())).collect::<Vec<_>>());
    assert!(answers.iter().filter(|a| a.status != 200).all(|a| a.code() == "quota_exceeded"));
}

#[tokio::test]
async fn the_authorizer_passes_the_quota_on() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Secret, Live, capped(10, Tier::Free)).await;
    let now = before_month_end(&t, 600);
    let a = t.send(Call::new("GET", "/api/v1/whoami").key(&key)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!((&a.body["quota_remaining"], &a.body["quota_reset"]), (&json!(9), &json!(600)), "{}", a.body);
    assert_eq!(Month::of(now).end.secs() - now.secs(), 600);
    let (plain_key, _) = t.issue(Secret, Live, plain()).await;
    let a = t.send(Call::new("GET", "/api/v1/whoami").key(&plain_key)).await;
    assert!(a.body.get("quota_remaining").is_none() && a.body.get("quota_reset").is_none(), "{}", a.body);
    for _ in 0..9 {
        t.send(Call::new("GET", "/api/v1/whoami").key(&key)).await;
    }
    let denied = t.send(Call::new("GET", "/api/v1/whoami").key(&key)).await;
    assert_eq!(denied.status, 403, "over its quota: denied, {}", denied.body);
}

/// A secret key's quota costs nothing: its one counting write, on its month item, returns the
/// minute's count and the month's (API.md "Counting"). A publishable key counts per source IP,
/// so a quota costs it one more write: after the key read on an instance's first sight of the
/// key, beside it from then on.
#[tokio::test]
async fn round_trips_of_a_key_with_a_quota_the_counting_write_counts_the_month() {
    hatched_tests::assert_happy_path_model();
    const ORIGIN: &str = "https://app.example.com";
    let t = TestApp::new().await.with_customer().await;
    let (plain_key, _) = t.issue(Secret, Live, plain()).await;
    let (capped_key, _) = t.issue(Secret, Live, capped(1_000, Tier::Free)).await;
    let browser = KeyOptions { allowed_origins: vec![ORIGIN.into()], ..plain() };
    let plain_pk = t.issue_key(Publishable, Live, browser.clone()).await.key;
    let capped_pk = t
        .issue_key(Publishable, Live, KeyOptions { allowed_origins: vec![ORIGIN.into()], ..capped(1_000, Tier::Free) })
        .await
        .key;
    let calls = [
        list_gates(&plain_key),
        list_gates(&capped_key),
        list_gates(&plain_pk).header("origin", ORIGIN),
        list_gates(&capped_pk).header("origin", ORIGIN),
    ];
    for call in &calls {
        assert_eq!(t.send(call.clone()).await.status, 200); // first use: last_used_at
    }
    let mut seen = Vec::new();
    let mut written = Vec::new();
    for call in &calls {
        t.calls.clear();
        assert_eq!(t.send(call.clone()).await.status, 200);
        let mut ops = t.calls.take();
        ops.sort();
        seen.push(ops);
        let writes = t.calls.take_writes();
        written.push(writes.iter().map(|(_, b)| b["Key"]["pk"]["S"].as_str().unwrap().to_owned()).collect::<Vec<_>>());
    }
    let one_write = ["GetItem", "Query", "UpdateItem"];
    assert_eq!(seen[0], one_write, "secret, no quota: the key read, the count, the gates");
    assert_eq!(seen[1], one_write, "secret with a quota: the same");
    assert_eq!(seen[2], one_write, "publishable, no quota: the same");
    assert_eq!(seen[3], ["GetItem", "Query", "UpdateItem", "UpdateItem"], "publishable with a quota: its month too");
    for secret in &written[..2] {
        assert!(secret.len() == 1 && secret[0].starts_with("RL#Q#"), "{secret:?}");
    }
    assert!(written[2].len() == 1 && written[2][0].starts_with("RL#KIP#"), "{:?}", written[2]);
    assert!(
        written[3].iter().any(|pk| pk.starts_with("RL#KIP#")) && written[3].iter().any(|pk| pk.starts_with("RL#Q#"))
    );

    // What the writes cost in time (BENCHMARKS.md "Monthly quotas"): printed, not asserted.
    let mut medians = Vec::new();
    for call in &calls {
        let mut times = Vec::new();
        for _ in 0..50 {
            let started = std::time::Instant::now();
            assert_eq!(t.send(call.clone()).await.status, 200);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        medians.push((times[times.len() / 2], times[times.len() * 9 / 10]));
    }
    println!(
        "list-gates in process, 50 requests each, median (p90) ms: secret {:.2} ({:.2}), secret with a quota {:.2} ({:.2}), publishable {:.2} ({:.2}), publishable with a quota {:.2} ({:.2})",
        medians[0].0, medians[0].1, medians[1].0, medians[1].1, medians[2].0, medians[2].1, medians[3].0, medians[3].1
    );
}

/// A secret key's month item, and its marks.
struct MonthItem<'a> {
    t: &'a TestApp,
    pk: String,
}

impl MonthItem<'_> {
    /// The item of `key` (a well-formed key, on record or not) in the month starting `start`.
    fn of<'a>(t: &'a TestApp, key: &str, start: UnixTime) -> MonthItem<'a> {
        let hash = hatched::domain::ApiKey::parse(key).unwrap().hash();
        MonthItem { t, pk: format!("RL#Q#{}#{}", hash.as_str(), start.secs()) }
    }

    /// Its size by names and digits (a number weighs less on DynamoDB) and its minute marks.
    async fn size_and_marks(&self) -> (usize, usize) {
        let got = self.t.app.store.client().get_item().table_name(self.t.app.store.table());
        let got = got.key("pk", AttributeValue::S(self.pk.clone())).key("sk", AttributeValue::S("RL".into()));
        let item = got.consistent_read(true).send().await.unwrap().item.unwrap_or_default();
        let size = item.iter().map(|(k, v)| k.len() + v.as_n().map_or_else(|_| 80, |n| n.len())).sum();
        (size, item.keys().filter(|n| hatched::store::Mark::parse(n).is_some()).count())
    }
}

/// The clock stopped at the start of the current month; that month.
fn month_start(t: &TestApp) -> Month {
    let now = t.app.clock.freeze();
    let month = Month::of(now);
    t.app.clock.advance(month.start.secs() - now.secs());
    month
}

/// A secret key's minutes are attributes of its month item (`m<i>`). Each write removes the
/// marks of two minutes back; a silence leaves the last busy minute's behind, which the write
/// returns: the instance removes them with its next counting write, with no write of their
/// own. The item stays a few marks through a month of silences, and every minute's limit and
/// usage stay exact.
#[tokio::test]
async fn an_instance_removes_the_marks_a_silence_leaves_with_its_next_count() {
    let t = TestApp::new().await.with_customer().await;
    let (key, prefix) = t.issue(Secret, Live, capped(1_000_000, Tier::Free)).await;
    let month = month_start(&t);
    let item = MonthItem::of(&t, &key, month.start);
    let mut largest = (0, 0);
    // Three concurrent requests at the start of every third minute for 300 minutes (each busy
    // minute's mark outlives the write two minutes on), then a burst over the Free tier's 60.
    t.calls.take_writes();
    for _ in 0..100 {
        let answers = statuses(&t, (0..3).map(|_| list_gates(&key)).collect()).await;
        assert!(answers.iter().all(|a| a.status == 200));
        largest = largest.max(item.size_and_marks().await);
        t.app.clock.advance(180);
    }
    let writes = t.calls.take_writes();
    let removing = |b: &Value| b["UpdateExpression"].as_str().unwrap_or("").contains("REMOVE");
    let sweeps =
        writes.iter().filter(|(_, b)| b["UpdateExpression"].as_str().unwrap_or("").starts_with("REMOVE")).count();
    println!("one instance, 100 busy minutes among silences: largest {largest:?} (bytes, marks); {sweeps} sweeps");
    assert_eq!(sweeps, 0, "no write of their own");
    assert!(writes.iter().filter(|(_, b)| removing(b)).count() >= 99, "removed by counting writes");
    assert!(largest.1 <= 3, "this minute's mark and the ones the silence left, removed next: {largest:?}");
    assert!(largest.0 < 1024, "under one write unit: {largest:?}");
    let answers = statuses(&t, (0..70).map(|_| list_gates(&key)).collect()).await;
    assert_eq!(answers.iter().filter(|a| a.status == 200).count(), 60, "the minute's limit is exact");
    assert!(answers.iter().filter(|a| a.status != 200).all(|a| a.code() == "rate_limited"));
    t.roll_up_usage().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let to = t.app.clock.now().plus_secs(3_600);
    let path =
        format!("/api/v1/keys/{prefix}/usage?granularity=hour&from={}&to={}", month.start.rfc3339(), to.rfc3339());
    let usage = t.send(Call::new("GET", &path).key(&admin)).await;
    assert_eq!(usage.status, 200, "{}", usage.body);
    let points = usage.body["points"].as_array().unwrap();
    let total = |field: &str| points.iter().map(|p| p[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!((total("accepted"), total("rate_limited")), (360, 10), "{}", usage.body);
    t.app.clock.advance(60);
    let v = t.send(validate(&key)).await;
    assert_eq!(
        v.body["quota"]["remaining"],
        json!(1_000_000 - 360 - 1),
        "the month holds what was accepted: {}",
        v.body
    );
}

/// Should every request come to a new instance, no instance removes what it saw: once 32 marks
/// have gathered, the minute's first request removes them with a write of its own, whatever
/// its verdict. So an accepted key's item and a refused one's (a well-formed key no one holds,
/// sent once every third minute by an attacker) both stay under 1 KB.
#[tokio::test]
async fn marks_left_by_many_instances_are_swept_at_32_on_every_path() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Secret, Live, capped(1_000_000, Tier::Free)).await;
    let stranger = hatched::domain::ApiKey::generate(hatched::domain::KeyKind::SecretLive).expose().to_owned();
    let month = month_start(&t);
    for (key, expected) in [(&key, 200), (&stranger, 401)] {
        let item = MonthItem::of(&t, key, month.start);
        let (mut largest, mut before, mut swept) = ((0, 0), 0, 0);
        for minute in 0..100 {
            let fresh = t.cold_instance().await;
            fresh.clock.freeze();
            fresh.clock.advance(month.start.secs() + minute * 180 - fresh.clock.now().secs());
            assert_eq!(list_gates(key).send(&fresh).await.status, expected);
            let (size, marks) = item.size_and_marks().await;
            largest = largest.max((size, marks));
            swept += usize::from(marks < before);
            before = marks;
        }
        println!("a new instance each busy minute: largest {largest:?} (bytes, marks); swept {swept} times");
        assert_eq!(swept, 3, "32 stale marks gather in 32 busy minutes: swept at the 33rd, 65th and 97th");
        assert!(largest.1 <= hatched::store::STALE_MARKS_SWEPT_AT, "{largest:?}");
        assert!(largest.0 < 1024, "under one write unit: {largest:?}");
    }
}

/// API.md "Counting": a request refused by the minute limit consumes no quota. A key without a
/// quota keeps its month's count too (so a quota given to it later counts the month): what its
/// minute limit refused is not in it. Once this instance has seen the key over its limit, each
/// further refusal that minute is one write (its minute only), not a count and a give-back.
#[tokio::test]
async fn what_the_minute_limit_refused_is_not_in_the_month_of_a_key_without_a_quota() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (key, prefix) = t.issue(Secret, Live, tier(Tier::Free)).await;
    before_month_end(&t, 3_600);
    t.calls.take_writes();
    let mut codes = Vec::new();
    for _ in 0..70 {
        codes.push(t.send(list_gates(&key)).await.code().to_owned());
    }
    assert_eq!(codes.iter().filter(|c| *c == "<no error code>").count(), 60, "{codes:?}");
    assert!(codes[60..].iter().all(|c| c == "rate_limited"), "{codes:?}");
    let months = month_writes(&t);
    assert_eq!(
        months,
        60 + 2 + 9,
        "60 accepted; the first refusal counted and gave back its month; then the minute only"
    );
    t.app.clock.advance(60);
    let patch = Call::new("PATCH", &format!("{KEYS}/{prefix}")).key(&admin).json(&json!({ "monthly_quota": 100 }));
    assert_eq!(t.send(patch).await.status, 200);
    let v = t.send(validate(&key)).await;
    assert_eq!(v.body["quota"]["remaining"], json!(100 - 60 - 1), "{}", v.body);
}

/// A publishable key's visitor over its minute limit stops counting the key's month beside the
/// key read until the minute ends: one visitor's flood of refusals cannot make the month item,
/// which every visitor shares, a hot spot (each refusal would add to it and give back).
#[tokio::test]
async fn a_limited_visitor_of_a_publishable_key_stops_touching_its_month() {
    const ORIGIN: &str = "https://app.example.com";
    let t = TestApp::new().await.with_customer().await;
    let options = KeyOptions { allowed_origins: vec![ORIGIN.into()], ..capped(1_000, Tier::Free) };
    let pk = t.issue_key(Publishable, Live, options).await;
    before_month_end(&t, 3_600);
    let gates = || list_gates(&pk.key).header("origin", ORIGIN).from_ip("198.51.100.9");
    assert_eq!(t.send(gates()).await.status, 200, "the instance sees the quota");
    t.calls.take_writes();
    let mut codes = Vec::new();
    for _ in 0..70 {
        codes.push(t.send(gates()).await.status);
    }
    assert_eq!(codes.iter().filter(|s| **s == 200).count(), 59, "{codes:?}");
    let months = month_writes(&t);
    assert_eq!(months, 59 + 2, "59 accepted; the first refusal counted and gave back; then none");
    let other_visitor = t.send(list_gates(&pk.key).header("origin", ORIGIN).from_ip("198.51.100.10")).await;
    assert_eq!(other_visitor.status, 200, "another visitor is not limited by it");
}

#[tokio::test]
async fn hatchctl_sets_and_removes_a_quota_as_the_operator() {
    let t = TestApp::new().await.with_customer().await;
    let issued = t
        .ctl(&["keys", "issue", "--customer", "acme", "--type", "secret", "--env", "live", "--monthly-quota", "2"])
        .await
        .unwrap();
    let key = issued["key"].as_str().unwrap().to_owned();
    let prefix = issued["prefix"].as_str().unwrap().to_owned();
    assert_eq!(t.send(list_gates(&key)).await.status, 200);
    assert_eq!(t.send(list_gates(&key)).await.status, 200);
    assert_eq!(t.send(list_gates(&key)).await.code(), "quota_exceeded");
    let updated = t.ctl(&["keys", "update", "--prefix", &prefix, "--monthly-quota", "none"]).await.unwrap();
    assert_eq!(updated["monthly_quota"], Value::Null);
    assert_eq!(t.send(list_gates(&key)).await.status, 200);
    assert!(t.ctl(&["keys", "update", "--prefix", &prefix, "--monthly-quota", "0"]).await.is_err());
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let audit = t.send(Call::new("GET", &format!("/api/v1/audit-events?target={prefix}")).key(&admin)).await;
    let newest = &audit.body["events"][0];
    assert_eq!(
        (&newest["actor"], &newest["changes"]["monthly_quota"]),
        (&json!("operator"), &json!({ "old": 2, "new": null }))
    );
}

/// A public key's quota is not spent by requests the key itself refuses (a wrong origin, a bad
/// user signature): they give their month count back.
#[tokio::test]
async fn refused_signatures_and_origins_spend_no_quota() {
    const ORIGIN: &str = "https://app.example.com";
    let t = TestApp::new().await.with_customer().await;
    t.buddy(Live, "b1").await;
    t.credit(Live, "b1", 100).await;
    t.gate("hat", 10, None).await;
    let options = KeyOptions {
        scopes: Some(vec!["write:unlocks".into(), "read:buddies".into()]),
        allowed_origins: vec![ORIGIN.into()],
        require_signed_user_id: true,
        ..capped(3, Tier::Free)
    };
    let pk = t.issue_key(Publishable, Live, options).await;
    let gates = |origin: &str| list_gates(&pk.key).header("origin", origin);
    assert_eq!(t.send(gates(ORIGIN)).await.status, 200, "one accepted: the instance has seen the quota");
    let unlock = Call::new("POST", "/api/v1/buddies/b1/gates/hat/unlock").key(&pk.key).header("origin", ORIGIN);
    t.calls.take_writes();
    for _ in 0..5 {
        let now = t.app.clock.now().secs();
        let forged = json!({ "user_id": "u1", "user_id_sig": "0".repeat(64), "user_id_ts": now });
        let a = t.send(unlock.clone().json(&forged)).await;
        assert_eq!((a.status, a.code()), (403, "invalid_user_signature"), "{}", a.body);
        let a = t.send(gates("https://evil.example")).await;
        assert_eq!((a.status, a.code()), (403, "origin_not_allowed"), "{}", a.body);
    }
    let writes = t.calls.take_writes();
    let months: Vec<&Value> = writes
        .iter()
        .map(|(_, b)| b)
        .filter(|b| b["Key"]["pk"]["S"].as_str().unwrap_or("").starts_with("RL#Q#"))
        .collect();
    // Each counted its month beside the key read (the instance has seen the quota) and gave it
    // back: a forged signature once it failed, a wrong origin at once.
    assert_eq!(months.len(), 20, "{months:?}");
    let given_back = months.iter().filter(|b| b["ExpressionAttributeValues"][":one"]["N"] == "-1").count();
    assert_eq!(given_back, 10, "{months:?}");
    for _ in 0..2 {
        assert_eq!(t.send(gates(ORIGIN)).await.status, 200, "the quota is still whole");
    }
    let over = t.send(gates(ORIGIN)).await;
    assert_eq!((over.status, over.code()), (429, "quota_exceeded"), "{}", over.body);
}

/// A key's month and its first minute start at the same second; the roll-up keeps them apart.
#[tokio::test]
async fn the_first_minute_of_a_month_is_counted_in_usage() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (key, prefix) = t.issue(Secret, Live, capped(100, Tier::Free)).await;
    let month_end = before_month_end(&t, 0);
    for _ in 0..4 {
        // Each on an instance that has not seen the key: its month is counted after its
        // minute, so the stream shows the month last.
        let fresh = t.cold_instance().await;
        let now = fresh.clock.freeze();
        fresh.clock.advance(month_end.secs() - now.secs());
        assert_eq!(list_gates(&key).send(&fresh).await.status, 200);
    }
    t.roll_up_usage().await;
    let from = month_end.rfc3339();
    let to = month_end.plus_secs(60).rfc3339();
    let path = format!("/api/v1/keys/{prefix}/usage?granularity=minute&from={from}&to={to}");
    let usage = t.send(Call::new("GET", &path).key(&admin)).await;
    assert_eq!(usage.body["points"][0]["accepted"], json!(4), "{}", usage.body);
}
