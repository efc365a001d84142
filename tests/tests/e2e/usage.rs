//! Usage per key (API.md "Usage, events, metrics"): what the limiter counted, rolled up from the
//! table's stream as Lambda does deployed, read back at every granularity.

use futures::StreamExt;
use hatched_tests::prelude::*;
use serde_json::{Value, json};

const GATES: &str = "/api/v1/gates";
const ORIGIN: &str = "https://app.example.com";

fn usage_path(prefix: &str, query: &str) -> String {
    format!("/api/v1/keys/{prefix}/usage{query}")
}

async fn usage(t: &TestApp, admin: &str, prefix: &str, query: &str) -> Value {
    let a = t.send(Call::new("GET", &usage_path(prefix, query)).key(admin)).await;
    assert_eq!(a.status, 200, "{query}: {}", a.body);
    a.body
}

/// `(accepted, rate_limited, quota_exceeded)` of every point.
fn counts(body: &Value) -> Vec<(u64, u64, u64)> {
    body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let n = |f: &str| p[f].as_u64().unwrap();
            (n("accepted"), n("rate_limited"), n("quota_exceeded"))
        })
        .collect()
}

fn sum(points: &[(u64, u64, u64)]) -> (u64, u64, u64) {
    points.iter().fold((0, 0, 0), |s, p| (s.0 + p.0, s.1 + p.1, s.2 + p.2))
}

/// Sends `n` list-gates requests with `key` at once; the statuses.
async fn burst(t: &TestApp, key: &str, n: usize, ip: &str, origin: Option<&str>) -> Vec<u16> {
    let calls = (0..n).map(|_| {
        let mut call = Call::new("GET", GATES).key(key).from_ip(ip);
        if let Some(origin) = origin {
            call = call.header("origin", origin);
        }
        t.send(call)
    });
    futures::future::join_all(calls).await.into_iter().map(|a| a.status).collect()
}

fn count(statuses: &[u16], status: u16) -> u64 {
    statuses.iter().filter(|s| **s == status).count() as u64
}

/// The clock stopped `secs_before` the next hour (near real time: the emulator's TTL reaper
/// goes by the real clock); returns that time.
fn before_the_hour(t: &TestApp, secs_before: i64) -> i64 {
    let now = t.app.clock.freeze().secs();
    let next_hour = now - now.rem_euclid(3_600) + 3_600;
    t.app.clock.advance(next_hour - secs_before - now);
    next_hour - secs_before
}

fn rfc3339(secs: i64) -> String {
    hatched::domain::UnixTime::from_secs(secs).rfc3339()
}

