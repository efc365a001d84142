//! Through the DynamoDB behaviour model (`hatchctl dynamodb-model`, in process, in front of the
//! emulator): what real DynamoDB does under concurrency and load and the emulators never do —
//! transaction conflicts, throttling, pages cut by size, partial batches. Each test starts its
//! own model with the rules it needs; the calls are counted per SDK attempt.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hatchctl::model::{Batches, Rules, Stats};
use hatched_tests::prelude::*;
use hatched_tests::{CallLog, Modelled};
use serde_json::{Value, json};

// Owned futures (the App is a handle to clone), so requests can be spawned and raced.
fn get(app: &hatched::App, key: &str, path: &str) -> impl Future<Output = Answer> + Send + 'static + use<> {
    let (app, call) = (app.clone(), Call::new("GET", path).key(key));
    async move { call.send(&app).await }
}

fn send(
    app: &hatched::App,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> impl Future<Output = Answer> + Send + 'static + use<> {
    let (app, call) = (app.clone(), Call::new(method, path).key(key).json(&body));
    async move { call.send(&app).await }
}

fn unlock(app: &hatched::App, key: &str, gate: &str) -> impl Future<Output = Answer> + Send + 'static + use<> {
    let (app, call) = (app.clone(), Call::new("POST", &format!("/api/v1/buddies/b1/gates/{gate}/unlock")).key(key));
    async move { call.send(&app).await }
}

/// The racing tests take turns: each measures contention on one item, and a single-process
/// emulator serving two bursts at once would measure the emulator's queue instead.
static RACES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn setup() -> (TestApp, String) {
    let t = TestApp::new().await.with_customer().await;
    t.buddy(Live, "b1").await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    (t, admin)
}

fn conflicts(hold_ms: u64) -> Rules {
    Rules { conflicts: true, hold: Duration::from_millis(hold_ms), ..Rules::default() }
}

/// Every page of `path` (which has no query yet) followed through its cursors.
async fn all_pages(app: &hatched::App, key: &str, path: &str, field: &str) -> (Vec<Value>, usize) {
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let url = cursor.as_ref().map_or(path.to_owned(), |c| format!("{path}?cursor={c}"));
        let a = get(app, key, &url).await;
        assert_eq!(a.status, 200, "{}", a.body);
        pages += 1;
        seen.extend(a.body[field].as_array().unwrap().iter().cloned());
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (seen, pages),
        }
    }
}

fn count(calls: &[String], op: &str) -> usize {
    calls.iter().filter(|c| c.as_str() == op).count()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// A long origin list, different per `round`: a PATCH setting it writes an audit event of a
/// few kilobytes (old and new lists).
fn big_origins(round: usize) -> Vec<String> {
    (0..24).map(|i| format!("https://{}-{round}-{i}.example.com", "o".repeat(50))).collect()
}

/// Issue 20, item 3: 40 large PATCHes used to push a key's own `key.created` out of reach (a
/// page cut short by DynamoDB's size limit was answered as the last page). Under 4 KB pages
/// every event is still reached, newest first, by cursor.
#[tokio::test]
async fn a_page_cut_at_4_kb_still_reaches_every_audit_event() {
    let (t, admin) = setup().await;
    let m = t.modelled(Rules { page_bytes: Some(4096), ..Rules::default() }).await;
    let (_, prefix) = t.issue(Publishable, Live, plain()).await;
    for round in 0..40 {
        let body = json!({ "allowed_origins": big_origins(round) });
        let a = send(&m.app, &admin, "PATCH", &format!("/api/v1/keys/{prefix}"), body).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    for path in ["/api/v1/audit-events?limit=50".to_owned(), format!("/api/v1/audit-events?limit=50&target={prefix}")] {
        m.calls.clear();
        let (events, pages) = all_pages_query(&m.app, &admin, &path).await;
        let queries = count(&m.calls.take(), "Query");
        println!("model: 4 KB pages: {path}: {} events in {pages} pages of 50, {queries} queries", events.len());
        let mine: Vec<&Value> = events.iter().filter(|e| e["target"] == prefix.as_str()).collect();
        assert_eq!(mine.len(), 41, "{path}: forty updates and the creation");
        assert_eq!(mine.last().unwrap()["action"], "key.created", "{path}: the oldest is reached");
        let times: Vec<&str> = events.iter().map(|e| e["time"].as_str().unwrap_or_default()).collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "{path}: newest first");
    }
    assert!(Stats::get(&m.model.model.stats.pages_cut) > 0, "the model did cut pages");
    // Keys (a query of the index): every key reached through cut pages.
    let many = big_origins(99);
    for _ in 0..6 {
        t.issue(Publishable, Live, origins(&many.iter().map(String::as_str).collect::<Vec<_>>())).await;
    }
    let (keys, pages) = all_pages(&m.app, &admin, "/api/v1/keys", "keys").await;
    assert_eq!(keys.len(), 8, "the admin, the patched key and six more, in {pages} page(s)");
}

/// As [`all_pages`] for a path that already has a query.
async fn all_pages_query(app: &hatched::App, key: &str, path: &str) -> (Vec<Value>, usize) {
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let url = cursor.as_ref().map_or(path.to_owned(), |c| format!("{path}&cursor={c}"));
        let a = get(app, key, &url).await;
        assert_eq!(a.status, 200, "{}", a.body);
        pages += 1;
        seen.extend(a.body["events"].as_array().unwrap().iter().cloned());
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (seen, pages),
        }
    }
}

