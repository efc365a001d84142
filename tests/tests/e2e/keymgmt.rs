//! Self-serve key management over HTTP, the audit trail and bulk session revocation (API.md
//! "Key management (self-serve)", "POST /api/v1/widget-sessions/revoke").

use std::collections::BTreeSet;

use hatched_tests::faults::{Fault, FaultProxy};
use hatched_tests::prelude::*;
use serde_json::{Value, json};

const KEYS: &str = "/api/v1/keys";

fn call(method: &str, path: &str, key: &str, body: Option<Value>) -> Call {
    let call = Call::new(method, path).key(key);
    match body {
        Some(b) => call.json(&b),
        None => call,
    }
}

async fn validate(t: &TestApp, key: &str, origin: Option<&str>) -> Value {
    let mut body = json!({ "key": key });
    if let Some(o) = origin {
        body["origin"] = json!(o);
    }
    t.send(Call::new("POST", "/api/v1/keys/validate").json(&body)).await.body
}

async fn events(t: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let a = t.send(call("GET", &format!("/api/v1/audit-events{query}"), key, None)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["events"].as_array().unwrap().clone()
}

/// `acme` with an enterprise live secret key holding every scope: the manager.
async fn setup() -> (TestApp, String) {
    let t = TestApp::new().await.with_customer().await;
    let (admin, _) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    (t, admin)
}

#[tokio::test]
async fn create_list_get_patch_roll_revoke_end_to_end() {
    let (t, admin) = setup().await;
    // Create a publishable key: plaintext and secret in this response only.
    let body = json!({ "type": "publishable", "label": "web", "scopes": ["read:buddies", "embed_tokens:create"],
        "allowed_origins": ["https://app.example.com"], "require_signed_user_id": true });
    let created = t.send(call("POST", KEYS, &admin, Some(body))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let prefix = created.body["record"]["prefix"].as_str().unwrap().to_owned();
    assert_eq!(created.body["hmac_secret"].as_str().map(str::len), Some(40));
    let record = &created.body["record"];
    assert_eq!(
        (record["type"].as_str(), record["environment"].as_str(), record["tier"].as_str()),
        (Some("publishable"), Some("live"), Some("enterprise")),
        "environment and (default) tier are the caller's"
    );
    assert_eq!(record["last_used_at"], Value::Null);
    for field in ["key_hash", "hmac_secret", "hmac_secret_sealed", "primary_token", "version"] {
        assert!(record.get(field).is_none(), "{field} is not part of a KeyView");
    }
    assert_eq!(validate(&t, &key, Some("https://app.example.com")).await["valid"], true);
    assert_eq!(validate(&t, &key, Some("https://new.example.com")).await["code"], "origin_not_allowed");

    // Get, with last_used_at shown once it was used.
    let got = t.send(call("GET", &format!("{KEYS}/{prefix}"), &admin, None)).await;
    assert_eq!(got.status, 200);
    assert!(got.body["last_used_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", got.body);
    assert!(got.body.get("hmac_secret").is_none() && !got.body.to_string().contains(&key));

    // Patch: the new origins apply to the very next request.
    let patched = t
        .send(call(
            "PATCH",
            &format!("{KEYS}/{prefix}"),
            &admin,
            Some(json!({ "allowed_origins": ["https://new.example.com"], "label": null })),
        ))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["label"], Value::Null);
    assert!(patched.body.get("hmac_secret").is_none(), "the key already had a secret: none shown again");
    assert_eq!(validate(&t, &key, Some("https://new.example.com")).await["valid"], true);
    assert_eq!(validate(&t, &key, Some("https://app.example.com")).await["code"], "origin_not_allowed");

    // Roll with a day's grace: both keys valid; the new one has the same attributes.
    let rolled =
        t.send(call("POST", &format!("{KEYS}/{prefix}/roll"), &admin, Some(json!({ "grace_seconds": 86400 })))).await;
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let new_key = rolled.body["key"].as_str().unwrap().to_owned();
    let new_prefix = rolled.body["record"]["prefix"].as_str().unwrap().to_owned();
    assert_eq!(rolled.body["record"]["allowed_origins"], json!(["https://new.example.com"]));
    assert_eq!(rolled.body["previous"]["prefix"], prefix.as_str());
    let rolled_secret = rolled.body["hmac_secret"].as_str().expect("a signing key's roll shows its new secret");
    assert_ne!(Some(rolled_secret), created.body["hmac_secret"].as_str(), "a fresh secret, not the old one again");
    assert!(rolled.body["previous"]["expires_at"].as_str().is_some());
    for k in [&key, &new_key] {
        assert_eq!(validate(&t, k, Some("https://new.example.com")).await["valid"], true);
    }

    // Revoke, idempotently.
    let revoked = t.send(call("DELETE", &format!("{KEYS}/{prefix}"), &admin, None)).await;
    assert_eq!((revoked.status, revoked.body["revoked"].as_bool()), (200, Some(true)), "{}", revoked.body);
    t.app.clock.advance(5);
    let again = t.send(call("DELETE", &format!("{KEYS}/{prefix}"), &admin, None)).await;
    assert_eq!(again.body["revoked_at"], revoked.body["revoked_at"], "the first revoked_at");
    assert_eq!(validate(&t, &key, Some("https://new.example.com")).await["code"], "key_revoked");
    assert_eq!(validate(&t, &new_key, Some("https://new.example.com")).await["valid"], true);

    // One event per change, newest first, with the acting key as actor.
    let admin_prefix = hatched::domain::ApiKey::parse(&admin).unwrap().prefix().to_string();
    let all = events(&t, &admin, &format!("?target={prefix}")).await;
    let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["key.revoked", "key.rolled", "key.updated", "key.created"]);
    assert!(all.iter().all(|e| e["actor"] == admin_prefix.as_str() && e["target"] == prefix.as_str()));
    assert_eq!(all[2]["changes"]["allowed_origins"]["new"], json!(["https://new.example.com"]));
    assert_eq!(all[2]["changes"]["label"], json!({ "old": "web", "new": null }));
    assert_eq!(all[1]["changes"]["replaced_by"]["new"], new_prefix.as_str());
    assert!(all[1]["changes"]["expires_at"]["new"].as_str().is_some());
    assert_eq!(all[3]["changes"]["type"], json!({ "old": null, "new": "publishable" }));
    assert!(all.iter().all(|e| e["request_id"].as_str().is_some_and(|r| r.starts_with("test-"))));
    assert!(all.iter().all(|e| e["source_ip"] == "198.51.100.7"));
    let everything = Value::from(events(&t, &admin, "").await).to_string();
    let secret = created.body["hmac_secret"].as_str().unwrap();
    for needle in [key.as_str(), new_key.as_str(), secret, &key[11..]] {
        assert!(!everything.contains(needle), "no secret in the audit trail");
    }
}

#[tokio::test]
async fn every_escalation_is_refused() {
    let (t, _) = setup().await;
    let (manager, _) = t
        .issue(
            Secret,
            Live,
            KeyOptions { tier: Some(Tier::Pro), ..scopes(&["keys:read", "keys:write", "read:buddies"]) },
        )
        .await;
    let (target, target_prefix) = t.issue(Publishable, Live, scopes(&["read:buddies", "write:unlocks"])).await;
    let create = |body: Value| call("POST", KEYS, &manager, Some(body));
    let cases = [
        (
            create(json!({ "type": "secret", "scopes": ["read:buddies", "write:unlocks"] })),
            403,
            "insufficient_scope",
            Some("write:unlocks"),
        ),
        (create(json!({ "type": "secret", "tier": "enterprise" })), 403, "insufficient_scope", Some("tier:enterprise")),
        (create(json!({ "type": "publishable", "scopes": ["keys:read"] })), 400, "invalid_scope", None),
        (create(json!({ "type": "publishable", "scopes": ["widget_sessions:write"] })), 400, "invalid_scope", None),
        (
            create(json!({ "type": "secret", "allowed_origins": ["https://a.example.com"] })),
            400,
            "invalid_request",
            None,
        ),
        (create(json!({ "type": "publishable", "allowed_origins": ["https://*.com"] })), 400, "invalid_request", None),
        // One level below is every EC2 host (a public suffix each): many owners, not one.
        (
            create(json!({ "type": "publishable", "allowed_origins": ["http://*.compute-1.amazonaws.com"] })),
            400,
            "invalid_request",
            None,
        ),
        (
            call(
                "PATCH",
                &format!("{KEYS}/{target_prefix}"),
                &manager,
                Some(json!({ "allowed_origins": ["https://*.nom.br"] })),
            ),
            400,
            "invalid_request",
            None,
        ),
        (create(json!({ "type": "secret", "environment": "test" })), 400, "invalid_request", None),
        (
            call("PATCH", &format!("{KEYS}/{target_prefix}"), &manager, Some(json!({ "scopes": ["write:unlocks"] }))),
            403,
            "insufficient_scope",
            Some("write:unlocks"),
        ),
        (
            call("PATCH", &format!("{KEYS}/{target_prefix}"), &manager, Some(json!({ "scopes": ["keys:write"] }))),
            400,
            "invalid_scope",
            None,
        ),
        (
            call("PATCH", &format!("{KEYS}/{target_prefix}"), &manager, Some(json!({ "type": "secret" }))),
            400,
            "invalid_request",
            None,
        ),
        (
            call(
                "PATCH",
                &format!("{KEYS}/{target_prefix}"),
                &manager,
                Some(json!({ "require_signed_user_id": true })),
            ),
            403,
            "insufficient_scope",
            Some("write:unlocks"),
        ),
        (
            call("POST", &format!("{KEYS}/{target_prefix}/roll"), &manager, None),
            403,
            "insufficient_scope",
            Some("write:unlocks"),
        ),
        // A weaker key may not open up or disable a stronger one either.
        (
            call("PATCH", &format!("{KEYS}/{target_prefix}"), &manager, Some(json!({ "allowed_origins": [] }))),
            403,
            "insufficient_scope",
            Some("write:unlocks"),
        ),
        (
            call("PATCH", &format!("{KEYS}/{target_prefix}"), &manager, Some(json!({ "label": "mine" }))),
            403,
            "insufficient_scope",
            Some("write:unlocks"),
        ),
        (
            call("DELETE", &format!("{KEYS}/{target_prefix}"), &manager, None),
            403,
            "insufficient_scope",
            Some("write:unlocks"),
        ),
    ];
    for (i, (request, status, code, required)) in cases.into_iter().enumerate() {
        let a = t.send(request).await;
        assert_eq!((a.status, a.code()), (status, code), "case {i}: {}", a.body);
        if let Some(required) = required {
            assert_eq!(a.body["error"]["details"]["required"], required, "case {i}");
        }
    }
    // Turning off a public key's signature requirement is opening it up: refused too.
    let signed = t
        .issue_key(Publishable, Live, KeyOptions { scopes: Some(vec!["write:unlocks".into()]), ..signed_user_ids() })
        .await;
    let body = json!({ "require_signed_user_id": false });
    let a = t.send(call("PATCH", &format!("{KEYS}/{}", signed.prefix), &manager, Some(body))).await;
    assert_eq!((a.status, a.code()), (403, "insufficient_scope"), "{}", a.body);
    // Publishable keys and keys without keys:* cannot manage keys at all.
    let a = t.send(call("GET", KEYS, &target, None)).await;
    assert_eq!((a.status, a.code()), (403, "publishable_key_scope"));
    let (reader, _) = t.issue(Secret, Live, scopes(&["keys:read"])).await;
    let a = t.send(call("POST", KEYS, &reader, Some(json!({ "type": "secret" })))).await;
    assert_eq!(
        (a.status, a.code(), a.body["error"]["details"]["required"].as_str()),
        (403, "insufficient_scope", Some("keys:write"))
    );
    // Nothing changed: the target keeps its scopes, and no event was written by the manager.
    let got = t.send(call("GET", &format!("{KEYS}/{target_prefix}"), &manager, None)).await;
    assert_eq!(got.body["scopes"], json!(["write:unlocks", "read:buddies"]));
    assert_eq!(got.body["require_signed_user_id"], false);
    let manager_prefix = hatched::domain::ApiKey::parse(&manager).unwrap().prefix().to_string();
    assert!(events(&t, &manager, "").await.iter().all(|e| e["actor"] != manager_prefix.as_str()));
    // Defaults never exceed the caller: a new secret key gets the manager's own scopes.
    let made = t.send(create(json!({ "type": "secret" }))).await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["record"]["scopes"], json!(["read:buddies", "keys:read", "keys:write"]));
    assert_eq!(made.body["record"]["tier"], "pro");
}

