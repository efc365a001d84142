//! The platform authorizer, through the local API exactly as API Gateway applies it to
//! `GET /api/v1/whoami` (authorizer first; deny → API Gateway's own 403; allow → the route's
//! function with the context), and its sample events through the Lambda-side types.

use functions::authorize::AuthorizerRequest;
use hatched_tests::prelude::*;
use serde_json::{Value, json};

const FIXTURE_KEY: &str = "hatch_live_abcdefghijklmnopqrstuvwxyzABCDEF1mVgZW";

fn whoami(key: Option<&str>) -> Call {
    let call = Call::new("GET", "/api/v1/whoami");
    match key {
        Some(key) => call.key(key),
        None => call,
    }
}

fn denied(a: &Answer) -> bool {
    a.status == 403 && a.body == json!({ "message": "Forbidden" })
}

#[tokio::test]
async fn no_header_is_anonymous_within_the_ip_limit() {
    let t = TestApp::new().await;
    t.app.clock.freeze();
    let a = t.send(whoami(None).from_ip("203.0.113.50")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body,
        json!({ "auth": "anonymous", "rate_limit_remaining": 59, "rate_limit_reset": a.body["rate_limit_reset"] })
    );
    for _ in 1..60 {
        assert_eq!(t.send(whoami(None).from_ip("203.0.113.50")).await.status, 200);
    }
    assert!(denied(&t.send(whoami(None).from_ip("203.0.113.50")).await), "the 61st anonymous call");
    assert_eq!(t.send(whoami(None).from_ip("203.0.113.51")).await.status, 200, "per source IP");
}

#[tokio::test]
async fn a_valid_secret_key_passes_with_its_identity_in_the_context() {
    let t = TestApp::new().await.with_customer().await;
    let issued = t
        .issue_key(
            Secret,
            Live,
            KeyOptions { tier: Some(Tier::Pro), ..scopes(&["read:buddies", "embed_tokens:create"]) },
        )
        .await;
    let a = t.send(whoami(Some(&issued.key))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let reset = a.body["rate_limit_reset"].as_u64().expect("seconds to reset");
    assert!((1..=60).contains(&reset));
    assert_eq!(
        a.body,
        json!({
            "auth": "key", "customer_id": "acme", "environment": "live", "key_type": "secret", "tier": "pro",
            "scopes": "embed_tokens:create read:buddies", "prefix": issued.prefix,
            "rate_limit_remaining": 599, "rate_limit_reset": reset
        })
    );
    assert!(!a.body.to_string().contains(&issued.key), "never the plaintext key");
}

#[tokio::test]
async fn publishable_keys_pass_only_from_their_origins() {
    let t = TestApp::new().await.with_customer().await;
    let (pk, _) = t.issue(Publishable, Test, origins(&["https://app.example.com"])).await;
    let ok = t.send(whoami(Some(&pk)).header("origin", "https://app.example.com")).await;
    assert_eq!(
        (ok.status, ok.body["key_type"].as_str(), ok.body["environment"].as_str()),
        (200, Some("publishable"), Some("test"))
    );
    assert!(denied(&t.send(whoami(Some(&pk)).header("origin", "https://evil.example")).await));
    assert!(denied(&t.send(whoami(Some(&pk))).await), "no Origin at all");
}

#[tokio::test]
async fn malformed_unknown_revoked_and_expired_keys_are_denied_never_downgraded() {
    let t = TestApp::new().await.with_customer().await;
    let unknown = hatched::domain::ApiKey::generate(hatched::domain::KeyKind::SecretLive).expose().to_owned();
    for bad in ["hatch_live_nope", "Basic dXNlcjpwYXNz", "", unknown.as_str()] {
        let call = if bad.starts_with("Basic") { whoami(None).header("authorization", bad) } else { whoami(Some(bad)) };
        let a = t.send(call).await;
        assert!(denied(&a), "{bad:?} → {} {}", a.status, a.body);
    }
    let (revoked, prefix) = t.issue(Secret, Live, plain()).await;
    assert_eq!(t.send(whoami(Some(&revoked))).await.status, 200);
    t.ctl(&["keys", "revoke", "--prefix", &prefix]).await.unwrap();
    assert!(denied(&t.send(whoami(Some(&revoked))).await), "denied on the very next request");
    let (old, old_prefix) = t.issue(Secret, Live, plain()).await;
    t.ctl(&["keys", "rotate", "--prefix", &old_prefix, "--grace-hours", "0"]).await.unwrap();
    assert!(denied(&t.send(whoami(Some(&old))).await), "expired");
}

#[tokio::test]
async fn the_free_tiers_61st_call_in_a_minute_is_denied() {
    let t = TestApp::new().await.with_customer().await;
    t.app.clock.freeze();
    let (key, _) = t.issue(Secret, Live, tier(Tier::Free)).await;
    for i in 0..60 {
        let a = t.send(whoami(Some(&key))).await;
        assert_eq!((a.status, a.body["rate_limit_remaining"].as_u64()), (200, Some(59 - i)), "call {i}");
    }
    assert!(denied(&t.send(whoami(Some(&key))).await));
    t.app.clock.advance(60);
    assert_eq!(t.send(whoami(Some(&key))).await.status, 200, "a new window");
}

#[tokio::test]
async fn one_key_read_for_a_key_and_none_for_a_malformed_one() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Secret, Live, plain()).await;
    t.send(whoami(Some(&key))).await; // the first use records last_used_at
    t.calls.clear();
    assert_eq!(t.send(whoami(Some(&key))).await.status, 200);
    let mut ops = t.calls.take();
    ops.sort();
    assert_eq!(ops, ["GetItem", "UpdateItem"], "the key read with the rate count beside it");
    assert!(denied(&t.send(whoami(Some("hatch_live_nope"))).await));
    assert!(t.calls.take().is_empty(), "a malformed key is decided from its shape alone");
}