#[tokio::test]
async fn usage_counts_equal_the_requests_sent_at_every_granularity_across_a_minute_and_an_hour() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (key, prefix) = t.issue(Secret, Live, plain()).await; // free: 60 a minute
    let web = KeyOptions { allowed_origins: vec![ORIGIN.into()], scopes: Some(vec!["read:buddies".into()]), ..plain() };
    let (pk, pk_prefix) = t.issue(Publishable, Live, web).await;
    let start = before_the_hour(&t, 30); // hh:59:30
    let minute = start - start.rem_euclid(60);

    // Minute one: 70 at once (60 accepted, 10 refused), and the publishable key from two IPs.
    let first = burst(&t, &key, 70, "198.51.100.7", None).await;
    assert_eq!((count(&first, 200), count(&first, 429)), (60, 10));
    let pk_first =
        [burst(&t, &pk, 4, "203.0.113.1", Some(ORIGIN)).await, burst(&t, &pk, 3, "203.0.113.2", Some(ORIGIN)).await]
            .concat();
    assert_eq!(count(&pk_first, 200), 7);
    // A request the key itself refuses (wrong origin) is not the key's usage.
    assert_eq!(burst(&t, &pk, 1, "203.0.113.1", Some("https://evil.example")).await, [403]);

    // Minute two is in the next hour: 3 more.
    t.app.clock.advance(60);
    assert_eq!(burst(&t, &key, 3, "198.51.100.7", None).await, [200, 200, 200]);

    assert!(t.roll_up_usage().await > 0);
    let q = format!("?granularity=minute&from={}&to={}", rfc3339(minute), rfc3339(minute + 120));
    assert_eq!(counts(&usage(&t, &admin, &prefix, &q).await), [(60, 10, 0), (3, 0, 0)]);
    assert_eq!(counts(&usage(&t, &admin, &pk_prefix, &q).await), [(7, 0, 0), (0, 0, 0)]);

    let hour = minute - minute.rem_euclid(3_600);
    let q = format!("?granularity=hour&from={}&to={}", rfc3339(hour), rfc3339(hour + 7_200));
    let hours = usage(&t, &admin, &prefix, &q).await;
    assert_eq!(counts(&hours), [(60, 10, 0), (3, 0, 0)]);
    assert_eq!((hours["from"].as_str(), hours["granularity"].as_str()), (Some(&*rfc3339(hour)), Some("hour")));
    assert_eq!(hours["points"][1]["start"], json!(rfc3339(hour + 3_600)));

    let day = hour - hour.rem_euclid(86_400);
    // The requests' days up to today's (two when the hour crossed was midnight).
    let q = format!("?granularity=day&from={}", rfc3339(day));
    let days = counts(&usage(&t, &admin, &prefix, &q).await);
    assert!((1..=2).contains(&days.len()), "{days:?}");
    assert_eq!(sum(&days), (63, 10, 0));

    // The default: the 24 hours ending with the current one, dense, oldest first.
    let default = counts(&usage(&t, &admin, &prefix, "").await);
    assert_eq!(default.len(), 24);
    assert_eq!(&default[22..], [(60, 10, 0), (3, 0, 0)]);
    assert_eq!(sum(&default[..22]), (0, 0, 0));

    // Reading the whole stream again changes nothing (Lambda delivers a failed batch again).
    t.roll_up_usage().await;
    assert_eq!(sum(&counts(&usage(&t, &admin, &prefix, "").await)), (63, 10, 0));

    // Billing: every key's month total, and their sum.
    let month = &rfc3339(minute + 60)[..7];
    let billed = t.ctl(&["usage", "--customer", "acme", "--month", month]).await.unwrap();
    let by_prefix = |p: &str| billed["keys"].as_array().unwrap().iter().find(|k| k["prefix"] == p).cloned().unwrap();
    let this_month = |c: (u64, u64)| if month == &rfc3339(minute)[..7] { c } else { (3, 0) };
    assert_eq!(
        (by_prefix(&prefix)["accepted"].as_u64(), by_prefix(&prefix)["rate_limited"].as_u64()),
        (Some(this_month((63, 10)).0), Some(this_month((63, 10)).1))
    );
    let total: u64 = billed["keys"].as_array().unwrap().iter().map(|k| k["accepted"].as_u64().unwrap()).sum();
    assert_eq!(billed["total"]["accepted"].as_u64(), Some(total));
    let shown =
        t.ctl(&["keys", "usage", "--prefix", &prefix, "--granularity", "minute", "--since", "3m"]).await.unwrap();
    assert_eq!(shown["points"].as_array().map(Vec::len), Some(4));
    assert_eq!(sum(&counts(&shown)), (63, 10, 0));
}

#[tokio::test]
async fn concurrent_requests_are_counted_exactly() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (key, prefix) = t.issue(Secret, Live, tier(Tier::Pro)).await;
    let start = before_the_hour(&t, 1_800);
    let statuses = burst(&t, &key, 150, "198.51.100.7", None).await;
    assert_eq!(count(&statuses, 200), 150);
    t.roll_up_usage().await;
    let q = format!("?granularity=minute&from={}", rfc3339(start));
    assert_eq!(sum(&counts(&usage(&t, &admin, &prefix, &q).await)), (150, 0, 0));
}