/// Concurrent mints for one buddy all condition-check the buddy item: under DynamoDB they
/// conflict, and each loser is sent again (bounded, jittered) until it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_session_mints_for_one_buddy_meet_conflicts_and_all_succeed() {
    let _turn = RACES.lock().await;
    let (t, admin) = setup().await;
    let m = t.modelled(conflicts(10)).await;
    let n = 20;
    let (answers, times) = race(n, |i| {
        let body = json!({ "buddy_id": "b1", "user_id": format!("u{i}"), "scopes": ["read"] });
        send(&m.app, &admin, "POST", "/api/v1/widget-sessions", body)
    })
    .await;
    let conflicts = Stats::get(&m.model.model.stats.transaction_conflicts);
    report(&format!("session mints for one buddy {:?}", statuses(&answers)), n, &times, &m.calls, conflicts);
    for a in &answers {
        // The code only: a successful answer carries a token, which must not reach the output.
        assert_eq!(a.status, 201, "{}", a.code());
    }
    assert!(conflicts > 0, "the mints did meet each other");
}

/// A PATCH and a roll of one key at once: both transactions write the key's records, so one
/// meets the other in flight; both land, each with its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn patch_and_roll_at_once_both_land_under_conflicts() {
    let _turn = RACES.lock().await;
    let (t, admin) = setup().await;
    let m = t.modelled(conflicts(40)).await;
    for round in 0..4 {
        let (_, prefix) = t.issue(Secret, Live, plain()).await;
        let label = format!("label-{round}");
        let path = format!("/api/v1/keys/{prefix}");
        let patch = send(&m.app, &admin, "PATCH", &path, json!({ "label": label }));
        let roll = send(&m.app, &admin, "POST", &format!("{path}/roll"), json!({ "grace_seconds": 600 }));
        let (patched, rolled) = tokio::join!(patch, roll);
        assert_eq!((patched.status, rolled.status), (200, 201), "{} {}", patched.body, rolled.body);
        let record = get(&t.app, &admin, &path).await.body;
        assert_eq!(record["label"], label.as_str(), "the patch is not lost");
        assert!(record["expires_at"].as_str().is_some(), "the roll is not lost");
        let (events, _) =
            all_pages_query(&t.app, &admin, &format!("/api/v1/audit-events?target={prefix}&limit=10")).await;
        assert_eq!(events.len(), 3, "created, updated, rolled: {events:?}");
    }
    assert!(Stats::get(&m.model.model.stats.transaction_conflicts) > 0, "they did meet");
}

