//! Introspection refuses every forged, altered or out-of-time token: each attack its own
//! case, each answered `{"active": false}` (never an error).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hatched::signing::SigningKey;
use serde_json::{Value, json};

use crate::tokens::{introspect, mint_embed, mint_session, parts, revoke, setup};
use hatched_tests::TestApp;
use hatched_tests::prelude::*;

const INACTIVE: fn() -> Value = || json!({ "active": false });

/// A live session token, its claims and the kid that signed it.
async fn session(t: &TestApp, key: &str) -> (String, Value, String) {
    let a = mint_session(t, key, json!({ "buddy_id": "b1", "user_id": "u1", "scopes": ["read"] })).await;
    let token = a.body["token"].as_str().unwrap().to_owned();
    let (header, claims) = parts(&token);
    (token, claims, header["kid"].as_str().unwrap().to_owned())
}

/// Signs arbitrary claims with the service's real current key.
async fn sign_real(t: &TestApp, claims: &Value) -> String {
    t.app.signer.ring().await.unwrap().current.sign(claims).unwrap()
}

fn raw_jwt(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!("{}.{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()), B64.encode(signature))
}

#[tokio::test]
async fn the_genuine_token_is_active() {
    let (t, key) = setup().await;
    let (token, _, _) = session(&t, &key).await;
    assert_eq!(introspect(&t, &token).await["active"], true);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (t, key) = setup().await;
    let (token, claims, kid) = session(&t, &key).await;
    for alg in ["none", "None", "NONE"] {
        let forged = raw_jwt(&json!({ "alg": alg, "typ": "JWT", "kid": kid }), &claims, b"");
        assert_eq!(introspect(&t, &forged).await, INACTIVE(), "{alg}");
    }
    let sig = token.rsplit('.').next().unwrap();
    let with_sig = format!(
        "{}.{}.{sig}",
        B64.encode(json!({ "alg": "none", "kid": kid }).to_string()),
        token.split('.').nth(1).unwrap()
    );
    assert_eq!(introspect(&t, &with_sig).await, INACTIVE());
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let (t, key) = setup().await;
    let (_, claims, kid) = session(&t, &key).await;
    let jwk = t.app.signer.ring().await.unwrap().current.jwk();
    let x = jwk["x"].as_str().unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    for secret in [B64.decode(x).unwrap(), x.as_bytes().to_vec(), jwk.to_string().into_bytes()] {
        let forged = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(introspect(&t, &forged).await, INACTIVE());
    }
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let (t, key) = setup().await;
    let (_, claims, _) = session(&t, &key).await;
    let stranger = SigningKey::from_secret("not the service's key").unwrap();
    let forged = stranger.sign(&claims).unwrap();
    assert_ne!(parts(&forged).0["kid"], parts(&sign_real(&t, &claims).await).0["kid"]);
    assert_eq!(introspect(&t, &forged).await, INACTIVE());
}

#[tokio::test]
async fn path_and_sql_looking_kids_are_refused() {
    let (t, key) = setup().await;
    let (token, claims, _) = session(&t, &key).await;
    let sig = B64.decode(token.rsplit('.').next().unwrap()).unwrap();
    for kid in ["../../../../etc/passwd", "' OR '1'='1' --", "KEY#abc", "%00", &"k".repeat(10_000)] {
        let forged = raw_jwt(&json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid }), &claims, &sig);
        assert_eq!(introspect(&t, &forged).await, INACTIVE(), "{}", &kid[..kid.len().min(30)]);
    }
}

#[tokio::test]
async fn a_signature_by_another_key_under_our_kid_is_refused() {
    let (t, key) = setup().await;
    let (token, claims, kid) = session(&t, &key).await;
    let stranger = SigningKey::from_secret("attacker").unwrap().sign(&claims).unwrap();
    let sig = stranger.rsplit('.').next().unwrap();
    let head_and_body = token.rsplit_once('.').unwrap().0;
    let forged = format!("{head_and_body}.{sig}");
    assert_eq!(parts(&forged).0["kid"], kid.as_str());
    assert_eq!(introspect(&t, &forged).await, INACTIVE());
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let (t, key) = setup().await;
    let (token, mut claims, _) = session(&t, &key).await;
    let mut pieces: Vec<String> = token.split('.').map(str::to_owned).collect();
    for (field, value) in [
        ("sub", json!("admin")),
        ("env", json!("test")),
        ("scope", json!("read marketplace:purchase")),
        ("exp", json!(9_999_999_999i64)),
    ] {
        let original = claims[field].clone();
        claims[field] = value;
        pieces[1] = B64.encode(claims.to_string());
        assert_eq!(introspect(&t, &pieces.join(".")).await, INACTIVE(), "{field}");
        claims[field] = original;
    }
}

#[tokio::test]
async fn a_truncated_or_missing_signature_is_refused() {
    let (t, key) = setup().await;
    let (token, _, _) = session(&t, &key).await;
    let without = token.rsplit_once('.').unwrap().0.to_owned();
    for forged in
        [token[..token.len() - 10].to_owned(), format!("{without}."), without.clone(), format!("{token}.extra")]
    {
        assert_eq!(introspect(&t, &forged).await, INACTIVE());
    }
}