#[tokio::test]
async fn usage_is_only_the_callers_own() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (test_admin, _) = t.issue(Secret, Test, tier(Tier::Enterprise)).await;
    let (reader, _) = t.issue(Secret, Live, scopes(&["read:buddies"])).await;
    let (pk, _) = t.issue(Publishable, Live, origins(&[ORIGIN])).await;
    let (_, prefix) = t.issue(Secret, Live, plain()).await;
    hatchctl::seed::Seed::customer(&t.app, "globex").await.unwrap();
    let globex = hatchctl::seed::Seed { app: t.app.clone(), customer: "globex".parse().unwrap() };
    let other = globex.key(KeyType::Secret, Environment::Live, tier(Tier::Enterprise)).await.unwrap();
    let other = other.key.expose().to_owned();

    let get = |key: &str, path: String| t.send(Call::new("GET", &path).key(key));
    let answer = get(&admin, usage_path(&prefix, "")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    for (who, key) in [("another customer", &other), ("another environment", &test_admin)] {
        let a = get(key, usage_path(&prefix, "")).await;
        assert_eq!((a.status, a.code()), (404, "key_not_found"), "{who}");
    }
    // A tampered prefix: well formed, nobody's.
    let tampered = format!("{}{}", &prefix[..prefix.len() - 1], if prefix.ends_with('A') { 'B' } else { 'A' });
    let a = get(&admin, usage_path(&tampered, "")).await;
    assert_eq!((a.status, a.code()), (404, "key_not_found"));
    let a = get(&admin, usage_path("not-a-prefix", "")).await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"));
    let a = get(&reader, usage_path(&prefix, "")).await;
    assert_eq!((a.status, a.code()), (403, "insufficient_scope"));
    let a = t.send(Call::new("GET", &usage_path(&prefix, "")).key(&pk).header("origin", ORIGIN)).await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = t.send(Call::new("GET", &usage_path(&prefix, ""))).await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn bad_usage_queries_are_invalid_requests() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (_, prefix) = t.issue(Secret, Live, plain()).await;
    let now = t.app.clock.freeze().secs();
    let hour = now - now.rem_euclid(3_600);
    for query in [
        "?granularity=week".to_owned(),
        "?granularity=".to_owned(),
        "?from=yesterday".to_owned(),
        "?to=1764684000".to_owned(),
        format!("?from={}&to={}", rfc3339(hour), rfc3339(hour)),
        format!("?from={}&to={}", rfc3339(hour), rfc3339(hour - 3_600)),
        format!("?granularity=minute&from={}", rfc3339(now - 3 * 3_600)),
        format!("?granularity=hour&from={}", rfc3339(now - 36 * 86_400)),
        format!("?granularity=day&from={}", rfc3339(now - 401 * 86_400)),
        format!("?granularity=hour&from={}&to={}", rfc3339(hour - 30 * 86_400), rfc3339(hour + 20 * 86_400)),
        format!("?granularity=hour&to={}", rfc3339(hour + 7_200)),
        "?from=2026-12-02T14:00:00%2B%2B1:00".to_owned(),
    ] {
        let a = t.send(Call::new("GET", &usage_path(&prefix, &query)).key(&admin)).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{query}: {}", a.body);
    }
    // Minutes reach back two hours.
    let q = format!("?granularity=minute&from={}", rfc3339(now - 7_200 + 60));
    assert_eq!(usage(&t, &admin, &prefix, &q).await["points"].as_array().map(Vec::len), Some(120));
}

