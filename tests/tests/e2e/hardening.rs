//! What a red-team pass found (issue #12), each case its own test: signed user ids now
//! protect unlocks, a public key's budget cannot be burned by strangers, keys that require
//! signatures fail closed, HMAC secrets are sealed at rest, and a flood of random keys stops
//! costing writes once its source is over the limit.

use hatched_tests::prelude::*;
use hatched_tests::sign_user;
use serde_json::{Value, json};

const ORIGIN: &str = "https://app.example.com";

/// `acme` with buddies b1 and b2 (100 coins each), the gate `hat` (cost 10), and a publishable
/// key that may unlock, requires signed user ids, and allows only `ORIGIN`.
async fn signed_world() -> (TestApp, IssuedKey) {
    let t = TestApp::new().await.with_customer().await;
    t.app.clock.freeze();
    for buddy in ["b1", "b2"] {
        t.buddy(Live, buddy).await;
        t.credit(Live, buddy, 100).await;
    }
    t.gate("hat", 10, None).await;
    let options = KeyOptions {
        scopes: Some(["write:unlocks", "embed_tokens:create"].map(String::from).into()),
        allowed_origins: vec![ORIGIN.into()],
        require_signed_user_id: true,
        ..plain()
    };
    let pk = t.issue_key(Publishable, Live, options).await;
    (t, pk)
}

fn unlock_call(key: &str, buddy: &str, origin: &str, body: Option<Value>) -> Call {
    let call =
        Call::new("POST", &format!("/api/v1/buddies/{buddy}/gates/hat/unlock")).key(key).header("origin", origin);
    match body {
        Some(b) => call.json(&b),
        None => call,
    }
}

fn proof(secret: &str, user: &str, buddy: &str, ts: i64) -> Value {
    json!({ "user_id": user, "user_id_sig": sign_user(secret, user, buddy, ts), "user_id_ts": ts })
}

async fn balance(t: &TestApp, buddy: &str) -> i64 {
    let show = t.ctl(&["balances", "show", "--customer", "acme", "--env", "live", "--buddy", buddy]).await.unwrap();
    show["balances"].as_array().unwrap().iter().find(|b| b["token_key"] == "coins").unwrap()["amount"].as_i64().unwrap()
}

#[tokio::test]
async fn a_signed_user_key_cannot_unlock_without_a_signature() {
    let (t, pk) = signed_world().await;
    let a = t.send(unlock_call(&pk.key, "b2", ORIGIN, None)).await;
    assert_eq!((a.status, a.code()), (403, "invalid_user_signature"));
    assert_eq!(balance(&t, "b2").await, 100, "nothing spent");
}

#[tokio::test]
async fn a_signature_for_one_buddy_does_not_spend_another_buddys_coins() {
    let (t, pk) = signed_world().await;
    let secret = pk.hmac_secret.clone().unwrap();
    let now = t.app.clock.now().secs();
    let for_b1 = proof(&secret, "u1", "b1", now);
    let a = t.send(unlock_call(&pk.key, "b2", ORIGIN, Some(for_b1.clone()))).await;
    assert_eq!((a.status, a.code()), (403, "invalid_user_signature"));
    assert_eq!(balance(&t, "b2").await, 100);
    let ok = t.send(unlock_call(&pk.key, "b1", ORIGIN, Some(for_b1))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["balance"]["amount"], 90);
}

