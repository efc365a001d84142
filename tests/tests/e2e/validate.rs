//! POST /api/v1/keys/validate against the real server.

use hatched_tests::calls::reads;
use hatched_tests::prelude::*;
use hatched_tests::{Answer, TestApp, gateway_request, json_post};
use serde_json::{Value, json};

const PATH: &str = "/api/v1/keys/validate";

async fn validate(t: &TestApp, body: Value) -> Answer {
    functions::validate_key::handle(&t.app, json_post(PATH, &body)).await.into()
}

#[tokio::test]
async fn issued_secret_key_validates_with_every_field() {
    let t = TestApp::new().await.with_customer().await;
    let (key, prefix) =
        t.issue(Secret, Live, KeyOptions { tier: Some(Tier::Pro), label: Some("backend".into()), ..plain() }).await;
    let a = validate(&t, json!({ "key": key })).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["valid"], true);
    let k = &a.body["key"];
    assert_eq!(k["prefix"], prefix);
    assert_eq!(k["type"], "secret");
    assert_eq!(k["environment"], "live");
    assert_eq!(k["customer_id"], "acme");
    assert_eq!(k["tier"], "pro");
    assert_eq!(k["label"], "backend");
    assert_eq!(k["expires_at"], Value::Null);
    assert_eq!(k["scopes"].as_array().unwrap().len(), 7, "every scope, keys:read and keys:write included");
    let created = k["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    let rate = &a.body["rate_limit"];
    assert_eq!(rate["limit"], 600);
    assert_eq!(rate["remaining"], 599);
    assert!(rate["reset_at"].as_str().unwrap().ends_with(":00Z"));
    assert_eq!(a.header("ratelimit-limit"), Some("600"));
    assert_eq!(a.header("ratelimit-remaining"), Some("599"));
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert!(a.header("x-request-id").unwrap().starts_with("test-"));
    let keys = a.body.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys, ["key", "rate_limit", "valid"]);
}

#[tokio::test]
async fn environments_are_reported_from_prefix_or_record() {
    let t = TestApp::new().await.with_customer().await;
    for (ty, env) in [(Secret, Test), (Secret, Live), (Publishable, Test), (Publishable, Live)] {
        let (key, _) = t.issue(ty, env, plain()).await;
        let a = validate(&t, json!({ "key": key })).await;
        assert_eq!(
            (a.body["key"]["type"].as_str(), a.body["key"]["environment"].as_str()),
            (Some(ty.as_str()), Some(env.as_str()))
        );
        let expected = match (ty, env) {
            (Secret, Test) => "hatch_test_",
            (Secret, _) => "hatch_live_",
            _ => "hatch_pk_",
        };
        assert!(key.starts_with(expected));
    }
}

#[tokio::test]
async fn revocation_is_seen_by_the_very_next_request() {
    let t = TestApp::new().await.with_customer().await;
    let (key, prefix) = t.issue(Secret, Live, plain()).await;
    assert_eq!(validate(&t, json!({ "key": key })).await.body["valid"], true);
    let out = t.ctl(&["keys", "revoke", "--prefix", &prefix]).await.unwrap();
    let a = validate(&t, json!({ "key": key })).await;
    assert_eq!(a.body, json!({ "valid": false, "code": "key_revoked", "prefix": prefix }));
    // Revoking again keeps the first time.
    let again = t.ctl(&["keys", "revoke", "--prefix", &prefix]).await.unwrap();
    assert_eq!(again["revoked_at"], out["revoked_at"]);
}