/// An EventBridge bus on the emulator with a rule sending this service's events to an SQS
/// queue, as a customer's consumer would read them.
struct Bus {
    name: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl Bus {
    async fn new() -> Bus {
        let config = hatched_tests::sdk_config().await;
        let events = aws_sdk_eventbridge::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let name = format!("hatched-test-{}", hatched::domain::key::random_base62(10));
        events.create_event_bus().name(&name).send().await.expect("create bus");
        let queue_url = sqs.create_queue().queue_name(&name).send().await.expect("create queue").queue_url.unwrap();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue arn")
            .attributes
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .unwrap();
        let pattern = json!({ "source": [hatched::domain::usage::EVENT_SOURCE] }).to_string();
        events.put_rule().name(&name).event_bus_name(&name).event_pattern(pattern).send().await.expect("rule");
        let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().unwrap();
        events.put_targets().rule(&name).event_bus_name(&name).targets(target).send().await.expect("target");
        Bus { name, queue_url, sqs }
    }

    /// The roll-up's sink for this bus, its EventBridge calls through `endpoint` if given.
    async fn sink(&self, endpoint: Option<String>) -> functions::usage_rollup::EventBridgeSink {
        let config = hatched_tests::sdk_config().await;
        // Recorded like the functions' clients: the IAM check sees events:PutEvents performed.
        let mut builder =
            aws_sdk_eventbridge::config::Builder::from(&config).interceptor(hatched_tests::calls::CallLog::default());
        if let Some(endpoint) = endpoint {
            // Production timeouts and retries: a reset is a failure after the SDK's attempts.
            builder = builder.endpoint_url(endpoint);
        }
        functions::usage_rollup::EventBridgeSink::new(
            aws_sdk_eventbridge::Client::from_conf(builder.build()),
            &self.name,
        )
    }

    /// Every event the queue received so far: `(detail-type, detail)`.
    async fn received(&self) -> Vec<(String, Value)> {
        let mut received = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return received;
            }
            for m in messages {
                let event: Value = serde_json::from_str(m.body.as_deref().unwrap_or("")).expect("an event");
                assert_eq!(event["source"], hatched::domain::usage::EVENT_SOURCE);
                received.push((event["detail-type"].as_str().unwrap().to_owned(), event["detail"].clone()));
                let handle = m.receipt_handle.unwrap_or_default();
                self.sqs.delete_message().queue_url(&self.queue_url).receipt_handle(handle).send().await.unwrap();
            }
        }
    }
}

fn kinds(received: &[(String, Value)]) -> Vec<&str> {
    let mut kinds: Vec<&str> = received.iter().map(|(kind, _)| kind.as_str()).collect();
    kinds.sort_unstable();
    kinds
}

#[tokio::test]
async fn two_hundred_concurrent_requests_raise_each_limit_event_exactly_once() {
    let t = TestApp::new().await.with_customer().await;
    let (key, prefix) = t.issue(Secret, Live, plain()).await; // free: 60 a minute, 80 % = 48
    let start = before_the_hour(&t, 1_800);
    let window = start - start.rem_euclid(60);
    let statuses = burst(&t, &key, 200, "198.51.100.7", None).await;
    assert_eq!((count(&statuses, 200), count(&statuses, 429)), (60, 140));
    let bus = Bus::new().await;
    let sink = bus.sink(None).await;
    // Two readers of the whole stream at once (Lambda retrying a batch while another
    // invocation runs, say): one of them publishes each event, the other finds it claimed.
    let (a, b) = futures::join!(t.roll_up_usage_to(&sink), t.roll_up_usage_to(&sink));
    if a.is_err() || b.is_err() {
        // A reader that met the other's claim fails its batch; read again, as Lambda would.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        t.app.clock.advance(31);
        t.roll_up_usage_to(&sink).await.expect("the batch again");
    }
    t.roll_up_usage_to(&sink).await.expect("a third reading");
    let received = bus.received().await;
    assert_eq!(kinds(&received), ["apikey.near_rate_limit", "apikey.rate_limited"], "{received:?}");
    let (_, near) = received.iter().find(|(k, _)| k == "apikey.near_rate_limit").unwrap();
    assert_eq!(near["event_id"], json!(format!("{prefix}:apikey.near_rate_limit:{window}")));
    assert_eq!(
        (&near["customer_id"], &near["environment"], &near["key_prefix"], &near["tier"], &near["limit"]),
        (&json!("acme"), &json!("live"), &json!(prefix), &json!("free"), &json!(60))
    );
    assert_eq!(near["window_start"], json!(rfc3339(window)));
    assert!(near["count"].as_u64().unwrap() >= 48);
    let text = Value::from(received.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>()).to_string();
    assert!(!text.contains(&key) && !text.contains(&key[prefix.len()..]), "no key material in events");
}