/// "BatchGetItem": unprocessed keys are asked again after a pause. Twice unprocessed, then
/// answered: the unlock spends once. Never answered: 503 with `Retry-After`, nothing spent,
/// never "the buddy has no balance".
#[tokio::test]
async fn unprocessed_keys_twice_then_success_and_forever_503() {
    let (t, admin) = setup().await;
    t.gate("hat", 3, None).await;
    t.credit(Live, "b1", 10).await;
    let m = t.modelled(Rules { batches: Batches::NoneFor(2), ..Rules::default() }).await;
    let a = unlock(&m.app, &admin, "hat").await;
    assert_eq!((a.status, a.body["already_unlocked"].as_bool()), (200, Some(false)), "{}", a.body);
    assert_eq!(count(&m.calls.take(), "BatchGetItem"), 3, "two unprocessed, the third answered");
    assert_eq!(Stats::get(&m.model.model.stats.batches_cut), 2);

    let never = t.modelled(Rules { batches: Batches::NoneFor(u32::MAX), ..Rules::default() }).await;
    t.gate("cap", 3, None).await;
    let a = unlock(&never.app, &admin, "cap").await;
    assert_eq!((a.status, a.code()), (503, "service_unavailable"), "{}", a.body);
    assert!(a.header("retry-after").is_some());
    assert_eq!(count(&never.calls.take(), "BatchGetItem"), hatched::store::retry::MAX_ATTEMPTS as usize);
    let balance = t.ctl(&["balances", "show", "--customer", "acme", "--env", "live", "--buddy", "b1"]).await.unwrap();
    assert_eq!(balance["unlocks"].as_array().unwrap().len(), 1, "nothing spent by the 503");
}

/// Everything throttled (after the SDK's own retries): every route answers 503 with
/// `Retry-After`, never a 500 — single calls and transactions (a `ThrottlingError` reason).
#[tokio::test]
async fn throttling_everywhere_is_503_with_retry_after_never_500() {
    let (t, admin) = setup().await;
    t.gate("hat", 3, None).await;
    t.credit(Live, "b1", 10).await;
    let (_, prefix) = t.issue(Secret, Live, plain()).await;
    let m = t.modelled(Rules { throttle_rate: 1.0, ..Rules::default() }).await;
    let answers = [
        unlock(&m.app, &admin, "hat").await,
        send(&m.app, &admin, "POST", "/api/v1/widget-sessions", json!({ "buddy_id": "b1", "user_id": "u" })).await,
        get(&m.app, &admin, "/api/v1/keys").await,
        send(&m.app, &admin, "PATCH", &format!("/api/v1/keys/{prefix}"), json!({ "label": "x" })).await,
    ];
    for a in answers {
        assert_eq!((a.status, a.code()), (503, "service_unavailable"), "{}", a.body);
        assert!(a.header("retry-after").is_some(), "{:?}", a.headers);
    }
    assert!(Stats::get(&m.model.model.stats.throttled) > 0);
}

/// Runs `n` requests at once; their answers and times, sorted by time.
async fn race<F, Fut>(n: usize, request: F) -> (Vec<Answer>, Vec<Duration>)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Answer> + Send + 'static,
{
    let calls = (0..n).map(|i| {
        let call = request(i);
        tokio::spawn(async move {
            let start = Instant::now();
            let a = call.await;
            (a, start.elapsed())
        })
    });
    let (answers, mut times): (Vec<Answer>, Vec<Duration>) =
        futures::future::join_all(calls).await.into_iter().map(Result::unwrap).unzip();
    times.sort();
    (answers, times)
}

fn statuses(answers: &[Answer]) -> std::collections::BTreeMap<u16, usize> {
    answers.iter().fold(Default::default(), |mut s, a| {
        *s.entry(a.status).or_default() += 1;
        s
    })
}