#[tokio::test]
async fn unlock_signatures_expire_and_the_old_form_is_refused() {
    let (t, pk) = signed_world().await;
    let secret = pk.hmac_secret.clone().unwrap();
    let now = t.app.clock.now().secs();
    let stale = proof(&secret, "u1", "b1", now - 301);
    assert_eq!(t.send(unlock_call(&pk.key, "b1", ORIGIN, Some(stale))).await.code(), "invalid_user_signature");
    let old_sig = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("u1.{now}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let mut old_form = proof(&secret, "u1", "b1", now);
    old_form["user_id_sig"] = json!(old_sig);
    assert_eq!(t.send(unlock_call(&pk.key, "b1", ORIGIN, Some(old_form))).await.code(), "invalid_user_signature");
    let unknown_field = json!({ "user_id": "u1", "user_id_sig": "00", "user_id_ts": now, "buddy_id": "b1" });
    assert_eq!(t.send(unlock_call(&pk.key, "b1", ORIGIN, Some(unknown_field))).await.code(), "invalid_request");
    assert_eq!(balance(&t, "b1").await, 100);
}

#[tokio::test]
async fn keys_without_signed_user_ids_still_unlock_with_an_empty_body() {
    let t = TestApp::new().await.with_customer().await;
    t.buddy(Live, "b1").await;
    t.credit(Live, "b1", 100).await;
    t.gate("hat", 10, None).await;
    let (secret_key, _) = t.issue(Secret, Live, plain()).await;
    assert_eq!(t.unlock(&secret_key, "b1", "hat").await.status, 200);
}

#[tokio::test]
async fn a_key_that_requires_signatures_but_has_no_secret_fails_closed() {
    let (t, pk) = signed_world().await;
    let secret = pk.hmac_secret.clone().unwrap();
    // The record loses its sealed secret (a bad migration, a hand edit): nothing may pass.
    let hash = hatched::domain::ApiKey::parse(&pk.key).unwrap().hash();
    t.app
        .store
        .client()
        .update_item()
        .table_name(t.app.store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("KEY#{}", hash.as_str())))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("KEY".into()))
        .update_expression("REMOVE hmac_secret_sealed")
        .send()
        .await
        .unwrap();
    let now = t.app.clock.now().secs();
    let a = t.send(unlock_call(&pk.key, "b1", ORIGIN, Some(proof(&secret, "u1", "b1", now)))).await;
    assert_eq!((a.status, a.code()), (403, "invalid_user_signature"));
    let mint = Call::new("POST", "/api/v1/embed-tokens").key(&pk.key).header("origin", ORIGIN).json(&json!({
        "buddy_id": "b1", "user_id": "u1", "user_id_ts": now, "user_id_sig": sign_user(&secret, "u1", "b1", now)
    }));
    assert_eq!(t.send(mint).await.code(), "invalid_user_signature");
    let mint_unsigned = Call::new("POST", "/api/v1/embed-tokens").key(&pk.key).header("origin", ORIGIN).json(&json!({
        "buddy_id": "b1", "user_id": "u1"
    }));
    assert_eq!(t.send(mint_unsigned).await.code(), "invalid_user_signature");
}

#[tokio::test]
async fn hmac_secrets_are_sealed_at_rest() {
    let (t, pk) = signed_world().await;
    let secret = pk.hmac_secret.clone().unwrap();
    let dump = t.app.store.client().scan().table_name(t.app.store.table()).send().await.unwrap();
    let text = format!("{:?}", dump.items());
    assert!(text.contains("hmac_secret_sealed"), "the key record carries its sealed secret");
    assert!(!text.contains(&secret), "a table dump reveals the HMAC secret");
    // A sealed secret copied onto another key does not open there.
    let other =
        t.issue_key(Publishable, Live, KeyOptions { allowed_origins: vec![ORIGIN.into()], ..signed_user_ids() }).await;
    let hash = |key: &str| hatched::domain::ApiKey::parse(key).unwrap().hash();
    let mine = t.app.store.get_key(&hash(&pk.key)).await.unwrap().unwrap();
    let theirs = t.app.store.get_key(&hash(&other.key)).await.unwrap().unwrap();
    let data_key = t.app.sealer.key().await.unwrap();
    assert!(data_key.open(mine.hmac_secret.as_ref().unwrap(), &theirs.key_hash).is_none());
    assert_eq!(data_key.open(mine.hmac_secret.as_ref().unwrap(), &mine.key_hash).unwrap().expose(), secret);
}

#[tokio::test]
async fn refused_origins_never_spend_a_publishable_keys_budget() {
    let t = TestApp::new().await.with_customer().await;
    // One rate window for the whole test.
    t.app.clock.freeze();
    let (pk, _) = t.issue(Publishable, Live, origins(&[ORIGIN])).await;
    let gates =
        |ip: &str, origin: &str| Call::new("GET", "/api/v1/gates").key(&pk).header("origin", origin).from_ip(ip);
    // 60 calls from a stranger's page: all refused, then the stranger's IP is over its limit.
    for i in 0..60 {
        let a = t.send(gates("203.0.113.66", "https://evil.example")).await;
        assert_eq!((a.status, a.code()), (403, "origin_not_allowed"), "call {i}");
    }
    let over = t.send(gates("203.0.113.66", "https://evil.example")).await;
    assert_eq!((over.status, over.code()), (429, "rate_limited"), "the stranger's own IP is limited");
    // The real site, from another visitor's address and from the stranger's, still has its budget.
    let real = t.send(gates("198.51.100.20", ORIGIN)).await;
    assert_eq!(real.status, 200, "{}", real.body);
    assert_eq!(real.header("ratelimit-remaining"), Some("59"));
    let same_address = t.send(gates("203.0.113.66", ORIGIN)).await;
    assert_eq!((same_address.status, same_address.header("ratelimit-remaining")), (200, Some("59")));
}