#[tokio::test]
async fn a_failed_put_events_still_delivers_each_event_once() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Secret, Live, plain()).await;
    before_the_hour(&t, 1_800);
    assert_eq!(count(&burst(&t, &key, 61, "198.51.100.7", None).await, 429), 1);
    let bus = Bus::new().await;
    let proxy = hatched_tests::faults::FaultProxy::start(TestApp::upstream()).await;
    proxy.set(hatched_tests::faults::Fault::ResetOn("PutEvents")).await;
    let failing = bus.sink(Some(proxy.endpoint())).await;
    let failed = t.roll_up_usage_to(&failing).await;
    assert!(failed.is_err(), "the batch fails, so it comes again: {failed:?}");
    assert_eq!(bus.received().await, []);
    // The batch again, once the failed reader's claim has lapsed: delivered, and only once.
    t.app.clock.advance(31);
    let sink = bus.sink(None).await;
    t.roll_up_usage_to(&sink).await.expect("delivered");
    t.roll_up_usage_to(&sink).await.expect("nothing more");
    assert_eq!(kinds(&bus.received().await), ["apikey.near_rate_limit", "apikey.rate_limited"]);
}

#[tokio::test]
async fn publishable_keys_per_ip_windows_raise_no_event() {
    let t = TestApp::new().await.with_customer().await;
    let web = KeyOptions { allowed_origins: vec![ORIGIN.into()], scopes: Some(vec!["read:buddies".into()]), ..plain() };
    let (pk, _) = t.issue(Publishable, Live, web).await;
    before_the_hour(&t, 1_800);
    let statuses = burst(&t, &pk, 70, "203.0.113.9", Some(ORIGIN)).await;
    assert_eq!(count(&statuses, 429), 10);
    let bus = Bus::new().await;
    t.roll_up_usage_to(&bus.sink(None).await).await.unwrap();
    assert_eq!(bus.received().await, []);
}

/// The roll-up's cost, counted: per batch one read of its keys and one of its windows' counts
/// (at once), then per window one write per level (minute, hour, day, 64-day block); a limit
/// event adds its claim and its mark.
#[tokio::test]
async fn a_batch_costs_two_reads_and_four_writes_per_window() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Secret, Live, plain()).await;
    before_the_hour(&t, 1_800);
    burst(&t, &key, 10, "198.51.100.7", None).await;
    t.calls.clear();
    t.roll_up_usage().await;
    // Not the function's: the local consumer looks its stream up (Lambda is given it).
    let roll_up_ops = || t.calls.take().into_iter().filter(|o| o != "DescribeTable").collect::<Vec<_>>();
    let mut ops = roll_up_ops();
    ops.sort();
    assert_eq!(ops, ["BatchGetItem", "BatchGetItem", "UpdateItem", "UpdateItem", "UpdateItem", "UpdateItem"]);
    // Over 80 % of the limit: the near-limit event's claim and mark, once.
    burst(&t, &key, 40, "198.51.100.7", None).await;
    t.calls.clear();
    t.roll_up_usage().await;
    let ops = roll_up_ops();
    assert_eq!((ops.iter().filter(|o| *o == "UpdateItem").count(), ops.len()), (6, 8), "{ops:?}");
}