/// Prints what BENCHMARKS.md records: latency percentiles and the attempts the retries took.
fn report(what: &str, n: usize, times: &[Duration], calls: &CallLog, conflicts: u64) {
    let ops = calls.take();
    println!(
        "model: {what}: n={n} p50={:?} p99={:?} max={:?}; SDK attempts: {} TransactWriteItems, {} BatchGetItem, {} GetItem; {} cancelled by conflict",
        percentile(times, 0.5),
        percentile(times, 0.99),
        times.last().unwrap(),
        count(&ops, "TransactWriteItems"),
        count(&ops, "BatchGetItem"),
        count(&ops, "GetItem"),
        conflicts,
    );
}

/// Issue 20's exactly-once check under every rule but throttling: 200 identical unlocks at
/// once, conflicts held 10 ms, half of each batch unprocessed, 4 KB pages: one spend, every
/// other answer `already_unlocked`, all 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_racing_unlocks_spend_once_under_the_model() {
    let _turn = RACES.lock().await;
    let (t, admin) = setup().await;
    t.gate("hat", 7, None).await;
    t.credit(Live, "b1", 100).await;
    let rules = Rules { page_bytes: Some(4096), batches: Batches::Half, ..conflicts(10) };
    let m = t.modelled(rules).await;
    let n = 200;
    let (answers, times) = race(n, |_| unlock(&m.app, &admin, "hat")).await;
    let conflicts = Stats::get(&m.model.model.stats.transaction_conflicts);
    report(&format!("200 racing unlocks {:?}", statuses(&answers)), n, &times, &m.calls, conflicts);
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let firsts = answers.iter().filter(|a| a.body["already_unlocked"] == false).count();
    assert_eq!(firsts, 1, "exactly one spend");
    let others = answers.iter().filter(|a| a.body["already_unlocked"] == true).count();
    assert_eq!(others, n - 1, "every other answer is already_unlocked");
    let balance = t.ctl(&["balances", "show", "--customer", "acme", "--env", "live", "--buddy", "b1"]).await.unwrap();
    assert_eq!(balance["balances"][0]["amount"], 93);
    assert_eq!(balance["ledger"].as_array().unwrap().len(), 1);
}

/// With throttling too (5% of calls): never a 500, still one spend, every 503 carries
/// `Retry-After`; concurrent mints for one buddy either land or are a 503 with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_every_rule_with_throttling_no_answer_is_a_500() {
    let _turn = RACES.lock().await;
    let (t, admin) = setup().await;
    t.gate("hat", 7, None).await;
    t.credit(Live, "b1", 100).await;
    let rules = Rules { page_bytes: Some(4096), batches: Batches::Half, throttle_rate: 0.05, ..conflicts(10) };
    let m: Modelled = t.modelled(rules).await;
    let (unlocks, _) = race(100, |_| unlock(&m.app, &admin, "hat")).await;
    let (mints, _) = race(20, |i| {
        let body = json!({ "buddy_id": "b1", "user_id": format!("u{i}"), "scopes": ["read"] });
        send(&m.app, &admin, "POST", "/api/v1/widget-sessions", body)
    })
    .await;
    for a in unlocks.iter().chain(&mints) {
        // The code only: a successful answer carries a token, which must not reach the output.
        assert!(matches!(a.status, 200 | 201 | 503), "{} {}", a.status, a.code());
        if a.status == 503 {
            assert!(a.header("retry-after").is_some(), "{:?}", a.headers);
        }
    }
    let spends = unlocks.iter().filter(|a| a.status == 200 && a.body["already_unlocked"] == false).count();
    let balance = t.ctl(&["balances", "show", "--customer", "acme", "--env", "live", "--buddy", "b1"]).await.unwrap();
    let ledger = balance["ledger"].as_array().unwrap().len();
    assert!(spends <= 1 && ledger <= 1, "at most one spend: {spends} answered, {ledger} in the ledger");
    assert_eq!(balance["balances"][0]["amount"], 100 - 7 * ledger as i64, "the books balance");
    println!(
        "model with 5% throttling: unlocks {} x 200 / {} x 503, mints {} x 201 / {} x 503; {} throttled by the model",
        unlocks.iter().filter(|a| a.status == 200).count(),
        unlocks.iter().filter(|a| a.status == 503).count(),
        mints.iter().filter(|a| a.status == 201).count(),
        mints.iter().filter(|a| a.status == 503).count(),
        m.model.model.stats.throttled.load(Ordering::Relaxed),
    );
}

