//! Every Lambda function of the stack, in one crate (as aws-samples/serverless-rust-demo):
//! a route is a file `src/routes/<name>.rs` (its `ENDPOINT` and `handle`) and a one-line
//! binary `src/bin/<name>.rs`; `build.rs` turns the files in `src/routes/` into the modules
//! and the [`ENDPOINTS`] / [`ROUTES`] lists, so no list of routes is kept by hand. The
//! functions no route reaches are the modules [`fallback`] (API Gateway's `$default`: the
//! browser routes' preflights, 404 and 405, read from the list), [`authorize`] (the platform's
//! Lambda authorizer), [`rotate_signing_key`] (Secrets Manager's rotation function) and
//! [`usage_rollup`] (the table stream's consumer).
//!
//! Each binary links only its own handler: [`ENDPOINTS`] holds metadata, the handlers are
//! reachable only through [`ROUTES`] (the local API and the tests).
//!
//! Also here: the API Gateway v2 event a request becomes (local API and tests).

use base64::Engine;
use hatched::endpoint::{Endpoint, Handler, Resolution, resolve};
use hatched::lambda_http::aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerV2Request, ApiGatewayV2httpRequest};
use serde_json::{Map, Value, json};

// Re-exported for the binaries' `lambda_main!`.
#[doc(hidden)]
pub use hatched;

pub mod authorize;
pub mod fallback;
pub mod portal;
pub mod rotate_signing_key;
pub mod usage_rollup;

/// A route: its endpoint and the handler the local API calls for it.
pub struct Route {
    pub endpoint: &'static Endpoint,
    pub handle: Handler,
}

// `#[path = ".../src/routes/<name>.rs"] pub mod <name>;` for every route file, then the lists.
include!(concat!(env!("OUT_DIR"), "/routes.rs"));

/// The functions no route reaches (an AWS service invokes them): the template and events
/// checks cover them as they do the endpoints.
pub static OTHER_FUNCTIONS: &[&hatched::endpoint::Function] =
    &[&authorize::FUNCTION, &rotate_signing_key::FUNCTION, &usage_rollup::FUNCTION];

/// The binary name of every deployed function: the routed endpoints, the fallback and
/// [`OTHER_FUNCTIONS`].
pub fn all_functions() -> Vec<&'static str> {
    ENDPOINTS
        .iter()
        .chain([&&fallback::ENDPOINT])
        .map(|e| e.function)
        .chain(OTHER_FUNCTIONS.iter().map(|f| f.function))
        .collect()
}

/// The `main` of a routed function's binary (`src/bin/<name>.rs`, one line):
/// `functions::lambda_main!(list_gates);` builds the [`hatched::App`] and serves the route's
/// `handle`; `preload: signer` (or `verifier`) first fetches the signing keys, so the first
/// request does not pay for it; `without_app: path::to::fn` serves a handler that needs no
/// clients (none are built).
#[macro_export]
macro_rules! lambda_main {
    ($route:ident $(, preload: $keys:ident)?) => {
        #[tokio::main]
        async fn main() -> Result<(), $crate::hatched::lambda_http::lambda_runtime::Error> {
            $crate::hatched::telemetry::init();
            let app = $crate::hatched::App::from_env().await?;
            $(app.$keys.preload().await;)?
            $crate::hatched::lambda::run(|req| $crate::$route::handle(&app, req)).await
        }
    };
    (without_app: $handler:path) => {
        #[tokio::main]
        async fn main() -> Result<(), $crate::hatched::lambda_http::lambda_runtime::Error> {
            $crate::hatched::telemetry::init();
            $crate::hatched::lambda::run($handler).await
        }
    };
}

/// What API Gateway does with a method and path.
pub fn route(method: &str, path: &str) -> Resolution<'static> {
    resolve(ENDPOINTS, method, path)
}

/// The handler of a routed endpoint.
pub fn handler(endpoint: &Endpoint) -> Option<Handler> {
    ROUTES.iter().find(|f| f.endpoint == endpoint).map(|f| f.handle)
}

