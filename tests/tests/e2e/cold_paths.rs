//! The paths a warm suite walks past: a key's first use on a route (it records
//! `last_used_at`), and a cold instance's first need of the data key. Each is a grant in
//! `template.yaml`; `tests/tests/iam.rs` fails on a grant no test performed, so these tests
//! perform them, and check that the path did its work.

use hatched_tests::prelude::*;
use hatched_tests::sign_user;
use serde_json::{Value, json};

fn call(method: &str, path: &str, key: &str, body: Option<Value>) -> Call {
    let call = Call::new(method, path).key(key);
    match body {
        Some(b) => call.json(&b),
        None => call,
    }
}

async fn last_used_at(t: &TestApp, admin: &str, prefix: &str) -> Value {
    let a = t.send(call("GET", &format!("/api/v1/keys/{prefix}"), admin, None)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["last_used_at"].clone()
}

#[tokio::test]
async fn a_keys_first_use_records_last_used_at_on_the_routes_it_reaches_first() {
    let t = TestApp::new().await.with_customer().await;
    t.buddy(Live, "b1").await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    let (victim, victim_prefix) = t.issue(Secret, Live, plain()).await;
    let firsts: [(&str, String, Option<Value>, u16); 3] = [
        ("GET", "/api/v1/buddies/b1/unlocks".to_owned(), None, 200),
        ("POST", "/api/v1/widget-sessions/revoke".to_owned(), Some(json!({ "user_id": "u1" })), 200),
        ("DELETE", format!("/api/v1/keys/{victim_prefix}"), None, 200),
    ];
    for (method, path, body, status) in firsts {
        let (key, prefix) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
        assert_eq!(last_used_at(&t, &admin, &prefix).await, Value::Null, "{method} {path}: unused so far");
        let a = t.send(call(method, &path, &key, body)).await;
        assert_eq!(a.status, status, "{method} {path}: {}", a.body);
        assert!(last_used_at(&t, &admin, &prefix).await.is_string(), "{method} {path} records the key's first use");
    }
    let revoked = t.send(Call::new("POST", "/api/v1/keys/validate").json(&json!({ "key": victim }))).await;
    assert_eq!(revoked.body["valid"], false, "{}", revoked.body);
}

#[tokio::test]
async fn a_cold_instance_fetches_the_data_key_to_check_a_signed_unlock_and_to_roll_a_signed_key() {
    let t = TestApp::new().await.with_customer().await;
    t.buddy(Live, "b1").await;
    t.credit(Live, "b1", 100).await;
    t.gate("hat", 10, None).await;
    let options = KeyOptions {
        scopes: Some(["write:unlocks"].map(String::from).into()),
        require_signed_user_id: true,
        ..plain()
    };
    let pk = t.issue_key(Publishable, Live, options).await;
    let secret = pk.hmac_secret.clone().unwrap();
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;

    let now = t.app.clock.now().secs();
    let proof = json!({ "user_id": "u1", "user_id_sig": sign_user(&secret, "u1", "b1", now), "user_id_ts": now });
    let unlock = call("POST", "/api/v1/buddies/b1/gates/hat/unlock", &pk.key, Some(proof));
    let a = unlock.send(&t.cold_instance().await).await;
    assert_eq!(a.status, 200, "a cold instance opens the key's sealed secret: {}", a.body);

    let roll =
        call("POST", &format!("/api/v1/keys/{}/roll", pk.prefix), &admin, Some(json!({ "grace_seconds": 86400 })));
    let rolled = roll.send(&t.cold_instance().await).await;
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    assert!(rolled.body["key"].is_string(), "{}", rolled.body);
    // The new key signs with a fresh secret, shown in this answer only; the old key keeps its
    // own through the grace.
    let (new_key, new_secret) =
        (rolled.body["key"].as_str().unwrap().to_owned(), rolled.body["hmac_secret"].as_str().unwrap().to_owned());
    assert_ne!(new_secret, secret, "a roll never hands the old secret on");
    t.gate("cap", 10, None).await;
    t.gate("scarf", 10, None).await;
    let proof = |secret: &str, user: &str| json!({ "user_id": user, "user_id_sig": sign_user(secret, user, "b1", now), "user_id_ts": now });
    let unlock = |key: &str, gate: &str, body: Value| {
        call("POST", &format!("/api/v1/buddies/b1/gates/{gate}/unlock"), key, Some(body))
    };
    let stale = unlock(&new_key, "cap", proof(&secret, "u2")).send(&t.cold_instance().await).await;
    assert_eq!((stale.status, stale.code()), (403, "invalid_user_signature"), "{}", stale.body);
    let fresh = unlock(&new_key, "cap", proof(&new_secret, "u2")).send(&t.cold_instance().await).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    let old = unlock(&pk.key, "scarf", proof(&secret, "u3")).send(&t.cold_instance().await).await;
    assert_eq!(old.status, 200, "the old key and its secret work through the grace: {}", old.body);
}