#[tokio::test]
async fn a_publishable_keys_limit_applies_per_key_and_source_ip() {
    let t = TestApp::new().await.with_customer().await;
    // One rate window for the whole test.
    t.app.clock.freeze();
    let (pk, _) = t.issue(Publishable, Live, plain()).await;
    let (sk, _) = t.issue(Secret, Live, plain()).await;
    let gates = |key: &str, ip: &str| Call::new("GET", "/api/v1/gates").key(key).from_ip(ip);
    for _ in 0..60 {
        assert_eq!(t.send(gates(&pk, "203.0.113.1")).await.status, 200);
    }
    assert_eq!(t.send(gates(&pk, "203.0.113.1")).await.status, 429, "one visitor's limit");
    let other_visitor = t.send(gates(&pk, "203.0.113.2")).await;
    assert_eq!((other_visitor.status, other_visitor.header("ratelimit-remaining")), (200, Some("59")));
    // Secret keys keep their per-key limit, whatever the address.
    for i in 0..60 {
        assert_eq!(t.send(gates(&sk, &format!("203.0.113.{}", 10 + i % 5))).await.status, 200);
    }
    assert_eq!(t.send(gates(&sk, "203.0.113.99")).await.status, 429);
}

#[tokio::test]
async fn refused_signatures_never_spend_the_keys_budget() {
    let (t, pk) = signed_world().await;
    let secret = pk.hmac_secret.clone().unwrap();
    let now = t.app.clock.now().secs();
    let ip = "203.0.113.7";
    for i in 0..59 {
        let bad = proof("not-the-secret", "u1", "b1", now);
        let a = t.send(unlock_call(&pk.key, "b1", ORIGIN, Some(bad)).from_ip(ip)).await;
        assert_eq!(a.code(), "invalid_user_signature", "call {i}");
    }
    let good = t.send(unlock_call(&pk.key, "b1", ORIGIN, Some(proof(&secret, "u1", "b1", now))).from_ip(ip)).await;
    assert_eq!(good.status, 200, "{}", good.body);
    assert_eq!(good.header("ratelimit-remaining"), Some("59"), "the 59 refusals were given back");
}

#[tokio::test]
async fn a_flood_of_random_keys_costs_no_write_once_the_ip_is_over_its_limit() {
    let t = TestApp::new().await.with_customer().await;
    // One rate window for the whole test.
    t.app.clock.freeze();
    let random_key = || hatched::domain::ApiKey::generate(hatched::domain::KeyKind::SecretLive).expose().to_owned();
    let flood = |key: String| Call::new("GET", "/api/v1/gates").key(&key).from_ip("203.0.113.200");
    for _ in 0..60 {
        assert_eq!(t.send(flood(random_key())).await.code(), "invalid_key");
    }
    assert_eq!(t.send(flood(random_key())).await.code(), "rate_limited", "the 61st is over the IP's limit");
    t.calls.clear();
    for _ in 0..20 {
        assert_eq!(t.send(flood(random_key())).await.code(), "rate_limited");
    }
    let ops = t.calls.take();
    assert!(ops.iter().all(|op| op == "GetItem"), "only reads once over the limit: {ops:?}");
    assert_eq!(ops.len(), 20, "one key read each, no counter write");
    // Malformed keys and keyless calls from that address cost nothing at all.
    let malformed = Call::new("GET", "/api/v1/gates").key("hatch_live_nope").from_ip("203.0.113.200");
    assert_eq!(t.send(malformed).await.code(), "rate_limited");
    assert!(t.calls.take().is_empty());
    // A real key from the same address is still served (counted after its read).
    let (key, _) = t.issue(Secret, Live, plain()).await;
    t.calls.clear();
    let real = t.send(Call::new("GET", "/api/v1/gates").key(&key).from_ip("203.0.113.200")).await;
    assert_eq!(real.status, 200);
}
