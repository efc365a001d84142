//! Widget sessions, embed tokens, revocation, introspection and JWKS against the real
//! DynamoDB and Secrets Manager APIs.

use hatched_tests::calls::reads;
use hatched_tests::prelude::*;
use hatched_tests::{Answer, TestApp, keyed};
use serde_json::{Value, json};

pub const SESSIONS: &str = "/api/v1/widget-sessions";
pub const EMBEDS: &str = "/api/v1/embed-tokens";
pub const INTROSPECT: &str = "/api/v1/tokens/introspect";

/// A customer `acme` with buddy `b1` in both environments and a live secret key; the
/// clock is stopped so time-boundary checks are exact.
pub async fn setup() -> (TestApp, String) {
    let t = TestApp::new().await.with_customer().await;
    t.app.clock.freeze();
    t.buddy(Live, "b1").await;
    t.buddy(Test, "b1").await;
    let (key, _) = t.issue(Secret, Live, plain()).await;
    (t, key)
}

pub async fn mint_session(t: &TestApp, key: &str, body: Value) -> Answer {
    functions::create_widget_session::handle(&t.app, keyed("POST", SESSIONS, key, Some(&body))).await.into()
}

pub async fn mint_embed(t: &TestApp, key: &str, body: Value) -> Answer {
    functions::create_embed_token::handle(&t.app, keyed("POST", EMBEDS, key, Some(&body))).await.into()
}

pub async fn revoke(t: &TestApp, key: &str, session_id: &str) -> Answer {
    functions::revoke_widget_session::handle(&t.app, keyed("DELETE", &format!("{SESSIONS}/{session_id}"), key, None))
        .await
        .into()
}

pub async fn introspect_with(app: &hatched::App, token: &str) -> Value {
    let req = hatched_tests::json_post(INTROSPECT, &json!({ "token": token }));
    let a: Answer = functions::introspect_token::handle(app, req).await.into();
    assert_eq!(a.status, 200, "{}", a.body);
    a.body
}

pub async fn introspect(t: &TestApp, token: &str) -> Value {
    introspect_with(&t.app, token).await
}

pub async fn jwks(app: &hatched::App) -> Answer {
    functions::jwks::handle(app, hatched_tests::gateway_request("GET", "/.well-known/jwks.json", &[], None))
        .await
        .into()
}

/// The decoded (unverified) header and payload of a JWT.
pub fn parts(token: &str) -> (Value, Value) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut it = token.split('.');
    let header = serde_json::from_slice(&b64.decode(it.next().unwrap()).unwrap()).unwrap();
    let payload = serde_json::from_slice(&b64.decode(it.next().unwrap()).unwrap()).unwrap();
    (header, payload)
}

#[tokio::test]
async fn session_mint_returns_api_fields_and_exact_claims() {
    let (t, key) = setup().await;
    let a = mint_session(
        &t,
        &key,
        json!({ "buddy_id": "b1", "user_id": "u@1", "scopes": ["read", "items:equip", "read"], "ttl_seconds": 600 }),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let b = &a.body;
    let sid = b["session_id"].as_str().unwrap();
    assert!(sid.starts_with("ws_") && sid.len() == 27);
    assert_eq!(
        (b["buddy_id"].as_str(), b["user_id"].as_str(), b["mode"].as_str()),
        (Some("b1"), Some("u@1"), Some("interactive"))
    );
    assert_eq!(b["scopes"], json!(["read", "items:equip"]), "duplicates collapsed");
    let (header, claims) = parts(b["token"].as_str().unwrap());
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    assert!(header["kid"].is_string());
    let mut names: Vec<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["aud", "bid", "cid", "env", "exp", "iat", "iss", "jti", "mode", "nbf", "scope", "sid", "sub"]);
    assert_eq!(claims["aud"], "hatched:widget-session");
    assert_eq!((claims["sid"].as_str(), claims["jti"].as_str()), (Some(sid), Some(sid)));
    assert_eq!(claims["scope"], "read items:equip");
    assert_eq!(
        (claims["cid"].as_str(), claims["env"].as_str(), claims["sub"].as_str(), claims["bid"].as_str()),
        (Some("acme"), Some("live"), Some("u@1"), Some("b1"))
    );
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600);
    assert_eq!(claims["nbf"], claims["iat"]);
    let expires = b["expires_at"].as_str().unwrap();
    assert_eq!(expires, hatched::domain::UnixTime::from_secs(claims["exp"].as_i64().unwrap()).rfc3339());
}