/// One `ADD n` on `pk` as a transaction, with `token` if given.
async fn add_in_transaction(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
    n: i64,
    token: Option<&str>,
) -> Result<
    (),
    aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError>,
> {
    use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
    let update = Update::builder()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S("n".into()))
        .update_expression("ADD n :n")
        .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
        .build()
        .unwrap();
    client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().update(update).build())
        .set_client_request_token(token.map(str::to_owned))
        .send()
        .await
        .map(|_| ())
}

async fn counted(t: &TestApp, pk: &str) -> Option<String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let client = aws_sdk_dynamodb::Client::new(&hatched_tests::sdk_config().await);
    let item = client
        .get_item()
        .table_name(t.app.store.table())
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S("n".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default();
    item.get("n").and_then(|n| n.as_n().ok()).cloned()
}

/// The SDK gives every TransactWriteItems a `ClientRequestToken` and sends it again when it
/// retries an attempt that timed out; DynamoDB commits it once. Here the model answers no
/// sooner than 600 ms and the SDK gives each attempt 400 ms: the first attempt times out after
/// it was forwarded, the retry waits for it and is answered without writing again.
#[tokio::test]
async fn an_sdk_retry_of_a_timed_out_transaction_writes_once() {
    let t = TestApp::new().await;
    let model = hatchctl::model::start(&hatched_tests::emulator_url(), "127.0.0.1:0", conflicts(600)).await.unwrap();
    let calls = CallLog::default();
    let attempt = aws_smithy_types::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_millis(400))
        .build();
    let config = aws_sdk_dynamodb::config::Builder::from(&hatched_tests::sdk_config().await)
        .endpoint_url(model.endpoint())
        .timeout_config(attempt)
        .interceptor(calls.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    add_in_transaction(&client, t.app.store.table(), "retried", 1, None).await.expect("the retry succeeds");
    assert!(count(&calls.take(), "TransactWriteItems") >= 2, "the first attempt timed out and was retried");
    assert_eq!(counted(&t, "retried").await.as_deref(), Some("1"), "committed once");
    assert!(Stats::get(&model.model.stats.tokens_replayed) >= 1);
}

/// The same token with the same parameters writes once; with other parameters it is refused.
#[tokio::test]
async fn a_client_request_token_commits_once_and_refuses_other_parameters() {
    let t = TestApp::new().await;
    let model = hatchctl::model::start(&hatched_tests::emulator_url(), "127.0.0.1:0", Rules::default()).await.unwrap();
    let config = aws_sdk_dynamodb::config::Builder::from(&hatched_tests::sdk_config().await)
        .endpoint_url(model.endpoint())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let table = t.app.store.table();
    // Tokens are the emulator's, not the table's (ministack keeps them too): fresh ones per run.
    let (one, two) = (hatched::domain::key::random_base62(20), hatched::domain::key::random_base62(20));
    for _ in 0..3 {
        add_in_transaction(&client, table, "once", 1, Some(&one)).await.expect("a repeat succeeds");
    }
    assert_eq!(counted(&t, "once").await.as_deref(), Some("1"));
    let e = add_in_transaction(&client, table, "once", 2, Some(&one)).await.unwrap_err();
    let code = e.as_service_error().and_then(|e| aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e));
    assert_eq!(code, Some("IdempotentParameterMismatchException"), "{e:?}");
    assert_eq!(counted(&t, "once").await.as_deref(), Some("1"));
    add_in_transaction(&client, table, "once", 2, Some(&two)).await.unwrap();
    add_in_transaction(&client, table, "once", 4, None).await.unwrap();
    assert_eq!(counted(&t, "once").await.as_deref(), Some("7"), "other tokens, and none, each write");
}