#[tokio::test]
async fn rotation_keeps_both_keys_valid_during_grace_then_expires_the_old() {
    let t = TestApp::new().await.with_customer().await;
    let (old, old_prefix) = t
        .issue(
            Publishable,
            Test,
            KeyOptions { label: Some("web".into()), ..scopes(&["read:buddies", "write:unlocks"]) },
        )
        .await;
    let out = t.ctl(&["keys", "rotate", "--prefix", &old_prefix, "--grace-hours", "48"]).await.unwrap();
    let new = out["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(out["old_prefix"], old_prefix);
    let a_old = validate(&t, json!({ "key": old })).await;
    let a_new = validate(&t, json!({ "key": new })).await;
    assert_eq!((a_old.body["valid"].clone(), a_new.body["valid"].clone()), (json!(true), json!(true)));
    assert_eq!(a_old.body["key"]["expires_at"], out["old_expires_at"]);
    // Same attributes on the replacement.
    for field in ["type", "environment", "customer_id", "tier", "scopes", "label"] {
        assert_eq!(a_new.body["key"][field], a_old.body["key"][field], "{field}");
    }
    t.app.clock.advance(47 * 3600);
    assert_eq!(validate(&t, json!({ "key": old })).await.body["valid"], true);
    t.app.clock.advance(3600 + 1);
    assert_eq!(
        validate(&t, json!({ "key": old })).await.body,
        json!({ "valid": false, "code": "key_expired", "prefix": old_prefix })
    );
    assert_eq!(validate(&t, json!({ "key": new })).await.body["valid"], true);
}

#[tokio::test]
async fn malformed_keys_cost_no_database_read() {
    let t = TestApp::new().await.with_customer().await;
    let (good, _) = t.issue(Secret, Live, plain()).await;
    let body_start = "hatch_live_".len();
    let mut bad_checksum = good.clone().into_bytes();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] = if bad_checksum[last] == b'0' { b'1' } else { b'0' };
    let mut bad_char = good.clone().into_bytes();
    bad_char[body_start + 3] = b'_';
    let cases = [
        ("wrong prefix", good.replacen("hatch_live_", "hatch_prod_", 1)),
        ("stripe style", "sk_live_4eC39HqLyjWDarjtT1zdp7dc".to_owned()),
        ("too short", good[..good.len() - 1].to_owned()),
        ("too long", format!("{good}A")),
        ("charset", String::from_utf8(bad_char).unwrap()),
        ("checksum", String::from_utf8(bad_checksum).unwrap()),
        ("empty", String::new()),
        ("prefix only", "hatch_pk_".to_owned()),
        ("unicode", format!("hatch_live_{}", "é".repeat(19))),
    ];
    for (name, key) in cases {
        t.calls.clear();
        let a = validate(&t, json!({ "key": key })).await;
        assert_eq!(
            (a.status, a.body["valid"].clone(), a.body["code"].clone()),
            (200, json!(false), json!("invalid_key_format")),
            "{name}"
        );
        let ops = t.calls.take();
        assert_eq!(reads(&ops), 0, "{name}: {ops:?}");
        // The only call is the per-IP rate window API.md asks for.
        assert_eq!(ops, ["UpdateItem"], "{name}");
    }
}

#[tokio::test]
async fn unknown_well_formed_key_is_invalid_key() {
    let t = TestApp::new().await.with_customer().await;
    let key = hatched::domain::ApiKey::generate(hatched::domain::KeyKind::SecretLive);
    let a = validate(&t, json!({ "key": key.expose() })).await;
    assert_eq!(a.body, json!({ "valid": false, "code": "invalid_key", "prefix": key.prefix().as_str() }));
}

#[tokio::test]
async fn a_valid_key_costs_one_read_and_a_concurrent_window_write() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Secret, Live, plain()).await;
    validate(&t, json!({ "key": key })).await; // first use writes last_used_at
    t.calls.clear();
    let a = validate(&t, json!({ "key": key })).await;
    assert_eq!(a.body["valid"], true);
    let mut ops = t.calls.take();
    ops.sort();
    assert_eq!(ops, ["GetItem", "UpdateItem"]);
}

#[tokio::test]
async fn last_used_at_is_written_at_most_once_a_minute() {
    let t = TestApp::new().await.with_customer().await;
    let (key, prefix) = t.issue(Secret, Live, plain()).await;
    let last_used = |t: &TestApp| {
        let prefix = prefix.clone();
        let app = t.app.clone();
        async move {
            let keys = hatchctl::run_args(&app, &["keys", "list", "--customer", "acme"]).await.unwrap().json;
            keys["keys"].as_array().unwrap().iter().find(|k| k["prefix"] == prefix.as_str()).unwrap()["last_used_at"]
                .clone()
        }
    };
    assert_eq!(last_used(&t).await, Value::Null);
    validate(&t, json!({ "key": key })).await;
    let first = last_used(&t).await;
    assert!(first.is_string());
    t.app.clock.advance(30);
    t.calls.clear();
    validate(&t, json!({ "key": key })).await;
    assert_eq!(t.calls.take().len(), 2, "no last_used write inside the minute");
    assert_eq!(last_used(&t).await, first);
    t.app.clock.advance(31);
    validate(&t, json!({ "key": key })).await;
    let later = last_used(&t).await;
    assert!(later.as_str().unwrap() > first.as_str().unwrap(), "{later} after {first}");
}

