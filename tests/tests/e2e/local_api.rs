//! The local API over real HTTP: same handlers, API Gateway-shaped events.

use hatched_tests::TestApp;
use hatched_tests::prelude::*;
use serde_json::{Value, json};

async fn start(t: &TestApp) -> String {
    let listener = hatchctl::serve::bind(0).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(hatchctl::serve::serve(t.app.clone(), listener));
    format!("http://{addr}")
}

#[tokio::test]
async fn serves_validate_404_405_and_common_headers() {
    let t = TestApp::new().await.with_customer().await;
    let (key, _) = t.issue(Secret, Test, plain()).await;
    let base = start(&t).await;
    let http = reqwest::Client::new();

    let ok = http.post(format!("{base}/api/v1/keys/validate")).json(&json!({ "key": key })).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    assert!(ok.headers().contains_key("x-request-id"));
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["key"]["environment"], "test");

    for (method, path, status, code) in [
        ("PUT", "/api/v1/keys/validate", 405, "method_not_allowed"),
        ("GET", "/api/v1/tokens/introspect", 405, "method_not_allowed"),
        // As API Gateway routes it: GET and DELETE of /api/v1/keys/{prefix}, keyed.
        ("GET", "/api/v1/keys/validate", 401, "missing_key"),
        ("GET", "/", 404, "not_found"),
        ("POST", "/api/v1/keys/validate/extra", 404, "not_found"),
        ("POST", "/api/v2/keys/validate", 404, "not_found"),
    ] {
        let resp = http.request(method.parse().unwrap(), format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), status, "{method} {path}");
        let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], code);
        assert_eq!(body["error"]["request_id"], rid.as_str());
    }
}

#[tokio::test]
async fn invalid_utf8_and_huge_bodies_are_client_errors() {
    let t = TestApp::new().await;
    let base = start(&t).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/api/v1/keys/validate");
    let resp = http
        .post(&url)
        .header("content-type", "application/json")
        .body(vec![b'{', 0xff, 0xfe, b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp =
        http.post(&url).header("content-type", "application/json").body(vec![b' '; 64 * 1024]).send().await.unwrap();
    assert_eq!(resp.status(), 413);
}

/// What crashed `lambda_http` (`Url::parse(..).unwrap()`): a request line and headers sent as
/// raw bytes, so no client library tidies them. The server answers and keeps serving.
#[tokio::test]
async fn hostile_host_and_forwarded_proto_headers_are_ignored() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestApp::new().await;
    let base = start(&t).await;
    let addr = base.trim_start_matches("http://").to_owned();
    for headers in ["X-Forwarded-Proto: 1\r\nHost: x\r\n", "Host: 127.0.0.1:99999\r\n", "Host: [::1\r\n"] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!("GET /.well-known/jwks.json HTTP/1.1\r\n{headers}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{headers:?}: {answer}");
    }
    let after = reqwest::get(format!("{base}/.well-known/jwks.json")).await.unwrap();
    assert_eq!(after.status(), 200);
}
