//! Publishable keys in the browser: origins, scopes per endpoint, rate limits, CORS.

use hatched_tests::prelude::*;
use hatched_tests::{Answer, TestApp, gateway_request, keyed};
use serde_json::{Value, json};

async fn list_gates_from(t: &TestApp, key: &str, origin: Option<&str>) -> Answer {
    let auth = format!("Bearer {key}");
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(o) = origin {
        headers.push(("origin", o));
    }
    functions::list_gates::handle(&t.app, gateway_request("GET", "/api/v1/gates", &headers, None)).await.into()
}

async fn origin_case(origin: Option<&str>, allowed: bool) {
    let t = TestApp::new().await.with_customer().await;
    let (pk, _) = t.issue(Publishable, Live, origins(&["https://app.example.com", "https://*.example.com"])).await;
    let a = list_gates_from(&t, &pk, origin).await;
    if allowed {
        assert_eq!(a.status, 200, "{origin:?}: {}", a.body);
    } else {
        assert_eq!((a.status, a.code()), (403, "origin_not_allowed"), "{origin:?}");
    }
}

#[tokio::test]
async fn origin_exact_is_allowed() {
    origin_case(Some("https://app.example.com"), true).await;
}
#[tokio::test]
async fn origin_wildcard_one_level_is_allowed() {
    origin_case(Some("https://shop.example.com"), true).await;
}
#[tokio::test]
async fn origin_wildcard_two_levels_is_rejected() {
    origin_case(Some("https://a.b.example.com"), false).await;
}
#[tokio::test]
async fn origin_apex_is_rejected() {
    origin_case(Some("https://example.com"), false).await;
}
#[tokio::test]
async fn origin_other_scheme_is_rejected() {
    origin_case(Some("http://app.example.com"), false).await;
}
#[tokio::test]
async fn origin_other_port_is_rejected() {
    origin_case(Some("https://app.example.com:8443"), false).await;
}
#[tokio::test]
async fn origin_missing_is_rejected() {
    origin_case(None, false).await;
}

#[tokio::test]
async fn secret_keys_and_open_publishable_keys_ignore_origin() {
    let t = TestApp::new().await.with_customer().await;
    let (secret, _) = t.issue(Secret, Live, plain()).await;
    let (open_pk, _) = t.issue(Publishable, Live, plain()).await;
    for key in [&secret, &open_pk] {
        assert_eq!(list_gates_from(&t, key, Some("https://evil.test")).await.status, 200);
        assert_eq!(list_gates_from(&t, key, None).await.status, 200);
    }
}