#[tokio::test]
async fn session_item_has_its_ttl_attribute_and_default_ttl_is_an_hour() {
    let (t, key) = setup().await;
    let a = mint_session(&t, &key, json!({ "buddy_id": "b1", "user_id": "u1", "scopes": ["read"] })).await;
    let (_, claims) = parts(a.body["token"].as_str().unwrap());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    let sid = a.body["session_id"].as_str().unwrap();
    let item = t
        .app
        .store
        .client()
        .get_item()
        .table_name(t.app.store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("WS#{sid}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("SESSION".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("session stored");
    let ttl: i64 = item["ttl"].as_n().unwrap().parse().unwrap();
    assert!(ttl > claims["exp"].as_i64().unwrap(), "TTL is after expiry");
}

#[tokio::test]
async fn session_lifecycle_mint_introspect_revoke() {
    let (t, key) = setup().await;
    let minted =
        mint_session(&t, &key, json!({ "buddy_id": "b1", "user_id": "u1", "scopes": ["read", "events:track"] })).await;
    let token = minted.body["token"].as_str().unwrap();
    let sid = minted.body["session_id"].as_str().unwrap();
    let active = introspect(&t, token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["token_type"], "widget_session");
    assert_eq!((active["customer_id"].as_str(), active["environment"].as_str()), (Some("acme"), Some("live")));
    assert_eq!((active["buddy_id"].as_str(), active["user_id"].as_str()), (Some("b1"), Some("u1")));
    assert_eq!(active["scopes"], json!(["read", "events:track"]));
    assert_eq!(active["session_id"], sid);
    assert!(active["exp"].is_i64() && active["iat"].is_i64());

    let first = revoke(&t, &key, sid).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!((first.body["session_id"].as_str(), first.body["revoked"].as_bool()), (Some(sid), Some(true)));
    assert_eq!(introspect(&t, token).await, json!({ "active": false }));
    t.app.clock.advance(5);
    let second = revoke(&t, &key, sid).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body["revoked_at"], first.body["revoked_at"], "idempotent: the first revoked_at");
}

#[tokio::test]
async fn revoke_of_another_customers_or_environments_session_is_not_found() {
    let (t, key) = setup().await;
    let minted = mint_session(&t, &key, json!({ "buddy_id": "b1", "user_id": "u1", "scopes": ["read"] })).await;
    let sid = minted.body["session_id"].as_str().unwrap().to_owned();
    t.ctl(&["customers", "create", "--customer", "rival", "--primary-token", "gems", "--progression-token", "lvl"])
        .await
        .unwrap();
    let rival = t.ctl(&["keys", "issue", "--customer", "rival", "--type", "secret", "--env", "live"]).await.unwrap();
    let (test_key, _) = t.issue(Secret, Test, plain()).await;
    for other in [rival["key"].as_str().unwrap(), test_key.as_str()] {
        let a = revoke(&t, other, &sid).await;
        assert_eq!((a.status, a.code()), (404, "session_not_found"));
    }
    let missing = revoke(&t, &key, "ws_000000000000000000000000").await;
    assert_eq!((missing.status, missing.code()), (404, "session_not_found"));
    let bad = revoke(&t, &key, "ws_bad").await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_request"));
    assert_eq!(introspect(&t, minted.body["token"].as_str().unwrap()).await["active"], true, "still active");
}

#[tokio::test]
async fn session_mint_error_paths() {
    let (t, key) = setup().await;
    let (pk, _) = t.issue(Publishable, Live, plain()).await;
    let (narrow, _) = t.issue(Secret, Live, scopes(&["read:buddies"])).await;
    let ok = json!({ "buddy_id": "b1", "user_id": "u1", "scopes": ["read"] });
    let with = |patch: Value| {
        let mut b = ok.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        b
    };
    // (case, key, body, status, code, details)
    type Case<'a> = (&'a str, &'a str, Value, u16, &'a str, Option<Value>);
    let cases: Vec<Case> = vec![
        ("publishable", &pk, ok.clone(), 403, "publishable_key_scope", None),
        (
            "scope-less secret",
            &narrow,
            ok.clone(),
            403,
            "insufficient_scope",
            Some(json!({ "required": "widget_sessions:write" })),
        ),
        ("no scopes", &key, with(json!({ "scopes": null })), 400, "scopes_required", None),
        ("empty scopes", &key, with(json!({ "scopes": [] })), 400, "scopes_required", None),
        (
            "bad scope",
            &key,
            with(json!({ "scopes": ["read", "admin"] })),
            400,
            "invalid_scope",
            Some(json!({ "scope": "admin" })),
        ),
        (
            "ttl low",
            &key,
            with(json!({ "ttl_seconds": 59 })),
            400,
            "invalid_ttl",
            Some(json!({ "min": 60, "max": 3600 })),
        ),
        (
            "ttl high",
            &key,
            with(json!({ "ttl_seconds": 3601 })),
            400,
            "invalid_ttl",
            Some(json!({ "min": 60, "max": 3600 })),
        ),
        // Too large for any integer type: still outside the range, with the range.
        (
            "ttl past i64",
            &key,
            with(json!({ "ttl_seconds": 9_223_372_036_854_775_808u64 })),
            400,
            "invalid_ttl",
            Some(json!({ "min": 60, "max": 3600 })),
        ),
        (
            "ttl 1e20",
            &key,
            with(json!({ "ttl_seconds": 1e20 })),
            400,
            "invalid_ttl",
            Some(json!({ "min": 60, "max": 3600 })),
        ),
        ("ttl fraction", &key, with(json!({ "ttl_seconds": 60.5 })), 400, "invalid_request", None),
        ("ttl type", &key, with(json!({ "ttl_seconds": "60" })), 400, "invalid_request", None),
        ("unknown buddy", &key, with(json!({ "buddy_id": "nobody" })), 404, "buddy_not_found", None),
        ("bad buddy id", &key, with(json!({ "buddy_id": "b#1" })), 400, "invalid_request", None),
        ("bad user id", &key, with(json!({ "user_id": "" })), 400, "invalid_request", None),
        ("unknown field", &key, with(json!({ "mode": "interactive" })), 400, "invalid_request", None),
    ];
    for (name, k, body, status, code, details) in cases {
        let a = mint_session(&t, k, body).await;
        assert_eq!((a.status, a.code()), (status, code), "{name}: {}", a.body);
        if let Some(d) = details {
            assert_eq!(a.body["error"]["details"], d, "{name}");
        }
    }
    // Buddy exists only in the test environment: a live key cannot see it.
    t.ctl(&["buddies", "create", "--customer", "acme", "--env", "test", "--buddy", "only_test"]).await.unwrap();
    let a = mint_session(&t, &key, with(json!({ "buddy_id": "only_test" }))).await;
    assert_eq!(a.code(), "buddy_not_found");
    let missing: Answer =
        functions::create_widget_session::handle(&t.app, hatched_tests::json_post(SESSIONS, &ok)).await.into();
    assert_eq!((missing.status, missing.code()), (401, "missing_key"));
    let basic = hatched_tests::gateway_request(
        "POST",
        SESSIONS,
        &[("authorization", "Basic abc"), ("content-type", "application/json")],
        Some(&ok.to_string()),
    );
    let a: Answer = functions::create_widget_session::handle(&t.app, basic).await.into();
    assert_eq!((a.status, a.code()), (401, "invalid_key_format"));
}

