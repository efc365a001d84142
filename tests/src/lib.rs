//! Typed helpers for end-to-end tests against a real DynamoDB-compatible server
//! (`AWS_ENDPOINT_URL`, started by `scripts/test`). Each test gets its own table.

pub mod browser;
pub mod calls;
pub mod canned;
pub mod emf;
pub mod faults;
pub mod template;

use aws_config::SdkConfig;
use hatched::App;
use hatched::lambda_http::{self, Body, Request, Response};
use serde_json::{Value, json};

pub use calls::CallLog;
pub use hatchctl::keys::KeyPrefixArg;
pub use hatchctl::seed::Seed;
pub use hatched::domain::Environment::{self, Live, Test};
pub use hatched::domain::KeyType::{self, Publishable, Secret};
pub use hatched::domain::Tier;
pub use hatched::keys::KeyOptions;

/// What most tests use: `use hatched_tests::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Answer, Call, Environment, IssuedKey, KeyOptions, KeyType, Live, Publishable, Secret, Test, TestApp, Tier,
        origins, plain, scopes, signed_user_ids, tier,
    };
}

/// A fresh SDK configuration per test: its HTTP client (shared by the clients built from it,
/// as in a function) pools connections on the runtime of the test that made it, so a
/// configuration must not outlive its test's runtime. The emulator is shared, tables are not.
pub async fn sdk_config() -> SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the suite with scripts/test (it starts the local DynamoDB-compatible server)"
    );
    // Generous timeouts: the suite runs many tests at once against a single-process Python
    // emulator on two cores, where a call can legitimately take seconds. The fault tests use
    // the production timeouts instead (`production_config`).
    let relaxed = hatched::app::patient_timeouts(std::time::Duration::from_secs(60));
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
        // Its own log: round trips count DynamoDB calls only; its actions are recorded all the same.
        let secrets = aws_sdk_secretsmanager::config::Builder::from(&config).interceptor(CallLog::default()).build();
        let suffix = hatched::domain::key::random_base62(12);
        let settings = hatched::app::Settings {
            table: format!("t_{suffix}"),
            signing_secret: Some(format!("hatched-test-{suffix}")),
            data_key_secret: Some(format!("hatched-test-data-{suffix}")),
            issuer: "https://auth.hatched.test".to_owned(),
            portal_base_url: None,
        };
        let app = App::with_clients(
            aws_sdk_dynamodb::Client::from_conf(dynamo),
            aws_sdk_secretsmanager::Client::from_conf(secrets),
            settings,
        );
        app.store.create_table().await.expect("create test table");
        app.rotation.create_first().await.expect("create signing key set");
        app.sealer.create_secret().await.expect("create data key secret");
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

    /// Like [`TestApp::behind`], with the suite's patient timeouts: for a request the proxy
    /// holds (`Fault::HoldFirst`) while the test does something else.
    pub async fn patiently_behind(&self, proxy: &faults::FaultProxy) -> App {
        self.through_with(sdk_config().await, proxy, false)
    }

    async fn through(&self, proxy: &faults::FaultProxy, secrets_too: bool) -> App {
        self.through_with(production_config().await, proxy, secrets_too)
    }

    fn through_with(&self, config: SdkConfig, proxy: &faults::FaultProxy, secrets_too: bool) -> App {
        let dynamo = aws_sdk_dynamodb::config::Builder::from(&config).endpoint_url(proxy.endpoint()).build();
        let mut secrets = aws_sdk_secretsmanager::config::Builder::from(&config);
        if secrets_too {
            secrets = secrets.endpoint_url(proxy.endpoint());
        }
        let settings = self.settings();
        App::with_clients(
            aws_sdk_dynamodb::Client::from_conf(dynamo),
            aws_sdk_secretsmanager::Client::from_conf(secrets.build()),
            settings,
        )
    }

    /// An App over this test's table and secrets whose DynamoDB traffic goes through an
    /// in-process DynamoDB behaviour model (`hatchctl dynamodb-model`) with `rules`; `calls`
    /// records every SDK attempt (retries included), so attempts can be counted.
    pub async fn modelled(&self, rules: hatchctl::model::Rules) -> Modelled {
        let model = hatchctl::model::start(&emulator_url(), "127.0.0.1:0", rules).await.expect("start the model");
        // Longer still than the suite's relaxed timeouts: a burst of 200 requests queues at a
        // single-process emulator, and on moto (one request at a time) while the rest of the
        // suite runs through the model tier, CI measured p50 31 s and p99 58 s per unlock, so
        // 20 s attempts timed out and 4 of 200 answered 503. Timeouts are the fault tests'
        // subject; DynamoDB's answers are this one's.
        let patient = hatched::app::patient_timeouts(std::time::Duration::from_secs(300));
        let config = sdk_config().await.into_builder().timeout_config(patient).build();
        let calls = CallLog::default();
        let dynamo = aws_sdk_dynamodb::config::Builder::from(&config)
            .endpoint_url(model.endpoint())
            .interceptor(calls.clone())
            .build();
        let app = App::with_clients(
            aws_sdk_dynamodb::Client::from_conf(dynamo),
            aws_sdk_secretsmanager::Client::new(&config),
            self.settings(),
        );
        Modelled { app, calls, model }
    }

    /// Where this App's table and secrets are, for another App over the same ones.
    fn settings(&self) -> hatched::app::Settings {
        hatched::app::Settings {
            table: self.app.store.table().to_owned(),
            signing_secret: self.app.signer.secret_name().map(str::to_owned),
            data_key_secret: self.app.sealer.secret_name().map(str::to_owned),
            issuer: self.app.issuer.clone(),
            portal_base_url: None,
        }
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
        let settings = self.settings();
        App::with_clients(
            aws_sdk_dynamodb::Client::new(&config),
            aws_sdk_secretsmanager::Client::new(&config),
            settings,
        )
    }

    /// Another App over the same table and secrets with empty caches, whose AWS calls are
    /// recorded like this one's: a cold instance of a function, for the grants a warm test
    /// App never exercises (its data key is cached by the operator code that issued the keys).
    pub async fn cold_instance(&self) -> App {
        let config = sdk_config().await;
        let dynamo = aws_sdk_dynamodb::config::Builder::from(&config).interceptor(CallLog::default()).build();
        let secrets = aws_sdk_secretsmanager::config::Builder::from(&config).interceptor(CallLog::default()).build();
        let settings = self.settings();
        App::with_clients(
            aws_sdk_dynamodb::Client::from_conf(dynamo),
            aws_sdk_secretsmanager::Client::from_conf(secrets),
            settings,
        )
    }

    /// The fixture customer `acme` (primary `coins`, progression `xp`).
    pub fn acme(&self) -> Seed {
        Seed { app: self.app.clone(), customer: "acme".parse().expect("fixture id") }
    }

    /// Creates a buddy of `acme`.
    pub async fn buddy(&self, env: Environment, buddy: &str) {
        self.acme().buddy(env, buddy).await.expect("create buddy");
    }

    /// A gate of `acme` spending `coins`.
    pub async fn gate(&self, gate: &str, cost: i64, metadata: Option<&Value>) {
        self.acme().gate(gate, cost, metadata).await.expect("create gate");
    }

    /// Credits `amount` coins to a buddy of `acme`.
    pub async fn credit(&self, env: Environment, buddy: &str, amount: i64) {
        self.acme().credit(env, buddy, hatchctl::seed::PRIMARY_TOKEN, amount).await.expect("credit");
    }

    /// Runs a hatchctl command line and returns its JSON output (for tests of the CLI itself).
    pub async fn ctl(&self, args: &[&str]) -> anyhow::Result<Value> {
        hatchctl::run_args(&self.app, args).await.map(|o| o.json)
    }

    /// Does what Lambda does deployed: reads this table's stream from its start and rolls the
    /// usage up (idempotent, so reading it all again is harmless), limit events to a log line.
    /// The records read.
    pub async fn roll_up_usage(&self) -> usize {
        self.roll_up_usage_to(&hatched::usage::LogSink).await.expect("roll the usage up")
    }

    /// As [`TestApp::roll_up_usage`], limit events to `sink`.
    pub async fn roll_up_usage_to<S: hatched::usage::EventSink>(&self, sink: &S) -> anyhow::Result<usize> {
        let config = aws_sdk_dynamodbstreams::Config::from(&sdk_config().await);
        let mut consumer = hatchctl::rollup::StreamConsumer::new(&self.app, &config).await?;
        consumer.drain(&self.app, sink).await
    }

    /// With the customer `acme`.
    pub async fn with_customer(self) -> TestApp {
        Seed::customer(&self.app, "acme").await.expect("create customer");
        self
    }

    /// Issues a key of `acme`: plaintext, prefix and HMAC secret, through the operator's code.
    pub async fn issue_key(&self, key_type: KeyType, env: Environment, options: KeyOptions) -> IssuedKey {
        let issued = self.acme().key(key_type, env, options).await.expect("issue key");
        IssuedKey {
            key: issued.key.expose().to_owned(),
            prefix: issued.record.prefix.as_str().to_owned(),
            hmac_secret: issued.hmac_secret.map(|s| s.expose().to_owned()),
        }
    }

    /// Issues a key of `acme`; returns (plaintext, prefix).
    pub async fn issue(&self, key_type: KeyType, env: Environment, options: KeyOptions) -> (String, String) {
        let issued = self.issue_key(key_type, env, options).await;
        (issued.key, issued.prefix)
    }

    /// Sends a request as a client would: routed like API Gateway, to the function serving it.
    pub async fn send(&self, call: Call) -> Answer {
        call.send(&self.app).await
    }

    /// `POST /api/v1/buddies/{buddy}/gates/{gate}/unlock` with `key`.
    pub async fn unlock(&self, key: &str, buddy: &str, gate: &str) -> Answer {
        self.send(Call::new("POST", &format!("/api/v1/buddies/{buddy}/gates/{gate}/unlock")).key(key)).await
    }

    /// `POST /api/v1/widget-sessions` for a buddy and user with `scopes`.
    pub async fn mint_session(&self, key: &str, buddy: &str, user: &str, scopes: &[&str]) -> Answer {
        let body = json!({ "buddy_id": buddy, "user_id": user, "scopes": scopes });
        self.send(Call::new("POST", "/api/v1/widget-sessions").key(key).json(&body)).await
    }

    /// `POST /api/v1/embed-tokens` for a buddy and user.
    pub async fn mint_embed(&self, key: &str, buddy: &str, user: &str) -> Answer {
        let body = json!({ "buddy_id": buddy, "user_id": user });
        self.send(Call::new("POST", "/api/v1/embed-tokens").key(key).json(&body)).await
    }

    /// `POST /api/v1/tokens/introspect`.
    pub async fn introspect(&self, token: &str) -> Answer {
        self.send(Call::new("POST", "/api/v1/tokens/introspect").json(&json!({ "token": token }))).await
    }
}