/// Every endpoint × {secret, publishable default, publishable with write:unlocks}.
#[tokio::test]
async fn scope_matrix() {
    let t = TestApp::new().await.with_customer().await;
    t.buddy(Live, "b1").await;
    t.gate("hat", 1, None).await;
    t.credit(Live, "b1", 10).await;
    let (secret, _) = t.issue(Secret, Live, plain()).await;
    let (pk, _) = t.issue(Publishable, Live, plain()).await;
    let (pk_unlocks, _) = t
        .issue(Publishable, Live, scopes(&["read:buddies", "read:operations", "embed_tokens:create", "write:unlocks"]))
        .await;
    let session = json!({ "buddy_id": "b1", "user_id": "u", "scopes": ["read"] });
    let embed = json!({ "buddy_id": "b1", "user_id": "u" });
    let revoke_path = "/api/v1/widget-sessions/ws_000000000000000000000000";
    // (endpoint, [secret, publishable default, publishable + write:unlocks] as (status, code))
    type Row = (&'static str, [(u16, &'static str); 3]);
    let rows: [Row; 7] = [
        ("mint session", [(201, ""), (403, "publishable_key_scope"), (403, "publishable_key_scope")]),
        (
            "revoke session",
            [(404, "session_not_found"), (403, "publishable_key_scope"), (403, "publishable_key_scope")],
        ),
        ("mint embed", [(201, ""), (201, ""), (201, "")]),
        ("unlock", [(200, ""), (403, "insufficient_scope"), (200, "")]),
        ("list gates", [(200, ""), (200, ""), (200, "")]),
        ("list unlocks", [(200, ""), (200, ""), (200, "")]),
        ("validate", [(200, ""), (200, ""), (200, "")]),
    ];
    for (endpoint, expected) in rows {
        for (key, (status, code)) in [&secret, &pk, &pk_unlocks].into_iter().zip(expected) {
            let a: Answer = match endpoint {
                "mint session" => {
                    functions::create_widget_session::handle(
                        &t.app,
                        keyed("POST", "/api/v1/widget-sessions", key, Some(&session)),
                    )
                    .await
                }
                "revoke session" => {
                    functions::revoke_widget_session::handle(&t.app, keyed("DELETE", revoke_path, key, None)).await
                }
                "mint embed" => {
                    functions::create_embed_token::handle(
                        &t.app,
                        keyed("POST", "/api/v1/embed-tokens", key, Some(&embed)),
                    )
                    .await
                }
                "unlock" => {
                    functions::unlock_gate::handle(
                        &t.app,
                        keyed("POST", "/api/v1/buddies/b1/gates/hat/unlock", key, None),
                    )
                    .await
                }
                "list gates" => functions::list_gates::handle(&t.app, keyed("GET", "/api/v1/gates", key, None)).await,
                "list unlocks" => {
                    functions::list_unlocks::handle(&t.app, keyed("GET", "/api/v1/buddies/b1/unlocks", key, None)).await
                }
                _ => {
                    functions::validate_key::handle(
                        &t.app,
                        hatched_tests::json_post("/api/v1/keys/validate", &json!({ "key": key })),
                    )
                    .await
                }
            }
            .into();
            assert_eq!(a.status, status, "{endpoint} with {}: {}", &key[..9], a.body);
            if !code.is_empty() {
                assert_eq!(a.code(), code, "{endpoint} with {}", &key[..9]);
            }
        }
    }
    // Keyless endpoints answer everyone.
    let jwks: Answer =
        functions::jwks::handle(&t.app, gateway_request("GET", "/.well-known/jwks.json", &[], None)).await.into();
    assert_eq!(jwks.status, 200);
    let intro: Answer = functions::introspect_token::handle(
        &t.app,
        hatched_tests::json_post("/api/v1/tokens/introspect", &json!({ "token": "x" })),
    )
    .await
    .into();
    assert_eq!(intro.status, 200);
}