#[tokio::test]
async fn origin_and_required_scopes_are_honoured() {
    let t = TestApp::new().await.with_customer().await;
    let (pk, prefix) =
        t.issue(Publishable, Live, origins(&["https://app.example.com", "https://*.shop.example"])).await;
    let check = |body: Value| validate(&t, body);
    assert_eq!(check(json!({ "key": pk, "origin": "https://app.example.com" })).await.body["valid"], true);
    assert_eq!(check(json!({ "key": pk, "origin": "https://x.shop.example" })).await.body["valid"], true);
    for origin in [
        json!("https://evil.example.com"),
        json!("https://a.b.shop.example"),
        json!("http://app.example.com"),
        Value::Null,
    ] {
        let body = if origin.is_null() { json!({ "key": pk }) } else { json!({ "key": pk, "origin": origin }) };
        assert_eq!(
            check(body).await.body,
            json!({ "valid": false, "code": "origin_not_allowed", "prefix": prefix }),
            "{origin}"
        );
    }
    let ok = check(json!({ "key": pk, "origin": "https://app.example.com", "required_scopes": ["read:buddies", "embed_tokens:create"] })).await;
    assert_eq!(ok.body["valid"], true);
    let missing =
        check(json!({ "key": pk, "origin": "https://app.example.com", "required_scopes": ["write:unlocks"] })).await;
    assert_eq!(missing.body["code"], "insufficient_scope");
    let (secret, _) = t.issue(Secret, Live, plain()).await;
    assert_eq!(check(json!({ "key": secret, "origin": "https://anything.test" })).await.body["valid"], true);
}

#[tokio::test]
async fn bad_bodies_get_their_api_codes() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Secret, Live, plain()).await;
    let send = |ct: &'static str, body: String| {
        let app = t.app.clone();
        async move {
            let a: Answer = functions::validate_key::handle(
                &app,
                gateway_request("POST", PATH, &[("content-type", ct)], Some(&body)),
            )
            .await
            .into();
            a
        }
    };
    let cases = [
        ("application/json", "{\"key\": ".to_owned(), 400, "invalid_request"),
        ("application/json", "[1,2]".to_owned(), 400, "invalid_request"),
        ("application/json", "".to_owned(), 400, "invalid_request"),
        ("application/json", json!({ "key": 5 }).to_string(), 400, "invalid_request"),
        ("application/json", json!({ "key": key, "extra": true }).to_string(), 400, "invalid_request"),
        ("application/json", json!({ "key": key, "required_scopes": ["admin"] }).to_string(), 400, "invalid_scope"),
        ("text/plain", json!({ "key": key }).to_string(), 415, "unsupported_media_type"),
        (
            "application/json",
            json!({ "key": key, "origin": "a".repeat(16 * 1024) }).to_string(),
            413,
            "payload_too_large",
        ),
    ];
    for (ct, body, status, code) in cases {
        let a = send(ct, body.clone()).await;
        assert_eq!((a.status, a.code()), (status, code), "{ct} {}", &body[..body.len().min(60)]);
        assert!(a.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(a.body["error"]["request_id"].is_string());
        assert!(!a.body.to_string().contains(&key), "error echoes the key");
    }
}

#[tokio::test]
async fn rate_limited_keys_answer_valid_false_with_retry_after() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Secret, Live, tier(Tier::Free)).await;
    // Stopped in the middle of a minute so the 61 calls share one window.
    let now = t.app.clock.freeze().secs();
    t.app.clock.advance(60 - now.rem_euclid(60) + 30);
    for i in 0..60 {
        let a = validate(&t, json!({ "key": key })).await;
        assert_eq!(a.body["valid"], true, "call {i}");
    }
    let a = validate(&t, json!({ "key": key })).await;
    assert_eq!(a.body["code"], "rate_limited");
    assert_eq!(a.header("ratelimit-remaining"), Some("0"));
    assert!(a.header("retry-after").is_some());
}