#[tokio::test]
async fn other_customers_and_environments_are_key_not_found_and_unchanged() {
    let (t, admin) = setup().await;
    hatched_tests::Seed::customer(&t.app, "globex").await.unwrap();
    let other = hatched_tests::Seed { app: t.app.clone(), customer: "globex".parse().unwrap() };
    let theirs = other.key(Secret, Live, plain()).await.unwrap();
    let theirs_prefix = theirs.record.prefix.to_string();
    let (_, test_prefix) = t.issue(Secret, Test, plain()).await;
    for prefix in [theirs_prefix.as_str(), test_prefix.as_str(), "hatch_live_Zzzzzz"] {
        for request in [
            call("GET", &format!("{KEYS}/{prefix}"), &admin, None),
            call("PATCH", &format!("{KEYS}/{prefix}"), &admin, Some(json!({ "label": "mine now" }))),
            call("POST", &format!("{KEYS}/{prefix}/roll"), &admin, None),
            call("DELETE", &format!("{KEYS}/{prefix}"), &admin, None),
        ] {
            let a = t.send(request).await;
            assert_eq!((a.status, a.code()), (404, "key_not_found"), "{prefix}: {}", a.body);
        }
    }
    let still = t.app.store.key_by_prefix(&theirs.record.prefix).await.unwrap().unwrap();
    assert_eq!((still.label, still.revoked_at, still.expires_at, still.version), (None, None, None, 0));
    let listed = t.send(call("GET", KEYS, &admin, None)).await;
    let prefixes: Vec<&str> =
        listed.body["keys"].as_array().unwrap().iter().map(|k| k["prefix"].as_str().unwrap()).collect();
    assert!(!prefixes.contains(&theirs_prefix.as_str()) && !prefixes.contains(&test_prefix.as_str()));
    let a = t.send(call("GET", &format!("{KEYS}/KEY%23x"), &admin, None)).await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"), "an id outside its pattern: {}", a.body);
}

