//! Secrets hygiene: a full key lifecycle, captured with the production log format,
//! never logs a plaintext key or HMAC secret.

use std::io::Write;
use std::sync::{Arc, Mutex};

use hatched_tests::{TestApp, json_post};
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
    // #[tokio::test] runs on one thread, so a thread-local default sees every event.
    let _guard = tracing::subscriber::set_default(hatched::telemetry::subscriber(move || writer.clone()));

    let t = TestApp::new().await.with_customer().await;
    let issued = t
        .ctl(&[
            "keys",
            "issue",
            "--customer",
            "acme",
            "--type",
            "publishable",
            "--env",
            "live",
            "--require-signed-user-id",
        ])
        .await
        .unwrap();
    let (key, prefix) = (issued["key"].as_str().unwrap().to_owned(), issued["prefix"].as_str().unwrap().to_owned());
    let hmac = issued["hmac_secret"].as_str().unwrap().to_owned();
    let (secret, _) = t.issue("secret", "live", &[]).await;
    let path = "/api/v1/keys/validate";
    for body in [
        json!({ "key": key }),
        json!({ "key": secret }),
        json!({ "key": format!("{secret}x") }),
        json!({ "key": secret, "extra": 1 }),
        json!({ "key": secret, "required_scopes": ["nope"] }),
    ] {
        validate_key::handle(&t.app, json_post(path, &body)).await;
    }
    let rotated = t.ctl(&["keys", "rotate", "--prefix", &prefix]).await.unwrap();
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    validate_key::handle(&t.app, json_post(path, &json!({ "key": new_key }))).await;
    t.ctl(&["keys", "revoke", "--prefix", &prefix]).await.unwrap();
    validate_key::handle(&t.app, json_post(path, &json!({ "key": key }))).await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.lines().count() >= 7, "one line per validate request:\n{logs}");
    assert!(logs.contains(&prefix), "the prefix is what identifies a key in logs");
    for line in logs.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every log line is JSON");
    }
    for needle in [key.as_str(), secret.as_str(), new_key.as_str(), hmac.as_str(), &secret[11..]] {
        assert!(!logs.contains(needle), "a secret leaked into the logs");
    }
}
