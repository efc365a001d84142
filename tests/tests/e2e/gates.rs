//! Gate unlocks, exactly once, against the real server: spends, repeats, races, 402s,
//! environments, scopes and the ledger invariant.

use std::collections::BTreeMap;

use hatched_tests::prelude::*;
use hatched_tests::{Answer, TestApp, keyed};
use serde_json::json;

/// Customer `acme` (primary `coins`, progression `xp`), buddy `b1` in live and test, an
/// enterprise live secret key (6000/min, so the races are not rate limited).
async fn setup() -> (TestApp, String) {
    let t = TestApp::new().await.with_customer().await;
    t.app.clock.freeze();
    t.buddy(Live, "b1").await;
    t.buddy(Test, "b1").await;
    let (key, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    (t, key)
}

async fn unlock_with(app: &hatched::App, key: &str, buddy: &str, gate: &str) -> Answer {
    functions::unlock_gate::handle(
        app,
        keyed("POST", &format!("/api/v1/buddies/{buddy}/gates/{gate}/unlock"), key, None),
    )
    .await
    .into()
}

async fn unlock(t: &TestApp, key: &str, buddy: &str, gate: &str) -> Answer {
    unlock_with(&t.app, key, buddy, gate).await
}

/// (balance, number of unlocks, ledger entries, ledger sum) from the operator's view.
async fn books(t: &TestApp, env: &str, buddy: &str) -> (i64, usize, usize, i64) {
    let show = t.ctl(&["balances", "show", "--customer", "acme", "--env", env, "--buddy", buddy]).await.unwrap();
    let balance = show["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["token_key"] == "coins")
        .map_or(0, |b| b["amount"].as_i64().unwrap());
    let ledger = show["ledger"].as_array().unwrap();
    let sum = ledger.iter().map(|e| e["amount"].as_i64().unwrap()).sum();
    (balance, show["unlocks"].as_array().unwrap().len(), ledger.len(), sum)
}

#[tokio::test]
async fn first_unlock_spends_the_cost_and_a_repeat_spends_nothing() {
    let (t, key) = setup().await;
    let metadata =
        json!({ "label": "Hat", "tier": 2, "ratio": 0.5, "tags": ["a", "b"], "nested": { "x": null, "ok": true } });
    t.gate("hat", 10, Some(&metadata)).await;
    t.credit(Live, "b1", 100).await;
    let first = unlock(&t, &key, "b1", "hat").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["already_unlocked"], false);
    assert_eq!(
        first.body["gate"],
        json!({ "gate_key": "hat", "token_key": "coins", "cost": 10, "metadata": metadata })
    );
    assert_eq!(first.body["balance"], json!({ "token_key": "coins", "amount": 90 }));
    assert_eq!(first.body["unlock"]["gate_key"], "hat");
    assert_eq!(first.body["unlock"]["metadata"], metadata);
    let unlocked_at = first.body["unlock"]["unlocked_at"].as_str().unwrap().to_owned();
    assert!(unlocked_at.ends_with('Z'));

    t.app.clock.advance(120);
    let again = unlock(&t, &key, "b1", "hat").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["already_unlocked"], true);
    assert_eq!(again.body["unlock"]["unlocked_at"], unlocked_at.as_str(), "the original time");
    assert_eq!(again.body["balance"]["amount"], 90, "nothing spent");
    assert_eq!(books(&t, "live", "b1").await, (90, 1, 1, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_identical_unlocks_spend_once_per_round() {
    let (t, key) = setup().await;
    let rounds = 10;
    t.credit(Live, "b1", 1000).await;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for round in 0..rounds {
        let gate_key = format!("g{round}");
        t.gate(&gate_key, 7, None).await;
        let calls = (0..50).map(|_| {
            let (app, key, gate_key) = (t.app.clone(), key.clone(), gate_key.clone());
            tokio::spawn(async move { unlock_with(&app, &key, "b1", &gate_key).await })
        });
        let answers: Vec<Answer> = futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
        for a in &answers {
            *statuses.entry(a.status).or_default() += 1;
        }
        let firsts = answers.iter().filter(|a| a.body["already_unlocked"] == false).count();
        assert_eq!(firsts, 1, "round {round}: exactly one spend");
        let times: std::collections::BTreeSet<&str> =
            answers.iter().map(|a| a.body["unlock"]["unlocked_at"].as_str().unwrap()).collect();
        assert_eq!(times.len(), 1, "everyone sees the same unlock");
        let (balance, unlocks, entries, sum) = books(&t, "live", "b1").await;
        assert_eq!(
            (balance, unlocks, entries, sum),
            (1000 - 7 * (round + 1), round as usize + 1, round as usize + 1, 7 * (round + 1))
        );
    }
    assert_eq!(statuses, BTreeMap::from([(200, 50 * rounds as usize)]), "all 200, never a 402 or 5xx");
    println!("concurrent unlocks: {} rounds x 50 calls, {} spends", rounds, rounds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_balance_for_k_of_n_gates_pays_exactly_k() {
    let (t, key) = setup().await;
    let (n, k, cost) = (20, 7, 5);
    for i in 0..n {
        t.gate(&format!("gate_{i:02}"), cost, None).await;
    }
    t.credit(Live, "b1", k * cost).await;
    let calls = (0..n).map(|i| {
        let (app, key) = (t.app.clone(), key.clone());
        tokio::spawn(async move { unlock_with(&app, &key, "b1", &format!("gate_{i:02}")).await })
    });
    let answers: Vec<Answer> = futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let poor: Vec<&Answer> = answers.iter().filter(|a| a.status == 402).collect();
    assert_eq!((ok, poor.len()), (k as usize, (n - k) as usize));
    for a in &poor {
        assert_eq!(a.code(), "insufficient_balance");
        let d = &a.body["error"]["details"];
        assert_eq!((d["token_key"].as_str(), d["required"].as_i64()), (Some("coins"), Some(cost)));
        assert!(d["available"].as_i64().unwrap() < cost && d["available"].as_i64().unwrap() >= 0);
    }
    let (balance, unlocks, entries, sum) = books(&t, "live", "b1").await;
    assert_eq!((balance, unlocks, entries, sum), (0, k as usize, k as usize, k * cost), "ledger sum == amount spent");
}

#[tokio::test]
async fn insufficient_balance_and_missing_gate_or_buddy() {
    let (t, key) = setup().await;
    t.gate("cape", 25, None).await;
    t.credit(Live, "b1", 24).await;
    let a = unlock(&t, &key, "b1", "cape").await;
    assert_eq!((a.status, a.code()), (402, "insufficient_balance"));
    assert_eq!(a.body["error"]["details"], json!({ "token_key": "coins", "required": 25, "available": 24 }));
    let never_credited = {
        t.buddy(Live, "b2").await;
        unlock(&t, &key, "b2", "cape").await
    };
    assert_eq!(never_credited.body["error"]["details"]["available"], 0);
    assert_eq!(unlock(&t, &key, "b1", "nope").await.code(), "gate_not_found");
    assert_eq!(unlock(&t, &key, "ghost", "cape").await.code(), "buddy_not_found");
    assert_eq!(unlock(&t, &key, "b1", "Bad-Key").await.code(), "invalid_request");
    assert_eq!(books(&t, "live", "b1").await, (24, 0, 0, 0), "a failed unlock changes nothing");
}

#[tokio::test]
async fn publishable_keys_need_write_unlocks() {
    let (t, _) = setup().await;
    t.gate("hat", 1, None).await;
    t.credit(Live, "b1", 5).await;
    let (default_pk, _) = t.issue(Publishable, Live, plain()).await;
    let a = unlock(&t, &default_pk, "b1", "hat").await;
    assert_eq!((a.status, a.code()), (403, "insufficient_scope"));
    assert_eq!(a.body["error"]["details"], json!({ "required": "write:unlocks" }));
    let (granted, _) = t.issue(Publishable, Live, scopes(&["read:buddies", "write:unlocks"])).await;
    let a = unlock(&t, &granted, "b1", "hat").await;
    assert_eq!((a.status, a.body["already_unlocked"].as_bool()), (200, Some(false)));
}

#[tokio::test]
async fn test_keys_never_see_or_spend_live_balances() {
    let (t, live_key) = setup().await;
    t.gate("hat", 10, None).await;
    t.credit(Live, "b1", 100).await;
    let (test_key, _) = t.issue(Secret, Test, plain()).await;
    let a = unlock(&t, &test_key, "b1", "hat").await;
    assert_eq!((a.status, a.code()), (402, "insufficient_balance"), "the test buddy has no coins");
    assert_eq!(a.body["error"]["details"]["available"], 0);
    assert_eq!(unlock(&t, &live_key, "b1", "hat").await.status, 200);
    let unlocks = |key: String| {
        let app = t.app.clone();
        async move {
            let a: Answer =
                functions::list_unlocks::handle(&app, keyed("GET", "/api/v1/buddies/b1/unlocks", &key, None))
                    .await
                    .into();
            a.body["unlocks"].as_array().unwrap().len()
        }
    };
    assert_eq!(unlocks(live_key.clone()).await, 1);
    assert_eq!(unlocks(test_key.clone()).await, 0, "live unlocks are invisible to test keys");
    t.buddy(Live, "live_only").await;
    assert_eq!(unlock(&t, &test_key, "live_only", "hat").await.code(), "buddy_not_found");
    assert_eq!(books(&t, "test", "b1").await, (0, 0, 0, 0));
    assert_eq!(books(&t, "live", "b1").await, (90, 1, 1, 10));
}

#[tokio::test]
async fn gates_are_listed_sorted_and_unlocks_come_back_whole() {
    let (t, key) = setup().await;
    // ~3.5 KB of metadata per gate: 300 unlocks exceed DynamoDB's 1 MB page, so the
    // listing must follow LastEvaluatedKey to return them all.
    let filler = "m".repeat(3500);
    let n = 300;
    for i in (0..n).rev() {
        t.gate(&format!("g{i:03}"), 1, Some(&json!({ "filler": filler }))).await;
    }
    t.credit(Live, "b1", n).await;
    let listed: Answer = functions::list_gates::handle(&t.app, keyed("GET", "/api/v1/gates", &key, None)).await.into();
    let keys: Vec<&str> =
        listed.body["gates"].as_array().unwrap().iter().map(|g| g["gate_key"].as_str().unwrap()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!((keys.len(), keys == sorted), (n as usize, true));
    for i in 0..n {
        assert_eq!(unlock(&t, &key, "b1", &format!("g{i:03}")).await.status, 200);
    }
    let a: Answer =
        functions::list_unlocks::handle(&t.app, keyed("GET", "/api/v1/buddies/b1/unlocks", &key, None)).await.into();
    let unlocks = a.body["unlocks"].as_array().unwrap();
    assert_eq!(unlocks.len(), n as usize);
    assert!(unlocks.windows(2).all(|w| w[0]["gate_key"].as_str() < w[1]["gate_key"].as_str()));
    assert_eq!(unlocks[0]["metadata"]["filler"], filler.as_str());
    let (pk, _) = t.issue(Publishable, Live, plain()).await;
    let a: Answer = functions::list_gates::handle(&t.app, keyed("GET", "/api/v1/gates", &pk, None)).await.into();
    assert_eq!(a.status, 200, "read:buddies is a publishable default");
    let a: Answer =
        functions::list_unlocks::handle(&t.app, keyed("GET", "/api/v1/buddies/ghost/unlocks", &key, None)).await.into();
    assert_eq!(a.code(), "buddy_not_found");
}

#[tokio::test]
async fn operator_commands_refuse_bad_gates_and_credits() {
    let (t, _) = setup().await;
    let cases: &[(&[&str], &str)] = &[
        (&["gates", "create", "--customer", "acme", "--gate", "g", "--token", "xp", "--cost", "5"], "progression"),
        (
            &["gates", "create", "--customer", "acme", "--gate", "g", "--token", "gems", "--cost", "5"],
            "not this customer's primary",
        ),
        (&["gates", "create", "--customer", "acme", "--gate", "g", "--token", "coins", "--cost", "0"], "positive"),
        (&["gates", "create", "--customer", "acme", "--gate", "g", "--token", "coins", "--cost", "-4"], "positive"),
        (
            &[
                "gates",
                "create",
                "--customer",
                "acme",
                "--gate",
                "g",
                "--token",
                "coins",
                "--cost",
                "5",
                "--metadata",
                "{oops",
            ],
            "not valid JSON",
        ),
        (&["gates", "create", "--customer", "acme", "--gate", "G!", "--token", "coins", "--cost", "5"], "gate_key"),
        (&["gates", "create", "--customer", "nobody", "--gate", "g", "--token", "coins", "--cost", "5"], "no customer"),
        (
            &[
                "balances",
                "credit",
                "--customer",
                "acme",
                "--env",
                "live",
                "--buddy",
                "b1",
                "--token",
                "coins",
                "--amount",
                "0",
            ],
            "positive",
        ),
        (
            &[
                "balances",
                "credit",
                "--customer",
                "acme",
                "--env",
                "live",
                "--buddy",
                "ghost",
                "--token",
                "coins",
                "--amount",
                "5",
            ],
            "no buddy",
        ),
        (
            &[
                "balances",
                "credit",
                "--customer",
                "acme",
                "--env",
                "live",
                "--buddy",
                "b1",
                "--token",
                "gems",
                "--amount",
                "5",
            ],
            "neither",
        ),
    ];
    for (args, needle) in cases {
        let err = t.ctl(args).await.expect_err(&format!("{args:?} should fail"));
        assert!(format!("{err:#}").contains(needle), "{args:?}: {err:#}");
    }
    let gates = t.ctl(&["gates", "list", "--customer", "acme"]).await.unwrap();
    assert_eq!(gates["gates"], json!([]), "nothing was created");
    t.gate("g", 5, None).await;
    let dup = t.ctl(&["gates", "create", "--customer", "acme", "--gate", "g", "--token", "coins", "--cost", "6"]).await;
    assert!(format!("{:#}", dup.unwrap_err()).contains("already exists"));
}

#[tokio::test]
async fn round_trips_per_unlock() {
    hatched_tests::assert_happy_path_model();
    let (t, key) = setup().await;
    t.gate("hat", 3, None).await;
    t.credit(Live, "b1", 10).await;
    unlock(&t, &key, "b1", "nope").await; // the key's first use records last_used_at
    t.calls.clear();
    unlock(&t, &key, "b1", "hat").await;
    let mut first = t.calls.take();
    first.sort();
    // GetItem: the key; BatchGetItem: gate, buddy, balance, unlock; TransactWriteItems: the
    // spend; UpdateItem: the rate window, concurrent with the key read.
    assert_eq!(first, ["BatchGetItem", "GetItem", "TransactWriteItems", "UpdateItem"]);
    unlock(&t, &key, "b1", "hat").await;
    let mut repeat = t.calls.take();
    repeat.sort();
    assert_eq!(repeat, ["BatchGetItem", "GetItem", "UpdateItem"]);
}