#[tokio::test]
async fn listing_pages_to_the_end_with_exact_counts_and_refuses_tampered_cursors() {
    let (t, admin) = setup().await;
    for _ in 0..6 {
        t.app.clock.advance(1);
        t.issue(Publishable, Live, plain()).await;
    }
    t.issue(Secret, Test, plain()).await; // another environment: not listed
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=3&cursor={c}"),
            None => "?limit=3".to_owned(),
        };
        let a = t.send(call("GET", &format!("{KEYS}{query}"), &admin, None)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        pages += 1;
        let keys = a.body["keys"].as_array().unwrap();
        seen.extend(keys.iter().map(|k| k["created_at"].as_str().unwrap().to_owned()));
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (7, 3), "6 publishable + the admin key, 3 a page");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    let cursor = cursor.unwrap_or_default();
    for bad in ["nope", "YWJj", "Yz4uMDAwMDAwMDAwMDQyI2hhdGNoX2xpdmVfWnp6enp6", &format!("{cursor}x")] {
        let a = t.send(call("GET", &format!("{KEYS}?cursor={bad}"), &admin, None)).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{bad}");
    }
    for bad in ["0", "101", "x"] {
        let a = t.send(call("GET", &format!("{KEYS}?limit={bad}"), &admin, None)).await;
        assert_eq!(a.status, 400, "limit {bad}");
    }
}

