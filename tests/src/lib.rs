//! Typed helpers for end-to-end tests against a real DynamoDB-compatible server
//! (`AWS_ENDPOINT_URL`, started by `scripts/test`). Each test gets its own table.

pub mod calls;
pub mod canned;
pub mod faults;

use aws_config::SdkConfig;
use hatched::App;
use hatched::lambda_http::{self, Body, Request, Response};
use serde_json::{Value, json};

pub use calls::CallLog;

/// A fresh SDK configuration per test: its HTTP client (shared by the clients built from it,
/// as in a function) pools connections on the runtime of the test that made it, so a
/// configuration must not outlive its test's runtime. The emulator is shared, tables are not.
async fn sdk_config() -> SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the suite with scripts/test (it starts the local DynamoDB-compatible server)"
    );
    // Generous timeouts: the suite runs many tests at once against a single-process Python
    // emulator on two cores, where a call can legitimately take seconds. The fault tests use
    // the production timeouts instead (`production_config`).
    let relaxed = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .operation_attempt_timeout(std::time::Duration::from_secs(20))
        .operation_timeout(std::time::Duration::from_secs(60))
        .build();
    hatched::app::aws_config().await.expect("SDK configuration").into_builder().timeout_config(relaxed).build()
}

/// The SDK configuration the functions run with (production timeouts and retries).
async fn production_config() -> SdkConfig {
    hatched::app::aws_config().await.expect("SDK configuration")
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
        let dynamo = aws_sdk_dynamodb::config::Builder::from(&config).interceptor(calls.clone()).build();
        let suffix = hatched::domain::key::random_base62(12);
        let settings = hatched::app::Settings {
            table: format!("t_{suffix}"),
            signing_secret: Some(format!("hatched-test-{suffix}")),
            issuer: "https://auth.hatched.test".to_owned(),
        };
        let app = App::with_clients(
            aws_sdk_dynamodb::Client::from_conf(dynamo),
            aws_sdk_secretsmanager::Client::new(&config),
            settings,
        );
        app.store.create_table().await.expect("create test table");
        app.signer.create_secret().await.expect("create signing secret");
        calls.clear();
        TestApp { app, calls }
    }

    /// An App over this test's table and secret whose DynamoDB traffic goes through `proxy`.
    pub async fn behind(&self, proxy: &faults::FaultProxy) -> App {
        self.through(proxy, false).await
    }

    /// Like [`TestApp::behind`], with Secrets Manager behind the proxy as well.
    pub async fn all_behind(&self, proxy: &faults::FaultProxy) -> App {
        self.through(proxy, true).await
    }

    async fn through(&self, proxy: &faults::FaultProxy, secrets_too: bool) -> App {
        let config = production_config().await;
        let dynamo = aws_sdk_dynamodb::config::Builder::from(&config).endpoint_url(proxy.endpoint()).build();
        let mut secrets = aws_sdk_secretsmanager::config::Builder::from(&config);
        if secrets_too {
            secrets = secrets.endpoint_url(proxy.endpoint());
        }
        let settings = hatched::app::Settings {
            table: self.app.store.table().to_owned(),
            signing_secret: self.app.signer.secret_name().map(str::to_owned),
            issuer: self.app.issuer.clone(),
        };
        App::with_clients(
            aws_sdk_dynamodb::Client::from_conf(dynamo),
            aws_sdk_secretsmanager::Client::from_conf(secrets.build()),
            settings,
        )
    }

    /// The emulator's host:port, for a proxy to forward to.
    pub fn upstream() -> String {
        let url = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
        url.trim_start_matches("http://").trim_end_matches('/').to_owned()
    }

    /// Another App over the same table and secret, with its own caches and clock: what a
    /// second Lambda function (or a second instance of one) sees.
    pub async fn sibling(&self) -> App {
        let config = sdk_config().await;
        let settings = hatched::app::Settings {
            table: self.app.store.table().to_owned(),
            signing_secret: self.app.signer.secret_name().map(str::to_owned),
            issuer: self.app.issuer.clone(),
        };
        App::with_clients(
            aws_sdk_dynamodb::Client::new(&config),
            aws_sdk_secretsmanager::Client::new(&config),
            settings,
        )
    }

    /// Creates a buddy in an environment of `acme`.
    pub async fn buddy(&self, env: &str, buddy: &str) {
        self.ctl(&["buddies", "create", "--customer", "acme", "--env", env, "--buddy", buddy])
            .await
            .expect("create buddy");
    }

    /// A gate of `acme` spending `coins`.
    pub async fn gate(&self, gate: &str, cost: i64, metadata: Option<&Value>) {
        let cost = cost.to_string();
        let mut args =
            vec!["gates", "create", "--customer", "acme", "--gate", gate, "--token", "coins", "--cost", &cost];
        let meta = metadata.map(Value::to_string);
        if let Some(m) = &meta {
            args.extend(["--metadata", m.as_str()]);
        }
        self.ctl(&args).await.expect("create gate");
    }

    /// Credits `amount` coins to a buddy of `acme`.
    pub async fn credit(&self, env: &str, buddy: &str, amount: i64) {
        let amount = amount.to_string();
        let args = [
            "balances",
            "credit",
            "--customer",
            "acme",
            "--env",
            env,
            "--buddy",
            buddy,
            "--token",
            "coins",
            "--amount",
            &amount,
        ];
        self.ctl(&args).await.expect("credit");
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

    /// Issues a key of `acme` with extra `hatchctl keys issue` flags; returns the `--json` output.
    pub async fn issue_json(&self, key_type: &str, env: &str, extra: &[&str]) -> Value {
        let mut args = vec!["keys", "issue", "--customer", "acme", "--type", key_type, "--env", env];
        args.extend_from_slice(extra);
        self.ctl(&args).await.expect("issue key")
    }

    /// Issues a key with extra `hatchctl keys issue` flags; returns (plaintext, prefix).
    pub async fn issue(&self, key_type: &str, env: &str, extra: &[&str]) -> (String, String) {
        let out = self.issue_json(key_type, env, extra).await;
        (out["key"].as_str().unwrap().to_owned(), out["prefix"].as_str().unwrap().to_owned())
    }
}

/// An API Gateway HTTP API request for `path` with these headers and body.
pub fn gateway_request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Request {
    let headers: serde_json::Map<String, Value> =
        headers.iter().map(|(k, v)| (k.to_lowercase(), Value::from(*v))).collect();
    // API Gateway fills pathParameters from the matched route.
    let params: serde_json::Map<String, Value> = match hatched::routes::resolve(method, path) {
        hatched::routes::Resolution::Found(_, params) => params.into_iter().map(|(k, v)| (k, Value::from(v))).collect(),
        _ => serde_json::Map::new(),
    };
    let event = json!({
        "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path, "rawQueryString": "",
        "headers": headers, "pathParameters": params,
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
    gateway_request("POST", path, &[("content-type", "application/json")], Some(&body.to_string()))
}

/// A request carrying `Authorization: Bearer <key>` and, if given, a JSON body.
pub fn keyed(method: &str, path: &str, key: &str, body: Option<&Value>) -> Request {
    let auth = format!("Bearer {key}");
    let text = body.map(Value::to_string);
    let mut headers = vec![("authorization", auth.as_str())];
    if text.is_some() {
        headers.push(("content-type", "application/json"));
    }
    gateway_request(method, path, &headers, text.as_deref())
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
        self.body["error"]["code"].as_str().unwrap_or("<no error code>")
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