#[tokio::test]
async fn embed_tokens_for_secret_and_publishable_keys() {
    let (t, key) = setup().await;
    let (pk, _) = t.issue(Publishable, Live, plain()).await;
    for k in [&key, &pk] {
        let a = mint_embed(&t, k, json!({ "buddy_id": "b1", "user_id": "viewer" })).await;
        assert_eq!(a.status, 201, "{}", a.body);
        assert_eq!(
            (a.body["mode"].as_str(), a.body["buddy_id"].as_str(), a.body["user_id"].as_str()),
            (Some("read-only"), Some("b1"), Some("viewer"))
        );
        let (_, claims) = parts(a.body["token"].as_str().unwrap());
        let mut names: Vec<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["aud", "bid", "cid", "env", "exp", "iat", "iss", "jti", "mode", "nbf", "sub"]);
        assert_eq!(claims["aud"], "hatched:embed");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 86400);
        let info = introspect(&t, a.body["token"].as_str().unwrap()).await;
        assert_eq!((info["active"].as_bool(), info["token_type"].as_str()), (Some(true), Some("embed")));
        assert!(info.get("scopes").is_none() && info.get("session_id").is_none());
    }
    let a = mint_embed(&t, &key, json!({ "buddy_id": "b1", "user_id": "v", "ttl_seconds": 300 })).await;
    let (_, claims) = parts(a.body["token"].as_str().unwrap());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
}