#[tokio::test]
async fn roll_grace_zero_a_day_and_out_of_range() {
    let (t, admin) = setup().await;
    t.app.clock.freeze();
    let roll = |prefix: &str, grace: Value| {
        call("POST", &format!("{KEYS}/{prefix}/roll"), &admin, Some(json!({ "grace_seconds": grace })))
    };
    let (old, prefix) = t.issue(Secret, Live, plain()).await;
    for bad in [json!(-1), json!(604_801), json!("1"), json!(1.5)] {
        let a = t.send(roll(&prefix, bad.clone())).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{bad}");
    }
    assert!(events(&t, &admin, &format!("?target={prefix}")).await.iter().all(|e| e["action"] == "key.created"));
    let a = t.send(roll(&prefix, json!(0))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(validate(&t, &old, None).await["code"], "key_expired", "grace 0: expired at once");
    let again = t.send(roll(&prefix, json!(100))).await;
    assert_eq!((again.status, again.code()), (400, "invalid_request"), "an expired key is not rolled again");

    let (old, prefix) = t.issue(Secret, Live, plain()).await;
    let a = t.send(roll(&prefix, json!(86_400))).await;
    let new = a.body["key"].as_str().unwrap().to_owned();
    t.app.clock.advance(86_399);
    assert_eq!(
        (validate(&t, &old, None).await["valid"].as_bool(), validate(&t, &new, None).await["valid"].as_bool()),
        (Some(true), Some(true))
    );
    t.app.clock.advance(1);
    assert_eq!(validate(&t, &old, None).await["code"], "key_expired");
    // The default grace is a day, and never later than an expiry the key already had.
    let (_, prefix) = t.issue(Secret, Live, plain()).await;
    let first = t.send(roll(&prefix, json!(3600))).await;
    let second = t.send(call("POST", &format!("{KEYS}/{prefix}/roll"), &admin, None)).await;
    assert_eq!(second.status, 201);
    assert_eq!(second.body["previous"]["expires_at"], first.body["previous"]["expires_at"]);
}

#[tokio::test]
async fn a_failed_change_writes_no_event_and_a_lost_transaction_leaves_neither() {
    let (t, admin) = setup().await;
    let (_, prefix) = t.issue(Secret, Live, plain()).await;
    let target = format!("?target={prefix}");
    assert_eq!(events(&t, &admin, &target).await.len(), 1);
    // The change's transaction never reaches the table: neither the change nor its event.
    let proxy = FaultProxy::start(TestApp::upstream()).await;
    let app = t.behind(&proxy).await;
    proxy.set(Fault::ResetOn("TransactWriteItems")).await;
    let a = Call::new("PATCH", &format!("{KEYS}/{prefix}"))
        .key(&admin)
        .json(&json!({ "label": "changed" }))
        .send(&app)
        .await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(proxy.lost_answers.load(std::sync::atomic::Ordering::Relaxed) > 0, "the fault was exercised");
    let record =
        t.app.store.key_by_prefix(&prefix.parse::<hatched_tests::KeyPrefixArg>().unwrap().0).await.unwrap().unwrap();
    assert_eq!(record.label, None, "no change");
    assert_eq!(events(&t, &admin, &target).await.len(), 1, "no event");
    // A transaction that lands but whose answer is lost: the change and its event, once.
    proxy.set(Fault::LoseAnswerOf("TransactWriteItems")).await;
    let a = Call::new("PATCH", &format!("{KEYS}/{prefix}"))
        .key(&admin)
        .json(&json!({ "label": "changed" }))
        .send(&app)
        .await;
    assert!(matches!(a.status, 200 | 503), "{}", a.body);
    proxy.set(Fault::None).await;
    let a = t.send(call("GET", &format!("{KEYS}/{prefix}"), &admin, None)).await;
    assert_eq!(a.body["label"], "changed");
    assert_eq!(events(&t, &admin, &target).await.len(), 2, "one event for the one change");
    // A repeated revoke, a refused change: no event.
    t.send(call("DELETE", &format!("{KEYS}/{prefix}"), &admin, None)).await;
    t.send(call("DELETE", &format!("{KEYS}/{prefix}"), &admin, None)).await;
    t.send(call("PATCH", &format!("{KEYS}/{prefix}"), &admin, Some(json!({ "scopes": ["nope"] })))).await;
    t.send(call("PATCH", &format!("{KEYS}/{prefix}"), &admin, Some(json!({ "label": "changed" })))).await;
    assert_eq!(events(&t, &admin, &target).await.len(), 3, "created, updated, revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patch_and_roll_leave_a_consistent_record_and_one_event_each() {
    let (t, admin) = setup().await;
    for round in 0..5 {
        let (_, prefix) = t.issue(Secret, Live, plain()).await;
        let label = format!("label-{round}");
        let patch = t.send(call("PATCH", &format!("{KEYS}/{prefix}"), &admin, Some(json!({ "label": label }))));
        let roll =
            t.send(call("POST", &format!("{KEYS}/{prefix}/roll"), &admin, Some(json!({ "grace_seconds": 600 }))));
        let (patched, rolled) = tokio::join!(patch, roll);
        assert_eq!((patched.status, rolled.status), (200, 201), "{} {}", patched.body, rolled.body);
        let record = t.send(call("GET", &format!("{KEYS}/{prefix}"), &admin, None)).await.body;
        assert_eq!(record["label"], label.as_str(), "the patch is not lost");
        assert!(record["expires_at"].as_str().is_some(), "the roll is not lost");
        let by_hash = t.app.store.get_key(&hatched::domain::ApiKey::parse(&admin).unwrap().hash()).await.unwrap();
        assert!(by_hash.is_some());
        let actions: BTreeSet<String> = events(&t, &admin, &format!("?target={prefix}"))
            .await
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(actions.len(), 3, "created, updated, rolled: {actions:?}");
        let n = events(&t, &admin, &format!("?target={prefix}")).await.len();
        assert_eq!(n, 3, "one event each");
    }
}

#[tokio::test]
async fn operator_changes_are_audited_as_operator() {
    let (t, admin) = setup().await;
    let (_, prefix) = t.issue(Secret, Live, plain()).await;
    t.ctl(&["keys", "update", "--prefix", &prefix, "--label", "ops"]).await.unwrap();
    t.ctl(&["keys", "rotate", "--prefix", &prefix, "--grace-hours", "1"]).await.unwrap();
    t.ctl(&["keys", "revoke", "--prefix", &prefix, "--sessions"]).await.unwrap();
    let all = events(&t, &admin, "").await;
    let mine: Vec<(&str, &str)> = all
        .iter()
        .filter(|e| e["target"] == prefix.as_str() || e["target"] == format!("key_prefix:{prefix}").as_str())
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        mine,
        [
            ("sessions.revoked", "operator"),
            ("key.revoked", "operator"),
            ("key.rolled", "operator"),
            ("key.updated", "operator"),
            ("key.created", "operator")
        ]
    );
}

async fn session(t: &TestApp, key: &str, buddy: &str, user: &str) -> String {
    let a = t.mint_session(key, buddy, user, &["read"]).await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body["token"].as_str().unwrap().to_owned()
}

async fn active(t: &TestApp, token: &str) -> bool {
    t.introspect(token).await.body["active"] == true
}

#[tokio::test]
async fn bulk_revocation_by_user_buddy_and_key_spares_later_sessions_and_other_customers() {
    let (t, admin) = setup().await;
    t.app.clock.freeze();
    for buddy in ["b1", "b2"] {
        t.buddy(Live, buddy).await;
    }
    let (minter, minter_prefix) = t.issue(Secret, Live, plain()).await;
    let u1_b1 = session(&t, &minter, "b1", "u1").await;
    let u2_b1 = session(&t, &minter, "b1", "u2").await;
    let u2_b2 = session(&t, &admin, "b2", "u2").await;
    // Another customer's session of a user with the same id.
    hatched_tests::Seed::customer(&t.app, "globex").await.unwrap();
    let globex = hatched_tests::Seed { app: t.app.clone(), customer: "globex".parse().unwrap() };
    globex.buddy(Live, "b1").await.unwrap();
    let globex_key = globex.key(Secret, Live, plain()).await.unwrap().key.expose().to_owned();
    let theirs = session(&t, &globex_key, "b1", "u1").await;

    let revoke = |body: Value| call("POST", "/api/v1/widget-sessions/revoke", &admin, Some(body));
    t.calls.clear();
    let a = t.send(revoke(json!({ "user_id": "u1" }))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["match"], json!({ "user_id": "u1" }));
    assert!(a.body["revoked_before"].as_str().is_some());
    let mut ops = t.calls.take();
    ops.sort();
    assert_eq!(
        ops,
        ["GetItem", "GetItem", "TransactWriteItems", "UpdateItem"],
        "key read, marker read, one transaction"
    );
    assert!(!active(&t, &u1_b1).await);
    assert!(active(&t, &u2_b1).await && active(&t, &u2_b2).await, "other users unaffected");
    assert!(active(&t, &theirs).await, "another customer's u1 unaffected");

    t.send(revoke(json!({ "buddy_id": "b2" }))).await;
    assert!(!active(&t, &u2_b2).await);
    assert!(active(&t, &u2_b1).await);

    t.send(revoke(json!({ "key_prefix": minter_prefix }))).await;
    assert!(!active(&t, &u2_b1).await, "every session the key minted");

    // Sessions minted afterwards are unaffected (whole seconds: one second later).
    t.app.clock.advance(1);
    let later = session(&t, &minter, "b1", "u1").await;
    assert!(active(&t, &later).await);
    // Introspection stays one round trip: round_trips_per_introspection_after_bulk_revocations.

    // Idempotent in effect: the same second changes nothing (a later one moves the marker on).
    let first = t.send(revoke(json!({ "buddy_id": "b2" }))).await;
    let again = t.send(revoke(json!({ "buddy_id": "b2" }))).await;
    assert_eq!((again.status, &again.body["revoked_before"]), (200, &first.body["revoked_before"]));
    for bad in [
        json!({}),
        json!({ "user_id": "u1", "buddy_id": "b1" }),
        json!({ "key_prefix": "nope" }),
        json!({ "session_id": "x" }),
    ] {
        let a = t.send(revoke(bad.clone())).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{bad}");
    }
    let sessions_events: Vec<Value> =
        events(&t, &admin, "").await.into_iter().filter(|e| e["action"] == "sessions.revoked").collect();
    assert_eq!(sessions_events.len(), 4, "one per revocation that changed something");
    assert_eq!(sessions_events[3]["target"], "user_id:u1");
    assert_eq!(sessions_events[0]["target"], "buddy_id:b2");
    assert!(sessions_events[0]["changes"]["revoked_before"]["old"].as_str().is_some(), "it moved on");
}

/// Introspection after bulk revocations stays one round trip: the session and its markers
/// (user, buddy, key) in one read. (Moved out of the bulk revocation test: round trips are
/// counted with partial batches off, `scripts/test`'s model tier.)
#[tokio::test]
async fn round_trips_per_introspection_after_bulk_revocations() {
    hatched_tests::assert_happy_path_model();
    let (t, admin) = setup().await;
    t.app.clock.freeze();
    t.buddy(Live, "b1").await;
    let (minter, minter_prefix) = t.issue(Secret, Live, plain()).await;
    for body in [json!({ "user_id": "u1" }), json!({ "buddy_id": "b1" }), json!({ "key_prefix": minter_prefix })] {
        let a = t.send(call("POST", "/api/v1/widget-sessions/revoke", &admin, Some(body))).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    t.app.clock.advance(1);
    let later = session(&t, &minter, "b1", "u1").await;
    assert!(active(&t, &later).await);
    t.calls.clear();
    assert!(active(&t, &later).await);
    let ops = t.calls.take();
    assert_eq!(ops.iter().filter(|o| *o != "UpdateItem").collect::<Vec<_>>(), ["BatchGetItem"], "{ops:?}");
}

#[tokio::test]
async fn audit_events_page_newest_first_and_refuse_bad_cursors_and_targets() {
    let (t, admin) = setup().await;
    for i in 0..4 {
        t.issue(Secret, Live, KeyOptions { label: Some(format!("k{i}")), ..plain() }).await;
    }
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let query = cursor.as_ref().map_or("?limit=2".to_owned(), |c| format!("?limit=2&cursor={c}"));
        let a = t.send(call("GET", &format!("/api/v1/audit-events{query}"), &admin, None)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        seen.extend(a.body["events"].as_array().unwrap().iter().map(|e| e["changes"]["label"]["new"].clone()));
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // The admin key's own creation, then k0..k3, newest first.
    assert_eq!(seen, [json!("k3"), json!("k2"), json!("k1"), json!("k0"), Value::Null]);
    for bad in ["?cursor=nope", "?target=AUD%23other", "?target=user_id:a%23b", "?limit=0"] {
        let a = t.send(call("GET", &format!("/api/v1/audit-events{bad}"), &admin, None)).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{bad}");
    }
    // Per environment: a test key sees none of the live events.
    let (test_admin, _) = t.issue(Secret, Test, plain()).await;
    let theirs = events(&t, &test_admin, "").await;
    assert!(theirs.iter().all(|e| e["target"] != "k0"), "{theirs:?}");
}

/// DESIGN.md's budget: a key management read is the key read and at most one more; a change
/// adds one transaction (the change and its event).
#[tokio::test]
async fn round_trips_per_key_management_route() {
    hatched_tests::assert_happy_path_model();
    let (t, admin) = setup().await;
    t.send(call("GET", KEYS, &admin, None)).await; // first use records last_used_at
    let (_, prefix) = t.issue(Secret, Live, plain()).await;
    let cases = [
        (
            "create",
            call("POST", KEYS, &admin, Some(json!({ "type": "secret" }))),
            vec!["GetItem", "TransactWriteItems", "UpdateItem"],
        ),
        ("list", call("GET", KEYS, &admin, None), vec!["GetItem", "Query", "UpdateItem"]),
        ("get", call("GET", &format!("{KEYS}/{prefix}"), &admin, None), vec!["GetItem", "GetItem", "UpdateItem"]),
        (
            "patch",
            call("PATCH", &format!("{KEYS}/{prefix}"), &admin, Some(json!({ "label": "x" }))),
            vec!["GetItem", "GetItem", "TransactWriteItems", "UpdateItem"],
        ),
        (
            "roll",
            call("POST", &format!("{KEYS}/{prefix}/roll"), &admin, None),
            vec!["GetItem", "GetItem", "TransactWriteItems", "UpdateItem"],
        ),
        (
            "revoke",
            call("DELETE", &format!("{KEYS}/{prefix}"), &admin, None),
            vec!["GetItem", "GetItem", "TransactWriteItems", "UpdateItem"],
        ),
        ("audit", call("GET", "/api/v1/audit-events", &admin, None), vec!["GetItem", "Query", "UpdateItem"]),
        (
            "usage",
            call("GET", &format!("{KEYS}/{prefix}/usage?granularity=minute"), &admin, None),
            vec!["GetItem", "GetItem", "Query", "UpdateItem"],
        ),
    ];
    for (name, request, expected) in cases {
        t.calls.clear();
        let a = t.send(request).await;
        assert!(a.status < 300, "{name}: {}", a.body);
        let mut ops = t.calls.take();
        ops.sort();
        assert_eq!(ops, expected, "{name} (UpdateItem: the rate window, concurrent with the key read)");
    }
}

#[tokio::test]
async fn a_created_hmac_secret_is_shown_once_and_audited_without_its_value() {
    let (t, admin) = setup().await;
    let (_, prefix) = t.issue(Publishable, Live, plain()).await;
    let body = json!({ "require_signed_user_id": true });
    let a = t.send(call("PATCH", &format!("{KEYS}/{prefix}"), &admin, Some(body.clone()))).await;
    let secret = a.body["hmac_secret"].as_str().expect("shown once").to_owned();
    let again = t.send(call("PATCH", &format!("{KEYS}/{prefix}"), &admin, Some(body))).await;
    assert!(again.body.get("hmac_secret").is_none(), "never twice");
    let updated = events(&t, &admin, &format!("?target={prefix}")).await;
    assert_eq!(updated.len(), 2, "created, updated (the repeat changed nothing)");
    assert_eq!(updated[0]["changes"]["hmac_secret"], json!({ "old": null, "new": "created" }));
    assert!(!Value::from(updated).to_string().contains(&secret));
}

/// A refused value is named by its field and position, never repeated in the sentence: what is
/// pasted into a scope or origin field may be a key (`details.scope` carries a refused scope,
/// as API.md asks, and nothing else does).
#[tokio::test]
async fn semantic_errors_do_not_repeat_key_like_values_in_their_message() {
    let (t, admin) = setup().await;
    let pasted = "hatch_live_abcdefghijklmnopqrstuvwxyzABCDEF1mVgZW";
    let create = |body: Value| t.send(call("POST", KEYS, &admin, Some(body)));
    let scope = create(json!({ "type": "secret", "scopes": ["read:buddies", pasted] })).await;
    assert_eq!((scope.status, scope.code()), (400, "invalid_scope"), "{}", scope.body);
    assert_eq!(scope.body["error"]["details"], json!({ "scope": pasted }));
    let origin = create(json!({ "type": "publishable", "allowed_origins": ["https://app.example.com", pasted] })).await;
    assert_eq!((origin.status, origin.code()), (400, "invalid_request"), "{}", origin.body);
    assert!(origin.body["error"]["message"].as_str().unwrap().contains("allowed_origins[1]"), "{}", origin.body);
    let wildcard =
        create(json!({ "type": "publishable", "allowed_origins": [format!("https://*.{pasted}.com")] })).await;
    assert_eq!((wildcard.status, wildcard.code()), (400, "invalid_request"), "{}", wildcard.body);
    let required = t
        .send(Call::new("POST", "/api/v1/keys/validate").json(&json!({ "key": admin, "required_scopes": [pasted] })))
        .await;
    assert_eq!((required.status, required.code()), (400, "invalid_scope"), "{}", required.body);
    for answer in [&scope, &origin, &wildcard, &required] {
        assert!(!answer.body["error"]["message"].as_str().unwrap().contains(pasted), "{}", answer.body);
    }
    for answer in [&origin, &wildcard] {
        assert!(!answer.body.to_string().contains(pasted), "{}", answer.body);
    }
}
