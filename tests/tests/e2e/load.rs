//! A bounded mixed workload through the local API over HTTP: many concurrent clients for a
//! fixed time, zero unexpected statuses, and the books balance afterwards.

use std::time::{Duration, Instant};

use hatched_tests::TestApp;
use hatched_tests::prelude::*;
use serde_json::{Value, json};

const CLIENTS: usize = 16;
const DURATION: Duration = Duration::from_secs(6);
const GATES: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_workload_through_the_local_api() {
    let t = TestApp::new().await.with_customer().await;
    for g in 0..GATES {
        t.gate(&format!("g{g:02}"), 1, None).await;
    }
    let mut keys = Vec::new();
    for c in 0..CLIENTS {
        let buddy = format!("b{c}");
        t.buddy(Live, &buddy).await;
        t.credit(Live, &buddy, 1000).await;
        keys.push(t.issue(Secret, Live, tier(Tier::Enterprise)).await.0);
    }
    let listener = hatchctl::serve::bind(0).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(hatchctl::serve::serve(t.app.clone(), listener));

    let started = Instant::now();
    let clients = keys.into_iter().enumerate().map(|(c, key)| {
        let base = base.clone();
        tokio::spawn(async move { client(c, &base, &key, started).await })
    });
    let results: Vec<(Vec<Duration>, Vec<String>)> =
        futures::future::join_all(clients).await.into_iter().map(Result::unwrap).collect();
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = results.iter().flat_map(|(l, _)| l.clone()).collect();
    let unexpected: Vec<String> = results.into_iter().flat_map(|(_, u)| u).collect();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "load: {} requests from {CLIENTS} clients in {:.1} s = {:.0} req/s; p50 {:.1} ms, p99 {:.1} ms; unexpected {}",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        unexpected.len()
    );
    assert!(unexpected.is_empty(), "unexpected answers: {:?}", &unexpected[..unexpected.len().min(5)]);
    // Every client finishes at least the loop it started (six calls, five when a mint failed).
    assert!(latencies.len() >= CLIENTS * 5, "the workload ran: {} requests", latencies.len());

    for c in 0..CLIENTS {
        let show = t
            .ctl(&["balances", "show", "--customer", "acme", "--env", "live", "--buddy", &format!("b{c}")])
            .await
            .unwrap();
        let balance = show["balances"][0]["amount"].as_i64().unwrap();
        let unlocks = show["unlocks"].as_array().unwrap().len() as i64;
        let ledger = show["ledger"].as_array().unwrap();
        let spent: i64 = ledger.iter().map(|e| e["amount"].as_i64().unwrap()).sum();
        assert_eq!((1000 - balance, ledger.len() as i64), (spent, unlocks), "buddy b{c}");
        assert_eq!(spent, unlocks, "each gate costs 1");
    }
}

/// One client's loop: validate, mint a session, introspect it, mint an embed token, unlock
/// the next gate (again and again), revoke the session. Returns latencies and surprises.
async fn client(c: usize, base: &str, key: &str, started: Instant) -> (Vec<Duration>, Vec<String>) {
    let http = reqwest::Client::new();
    let (mut latencies, mut unexpected) = (Vec::new(), Vec::new());
    let mut n = 0usize;
    let buddy = format!("b{c}");
    while started.elapsed() < DURATION {
        let gate = format!("g{:02}", n % GATES);
        n += 1;
        let mut call =
            async |method: &str, path: &str, body: Option<Value>, auth: bool, expect: &[u16]| -> Option<Value> {
                let mut req = http.request(method.parse().unwrap(), format!("{base}{path}"));
                if auth {
                    req = req.bearer_auth(key);
                }
                if let Some(b) = body {
                    req = req.json(&b);
                }
                let t0 = Instant::now();
                let resp = req.send().await.ok()?;
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                latencies.push(t0.elapsed());
                if !expect.contains(&status) {
                    unexpected.push(format!("{method} {path}: {status} {body}"));
                }
                Some(body)
            };
        call("POST", "/api/v1/keys/validate", Some(json!({ "key": key })), false, &[200]).await;
        let session = call(
            "POST",
            "/api/v1/widget-sessions",
            Some(json!({ "buddy_id": buddy, "user_id": "u", "scopes": ["read"] })),
            true,
            &[201],
        )
        .await;
        let token = session.as_ref().and_then(|s| s["token"].as_str()).unwrap_or("").to_owned();
        // Keyless: 60 a minute per source IP, and every client here is 127.0.0.1.
        call("POST", "/api/v1/tokens/introspect", Some(json!({ "token": token })), false, &[200, 429]).await;
        call("POST", "/api/v1/embed-tokens", Some(json!({ "buddy_id": buddy, "user_id": "u" })), true, &[201]).await;
        call("POST", &format!("/api/v1/buddies/{buddy}/gates/{gate}/unlock"), None, true, &[200]).await;
        if let Some(sid) = session.as_ref().and_then(|s| s["session_id"].as_str()) {
            call("DELETE", &format!("/api/v1/widget-sessions/{sid}"), None, true, &[200]).await;
        }
    }
    (latencies, unexpected)
}