/// An HTTP request as API Gateway receives it.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Repeated names are joined with `,` as API Gateway does.
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
    pub source_ip: &'a str,
    pub request_id: String,
}

/// The HTTP API (payload 2.0) event API Gateway sends to the function `resolution` names.
/// Shared by the local API and the tests, so both feed handlers the deployed shape.
pub fn gateway_event(req: &HttpRequest<'_>, resolution: &Resolution<'_>) -> ApiGatewayV2httpRequest {
    serde_json::from_value(event_json(req, resolution)).unwrap_or_default()
}

/// The REQUEST authorizer event (payload 2.0) API Gateway sends before calling a route's
/// function: the same request, no body, and no identity source (none is configured).
pub fn authorizer_event(req: &HttpRequest<'_>, resolution: &Resolution<'_>) -> ApiGatewayV2CustomAuthorizerV2Request {
    let mut event = event_json(req, resolution);
    if let Some(fields) = event.as_object_mut() {
        for field in ["body", "isBase64Encoded"] {
            fields.remove(field);
        }
        fields.insert("type".into(), Value::from("REQUEST"));
        fields.insert(
            "routeArn".into(),
            Value::from(format!("arn:aws:execute-api:local:local:local/$default/{}", req.method)),
        );
    }
    serde_json::from_value(event).unwrap_or_default()
}

fn event_json(req: &HttpRequest<'_>, resolution: &Resolution<'_>) -> Value {
    let mut headers: Map<String, Value> = Map::new();
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        let joined = match headers.get(&name).and_then(Value::as_str) {
            Some(earlier) => format!("{earlier},{value}"),
            None => value.clone(),
        };
        headers.insert(name, Value::from(joined));
    }
    let params: Map<String, Value> = match resolution {
        Resolution::Found(_, params) => params.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect(),
        _ => Map::new(),
    };
    // API Gateway base64-encodes bodies that are not valid UTF-8.
    let (body, is_base64) = match std::str::from_utf8(req.body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(req.body), true),
    };
    let route_key = resolution.route_key();
    let user_agent = headers.get("user-agent").cloned().unwrap_or_else(|| Value::from(""));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": req.path,
        "rawQueryString": req.query,
        "headers": headers,
        "pathParameters": params,
        "requestContext": {
            "accountId": "local", "apiId": "local", "domainName": "127.0.0.1", "domainPrefix": "local",
            "http": {
                "method": req.method, "path": req.path, "protocol": "HTTP/1.1",
                "sourceIp": req.source_ip, "userAgent": user_agent,
            },
            "requestId": req.request_id,
            "routeKey": route_key, "stage": "$default", "time": "", "timeEpoch": now.as_millis() as i64,
        },
        "body": if body.is_empty() { Value::Null } else { Value::from(body) },
        "isBase64Encoded": is_base64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_is_listed_once_with_its_handler() {
        let mut names: Vec<&str> = ENDPOINTS.iter().map(|e| e.function).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ENDPOINTS.len());
        assert!(ENDPOINTS.iter().all(|e| handler(e).is_some()));
    }

    #[test]
    fn events_carry_the_route_and_its_parameters() {
        let req = HttpRequest {
            method: "POST",
            path: "/api/v1/buddies/b1/gates/hat/unlock",
            query: "",
            headers: vec![("X-A".into(), "1".into()), ("x-a".into(), "2".into())],
            body: b"\xff",
            source_ip: "198.51.100.7",
            request_id: "r1".into(),
        };
        let event = gateway_event(&req, &route(req.method, req.path));
        assert_eq!(event.route_key.as_deref(), Some("POST /api/v1/buddies/{buddy_id}/gates/{gate_key}/unlock"));
        assert_eq!(event.path_parameters.get("gate_key").map(String::as_str), Some("hat"));
        assert_eq!(event.headers.get("x-a").and_then(|v| v.to_str().ok()), Some("1,2"));
        assert!(event.is_base64_encoded);
    }
}
