//! The sample events in events/ double as fixtures: each is fed to its handler and must
//! give the answer its name promises.

use hatched::lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use hatched_tests::prelude::*;
use hatched_tests::{Answer, TestApp};
use serde_json::json;

/// The syntactically valid but unissued key the fixtures carry.
const FIXTURE_KEY: &str = "hatch_live_abcdefghijklmnopqrstuvwxyzABCDEF1mVgZW";

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn validate_fixture(t: &TestApp, name: &str, key: &str) -> Answer {
    let text = fixture(&format!("validate-key/{name}")).replace(FIXTURE_KEY, key);
    let req = hatched::lambda_http::request::from_str(&text).expect("fixture parses as an API Gateway event");
    assert_eq!(req.method(), "POST");
    assert_eq!(req.uri().path(), "/api/v1/keys/validate");
    functions::validate_key::handle(&t.app, req).await.into()
}

#[tokio::test]
async fn validate_key_fixtures() {
    let t = TestApp::new().await.with_customer().await;
    assert_eq!(validate_fixture(&t, "valid.json", FIXTURE_KEY).await.body["code"], "invalid_key");
    let (key, _) = t.issue(Secret, Live, plain()).await;
    let a = validate_fixture(&t, "valid.json", &key).await;
    assert_eq!((a.status, a.body["valid"].clone()), (200, json!(true)));
    assert_eq!(a.header("x-request-id"), Some("JKJaXmPLvHcESHA="), "API Gateway's request id is echoed");
    let cases = [
        ("malformed-key.json", 200, "invalid_key_format"),
        ("bad-json.json", 400, "invalid_request"),
        ("unknown-field.json", 400, "invalid_request"),
        ("unknown-scope.json", 400, "invalid_scope"),
        ("wrong-content-type.json", 415, "unsupported_media_type"),
        ("oversize.json", 413, "payload_too_large"),
    ];
    for (name, status, code) in cases {
        let a = validate_fixture(&t, name, &key).await;
        let got = if status == 200 { a.body["code"].as_str().unwrap_or("") } else { a.code() };
        assert_eq!((a.status, got), (status, code), "{name}");
    }
}

#[tokio::test]
async fn base64_bodies_decode_and_broken_base64_is_a_400() {
    let t = TestApp::new().await.with_customer().await;
    // The base64 fixture's key is inside the encoded body: issue a key and re-encode.
    let (key, _) = t.issue(Secret, Live, plain()).await;
    let mut event: serde_json::Value = serde_json::from_str(&fixture("validate-key/valid-base64.json")).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body =
        String::from_utf8(b64.decode(event["body"].as_str().unwrap()).unwrap()).unwrap().replace(FIXTURE_KEY, &key);
    event["body"] = json!(b64.encode(body));
    let req = hatched::lambda_http::request::from_str(&event.to_string()).unwrap();
    let a: Answer = functions::validate_key::handle(&t.app, req).await.into();
    assert_eq!(a.body["valid"], true);

    // lambda_http panics on undecodable base64; our adapter turns it into a 400.
    let broken: ApiGatewayV2httpRequest = serde_json::from_str(&fixture("validate-key/broken-base64.json")).unwrap();
    let a: Answer = functions::validate_key::handle(&t.app, hatched::lambda::into_request(broken)).await.into();
    assert_eq!((a.status, a.code()), (400, "invalid_request"));
}

/// Every other function's fixtures, with the fixture key replaced by a real one and the
/// fixture session id by a real session where the case needs it.
/// (Each handler's future boxed: in one `vec!` expression they would all be held at once in the
/// test's future, which the test thread's 2 MB stack holds.)
#[tokio::test]
async fn token_function_fixtures() {
    let t = TestApp::new().await.with_customer().await;
    t.buddy(Live, "buddy_1").await;
    let (key, _) = t.issue(Secret, Live, plain()).await;
    let load = |name: &str| {
        let text = fixture(name).replace(FIXTURE_KEY, &key);
        hatched::lambda_http::request::from_str(&text).expect("fixture parses")
    };
    let a: Answer =
        Box::pin(functions::create_widget_session::handle(&t.app, load("create-widget-session/valid.json")))
            .await
            .into();
    assert_eq!(a.status, 201, "{}", a.body);
    let token = a.body["token"].as_str().unwrap().to_owned();
    let cases: Vec<(&str, Answer, u16, &str)> = vec![
        (
            "create-widget-session/missing-scopes.json",
            Box::pin(functions::create_widget_session::handle(
                &t.app,
                load("create-widget-session/missing-scopes.json"),
            ))
            .await
            .into(),
            400,
            "scopes_required",
        ),
        (
            "create-widget-session/missing-key.json",
            Box::pin(functions::create_widget_session::handle(&t.app, load("create-widget-session/missing-key.json")))
                .await
                .into(),
            401,
            "missing_key",
        ),
        (
            "revoke-widget-session/valid.json",
            Box::pin(functions::revoke_widget_session::handle(&t.app, load("revoke-widget-session/valid.json")))
                .await
                .into(),
            404,
            "session_not_found",
        ),
        (
            "revoke-widget-session/bad-id.json",
            Box::pin(functions::revoke_widget_session::handle(&t.app, load("revoke-widget-session/bad-id.json")))
                .await
                .into(),
            400,
            "invalid_request",
        ),
        (
            "create-embed-token/with-scopes.json",
            Box::pin(functions::create_embed_token::handle(&t.app, load("create-embed-token/with-scopes.json")))
                .await
                .into(),
            400,
            "scopes_not_allowed",
        ),
        (
            "introspect-token/bad-body.json",
            Box::pin(functions::introspect_token::handle(&t.app, load("introspect-token/bad-body.json"))).await.into(),
            400,
            "invalid_request",
        ),
    ];
    for (name, a, status, code) in cases {
        assert_eq!((a.status, a.code()), (status, code), "{name}");
    }
    let a: Answer =
        Box::pin(functions::create_embed_token::handle(&t.app, load("create-embed-token/valid.json"))).await.into();
    assert_eq!((a.status, a.body["mode"].as_str()), (201, Some("read-only")));
    let a: Answer =
        Box::pin(functions::introspect_token::handle(&t.app, load("introspect-token/garbage.json"))).await.into();
    assert_eq!((a.status, a.body.clone()), (200, json!({ "active": false })));
    let a: Answer = Box::pin(functions::jwks::handle(&t.app, load("jwks/valid.json"))).await.into();
    assert_eq!(a.body["keys"].as_array().map(Vec::len), Some(2), "the current and the standby key");
    // The revoke fixture with a real session id.
    let sid = a_session_id(&token);
    let text = fixture("revoke-widget-session/valid.json")
        .replace(FIXTURE_KEY, &key)
        .replace("ws_000000000000000000000000", &sid);
    let a: Answer = Box::pin(functions::revoke_widget_session::handle(
        &t.app,
        hatched::lambda_http::request::from_str(&text).unwrap(),
    ))
    .await
    .into();
    assert_eq!((a.status, a.body["revoked"].as_bool()), (200, Some(true)));
}