/// The longest hourly series (35 days, 840 points) reads one query of 36 day items, whatever
/// the traffic was. Prints its latency on this emulator (BENCHMARKS.md "Usage").
#[tokio::test]
async fn a_35_day_hourly_series_is_one_query_of_day_items() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (key, prefix) = t.issue(Secret, Live, plain()).await;
    let hash = hatched::domain::ApiKey::parse(&key).unwrap().hash();
    let now = t.app.clock.freeze().secs();
    let first = now - now.rem_euclid(3_600) - 839 * 3_600;
    // A window every fifth hour, over the whole 35 days: 1 + 2 + … requests.
    let readings: Vec<_> = (0..168)
        .map(|i| hatched::domain::usage::WindowCount {
            key_hash: hash.clone(),
            source: None,
            window_start: hatched::domain::UnixTime::from_secs(first + i * 5 * 3_600),
            span: hatched::domain::usage::Span::Minute,
            count: (i % 7 + 1) as u64,
            quota_refused: 0,
            seen_at: None,
        })
        .collect();
    let sent: u64 = readings.iter().map(|r| r.count).sum();
    t.app.usage.roll_up(readings, &hatched::usage::LogSink).await.unwrap();
    let q = format!("?granularity=hour&from={}", rfc3339(first));
    usage(&t, &admin, &prefix, "").await; // first use records last_used_at
    t.calls.clear();
    let series = usage(&t, &admin, &prefix, &q).await;
    let mut ops = t.calls.take();
    ops.sort();
    // One query: 36 small items are far under DynamoDB's 1 MB page; the model's 4 KB pages
    // cut it into a few.
    let queries = ops.iter().filter(|o| *o == "Query").count();
    ops.retain(|o| o != "Query");
    assert_eq!(ops, ["GetItem", "GetItem", "UpdateItem"], "the key, the managed key; the count");
    if hatched_tests::model_rules_in_force().is_empty() {
        assert_eq!(queries, 1);
    } else {
        assert!(queries >= 1);
    }
    let points = counts(&series);
    assert_eq!(points.len(), 840);
    assert_eq!(sum(&points), (sent, 0, 0));
    assert_eq!(points.iter().filter(|p| p.0 > 0).count(), 168);
    let mut took: Vec<f64> = Vec::new();
    for _ in 0..10 {
        let started = std::time::Instant::now();
        usage(&t, &admin, &prefix, &q).await;
        took.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    eprintln!("usage: a 35-day hourly series (840 points): median {:.1} ms, max {:.1} ms over 10", took[5], took[9]);
}

/// API.md "Counting": usage adds nothing to the accepted path. A keyed request whose key was
/// used this minute writes exactly one item, its month item (`ADD` to two counters of an item
/// well under 1 KB); the first use in a minute adds `last_used_at` on the key's two items.
#[tokio::test]
async fn the_accepted_path_writes_only_its_count() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Secret, Live, plain()).await;
    let gates = || t.send(Call::new("GET", GATES).key(&key));
    t.app.clock.freeze();
    assert_eq!(gates().await.status, 200);
    t.calls.take_writes();
    assert_eq!(gates().await.status, 200);
    let writes = t.calls.take_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let (target, body) = &writes[0];
    assert!(target.ends_with(".UpdateItem"), "{target}");
    assert!(body["Key"]["pk"]["S"].as_str().unwrap().starts_with("RL#Q#"), "{body}");
    let expression = body["UpdateExpression"].as_str().unwrap();
    assert!(expression.starts_with("ADD #count :one, #m :one SET #ttl = if_not_exists(#ttl, :ttl)"), "{expression}");
    // The item it writes, by DynamoDB's size rules: names and values (a number ≤ 21 bytes).
    let got = t.app.store.client().get_item().table_name(t.app.store.table()).consistent_read(true);
    let item = got.set_key(Some(body_key(body))).send().await.unwrap().item.unwrap();
    let size: usize = item.iter().map(|(name, v)| name.len() + v.as_s().map_or(21, |s| s.len())).sum();
    assert!(size < 1024, "the counting item stays under 1 KB: {size} bytes");
    assert_eq!(item.len(), 6, "pk, sk, count, ttl, this minute's mark and `w` (the minute written): {item:?}");
}

