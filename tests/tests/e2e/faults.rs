//! Dependency faults between the functions and DynamoDB: every answer is a success or a 503
//! with Retry-After — never a 500, never internals, never a hang past the SDK timeouts — and
//! once the fault clears, the books balance and every session item has its TTL.

use std::time::{Duration, Instant};

use hatched_tests::faults::{Fault, FaultProxy};
use hatched_tests::prelude::*;
use hatched_tests::{Answer, TestApp, json_post, keyed};
use serde_json::{Value, json};

/// Operation timeout (5 s) plus the second sequential call some handlers make, plus slack.
const BOUND: Duration = Duration::from_secs(12);

struct World {
    t: TestApp,
    key: String,
    session_token: String,
    session_id: String,
}

async fn world() -> World {
    let t = TestApp::new().await.with_customer().await;
    t.buddy(Live, "b1").await;
    t.gate("hat", 10, None).await;
    t.gate("cape", 10, None).await;
    t.credit(Live, "b1", 100).await;
    let (key, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let body = json!({ "buddy_id": "b1", "user_id": "u1", "scopes": ["read"] });
    let a: Answer =
        functions::create_widget_session::handle(&t.app, keyed("POST", "/api/v1/widget-sessions", &key, Some(&body)))
            .await
            .into();
    World {
        session_token: a.body["token"].as_str().unwrap().to_owned(),
        session_id: a.body["session_id"].as_str().unwrap().to_owned(),
        t,
        key,
    }
}

type Call<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = hatched::lambda_http::Response<hatched::lambda_http::Body>> + Send + 'a>,
>;

async fn timed(name: &'static str, call: Call<'_>) -> (&'static str, Answer, Duration) {
    let started = Instant::now();
    let a: Answer = call.await.into();
    (name, a, started.elapsed())
}

/// Every endpoint once, concurrently, through `app`; returns (endpoint, answer, elapsed).
async fn every_endpoint(app: &hatched::App, w: &World) -> Vec<(&'static str, Answer, Duration)> {
    let key = w.key.as_str();
    let session = json!({ "buddy_id": "b1", "user_id": "u2", "scopes": ["read"] });
    let embed = json!({ "buddy_id": "b1", "user_id": "u2" });
    let revoke = format!("/api/v1/widget-sessions/{}", w.session_id);
    futures::future::join_all([
        timed(
            "validate",
            Box::pin(functions::validate_key::handle(app, json_post("/api/v1/keys/validate", &json!({ "key": key })))),
        ),
        timed(
            "mint session",
            Box::pin(functions::create_widget_session::handle(
                app,
                keyed("POST", "/api/v1/widget-sessions", key, Some(&session)),
            )),
        ),
        timed(
            "mint embed",
            Box::pin(functions::create_embed_token::handle(
                app,
                keyed("POST", "/api/v1/embed-tokens", key, Some(&embed)),
            )),
        ),
        timed(
            "unlock",
            Box::pin(functions::unlock_gate::handle(
                app,
                keyed("POST", "/api/v1/buddies/b1/gates/hat/unlock", key, None),
            )),
        ),
        timed("list gates", Box::pin(functions::list_gates::handle(app, keyed("GET", "/api/v1/gates", key, None)))),
        timed(
            "list unlocks",
            Box::pin(functions::list_unlocks::handle(app, keyed("GET", "/api/v1/buddies/b1/unlocks", key, None))),
        ),
        timed(
            "introspect",
            Box::pin(functions::introspect_token::handle(
                app,
                json_post("/api/v1/tokens/introspect", &json!({ "token": w.session_token })),
            )),
        ),
        timed("revoke", Box::pin(functions::revoke_widget_session::handle(app, keyed("DELETE", &revoke, key, None)))),
    ])
    .await
}

fn assert_failed_safely(fault: &str, results: &[(&str, Answer, Duration)]) -> (usize, usize) {
    let (mut ok, mut unavailable) = (0, 0);
    for (name, a, elapsed) in results {
        assert!(*elapsed < BOUND, "{fault}/{name} took {elapsed:?}");
        let text = a.body.to_string();
        for internal in ["127.0.0.1", "dynamodb", "Dispatch", "timeout", "hatched_"] {
            assert!(!text.to_lowercase().contains(&internal.to_lowercase()), "{fault}/{name} leaks {internal}: {text}");
        }
        match a.status {
            200..=299 => ok += 1,
            503 => {
                assert_eq!(a.code(), "service_unavailable", "{fault}/{name}");
                assert!(a.header("retry-after").is_some(), "{fault}/{name}: Retry-After");
                unavailable += 1;
            }
            other => panic!("{fault}/{name}: unexpected {other}: {text}"),
        }
    }
    (ok, unavailable)
}

/// balance debited ⇔ unlock exists ⇔ ledger entry exists; sessions all carry a TTL.
async fn assert_invariants(t: &TestApp, credited: i64) {
    let show = t.ctl(&["balances", "show", "--customer", "acme", "--env", "live", "--buddy", "b1"]).await.unwrap();
    let balance = show["balances"][0]["amount"].as_i64().unwrap();
    let unlocks: Vec<&str> =
        show["unlocks"].as_array().unwrap().iter().map(|u| u["gate_key"].as_str().unwrap()).collect();
    let ledger: Vec<(&str, i64)> = show["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["gate_key"].as_str().unwrap(), e["amount"].as_i64().unwrap()))
        .collect();
    let spent: i64 = ledger.iter().map(|(_, a)| a).sum();
    assert_eq!(credited - balance, spent, "debits equal the ledger");
    let mut ledger_gates: Vec<&str> = ledger.iter().map(|(g, _)| *g).collect();
    ledger_gates.sort();
    assert_eq!(unlocks, ledger_gates, "one ledger entry per unlock and no other");
    let items =
        t.app.store.client().scan().table_name(t.app.store.table()).send().await.unwrap().items.unwrap_or_default();
    let sessions: Vec<&_> = items.iter().filter(|i| i["pk"].as_s().is_ok_and(|pk| pk.starts_with("WS#"))).collect();
    assert!(!sessions.is_empty());
    assert!(sessions.iter().all(|s| s.contains_key("ttl")), "every session item has its TTL");
}

async fn run_fault(fault: Fault, expect_unavailable: bool) {
    let w = world().await;
    let proxy = FaultProxy::start(TestApp::upstream()).await;
    let app = w.t.behind(&proxy).await;
    proxy.set(fault.clone()).await;
    let results = every_endpoint(&app, &w).await;
    let (ok, unavailable) = assert_failed_safely(&format!("{fault:?}"), &results);
    if expect_unavailable {
        assert!(unavailable > 0, "{fault:?}: no endpoint noticed the fault");
    }
    proxy.set(Fault::None).await;
    assert_invariants(&w.t, 100).await;
    // After the fault, the unlock settles into exactly one spend.
    let a: Answer =
        functions::unlock_gate::handle(&app, keyed("POST", "/api/v1/buddies/b1/gates/hat/unlock", &w.key, None))
            .await
            .into();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_invariants(&w.t, 100).await;
    println!(
        "fault {fault:?}: {ok} ok, {unavailable} x 503, lost answers {}",
        proxy.lost_answers.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[tokio::test]
async fn refused_connections_give_503() {
    run_fault(Fault::Refuse, true).await;
}

#[tokio::test]
async fn reset_connections_give_503() {
    run_fault(Fault::Reset, true).await;
}

#[tokio::test]
async fn a_dependency_slower_than_the_attempt_timeout_gives_503_in_bounded_time() {
    run_fault(Fault::Delay(Duration::from_millis(2500)), true).await;
}

#[tokio::test]
async fn a_slow_dependency_within_the_timeouts_still_succeeds() {
    let w = world().await;
    let proxy = FaultProxy::start(TestApp::upstream()).await;
    let app = w.t.behind(&proxy).await;
    proxy.set(Fault::Delay(Duration::from_millis(150))).await;
    let results = every_endpoint(&app, &w).await;
    let (ok, unavailable) = assert_failed_safely("slow", &results);
    assert_eq!((ok, unavailable), (8, 0));
    assert_invariants(&w.t, 100).await;
}

#[tokio::test]
async fn a_committed_spend_whose_answer_is_lost_is_never_spent_twice() {
    let w = world().await;
    let proxy = FaultProxy::start(TestApp::upstream()).await;
    let app = w.t.behind(&proxy).await;
    proxy.set(Fault::LoseAnswerOf("TransactWriteItems")).await;
    let a: Answer =
        functions::unlock_gate::handle(&app, keyed("POST", "/api/v1/buddies/b1/gates/cape/unlock", &w.key, None))
            .await
            .into();
    assert!(matches!(a.status, 200 | 503), "{}", a.body);
    assert!(proxy.lost_answers.load(std::sync::atomic::Ordering::Relaxed) > 0, "the fault was exercised");
    proxy.set(Fault::None).await;
    // The write landed (or not) as a whole; a retry finds it and spends nothing more.
    let again: Answer =
        functions::unlock_gate::handle(&app, keyed("POST", "/api/v1/buddies/b1/gates/cape/unlock", &w.key, None))
            .await
            .into();
    assert_eq!(again.status, 200);
    assert_eq!(again.body["balance"]["amount"], 90, "spent exactly once: {}", again.body);
    assert_invariants(&w.t, 100).await;
    let _: Value = again.body;
}

/// The four key-holding functions load their signing keys during init. If Secrets Manager is
/// unreachable then, the function still starts (the failure is only logged, within the SDK
/// timeouts), requests answer 503 while it stays down, and the first request after it is
/// back loads the keys and mints.
#[tokio::test]
async fn a_key_load_that_fails_at_init_is_retried_by_the_requests() {
    let w = world().await;
    let proxy = FaultProxy::start(TestApp::upstream()).await;
    let app = w.t.all_behind(&proxy).await;
    proxy.set(Fault::Refuse).await;
    let started = Instant::now();
    app.signer.preload().await;
    assert!(started.elapsed() < BOUND, "init waited {:?}", started.elapsed());

    let body = json!({ "buddy_id": "b1", "user_id": "u1" });
    let mint =
        || functions::create_embed_token::handle(&app, keyed("POST", "/api/v1/embed-tokens", &w.key, Some(&body)));
    let down: Answer = mint().await.into();
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(down.header("retry-after").is_some(), "503 carries Retry-After");

    proxy.set(Fault::None).await;
    let up: Answer = mint().await.into();
    assert_eq!(up.status, 201, "{}", up.body);
    assert!(up.body["token"].as_str().is_some_and(|t| t.split('.').count() == 3));
}

/// A session mint whose transaction lands but whose answer is lost: the SDK's retry finds the
/// session already there — its own, the id being fresh — and the mint succeeds once.
#[tokio::test]
async fn a_session_mint_whose_answer_is_lost_succeeds_once() {
    let w = world().await;
    let proxy = FaultProxy::start(TestApp::upstream()).await;
    let app = w.t.behind(&proxy).await;
    proxy.set(Fault::LoseFirstAnswerOf("TransactWriteItems")).await;
    let body = serde_json::json!({ "buddy_id": "b1", "user_id": "u1", "scopes": ["read"] });
    let a: Answer =
        functions::create_widget_session::handle(&app, keyed("POST", "/api/v1/widget-sessions", &w.key, Some(&body)))
            .await
            .into();
    assert_eq!(proxy.lost_answers.load(std::sync::atomic::Ordering::Relaxed), 1, "the fault was exercised");
    assert_eq!(a.status, 201, "{}", a.body);
    let token = a.body["token"].as_str().unwrap();
    assert_eq!(w.t.introspect(token).await.body["active"], true, "the session the answer names exists");
}