#[tokio::test]
async fn embed_error_paths() {
    let (t, key) = setup().await;
    let (no_embed, _) = t.issue(Publishable, Live, scopes(&["read:buddies"])).await;
    let cases = [
        (&key, json!({ "buddy_id": "b1", "user_id": "u", "scopes": ["read"] }), 400, "scopes_not_allowed"),
        (&key, json!({ "buddy_id": "b1", "user_id": "u", "scopes": null }), 400, "scopes_not_allowed"),
        (&key, json!({ "buddy_id": "b1", "user_id": "u", "scopes": [] }), 400, "scopes_not_allowed"),
        (&key, json!({ "buddy_id": "b1", "user_id": "u", "ttl_seconds": 299 }), 400, "invalid_ttl"),
        (&key, json!({ "buddy_id": "b1", "user_id": "u", "ttl_seconds": 86401 }), 400, "invalid_ttl"),
        (
            &key,
            json!({ "buddy_id": "b1", "user_id": "u", "ttl_seconds": 9_223_372_036_854_775_808u64 }),
            400,
            "invalid_ttl",
        ),
        (&key, json!({ "buddy_id": "b1", "user_id": "u", "ttl_seconds": -1e20 }), 400, "invalid_ttl"),
        (&key, json!({ "buddy_id": "ghost", "user_id": "u" }), 404, "buddy_not_found"),
        (&key, json!({ "buddy_id": "b1" }), 400, "invalid_request"),
        (&no_embed, json!({ "buddy_id": "b1", "user_id": "u" }), 403, "insufficient_scope"),
    ];
    for (k, body, status, code) in cases {
        let a = mint_embed(&t, k, body.clone()).await;
        assert_eq!((a.status, a.code()), (status, code), "{body}");
    }
    let a = mint_embed(&t, &key, json!({ "buddy_id": "b1", "user_id": "u", "ttl_seconds": 10 })).await;
    assert_eq!(a.body["error"]["details"], json!({ "min": 300, "max": 86400 }));
}