/// A secret key's minutes are marks on its month item, and a stream record names the minute its
/// write changed (`w`): a count given back for a minute after the next one began (a request
/// refused as the minute turned) still reaches that minute's usage, not the newest.
#[tokio::test]
async fn a_count_given_back_after_its_minute_ended_reaches_that_minute() {
    use hatched::domain::ratelimit::Counted;
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (key, prefix) = t.issue(Secret, Live, plain()).await;
    let hash = hatched::domain::ApiKey::parse(&key).unwrap().hash();
    let turn = before_the_hour(&t, 1_800);
    let (late, early) = (hatched::domain::UnixTime::from_secs(turn), hatched::domain::UnixTime::from_secs(turn - 1));
    let store = &t.app.store;
    for _ in 0..2 {
        store.count_request(&Counted::Key(&hash), early).await.unwrap();
    }
    store.count_request(&Counted::Key(&hash), late).await.unwrap();
    // The earlier minute's second request is refused after the later minute's was counted.
    store.uncount_request(&Counted::Key(&hash), early).await.unwrap();
    t.roll_up_usage().await;
    let from = hatched::domain::UnixTime::from_secs(turn - 60).rfc3339();
    let to = hatched::domain::UnixTime::from_secs(turn + 60).rfc3339();
    let path = format!("/api/v1/keys/{prefix}/usage?granularity=minute&from={from}&to={to}");
    let usage = t.send(Call::new("GET", &path).key(&admin)).await;
    let accepted: Vec<&Value> = usage.body["points"].as_array().unwrap().iter().map(|p| &p["accepted"]).collect();
    assert_eq!(accepted, [&json!(1), &json!(1)], "{}", usage.body);
}

/// The `Key` of a write's request body, as the SDK takes it.
fn body_key(body: &Value) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    use aws_sdk_dynamodb::types::AttributeValue;
    ["pk", "sk"]
        .iter()
        .map(|k| (k.to_string(), AttributeValue::S(body["Key"][k]["S"].as_str().unwrap().into())))
        .collect()
}

/// A publishable key is counted per source IP: a site with many visitors has many windows a
/// minute. They are kept in 256 buckets of IPs, so no item grows with the audience (a minute
/// item of every IP would pass DynamoDB's 400 KB item limit near 10,000 IPs), and the total
/// is exact.
#[tokio::test]
async fn many_source_ips_are_counted_exactly_in_small_items() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let web = KeyOptions { allowed_origins: vec![ORIGIN.into()], scopes: Some(vec!["read:buddies".into()]), ..plain() };
    let (pk, prefix) = t.issue(Publishable, Live, web).await;
    let start = before_the_hour(&t, 1_800);
    let t = &t;
    let calls = (0..300).map(|i| {
        let ip = format!("198.18.{}.{}", i / 250, i % 250 + 1);
        let call = Call::new("GET", GATES).key(&pk).header("origin", ORIGIN).from_ip(&ip);
        async move { t.send(call).await.status }
    });
    let statuses: Vec<u16> = futures::stream::iter(calls).buffer_unordered(50).collect().await;
    assert_eq!(count(&statuses, 200), 300);
    t.calls.clear();
    t.roll_up_usage().await;
    let updates = t.calls.take().iter().filter(|o| *o == "UpdateItem").count();
    let q = format!("?granularity=minute&from={}", rfc3339(start));
    assert_eq!(sum(&counts(&usage(t, &admin, &prefix, &q).await)), (300, 0, 0));
    // Every roll-up item of the key, sized as DynamoDB does (names plus values; a number's
    // text length bounds its stored size).
    let store = &t.app.store;
    let pk = aws_sdk_dynamodb::types::AttributeValue::S(format!("USE#{prefix}"));
    let items: Vec<_> = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", pk)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    let size = |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| -> usize {
        item.iter().map(|(k, v)| k.len() + v.as_s().or(v.as_n()).map(String::len).unwrap_or(0)).sum()
    };
    let sizes: Vec<usize> = items.iter().map(|i| size(i.as_ref().expect("query"))).collect();
    let buckets = items.len() - 4; // the minute, hour, day and block items; the rest are buckets
    assert!((100..=256).contains(&buckets), "300 IPs over 256 buckets: {buckets} bucket items");
    // Each bucket item and its slot in the minute; the minute carried up once (hour, day, block).
    assert_eq!(updates, 2 * buckets + 3, "{buckets} buckets");
    let largest = sizes.iter().max().copied().unwrap_or(0);
    assert!(largest < 8 * 1024, "the largest usage item is {largest} bytes");
}