#[tokio::test]
async fn garbage_tokens_are_inactive_not_errors() {
    let (t, _) = setup().await;
    for forged in ["", ".", "..", "a.b.c", "eyJhbGciOiJFZERTQSJ9..", "not a jwt", "\u{0}\u{1}"] {
        assert_eq!(introspect(&t, forged).await, INACTIVE(), "{forged:?}");
    }
}

#[tokio::test]
async fn a_wrong_audience_or_issuer_is_refused_even_when_signed() {
    let (t, key) = setup().await;
    let (_, claims, _) = session(&t, &key).await;
    for (field, value) in
        [("aud", "hatched:admin"), ("aud", "hatched:embed"), ("iss", "https://evil.example"), ("mode", "read-only")]
    {
        let mut c = claims.clone();
        c[field] = json!(value);
        assert_eq!(introspect(&t, &sign_real(&t, &c).await).await, INACTIVE(), "{field}={value}");
    }
}

#[tokio::test]
async fn embed_and_session_tokens_never_stand_in_for_each_other() {
    let (t, key) = setup().await;
    let embed = mint_embed(&t, &key, json!({ "buddy_id": "b1", "user_id": "u1" })).await;
    let (_, embed_claims) = parts(embed.body["token"].as_str().unwrap());
    let (_, session_claims, _) = session(&t, &key).await;
    // Embed claims presented as a session (with a real session's sid and scope added).
    let mut as_session = embed_claims.clone();
    as_session["aud"] = json!("hatched:widget-session");
    assert_eq!(introspect(&t, &sign_real(&t, &as_session).await).await, INACTIVE());
    as_session["sid"] = session_claims["sid"].clone();
    as_session["jti"] = session_claims["sid"].clone();
    as_session["scope"] = json!("read");
    assert_eq!(
        introspect(&t, &sign_real(&t, &as_session).await).await,
        INACTIVE(),
        "mode read-only under the session audience"
    );
    // Session claims presented as an embed token.
    let mut as_embed = session_claims.clone();
    as_embed["aud"] = json!("hatched:embed");
    as_embed["mode"] = json!("read-only");
    assert_eq!(introspect(&t, &sign_real(&t, &as_embed).await).await, INACTIVE());
}

#[tokio::test]
async fn expiry_has_a_30_second_leeway_and_no_more() {
    let (t, key) = setup().await;
    let embed = mint_embed(&t, &key, json!({ "buddy_id": "b1", "user_id": "u1", "ttl_seconds": 300 })).await;
    let token = embed.body["token"].as_str().unwrap();
    t.app.clock.advance(300 + 29);
    assert_eq!(introspect(&t, token).await["active"], true);
    t.app.clock.advance(2);
    assert_eq!(introspect(&t, token).await, INACTIVE());
}

#[tokio::test]
async fn a_future_nbf_is_refused() {
    let (t, key) = setup().await;
    let (_, mut claims, _) = session(&t, &key).await;
    claims["nbf"] = json!(claims["iat"].as_i64().unwrap() + 60);
    assert_eq!(introspect(&t, &sign_real(&t, &claims).await).await, INACTIVE());
}

#[tokio::test]
async fn a_revoked_session_makes_its_token_inactive() {
    let (t, key) = setup().await;
    let (token, claims, _) = session(&t, &key).await;
    revoke(&t, &key, claims["sid"].as_str().unwrap()).await;
    assert_eq!(introspect(&t, &token).await, INACTIVE());
}

#[tokio::test]
async fn a_signed_token_without_a_session_is_refused() {
    let (t, key) = setup().await;
    let (_, mut claims, _) = session(&t, &key).await;
    let sid = hatched::domain::SessionId::generate();
    claims["sid"] = json!(sid.as_str());
    claims["jti"] = json!(sid.as_str());
    assert_eq!(introspect(&t, &sign_real(&t, &claims).await).await, INACTIVE());
}

#[tokio::test]
async fn an_expired_session_is_checked_even_before_ttl_deletes_it() {
    let (t, key) = setup().await;
    let a = mint_session(&t, &key, json!({ "buddy_id": "b1", "user_id": "u1", "scopes": ["read"], "ttl_seconds": 60 }))
        .await;
    let (_, mut claims) = parts(a.body["token"].as_str().unwrap());
    // A token whose own exp is fine, pointing at a session that has expired.
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 3600);
    let long_lived = sign_real(&t, &claims).await;
    assert_eq!(introspect(&t, &long_lived).await["active"], true);
    t.app.clock.advance(60 + 31);
    assert_eq!(introspect(&t, &long_lived).await, INACTIVE());
}

#[tokio::test]
async fn a_token_minted_by_a_test_key_reports_the_test_environment() {
    let (t, _) = setup().await;
    let (test_key, _) = t.issue(Secret, Test, plain()).await;
    let (token, _, _) = session(&t, &test_key).await;
    let info = introspect(&t, &token).await;
    assert_eq!((info["active"].as_bool(), info["environment"].as_str()), (Some(true), Some("test")));
    // Claiming live in a test token breaks the signature.
    let (_, mut claims) = parts(&token);
    claims["env"] = json!("live");
    let mut pieces: Vec<String> = token.split('.').map(str::to_owned).collect();
    pieces[1] = B64.encode(claims.to_string());
    assert_eq!(introspect(&t, &pieces.join(".")).await, INACTIVE());
    // And a live-env claim set re-signed for a test session does not match the session record.
    assert_eq!(introspect(&t, &sign_real(&t, &claims).await).await, INACTIVE());
}
