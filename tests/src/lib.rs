//! Typed helpers for end-to-end tests against a real DynamoDB-compatible server
//! (`AWS_ENDPOINT_URL`, started by `scripts/test`). Each test gets its own table.

pub mod calls;

use std::sync::OnceLock;

use aws_config::SdkConfig;
use hatched::App;
use hatched::lambda_http::{self, Body, Request, Response};
use serde_json::{Value, json};

pub use calls::CallLog;

/// One SDK configuration per test binary; the emulator is shared, tables are not.
async fn sdk_config() -> SdkConfig {
    static CONFIG: OnceLock<SdkConfig> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return c.clone();
    }
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the suite with scripts/test (it starts the local DynamoDB-compatible server)"
    );
    let config = hatched::app::aws_config().await;
    CONFIG.get_or_init(|| config).clone()
}

/// A fresh table and an [`App`] over it whose DynamoDB calls are recorded.
pub struct TestApp {
    pub app: App,
    pub calls: CallLog,
}

impl TestApp {
    pub async fn new() -> TestApp {
        let config = sdk_config().await;
        let calls = CallLog::default();
        let dynamo = aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(calls.clone())
            .build();
        let table = format!("t_{}", hatched::domain::key::random_base62(12));
        let store = hatched::store::Store::new(aws_sdk_dynamodb::Client::from_conf(dynamo), table);
        let app = App::new(store, hatched::Clock::default());
        app.store.create_table().await.expect("create test table");
        calls.clear();
        TestApp { app, calls }
    }

    /// Runs a hatchctl command line and returns its JSON output.
    pub async fn ctl(&self, args: &[&str]) -> anyhow::Result<Value> {
        hatchctl::run_args(&self.app, args).await.map(|o| o.json)
    }

    /// A customer `acme` with token keys `coins` (primary) and `xp` (progression).
    pub async fn with_customer(self) -> TestApp {
        self.ctl(&[
            "customers",
            "create",
            "--customer",
            "acme",
            "--primary-token",
            "coins",
            "--progression-token",
            "xp",
        ])
        .await
        .expect("create customer");
        self
    }

    /// Issues a key with extra `hatchctl keys issue` flags; returns (plaintext, prefix).
    pub async fn issue(&self, key_type: &str, env: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec![
            "keys",
            "issue",
            "--customer",
            "acme",
            "--type",
            key_type,
            "--env",
            env,
        ];
        args.extend_from_slice(extra);
        let out = self.ctl(&args).await.expect("issue key");
        (
            out["key"].as_str().unwrap().to_owned(),
            out["prefix"].as_str().unwrap().to_owned(),
        )
    }
}

/// An API Gateway HTTP API request for `path` with these headers and body.
pub fn gateway_request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Request {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_lowercase(), Value::from(*v)))
        .collect();
    let event = json!({
        "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "tests" },
            "requestId": format!("test-{}", hatched::domain::key::random_base62(10)),
            "routeKey": format!("{method} {path}"), "stage": "$default", "time": "", "timeEpoch": 0
        },
        "body": body, "isBase64Encoded": false
    });
    hatched::lambda::into_request(serde_json::from_value(event).expect("valid event"))
}

/// A JSON POST as a client would send it.
pub fn json_post(path: &str, body: &Value) -> Request {
    gateway_request(
        "POST",
        path,
        &[("content-type", "application/json")],
        Some(&body.to_string()),
    )
}

/// Status, headers and JSON body of a handler response.
pub struct Answer {
    pub status: u16,
    pub headers: lambda_http::http::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }
}

impl From<Response<Body>> for Answer {
    fn from(resp: Response<Body>) -> Answer {
        let (parts, body) = resp.into_parts();
        let bytes: &[u8] = body.as_ref();
        Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: serde_json::from_slice(bytes).unwrap_or(Value::Null),
        }
    }
}