#[tokio::test]
async fn signed_user_ids_for_keys_that_require_them() {
    use hatched_tests::sign_user;
    use hmac::{Hmac, Mac};
    let (t, _) = setup().await;
    let issued = t.issue_key(Publishable, Live, signed_user_ids()).await;
    let (pk, secret) = (issued.key.as_str(), issued.hmac_secret.as_deref().unwrap());
    let now = t.app.clock.freeze().secs();
    let sign = |secret: &str, user: &str, ts: i64| sign_user(secret, user, "b1", ts);
    let old_form = |secret: &str, user: &str, ts: i64| {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(format!("{user}.{ts}").as_bytes());
        hex::encode(m.finalize().into_bytes())
    };
    let body = |user: &str, sig: Option<String>, ts: Option<i64>| {
        let mut b = json!({ "buddy_id": "b1", "user_id": user });
        if let Some(s) = sig {
            b["user_id_sig"] = json!(s);
        }
        if let Some(ts) = ts {
            b["user_id_ts"] = json!(ts);
        }
        b
    };
    let cases = [
        ("valid", body("u1", Some(sign(secret, "u1", now)), Some(now)), 201),
        ("300 s old", body("u1", Some(sign(secret, "u1", now - 300)), Some(now - 300)), 201),
        ("30 s ahead", body("u1", Some(sign(secret, "u1", now + 30)), Some(now + 30)), 201),
        ("wrong secret", body("u1", Some(sign("nope", "u1", now)), Some(now)), 403),
        ("tampered user", body("u2", Some(sign(secret, "u1", now)), Some(now)), 403),
        ("301 s old", body("u1", Some(sign(secret, "u1", now - 301)), Some(now - 301)), 403),
        ("31 s ahead", body("u1", Some(sign(secret, "u1", now + 31)), Some(now + 31)), 403),
        ("missing", body("u1", None, None), 403),
        ("missing ts", body("u1", Some(sign(secret, "u1", now)), None), 403),
        ("signed for another buddy", body("u1", Some(sign_user(secret, "u1", "b2", now)), Some(now)), 403),
        ("the old user.ts form", body("u1", Some(old_form(secret, "u1", now)), Some(now)), 403),
    ];
    for (name, b, status) in cases {
        let a = mint_embed(&t, pk, b).await;
        assert_eq!(a.status, status, "{name}: {}", a.body);
        if status == 403 {
            assert_eq!(a.code(), "invalid_user_signature", "{name}");
        }
    }
}

#[tokio::test]
async fn jwks_lists_current_key_with_cache_headers() {
    let (t, key) = setup().await;
    let a = jwks(&t.app).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("cache-control"), Some("public, max-age=300"));
    let keys = a.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "a fresh key set: the current key and the standby that signs next");
    let k = &keys[0];
    assert_eq!(
        (k["kty"].as_str(), k["crv"].as_str(), k["use"].as_str(), k["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("sig"), Some("EdDSA"))
    );
    let minted = mint_session(&t, &key, json!({ "buddy_id": "b1", "user_id": "u", "scopes": ["read"] })).await;
    let (header, _) = parts(minted.body["token"].as_str().unwrap());
    assert_eq!(header["kid"], k["kid"]);
}

// Rotation: tests/tests/e2e/rotation.rs.

#[tokio::test]
async fn round_trips_per_endpoint() {
    hatched_tests::assert_happy_path_model();
    let (t, key) = setup().await;
    // The key's first use writes last_used_at once; measure steady state.
    mint_embed(&t, &key, json!({ "buddy_id": "b1", "user_id": "u" })).await;
    t.calls.clear();
    let minted = mint_session(&t, &key, json!({ "buddy_id": "b1", "user_id": "u", "scopes": ["read"] })).await;
    let mut ops = t.calls.take();
    ops.sort();
    // GetItem: the key; TransactWriteItems: buddy check + session put; UpdateItem: the rate
    // window, issued concurrently with the key read.
    assert_eq!(ops, ["GetItem", "TransactWriteItems", "UpdateItem"]);

    mint_embed(&t, &key, json!({ "buddy_id": "b1", "user_id": "u" })).await;
    let mut ops = t.calls.take();
    ops.sort();
    assert_eq!(ops, ["GetItem", "GetItem", "UpdateItem"], "key + buddy reads, nothing written but the window");
    assert_eq!(reads(&ops), 2);

    revoke(&t, &key, minted.body["session_id"].as_str().unwrap()).await;
    let mut ops = t.calls.take();
    ops.sort();
    assert_eq!(ops, ["GetItem", "UpdateItem", "UpdateItem"], "key read + conditional update + window");
}