#[tokio::test]
async fn a_free_key_gets_sixty_calls_a_minute_with_headers() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Publishable, Live, tier(Tier::Free)).await;
    let now = t.app.clock.freeze().secs();
    t.app.clock.advance(60 - now.rem_euclid(60) + 10); // 10 s into a fresh window
    for i in 1..=60 {
        let a = list_gates_from(&t, &key, None).await;
        assert_eq!(a.status, 200, "call {i}");
        assert_eq!(a.header("ratelimit-limit"), Some("60"));
        assert_eq!(a.header("ratelimit-remaining"), Some((60 - i).to_string().as_str()));
        assert_eq!(a.header("ratelimit-reset"), Some("50"));
    }
    let a = list_gates_from(&t, &key, None).await;
    assert_eq!((a.status, a.code()), (429, "rate_limited"));
    assert_eq!(a.header("retry-after"), Some("50"));
    assert_eq!(a.header("ratelimit-remaining"), Some("0"));
    t.app.clock.advance(50);
    let a = list_gates_from(&t, &key, None).await;
    assert_eq!((a.status, a.header("ratelimit-remaining")), (200, Some("59")), "a fresh window admits again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_calls_against_sixty_admit_exactly_sixty() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Secret, Live, tier(Tier::Free)).await;
    let now = t.app.clock.freeze().secs();
    t.app.clock.advance(60 - now.rem_euclid(60) + 1);
    let calls = (0..100).map(|_| {
        let (app, key) = (t.app.clone(), key.clone());
        tokio::spawn(async move {
            let a: Answer = functions::list_gates::handle(&app, keyed("GET", "/api/v1/gates", &key, None)).await.into();
            a.status
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 60);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 40);
}

#[tokio::test]
async fn keyless_calls_are_limited_per_source_ip() {
    let t = TestApp::new().await;
    let now = t.app.clock.freeze().secs();
    t.app.clock.advance(60 - now.rem_euclid(60) + 1);
    let introspect = || {
        let app = t.app.clone();
        async move {
            let a: Answer = functions::introspect_token::handle(
                &app,
                hatched_tests::json_post("/api/v1/tokens/introspect", &json!({ "token": "x" })),
            )
            .await
            .into();
            a
        }
    };
    for _ in 0..60 {
        assert_eq!(introspect().await.status, 200);
    }
    let a = introspect().await;
    assert_eq!((a.status, a.code()), (429, "rate_limited"));
    assert!(a.header("retry-after").is_some());
    // The limit is per IP: the JWKS shares it, a malformed-key validate too.
    let j: Answer =
        functions::jwks::handle(&t.app, gateway_request("GET", "/.well-known/jwks.json", &[], None)).await.into();
    assert_eq!(j.status, 429);
    let v: Answer = functions::validate_key::handle(
        &t.app,
        hatched_tests::json_post("/api/v1/keys/validate", &json!({ "key": "nope" })),
    )
    .await
    .into();
    assert_eq!((v.status, v.body["code"].as_str()), (200, Some("rate_limited")));
}

#[tokio::test]
async fn cors_preflight_for_browser_routes_only() {
    let preflight = |path: &str| {
        let req = gateway_request(
            "OPTIONS",
            path,
            &[("origin", "https://app.example.com"), ("access-control-request-method", "POST")],
            None,
        );
        async move {
            let a: Answer = functions::fallback::handle(req).await.into();
            a
        }
    };
    for (path, method) in [
        ("/api/v1/embed-tokens", "POST"),
        ("/api/v1/buddies/b1/gates/hat/unlock", "POST"),
        ("/api/v1/gates", "GET"),
        ("/api/v1/buddies/b1/unlocks", "GET"),
    ] {
        let a = preflight(path).await;
        assert_eq!(a.status, 204, "{path}");
        assert_eq!(a.header("access-control-allow-origin"), Some("*"));
        assert_eq!(a.header("access-control-allow-methods"), Some(format!("{method}, OPTIONS").as_str()));
        assert_eq!(a.header("access-control-allow-headers"), Some("authorization, content-type"));
        assert_eq!(a.header("access-control-allow-credentials"), None, "credentials are never allowed");
    }
    for path in ["/api/v1/widget-sessions", "/api/v1/keys/validate", "/api/v1/tokens/introspect"] {
        let a = preflight(path).await;
        assert_eq!((a.status, a.code()), (405, "method_not_allowed"), "{path}");
        assert_eq!(a.header("access-control-allow-origin"), None);
    }
    assert_eq!(preflight("/nope").await.status, 404);
}

#[tokio::test]
async fn browser_route_answers_carry_cors_headers_and_server_routes_do_not() {
    let t = TestApp::new().await.with_customer().await;
    t.buddy(Live, "b1").await;
    let (pk, _) = t.issue(Publishable, Live, plain()).await;
    let (secret, _) = t.issue(Secret, Live, plain()).await;
    let a = list_gates_from(&t, &pk, Some("https://app.example.com")).await;
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    assert!(a.header("access-control-expose-headers").unwrap().contains("ratelimit-remaining"));
    let err = list_gates_from(&t, "hatch_pk_bad", Some("https://app.example.com")).await;
    assert_eq!(
        (err.status, err.header("access-control-allow-origin")),
        (401, Some("*")),
        "errors are readable by the page too"
    );
    let body: Value = json!({ "buddy_id": "b1", "user_id": "u", "scopes": ["read"] });
    let s: Answer = functions::create_widget_session::handle(
        &t.app,
        keyed("POST", "/api/v1/widget-sessions", &secret, Some(&body)),
    )
    .await
    .into();
    assert_eq!((s.status, s.header("access-control-allow-origin")), (201, None));
}
