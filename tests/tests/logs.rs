//! Secrets hygiene: a full key lifecycle, captured with the production log format,
//! never logs a plaintext key or HMAC secret.

use std::io::Write;
use std::sync::{Arc, Mutex};

use hatched_tests::prelude::*;
use hatched_tests::{TestApp, json_post, keyed};
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_plaintext_key_or_secret_in_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    // Global, not thread-local: SDK work on other threads must be captured too.
    tracing::subscriber::set_global_default(hatched::telemetry::subscriber(move || writer.clone())).unwrap();

    let t = TestApp::new().await.with_customer().await;
    let issued = t.issue_key(Publishable, Live, signed_user_ids()).await;
    let (key, prefix) = (issued.key.clone(), issued.prefix.clone());
    let hmac = issued.hmac_secret.clone().unwrap();
    let (secret, _) = t.issue(Secret, Live, plain()).await;
    let path = "/api/v1/keys/validate";
    for body in [
        json!({ "key": key }),
        json!({ "key": secret }),
        json!({ "key": format!("{secret}x") }),
        json!({ "key": secret, "extra": 1 }),
        json!({ "key": secret, "required_scopes": ["nope"] }),
    ] {
        functions::validate_key::handle(&t.app, json_post(path, &body)).await;
    }
    let rotated = t.ctl(&["keys", "rotate", "--prefix", &prefix]).await.unwrap();
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    functions::validate_key::handle(&t.app, json_post(path, &json!({ "key": new_key }))).await;
    t.ctl(&["keys", "revoke", "--prefix", &prefix]).await.unwrap();
    functions::validate_key::handle(&t.app, json_post(path, &json!({ "key": key }))).await;

    // Tokens: minted, introspected, revoked — none of them may reach the logs either.
    t.buddy(Live, "b1").await;
    let session_body = json!({ "buddy_id": "b1", "user_id": "u1", "scopes": ["read"] });
    let minted = functions::create_widget_session::handle(
        &t.app,
        keyed("POST", "/api/v1/widget-sessions", &secret, Some(&session_body)),
    )
    .await;
    let minted: serde_json::Value = serde_json::from_slice(minted.body().as_ref()).unwrap();
    let session_token = minted["token"].as_str().unwrap().to_owned();
    let embed = functions::create_embed_token::handle(
        &t.app,
        keyed("POST", "/api/v1/embed-tokens", &secret, Some(&json!({ "buddy_id": "b1", "user_id": "u1" }))),
    )
    .await;
    let embed: serde_json::Value = serde_json::from_slice(embed.body().as_ref()).unwrap();
    let embed_token = embed["token"].as_str().unwrap().to_owned();
    for token in [&session_token, &embed_token, &format!("{session_token}x")] {
        functions::introspect_token::handle(&t.app, json_post("/api/v1/tokens/introspect", &json!({ "token": token })))
            .await;
    }
    let sid = minted["session_id"].as_str().unwrap();
    functions::revoke_widget_session::handle(
        &t.app,
        keyed("DELETE", &format!("/api/v1/widget-sessions/{sid}"), &secret, None),
    )
    .await;
    // A publishable key that requires signed user ids, with a wrong signature.
    let signed_pk = t.issue_key(Publishable, Live, signed_user_ids()).await;
    let signed_secret = signed_pk.hmac_secret.clone().unwrap();
    functions::create_embed_token::handle(
        &t.app,
        keyed(
            "POST",
            "/api/v1/embed-tokens",
            signed_pk.key.as_str(),
            Some(&json!({ "buddy_id": "b1", "user_id": "u1", "user_id_sig": "00", "user_id_ts": 1 })),
        ),
    )
    .await;

    // The platform authorizer: a key allowed, a bad key denied, anonymous — its context carries
    // the prefix, never the key.
    for call in [
        Call::new("GET", "/api/v1/whoami").key(&secret),
        Call::new("GET", "/api/v1/whoami").key(&format!("{secret}x")),
        Call::new("GET", "/api/v1/whoami").key(&key),
        Call::new("GET", "/api/v1/whoami"),
    ] {
        let answer = t.send(call).await;
        assert!(!answer.body.to_string().contains(&secret), "no plaintext key in the authorizer's context");
    }

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.lines().count() >= 7, "one line per validate request:\n{logs}");
    assert!(logs.contains(&prefix), "the prefix is what identifies a key in logs");
    // Metrics: every request line is a valid EMF block (hatched_tests::emf), by function and
    // outcome, never by key; the functions called above each yield `Requests` and `Latency`.
    let mut series = std::collections::BTreeSet::new();
    for line in logs.lines() {
        let line = serde_json::from_str::<serde_json::Value>(line).expect("every log line is JSON");
        if line["fields"]["message"] == "request" {
            let yielded = hatched_tests::emf::check(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            for (namespace, dimensions, metric) in yielded {
                assert_eq!(namespace, hatched::telemetry::NAMESPACE);
                assert!(dimensions.iter().all(|d| d == "Function" || d == "Outcome"), "{dimensions:?}");
                series.insert((
                    line["Function"].as_str().unwrap().to_owned(),
                    line["Outcome"].as_str().unwrap().to_owned(),
                    metric,
                ));
            }
        }
    }
    for function in ["validate-key", "create-widget-session", "create-embed-token", "introspect-token", "authorize"] {
        for metric in ["Requests", "Latency"] {
            assert!(series.iter().any(|(f, _, m)| f == function && m == metric), "{function} {metric}: {series:?}");
        }
    }
    for outcome in ["ok", "invalid_key_format", "key_revoked", "invalid_user_signature"] {
        assert!(series.iter().any(|(_, o, _)| o == outcome), "outcome {outcome}: {series:?}");
    }
    let signature = |token: &str| token.rsplit('.').next().unwrap().to_owned();
    for needle in [
        key.as_str(),
        secret.as_str(),
        new_key.as_str(),
        hmac.as_str(),
        &secret[11..],
        signed_secret.as_str(),
        signed_pk.key.as_str(),
        session_token.as_str(),
        embed_token.as_str(),
        &signature(&session_token),
        &signature(&embed_token),
    ] {
        assert!(!logs.contains(needle), "a secret leaked into the logs");
    }
    println!("secrets hygiene: {} log lines, {} secrets searched for", logs.lines().count(), 11);
}