/// An App behind an in-process DynamoDB behaviour model ([`TestApp::modelled`]).
pub struct Modelled {
    pub app: App,
    pub calls: CallLog,
    pub model: hatchctl::model::Running,
}

/// The emulator itself, for a model to forward to: `HATCHED_EMULATOR_URL` when the suite runs
/// through a model already (`scripts/test`'s model tier sets it), else `AWS_ENDPOINT_URL`.
pub fn emulator_url() -> String {
    std::env::var("HATCHED_EMULATOR_URL").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).expect("AWS_ENDPOINT_URL")
}

/// The rules of the DynamoDB model the whole suite runs through, if any
/// (`HATCHED_DYNAMODB_MODEL`, set by `scripts/test`'s model tier: a comma-separated list of
/// `conflicts`, `pages`, `partial-batches`, `throttling`).
pub fn model_rules_in_force() -> Vec<String> {
    std::env::var("HATCHED_DYNAMODB_MODEL")
        .map(|v| v.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Round trips count the happy path: a partial batch or a throttled call adds attempts by
/// design. Conflicts and small pages change nothing on the happy path, so they may be on.
pub fn assert_happy_path_model() {
    let rules = model_rules_in_force();
    for rule in ["partial-batches", "throttling"] {
        assert!(
            !rules.iter().any(|r| r == rule),
            "round trips are counted with {rule} off (HATCHED_DYNAMODB_MODEL={rules:?})"
        );
    }
}

/// A key issued in a test, with what is shown once.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub key: String,
    pub prefix: String,
    pub hmac_secret: Option<String>,
}

/// A customer backend's signed user id: hex HMAC-SHA256 of `user\nbuddy\nts` (API.md).
pub fn sign_user(secret: &str, user: &str, buddy: &str, ts: i64) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{user}\n{buddy}\n{ts}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Key options: the type's defaults.
pub fn plain() -> KeyOptions {
    KeyOptions::default()
}

/// Key options: this tier.
pub fn tier(tier: Tier) -> KeyOptions {
    KeyOptions { tier: Some(tier), ..KeyOptions::default() }
}

/// Key options: these scopes.
pub fn scopes(scopes: &[&str]) -> KeyOptions {
    KeyOptions { scopes: Some(scopes.iter().map(|s| s.to_string()).collect()), ..KeyOptions::default() }
}

/// Key options: a publishable key's origin allowlist.
pub fn origins(origins: &[&str]) -> KeyOptions {
    KeyOptions { allowed_origins: origins.iter().map(|s| s.to_string()).collect(), ..KeyOptions::default() }
}

/// Key options: embed mints need an HMAC-signed user id.
pub fn signed_user_ids() -> KeyOptions {
    KeyOptions { require_signed_user_id: true, ..KeyOptions::default() }
}

/// A request as a client sends it.
#[derive(Debug, Clone)]
pub struct Call {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    source_ip: String,
}

impl Call {
    /// `path` may carry a `?query`.
    pub fn new(method: &str, path: &str) -> Call {
        Call {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            source_ip: "198.51.100.7".to_owned(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Authorization: Bearer <key>`.
    pub fn key(self, key: &str) -> Call {
        self.header("authorization", &format!("Bearer {key}"))
    }

    /// A JSON body with its content type.
    pub fn json(self, body: &Value) -> Call {
        self.header("content-type", "application/json").body(body.to_string().as_bytes())
    }

    pub fn body(mut self, body: &[u8]) -> Call {
        self.body = body.to_vec();
        self
    }

    pub fn from_ip(mut self, ip: &str) -> Call {
        self.source_ip = ip.to_owned();
        self
    }

    /// Through the local API's dispatch: routing, the API Gateway event, the function.
    pub async fn send(self, app: &App) -> Answer {
        let (path, query) = self.path.split_once('?').unwrap_or((&self.path, ""));
        let req = functions::HttpRequest {
            method: &self.method,
            path,
            query,
            headers: self.headers.clone(),
            body: &self.body,
            source_ip: &self.source_ip,
            request_id: format!("test-{}", hatched::domain::key::random_base62(10)),
        };
        // Boxed: a handler's future is large in debug builds, and tests await many in a row.
        Box::pin(hatchctl::serve::dispatch(app, &req)).await.into()
    }
}

/// An API Gateway HTTP API request for `path` with these headers and body, built as the
/// local API builds it (`functions::gateway_event`); `path` may carry a `?query`.
pub fn gateway_request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Request {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let req = functions::HttpRequest {
        method,
        path,
        query,
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body: body.unwrap_or("").as_bytes(),
        source_ip: "198.51.100.7",
        request_id: format!("test-{}", hatched::domain::key::random_base62(10)),
    };
    hatched::lambda::into_request(functions::gateway_event(&req, &functions::route(method, path)))
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
    /// The body as text (pages and assets are not JSON).
    pub text: String,
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
            text: String::from_utf8_lossy(bytes).into_owned(),
        }
    }
}
