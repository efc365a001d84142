//! An in-memory HTTP client for the AWS SDK that answers every request at once from a
//! function of (`x-amz-target`, body). For what no real server produces on demand — throttling,
//! `TransactionConflict` — and for benchmarks that must not time round trips. Behaviour
//! tests use the real server.

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use serde_json::Value;

type Answer = Arc<dyn Fn(&str, &str) -> (u16, Value) + Send + Sync>;

#[derive(Clone)]
struct CannedHttp(Answer);

impl std::fmt::Debug for CannedHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CannedHttp")
    }
}

impl HttpConnector for CannedHttp {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").unwrap_or("").to_owned();
        let op = target.rsplit('.').next().unwrap_or("").to_owned();
        let body = std::str::from_utf8(request.body().bytes().unwrap_or_default()).unwrap_or("").to_owned();
        let (status, json) = (self.0)(&op, &body);
        let mut resp = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(json.to_string()));
        resp.headers_mut().insert("content-type", "application/x-amz-json-1.0");
        HttpConnectorFuture::ready(Ok(resp))
    }
}

impl HttpClient for CannedHttp {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// An HTTP client answering `(status, JSON body)` for each (operation, request body).
pub fn client(answer: impl Fn(&str, &str) -> (u16, Value) + Send + Sync + 'static) -> SharedHttpClient {
    SharedHttpClient::new(CannedHttp(Arc::new(answer)))
}

/// An [`hatched::App`] whose DynamoDB and Secrets Manager clients use canned answers.
pub fn app(
    dynamo: impl Fn(&str, &str) -> (u16, Value) + Send + Sync + 'static,
    secrets: impl Fn(&str, &str) -> (u16, Value) + Send + Sync + 'static,
    table: &str,
) -> hatched::App {
    let dynamo = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("canned", "canned", None, None, "canned"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_max_attempts(3))
        .http_client(client(dynamo))
        .build();
    let secrets = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "canned", "canned", None, None, "canned",
        ))
        .http_client(client(secrets))
        .build();
    let settings = hatched::app::Settings {
        table: table.into(),
        signing_secret: Some("canned".into()),
        data_key_secret: Some("canned-data".into()),
        issuer: hatched::app::DEFAULT_ISSUER.into(),
        portal_base_url: None,
    };
    hatched::App::with_clients(
        aws_sdk_dynamodb::Client::from_conf(dynamo),
        aws_sdk_secretsmanager::Client::from_conf(secrets),
        settings,
    )
}

/// DynamoDB's wire JSON for an item given as plain JSON (via serde_dynamo).
pub fn wire(item: Value) -> Value {
    use aws_sdk_dynamodb::types::AttributeValue;
    fn av(v: AttributeValue) -> Value {
        match v {
            AttributeValue::S(s) => serde_json::json!({ "S": s }),
            AttributeValue::N(n) => serde_json::json!({ "N": n }),
            AttributeValue::Bool(b) => serde_json::json!({ "BOOL": b }),
            AttributeValue::Null(_) => serde_json::json!({ "NULL": true }),
            AttributeValue::L(l) => serde_json::json!({ "L": l.into_iter().map(av).collect::<Vec<_>>() }),
            AttributeValue::M(m) => {
                serde_json::json!({ "M": m.into_iter().map(|(k, v)| (k, av(v))).collect::<serde_json::Map<_, _>>() })
            }
            other => panic!("unexpected attribute {other:?}"),
        }
    }
    let map: std::collections::HashMap<String, AttributeValue> = serde_dynamo::to_item(item).unwrap();
    Value::Object(map.into_iter().map(|(k, v)| (k, av(v))).collect())
}

/// The answer to a counting `UpdateItem` whose counters start at nothing: each attribute it
/// names (a secret key's month, `count`, and minute mark, `m<i>`) at 1.
pub fn first_count(body: &str) -> Value {
    let request: Value = serde_json::from_str(body).unwrap_or_default();
    let mut attributes = serde_json::Map::new();
    for name in request["ExpressionAttributeNames"].as_object().into_iter().flat_map(|names| names.values()) {
        if let Some(name) = name.as_str().filter(|n| *n == "count" || hatched::store::Mark::parse(n).is_some()) {
            attributes.insert(name.to_owned(), serde_json::json!({ "N": "1" }));
        }
    }
    serde_json::json!({ "Attributes": attributes })
}
