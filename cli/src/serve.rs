//! The local API: every endpoint on 127.0.0.1, each answered by the same handler function its
//! Lambda runs, fed the same API Gateway v2 event (`functions::gateway_event`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use functions::HttpRequest;
use hatched::auth::Access;
use hatched::endpoint::{Endpoint, Resolution};
use hatched::lambda_http::aws_lambda_events::apigw::ApiGatewayRequestAuthorizer;
use hatched::lambda_http::{self, Body};
use hatched::{ApiError, App, Reply, RequestCtx};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Port on 127.0.0.1.
    #[arg(long, env = "HATCHED_PORT", default_value_t = 3000)]
    pub port: u16,
}

/// API Gateway's own payload limit; our handlers refuse anything over 16 KiB themselves.
const GATEWAY_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// What API Gateway and Lambda do with a request: route it, build the event, call the
/// function that serves it (the fallback for preflights, unknown paths and wrong methods).
pub async fn dispatch(app: &App, req: &HttpRequest<'_>) -> lambda_http::Response<Body> {
    let resolution = functions::route(req.method, req.path);
    let request = hatched::lambda::into_request(functions::gateway_event(req, &resolution));
    match &resolution {
        Resolution::Found(endpoint, _) if endpoint.access == Access::Authorized => {
            // As API Gateway does: the authorizer first; a deny is its own 403 body, an allow
            // hands the route's function the authorizer's context.
            let verdict =
                Box::pin(functions::authorize::handle(app, functions::authorizer_event(req, &resolution))).await;
            if !verdict.is_authorized {
                return gateway_forbidden();
            }
            let mut event = functions::gateway_event(req, &resolution);
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            if let Value::Object(context) = verdict.context {
                authorizer.fields = context.into_iter().collect();
            }
            event.request_context.authorizer = Some(authorizer);
            call(app, endpoint, hatched::lambda::into_request(event)).await
        }
        Resolution::Found(endpoint, _) => call(app, endpoint, request).await,
        Resolution::Preflight(..) | Resolution::MethodNotAllowed | Resolution::NotFound => {
            Box::pin(functions::fallback::handle(request)).await
        }
    }
}

async fn call(app: &App, endpoint: &Endpoint, request: lambda_http::Request) -> lambda_http::Response<Body> {
    match functions::handler(endpoint) {
        Some(handle) => handle(app, request).await,
        None => Reply::new(&RequestCtx::of(&request))
            .error(&ApiError::Internal(format!("no handler for {}", endpoint.function))),
    }
}

/// What API Gateway itself answers when a Lambda authorizer denies (not the API.md body: the
/// route's function never runs).
fn gateway_forbidden() -> lambda_http::Response<Body> {
    let mut response = lambda_http::Response::new(Body::Text(r#"{"message":"Forbidden"}"#.to_owned()));
    *response.status_mut() = lambda_http::http::StatusCode::FORBIDDEN;
    response.headers_mut().insert("content-type", lambda_http::http::HeaderValue::from_static("application/json"));
    response
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
    let response = match Limited::new(body, GATEWAY_BODY_LIMIT).collect().await {
        Ok(collected) => {
            let body = collected.to_bytes();
            let headers = parts
                .headers
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect();
            let source_ip = peer.ip().to_string();
            let req = HttpRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers,
                body: &body,
                source_ip: &source_ip,
                request_id: format!("local-{}", hatched::domain::key::random_base62(20)),
            };
            dispatch(app, &req).await
        }
        // API Gateway refuses such a body itself, before any function runs.
        Err(_) => Reply::new(&RequestCtx::fresh()).error(&ApiError::PayloadTooLarge),
    };
    tracing::info!(method = %parts.method, path = parts.uri.path(), status = response.status().as_u16(), micros = started.elapsed().as_micros() as u64, "local api");
    to_hyper(response)
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