fn a_session_id(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn gate_function_fixtures() {
    let t = TestApp::new().await.with_customer().await;
    t.buddy(Live, "buddy_1").await;
    t.gate("dark_mode", 3, None).await;
    t.credit(Live, "buddy_1", 5).await;
    let (key, _) = t.issue(Secret, Live, plain()).await;
    let load = |name: &str| hatched::lambda_http::request::from_str(&fixture(name).replace(FIXTURE_KEY, &key)).unwrap();
    let a: Answer = functions::unlock_gate::handle(&t.app, load("unlock-gate/valid.json")).await.into();
    assert_eq!((a.status, a.body["balance"]["amount"].as_i64()), (200, Some(2)));
    let a: Answer = functions::unlock_gate::handle(&t.app, load("unlock-gate/unknown-gate.json")).await.into();
    assert_eq!((a.status, a.code()), (404, "gate_not_found"));
    let a: Answer = functions::unlock_gate::handle(&t.app, load("unlock-gate/bad-gate-key.json")).await.into();
    assert_eq!((a.status, a.code()), (400, "invalid_request"));
    let a: Answer = functions::list_gates::handle(&t.app, load("list-gates/valid.json")).await.into();
    assert_eq!(a.body["gates"][0]["gate_key"], "dark_mode");
    let a: Answer = functions::list_unlocks::handle(&t.app, load("list-unlocks/valid.json")).await.into();
    assert_eq!(a.body["unlocks"][0]["gate_key"], "dark_mode");
    let a: Answer = functions::list_unlocks::handle(&t.app, load("list-unlocks/unknown-buddy.json")).await.into();
    assert_eq!((a.status, a.code()), (404, "buddy_not_found"));
}

/// The same API Gateway request id reaching two tables (two stages or deployments in one
/// account) is two spends. DynamoDB scopes a transaction's `ClientRequestToken` to the
/// account for ten minutes, so a token derived from the request id alone made the second
/// one an `IdempotentParameterMismatch` (seen as a 500 on ministack).
#[tokio::test]
async fn the_unlock_fixture_spends_once_in_each_of_two_tables() {
    let text = fixture("unlock-gate/valid.json");
    for _ in 0..2 {
        let t = TestApp::new().await.with_customer().await;
        t.buddy(Live, "buddy_1").await;
        t.gate("dark_mode", 3, None).await;
        t.credit(Live, "buddy_1", 10).await;
        let (key, _) = t.issue(Secret, Live, plain()).await;
        let req = hatched::lambda_http::request::from_str(&text.replace(FIXTURE_KEY, &key)).expect("fixture parses");
        let a: Answer = functions::unlock_gate::handle(&t.app, req).await.into();
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["already_unlocked"], json!(false), "{}", a.body);
        assert_eq!(a.body["balance"]["amount"], json!(7), "{}", a.body);
    }
}

#[tokio::test]
async fn fallback_fixtures_answer_preflight_404_and_405() {
    let event = |name: &str| hatched::lambda_http::request::from_str(&fixture(&format!("fallback/{name}"))).unwrap();
    let pre: Answer = functions::fallback::handle(event("preflight.json")).await.into();
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-methods"), Some("POST, OPTIONS"));
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    let unknown: Answer = functions::fallback::handle(event("unknown-path.json")).await.into();
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
    assert_eq!(unknown.body["error"]["request_id"], "JKJaXmPLvHcESHA=");
    let wrong: Answer = functions::fallback::handle(event("wrong-method.json")).await.into();
    assert_eq!((wrong.status, wrong.code()), (405, "method_not_allowed"));
}
