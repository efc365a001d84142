//! The local API: every route of the route table on 127.0.0.1, each answered by the same
//! handler function its Lambda runs, fed the same API Gateway v2 event shape.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use base64::Engine;
use clap::Args;
use hatched::lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use hatched::lambda_http::{self, Body};
use hatched::routes::{self, Resolution};
use hatched::{ApiError, App, Reply, RequestCtx};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Port on 127.0.0.1.
    #[arg(long, env = "HATCHED_PORT", default_value_t = 3000)]
    pub port: u16,
}

/// API Gateway's own payload limit; our handlers refuse anything over 16 KiB themselves.
const GATEWAY_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// Calls the handler of the function that serves a route.
pub async fn dispatch(app: &App, function: &str, req: lambda_http::Request) -> Option<lambda_http::Response<Body>> {
    Some(match function {
        "validate-key" => validate_key::handle(app, req).await,
        "create-widget-session" => create_widget_session::handle(app, req).await,
        "revoke-widget-session" => revoke_widget_session::handle(app, req).await,
        "create-embed-token" => create_embed_token::handle(app, req).await,
        "introspect-token" => introspect_token::handle(app, req).await,
        "jwks" => jwks::handle(app, req).await,
        "unlock-gate" => unlock_gate::handle(app, req).await,
        "list-gates" => list_gates::handle(app, req).await,
        "list-unlocks" => list_unlocks::handle(app, req).await,
        "fallback" => fallback::handle(req).await,
        _ => return None,
    })
}

pub async fn bind(port: u16) -> Result<TcpListener> {
    Ok(TcpListener::bind(("127.0.0.1", port)).await?)
}

/// Serves until the task is dropped.
pub async fn serve(app: App, listener: TcpListener) -> Result<()> {
    let app = Arc::new(app);
    loop {
        let (stream, peer) = listener.accept().await?;
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&app, req, peer).await) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn answer(app: &App, req: hyper::Request<Incoming>, peer: SocketAddr) -> hyper::Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, GATEWAY_BODY_LIMIT).collect().await.map(|c| c.to_bytes());
    let resolution = routes::resolve(parts.method.as_str(), parts.uri.path());
    let event = gateway_event(&parts, bytes.as_deref().unwrap_or_default(), peer, &resolution);
    let request = hatched::lambda::into_request(event);
    let ctx = RequestCtx::of(&request);
    let response = match (&resolution, bytes.is_ok()) {
        (_, false) => Reply::new(&ctx).error(&ApiError::PayloadTooLarge),
        (Resolution::Found(route, _), true) => match dispatch(app, route.function, request).await {
            Some(resp) => resp,
            None => Reply::new(&ctx).error(&ApiError::Internal(format!("no handler for {}", route.function))),
        },
        // What API Gateway sends to the `$default` route.
        (Resolution::MethodNotAllowed | Resolution::NotFound, true) => fallback::handle(request).await,
    };
    tracing::info!(method = %parts.method, path = parts.uri.path(), status = response.status().as_u16(), micros = started.elapsed().as_micros() as u64, "local api");
    to_hyper(response)
}

/// The HTTP API (payload 2.0) event API Gateway would send for this request.
fn gateway_event(
    parts: &hyper::http::request::Parts,
    body: &[u8],
    peer: SocketAddr,
    resolution: &Resolution,
) -> ApiGatewayV2httpRequest {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers.entry(name.as_str().to_owned()).and_modify(|v| *v = format!("{v},{value}")).or_insert(value);
    }
    let (route_key, params) = match resolution {
        Resolution::Found(route, params) => (
            format!("{} {}", route.method, route.path),
            params.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<Map<_, _>>(),
        ),
        _ => ("$default".to_owned(), Map::new()),
    };
    // API Gateway base64-encodes bodies that are not valid UTF-8.
    let (body, is_base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "pathParameters": params,
        "requestContext": {
            "accountId": "local", "apiId": "local", "domainName": "127.0.0.1", "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(), "path": parts.uri.path(), "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(), "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
            },
            "requestId": format!("local-{}", hatched::domain::key::random_base62(20)),
            "routeKey": route_key, "stage": "$default", "time": "", "timeEpoch": now.as_millis() as i64,
        },
        "body": if body.is_empty() { Value::Null } else { Value::from(body) },
        "isBase64Encoded": is_base64,
    });
    serde_json::from_value(event).unwrap_or_default()
}

fn to_hyper(resp: lambda_http::Response<Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    let mut out = hyper::Response::new(Full::new(bytes));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out
}
