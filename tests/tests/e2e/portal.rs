//! Key portal sessions (API.md "The key portal"): minted by a secret key with `keys:write`,
//! accepted on the key management, roles, usage and audit routes only, acting with the minting
//! key's powers as they are at each request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hatched_tests::prelude::*;
use serde_json::{Value, json};

const PORTAL: &str = "/api/v1/portal-sessions";

fn call(method: &str, path: &str, bearer: &str, body: Option<Value>) -> Call {
    let call = Call::new(method, path).key(bearer);
    match body {
        Some(b) => call.json(&b),
        None => call,
    }
}

/// `acme` with an enterprise live secret key holding every scope, and a buddy.
async fn setup() -> (TestApp, String, String) {
    let t = TestApp::new().await.with_customer().await;
    let (admin, prefix) = t.issue(Secret, Live, tier(Tier::Enterprise)).await;
    t.buddy(Live, "buddy_1").await;
    (t, admin, prefix)
}

/// A portal session minted by `key` for `label`: its token.
async fn portal(t: &TestApp, key: &str, label: &str) -> String {
    let a = t.send(call("POST", PORTAL, key, Some(json!({ "user_label": label })))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body["token"].as_str().unwrap().to_owned()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_session_is_minted_with_its_claims_url_and_audit_event() {
    let (t, admin, prefix) = setup().await;
    let before = t.app.clock.now().secs();
    let a =
        t.send(call("POST", PORTAL, &admin, Some(json!({ "user_label": "Ada (admin)", "ttl_seconds": 600 })))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let token = a.body["token"].as_str().unwrap();
    // API Gateway's domain name and stage, never the client's Host.
    assert_eq!(a.body["url"], format!("https://127.0.0.1/portal#token={token}"));
    let c = claims(token);
    assert_eq!(c["aud"], "hatched:portal");
    assert_eq!(
        (c["cid"].as_str(), c["env"].as_str(), c["kpx"].as_str()),
        (Some("acme"), Some("live"), Some(prefix.as_str()))
    );
    assert_eq!(c["act"], format!("portal:{prefix}:Ada (admin)"));
    let exp = c["exp"].as_i64().unwrap();
    assert!((before + 600..=before + 602).contains(&exp), "{c}");
    assert_eq!(c.as_object().unwrap().len(), 9, "exactly iss aud cid env kpx act jti iat exp: {c}");
    let events = t.send(call("GET", "/api/v1/audit-events", &admin, None)).await;
    let event = &events.body["events"][0];
    assert_eq!(
        (event["action"].as_str(), event["actor"].as_str()),
        (Some("portal.session_created"), Some(prefix.as_str()))
    );
    assert_eq!(event["target"], prefix);
    assert_eq!(event["changes"]["user_label"]["new"], "Ada (admin)");
    assert_eq!(event["changes"]["expires_at"]["new"], a.body["expires_at"]);
    // The default lifetime is 15 minutes.
    let token = portal(&t, &admin, "Bob").await;
    let c = claims(&token);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
}

#[tokio::test]
async fn the_page_base_comes_from_the_setting_when_set() {
    let (t, admin, _) = setup().await;
    let mut app = t.app.clone();
    app.portal_base_url = Some("https://keys.example.com/".into());
    let a = call("POST", PORTAL, &admin, Some(json!({ "user_label": "Ada" }))).send(&app).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["url"], format!("https://keys.example.com/portal#token={}", a.body["token"].as_str().unwrap()));
}

#[tokio::test]
async fn bad_mint_requests_are_refused_with_nothing_written() {
    let (t, admin, _) = setup().await;
    for body in [
        json!({}),
        json!({ "user_label": "" }),
        json!({ "user_label": "x".repeat(65) }),
        json!({ "user_label": "two\nlines" }),
        json!({ "user_label": " padded" }),
        json!({ "user_label": 7 }),
        json!({ "user_label": "Ada", "ttl_seconds": 59 }),
        json!({ "user_label": "Ada", "ttl_seconds": 3601 }),
        json!({ "user_label": "Ada", "ttl_seconds": 1.5 }),
        json!({ "user_label": "Ada", "scopes": ["keys:write"] }),
        json!(["Ada"]),
    ] {
        let a = t.send(call("POST", PORTAL, &admin, Some(body.clone()))).await;
        assert_eq!(a.status, 400, "{body}: {}", a.body);
        assert!(["invalid_request", "invalid_ttl"].contains(&a.code()), "{body}: {}", a.body);
    }
    let events = t.send(call("GET", "/api/v1/audit-events", &admin, None)).await;
    let minted = events.body["events"].as_array().unwrap().iter().filter(|e| e["action"] == "portal.session_created");
    assert_eq!(minted.count(), 0, "no event for a refused mint");
    // Who may mint: a secret key with keys:write, never a publishable key or a portal session.
    let (reader, _) = t.issue(Secret, Live, scopes(&["keys:read"])).await;
    let a = t.send(call("POST", PORTAL, &reader, Some(json!({ "user_label": "Ada" })))).await;
    assert_eq!((a.status, a.code()), (403, "insufficient_scope"));
    let (pk, _) = t.issue(Publishable, Live, plain()).await;
    let a = t.send(call("POST", PORTAL, &pk, Some(json!({ "user_label": "Ada" })))).await;
    assert_eq!(a.status, 403, "{}", a.body);
    let token = portal(&t, &admin, "Ada").await;
    let a = t.send(call("POST", PORTAL, &token, Some(json!({ "user_label": "Eve" })))).await;
    assert_eq!((a.status, a.code()), (401, "invalid_key_format"));
}

#[tokio::test]
async fn a_session_manages_keys_and_its_changes_name_the_portal_actor() {
    let (t, admin, prefix) = setup().await;
    let token = portal(&t, &admin, "Ada").await;
    let a = t.send(call("POST", "/api/v1/keys", &token, Some(json!({ "type": "publishable", "label": "web" })))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let created = a.body["record"]["prefix"].as_str().unwrap().to_owned();
    assert_eq!(a.body["record"]["environment"], "live", "the session's environment");
    let path = format!("/api/v1/keys/{created}");
    let a = t.send(call("PATCH", &path, &token, Some(json!({ "allowed_origins": ["https://app.example.com"] })))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = t.send(call("POST", &format!("{path}/roll"), &token, Some(json!({ "grace_seconds": 86400 })))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let rolled = a.body["record"]["prefix"].as_str().unwrap().to_owned();
    let a = t.send(call("DELETE", &format!("/api/v1/keys/{rolled}"), &token, None)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    for route in [
        "/api/v1/keys".to_owned(),
        path.clone(),
        format!("{path}/usage"),
        "/api/v1/audit-events".to_owned(),
        "/api/v1/roles".to_owned(),
        "/api/v1/roles/admin".to_owned(),
    ] {
        let a = t.send(call("GET", &route, &token, None)).await;
        assert_eq!(a.status, 200, "{route}: {}", a.body);
    }
    let events = t.send(call("GET", "/api/v1/audit-events", &admin, None)).await.body["events"].clone();
    let actors: Vec<(&str, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    let by_portal = format!("portal:{prefix}:Ada");
    assert_eq!(
        actors,
        [
            ("key.revoked", by_portal.as_str()),
            ("key.rolled", by_portal.as_str()),
            ("key.updated", by_portal.as_str()),
            ("key.created", by_portal.as_str()),
            ("portal.session_created", prefix.as_str()),
            ("key.created", "operator"),
        ]
    );
    // Roles through the portal: created, changed and deleted, each named for the portal.
    let a = t
        .send(call("POST", "/api/v1/roles", &token, Some(json!({ "name": "viewer", "scopes": ["read:buddies"] }))))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = t.send(call("PATCH", "/api/v1/roles/viewer", &token, Some(json!({ "scopes": ["keys:read"] })))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = t.send(call("DELETE", "/api/v1/roles/viewer", &token, None)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let events = t.send(call("GET", "/api/v1/audit-events?limit=3", &admin, None)).await.body["events"].clone();
    assert!(events.as_array().unwrap().iter().all(|e| e["actor"] == by_portal.as_str()), "{events}");
}

#[tokio::test]
async fn a_session_is_refused_on_every_other_route() {
    let (t, admin, _) = setup().await;
    t.gate("dark_mode", 1, None).await;
    let token = portal(&t, &admin, "Ada").await;
    for (method, path, body) in [
        ("GET", "/api/v1/gates", None),
        ("GET", "/api/v1/buddies/buddy_1/unlocks", None),
        ("POST", "/api/v1/buddies/buddy_1/gates/dark_mode/unlock", None),
        (
            "POST",
            "/api/v1/widget-sessions",
            Some(json!({ "buddy_id": "buddy_1", "user_id": "u1", "scopes": ["read"] })),
        ),
        ("POST", "/api/v1/widget-sessions/revoke", Some(json!({ "user_id": "u1" }))),
        ("POST", "/api/v1/embed-tokens", Some(json!({ "buddy_id": "buddy_1", "user_id": "u1" }))),
        ("POST", PORTAL, Some(json!({ "user_label": "Eve" }))),
    ] {
        let a = t.send(call(method, path, &token, body)).await;
        assert_eq!((a.status, a.code()), (401, "invalid_key_format"), "{method} {path}: {}", a.body);
    }
    // Validation is of keys, not sessions; introspection knows widget and embed tokens only.
    let a = t.send(Call::new("POST", "/api/v1/keys/validate").json(&json!({ "key": token }))).await;
    assert_eq!(
        (a.status, a.body["valid"].as_bool(), a.body["code"].as_str()),
        (200, Some(false), Some("invalid_key_format"))
    );
    assert_eq!(t.introspect(&token).await.body, json!({ "active": false }));
}

#[tokio::test]
async fn a_session_acts_with_its_key_as_it_is_now() {
    let (t, admin, _) = setup().await;
    // A key manager without roles:write-level powers: keys:read and keys:write, read:buddies.
    let (manager, manager_prefix) = t.issue(Secret, Live, scopes(&["keys:read", "keys:write", "read:buddies"])).await;
    let token = portal(&t, &manager, "Ada").await;
    // Never more than the key: no scope it lacks, no role change (that needs every scope).
    let a = t
        .send(call("POST", "/api/v1/keys", &token, Some(json!({ "type": "secret", "scopes": ["write:unlocks"] }))))
        .await;
    assert_eq!((a.status, a.code()), (403, "insufficient_scope"), "{}", a.body);
    let a =
        t.send(call("POST", "/api/v1/roles", &token, Some(json!({ "name": "x", "scopes": ["read:buddies"] })))).await;
    assert_eq!((a.status, a.code()), (403, "insufficient_scope"), "{}", a.body);
    // The key loses keys:write: the session's next write is refused, its reads still pass.
    let path = format!("/api/v1/keys/{manager_prefix}");
    let a = t.send(call("PATCH", &path, &admin, Some(json!({ "scopes": ["keys:read"] })))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = t.send(call("POST", "/api/v1/keys", &token, Some(json!({ "type": "publishable" })))).await;
    assert_eq!((a.status, a.code()), (403, "insufficient_scope"), "{}", a.body);
    assert_eq!(t.send(call("GET", "/api/v1/keys", &token, None)).await.status, 200);
    // The key is revoked: nothing more, on the very next request.
    assert_eq!(t.send(call("DELETE", &path, &admin, None)).await.status, 200);
    let a = t.send(call("GET", "/api/v1/keys", &token, None)).await;
    assert_eq!((a.status, a.code()), (401, "key_revoked"), "{}", a.body);
    // A rolled key's sessions end with its grace.
    let token = portal(&t, &admin, "Ada").await;
    let admin_prefix = claims(&token)["kpx"].as_str().unwrap().to_owned();
    let a = t
        .send(call("POST", &format!("/api/v1/keys/{admin_prefix}/roll"), &admin, Some(json!({ "grace_seconds": 60 }))))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(t.send(call("GET", "/api/v1/keys", &token, None)).await.status, 200, "inside the grace");
    t.app.clock.freeze();
    t.app.clock.advance(61);
    let a = t.send(call("GET", "/api/v1/keys", &token, None)).await;
    assert_eq!((a.status, a.code()), (401, "key_expired"), "{}", a.body);
}

#[tokio::test]
async fn a_session_counts_against_its_key_and_ends_at_its_expiry() {
    let (t, admin, _) = setup().await;
    let (free, _) = t.issue(Secret, Live, scopes(&["keys:read", "keys:write"])).await;
    let token = portal(&t, &free, "Ada").await;
    let a = t.send(call("GET", "/api/v1/keys", &token, None)).await;
    let b = t.send(call("GET", "/api/v1/keys", &free, None)).await;
    let remaining = |a: &Answer| a.header("ratelimit-remaining").unwrap().parse::<i64>().unwrap();
    assert_eq!(remaining(&a) - 1, remaining(&b), "one window for the key and its sessions");
    let token = portal(&t, &admin, "Ada").await;
    let exp = claims(&token)["exp"].as_i64().unwrap();
    t.app.clock.freeze();
    t.app.clock.advance(exp - 1 - t.app.clock.now().secs());
    assert_eq!(t.send(call("GET", "/api/v1/keys", &token, None)).await.status, 200, "a second before exp");
    t.app.clock.advance(1);
    let a = t.send(call("GET", "/api/v1/keys", &token, None)).await;
    assert_eq!((a.status, a.code()), (401, "key_expired"), "{}", a.body);
}

/// Tokens that are not a live session of this deployment get nothing: tampered claims, another
/// audience, a widget session, an unsigned token, another customer's key named in a token
/// signed by someone else, garbage in a JWT's shape.
#[tokio::test]
async fn forged_and_foreign_tokens_get_nothing() {
    let (t, admin, _) = setup().await;
    let token = portal(&t, &admin, "Ada").await;
    let parts: Vec<&str> = token.split('.').collect();
    let reencode = |claims: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    let mut other = claims(&token);
    other["cid"] = json!("globex");
    let mut longer = claims(&token);
    longer["exp"] = json!(longer["exp"].as_i64().unwrap() + 86_400);
    let unsigned_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let session = t.mint_session(&admin, "buddy_1", "u1", &["read"]).await.body["token"].as_str().unwrap().to_owned();
    let forged = [
        format!("{}.{}.{}", parts[0], reencode(&other), parts[2]),
        format!("{}.{}.{}", parts[0], reencode(&longer), parts[2]),
        format!("{unsigned_header}.{}.", parts[1]),
        format!("{}.{}.{}", parts[0], parts[1], &parts[2][..parts[2].len() - 2]),
        session,
        "eyJhbGciOiJFZERTQSJ9.eyJ9.AAAA".to_owned(),
    ];
    for bad in &forged {
        let a = t.send(call("GET", "/api/v1/keys", bad, None)).await;
        assert_eq!(a.status, 401, "{bad}: {}", a.body);
        // None of them verifies: refused as a malformed key is.
        assert_eq!(a.code(), "invalid_key_format", "{bad}: {}", a.body);
    }
    // Another customer's session sees its own keys only, and none of acme's by prefix.
    hatched_tests::Seed::customer(&t.app, "globex").await.unwrap();
    let globex = hatched_tests::Seed { app: t.app.clone(), customer: "globex".parse().unwrap() };
    let globex_admin = globex.key(Secret, Live, tier(Tier::Enterprise)).await.unwrap().key.expose().to_owned();
    let theirs = portal(&t, &globex_admin, "Mallory").await;
    let listed = t.send(call("GET", "/api/v1/keys", &theirs, None)).await;
    assert!(listed.body["keys"].as_array().unwrap().iter().all(|k| k["prefix"] != claims(&token)["kpx"]));
    let a =
        t.send(call("GET", &format!("/api/v1/keys/{}", claims(&token)["kpx"].as_str().unwrap()), &theirs, None)).await;
    assert_eq!((a.status, a.code()), (404, "key_not_found"));
}

#[tokio::test]
async fn every_portal_route_takes_a_session_and_no_other_does() {
    let managing: Vec<&str> =
        functions::ENDPOINTS.iter().filter(|e| e.access.admits_portal()).map(|e| e.function).collect();
    let mut expected = vec![
        "create-key",
        "create-role",
        "delete-role",
        "get-key",
        "get-key-usage",
        "get-role",
        "list-audit-events",
        "list-keys",
        "list-roles",
        "revoke-key",
        "roll-key",
        "update-key",
        "update-role",
    ];
    let mut managing = managing;
    managing.sort_unstable();
    expected.sort_unstable();
    assert_eq!(managing, expected, "API.md: the key management, roles, usage and audit routes");
}

#[tokio::test]
async fn hatchctl_portal_mints_for_a_managing_key_audited_as_operator() {
    let (t, admin, prefix) = setup().await;
    let out = t
        .ctl(&["portal", "--prefix", &prefix, "--label", "Ops desk", "--base-url", "http://127.0.0.1:3000/"])
        .await
        .unwrap();
    let token = out["token"].as_str().unwrap();
    assert_eq!(out["url"], format!("http://127.0.0.1:3000/portal#token={token}"));
    assert_eq!(out["acts_as"], format!("portal:{prefix}:Ops desk"));
    assert_eq!(t.send(call("GET", "/api/v1/keys", token, None)).await.status, 200);
    let events = t.send(call("GET", "/api/v1/audit-events", &admin, None)).await;
    let event = &events.body["events"][0];
    assert_eq!((event["action"].as_str(), event["actor"].as_str()), (Some("portal.session_created"), Some("operator")));
    // Only for a live secret key that may manage keys.
    let (reader, reader_prefix) = t.issue(Secret, Live, scopes(&["keys:read"])).await;
    let _ = reader;
    assert!(t.ctl(&["portal", "--prefix", &reader_prefix, "--label", "Ops"]).await.is_err());
    let (_, pk_prefix) = t.issue(Publishable, Live, plain()).await;
    assert!(t.ctl(&["portal", "--prefix", &pk_prefix, "--label", "Ops"]).await.is_err());
    assert!(t.ctl(&["portal", "--prefix", &prefix, "--label", " bad"]).await.is_err());
    assert_eq!(t.send(call("DELETE", &format!("/api/v1/keys/{prefix}"), &admin, None)).await.status, 200);
    assert!(t.ctl(&["portal", "--prefix", &prefix, "--label", "Ops"]).await.is_err(), "a revoked key");
}

/// What a portal request costs (BENCHMARKS.md "Key portal sessions"): the key's own reads and
/// writes — its read by prefix, then its count — with the public keys cached per instance.
#[tokio::test]
async fn round_trips_of_a_portal_request_are_the_keys_own() {
    hatched_tests::assert_happy_path_model();
    let (t, admin, _) = setup().await;
    let token = portal(&t, &admin, "Ada").await;
    for bearer in [&admin, &token] {
        assert_eq!(t.send(call("GET", "/api/v1/keys", bearer, None)).await.status, 200); // warm: last_used_at, keys
    }
    let mut seen = Vec::new();
    for bearer in [&admin, &token] {
        t.calls.clear();
        assert_eq!(t.send(call("GET", "/api/v1/keys", bearer, None)).await.status, 200);
        let mut ops = t.calls.take();
        ops.sort();
        seen.push(ops);
    }
    assert_eq!(seen[0], ["GetItem", "Query", "UpdateItem"], "a key: its read and count at once, the page");
    assert_eq!(seen[1], seen[0], "a portal session: the same calls (the read by prefix comes before the count)");
    // What the order costs in time: printed, not asserted.
    let mut medians = Vec::new();
    for bearer in [&admin, &token] {
        let mut times = Vec::new();
        for _ in 0..50 {
            let started = std::time::Instant::now();
            assert_eq!(t.send(call("GET", "/api/v1/keys", bearer, None)).await.status, 200);
            times.push(started.elapsed());
        }
        times.sort();
        medians.push(times[25]);
    }
    println!("list keys, median of 50: key {:?}, portal session {:?}", medians[0], medians[1]);
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy_and_no_aws_call() {
    let t = TestApp::new().await;
    t.calls.clear();
    let page = t.send(Call::new("GET", "/portal")).await;
    assert_eq!(page.status, 200);
    let header = |a: &Answer, name: &str| a.header(name).unwrap_or_default().to_owned();
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "cache-control"), "no-store");
    assert!(header(&page, "content-security-policy").starts_with("default-src 'self';"));
    assert!(header(&page, "content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header(&page, "x-frame-options"), "DENY");
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let html = page.text.clone();
    // No inline script or style (the policy would block them anyway), nothing from elsewhere.
    assert!(!html.contains("<style") && !html.contains(" style="), "inline style");
    for script in html.split("<script").skip(1) {
        assert!(script.split('>').next().unwrap().contains("src=\"portal/"), "inline script: {script}");
    }
    for origin in html.match_indices("http").map(|(i, _)| &html[i..html.len().min(i + 40)]) {
        assert!(origin.starts_with("https://app.example.com\""), "only the origins field's example: {origin}");
    }
    assert!(!html.split_whitespace().any(|w| w.starts_with("on") && w.contains("=\"")), "inline handler");
    for (name, kind) in [("portal.js", "text/javascript; charset=utf-8"), ("portal.css", "text/css; charset=utf-8")] {
        let a = t.send(Call::new("GET", &format!("/portal/{name}"))).await;
        assert_eq!((a.status, header(&a, "content-type").as_str()), (200, kind));
        assert!(header(&a, "content-security-policy").starts_with("default-src 'self';"));
        // Relative: an API mapped under a base path serves the page whole.
        assert!(html.contains(&format!("\"portal/{name}\"")), "the page loads {name}");
    }
    let js = t.send(Call::new("GET", "/portal/portal.js")).await.text;
    // The token: from the fragment, out of the address bar, in memory only.
    assert!(js.contains("location.hash") && js.contains("history.replaceState"));
    for storage in ["localStorage", "sessionStorage", "document.cookie", "indexedDB", "innerHTML", "eval("] {
        assert!(!js.contains(storage), "{storage}");
    }
    for missing in ["/portal/app.js", "/portal/index.html", "/portal/..%2Fportal.js", "/portal/PORTAL.JS"] {
        let a = t.send(Call::new("GET", missing)).await;
        assert_eq!((a.status, a.code()), (404, "not_found"), "{missing}");
    }
    assert_eq!(t.calls.take(), Vec::<String>::new(), "static content: no AWS call");
    let weight: usize =
        [&html, &js, &t.send(Call::new("GET", "/portal/portal.css")).await.text].iter().map(|s| s.len()).sum();
    println!("portal page weight: {weight} bytes (HTML + CSS + JS)");
}

/// Each route a session may call checks its signature against the published keys, read once
/// per instance: a cold instance of every such function reads them (the IAM check's grants).
#[tokio::test]
async fn every_portal_route_verifies_a_session_from_a_cold_start() {
    let (t, admin, _) = setup().await;
    let token = portal(&t, &admin, "Ada").await;
    let (_, spare) = t.issue(Secret, Live, plain()).await;
    let mut verified = Vec::new();
    for e in functions::ENDPOINTS.iter().filter(|e| e.access.admits_portal()) {
        let path = e.path.replace("{prefix}", &spare).replace("{name}", "admin");
        let body = (e.method != "GET" && e.method != "DELETE").then(|| json!({}));
        let cold = t.cold_instance().await;
        let a = call(e.method, &path, &token, body).send(&cold).await;
        // Past authentication, whatever the story then says of an empty body.
        assert!(a.status != 401 && a.status != 403 && a.status < 500, "{} {path}: {} {}", e.method, a.status, a.body);
        verified.push(e.function);
    }
    assert_eq!(verified.len(), 13, "{verified:?}");
}