/// A leaked key already revoked: each request is counted, then given back, so the stream shows
/// counts in between; they are no limit events and, once given back, no usage.
#[tokio::test]
async fn a_revoked_key_flood_raises_no_limit_event() {
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (key, prefix) = t.issue(Secret, Live, plain()).await;
    t.ctl(&["keys", "revoke", "--prefix", &prefix]).await.unwrap();
    let start = before_the_hour(&t, 1_800);
    let statuses = burst(&t, &key, 100, "198.51.100.7", None).await;
    assert_eq!(count(&statuses, 200), 0, "{statuses:?}");
    let bus = Bus::new().await;
    let sink = bus.sink(None).await;
    // A batch cut in the middle of the flood shows a count not yet given back.
    let midway = hatched::domain::usage::WindowCount {
        key_hash: hatched::domain::ApiKey::parse(&key).unwrap().hash(),
        source: None,
        window_start: hatched::domain::UnixTime::from_secs(start - start.rem_euclid(60)),
        span: hatched::domain::usage::Span::Minute,
        count: 61,
        quota_refused: 0,
        seen_at: None,
    };
    t.app.usage.roll_up(vec![midway], &sink).await.unwrap();
    t.roll_up_usage_to(&sink).await.unwrap();
    assert_eq!(bus.received().await, []);
    let q = format!("?granularity=minute&from={}", rfc3339(start));
    assert_eq!(sum(&counts(&usage(&t, &admin, &prefix, &q).await)), (0, 0, 0));
}

/// A key revoked after its window (the usual answer to abuse, perhaps while the roll-up is
/// behind) was live during it: that window's limit events are still published.
#[tokio::test]
async fn a_key_revoked_after_its_window_still_gets_its_limit_events() {
    let t = TestApp::new().await.with_customer().await;
    let (key, prefix) = t.issue(Secret, Live, plain()).await;
    before_the_hour(&t, 1_800);
    assert_eq!(count(&burst(&t, &key, 61, "198.51.100.7", None).await, 429), 1);
    t.app.clock.advance(60);
    t.ctl(&["keys", "revoke", "--prefix", &prefix]).await.unwrap();
    let bus = Bus::new().await;
    t.roll_up_usage_to(&bus.sink(None).await).await.unwrap();
    assert_eq!(kinds(&bus.received().await), ["apikey.near_rate_limit", "apikey.rate_limited"]);
}

#[tokio::test]
async fn a_key_over_its_monthly_quota_raises_quota_near_and_exhausted_once_per_month() {
    use hatched::domain::quota::{Month, MonthlyQuota};
    let t = TestApp::new().await.with_customer().await;
    let options = KeyOptions {
        tier: Some(Tier::Enterprise),
        monthly_quota: Some(Some(MonthlyQuota::new(10).unwrap())),
        ..plain()
    };
    let (key, prefix) = t.issue(Secret, Live, options).await;
    let month = Month::of(t.app.clock.freeze()).start.secs();
    let statuses = burst(&t, &key, 15, "198.51.100.7", None).await;
    assert_eq!((count(&statuses, 200), count(&statuses, 429)), (10, 5));
    let bus = Bus::new().await;
    let sink = bus.sink(None).await;
    t.roll_up_usage_to(&sink).await.expect("roll-up");
    // More refusals in the same month, read again: nothing new.
    let statuses = burst(&t, &key, 5, "198.51.100.7", None).await;
    assert_eq!(count(&statuses, 429), 5);
    t.roll_up_usage_to(&sink).await.expect("roll-up");
    let received = bus.received().await;
    assert_eq!(kinds(&received), ["apikey.quota_exhausted", "apikey.quota_near"], "{received:?}");
    for (kind, detail) in &received {
        assert_eq!(detail["event_id"], json!(format!("{prefix}:{kind}:{month}")));
        assert_eq!((&detail["limit"], &detail["window_start"]), (&json!(10), &json!(rfc3339(month))));
        assert_eq!(detail["tier"], json!("enterprise"));
    }
    // The rate-limit events are for the minute limit only: none here.
    assert!(!received.iter().any(|(k, _)| k.contains("rate_limit")));
}