fn event(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../events/authorize/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The sample events, deserialized as the Lambda runtime does and answered by the handler.
#[tokio::test]
async fn the_authorizer_events_through_the_lambda_types() {
    let t = TestApp::new().await.with_customer().await;
    let (key, prefix) = t.issue(Secret, Live, plain()).await;
    let decide = |text: String| {
        let app = t.app.clone();
        async move {
            let req: AuthorizerRequest = serde_json::from_str(&text).expect("an authorizer event");
            let response = functions::authorize::handle(&app, req).await;
            // What goes back to API Gateway.
            serde_json::to_value(&response).unwrap()
        }
    };
    let allow = decide(event("allow.json").replace(FIXTURE_KEY, &key)).await;
    assert_eq!(
        (allow["isAuthorized"].as_bool(), allow["context"]["prefix"].as_str()),
        (Some(true), Some(prefix.as_str()))
    );
    let unissued = decide(event("allow.json")).await;
    assert_eq!(unissued["isAuthorized"], false, "the fixture key is not on record");
    let anonymous = decide(event("anonymous.json")).await;
    assert_eq!(
        (anonymous["isAuthorized"].as_bool(), anonymous["context"]["auth"].as_str()),
        (Some(true), Some("anonymous"))
    );
    let deny = decide(event("deny.json")).await;
    assert_eq!(deny["isAuthorized"], false);
    assert!(deny["context"].as_object().is_none_or(|c| c.is_empty()), "a deny carries no context: {deny}");
}

#[tokio::test]
async fn whoami_echoes_the_context_and_refuses_to_run_without_one() {
    let text = std::fs::read_to_string(format!("{}/../events/whoami/valid.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let a: Answer = functions::whoami::answer(hatched::lambda_http::request::from_str(&text).unwrap()).await.into();
    let expected: Value =
        serde_json::from_str::<Value>(&text).unwrap()["requestContext"]["authorizer"]["lambda"].clone();
    assert_eq!((a.status, &a.body), (200, &expected));
    let bare = hatched_tests::gateway_request("GET", "/api/v1/whoami", &[], None);
    let a: Answer = functions::whoami::answer(bare).await.into();
    assert_eq!((a.status, a.code()), (500, "internal_error"), "never an open door");
}
