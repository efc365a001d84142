//! The Lambda side of every function: API Gateway v2 events in, responses out.
//! Shared by the Lambda binaries and the local API so both run the same conversion.

use std::convert::Infallible;
use std::future::Future;

use base64::Engine;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse,
};
use lambda_http::aws_lambda_events::encodings::Body as EventBody;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::{HeaderValue, header};
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Body, Request, RequestExt, Response};

use crate::http::UndecodableBody;

/// Turns an API Gateway HTTP API event into a request. A body flagged base64 that does not
/// decode is dropped and marked, so the handler answers 400 (`lambda_http` would panic).
///
/// `lambda_http` also builds the request URI with `unwrap`/`expect` from the `Host` header
/// (else `requestContext.domainName`), `X-Forwarded-Proto`, the stage and `rawPath`, then
/// appends `rawQueryString`: a hostile `Host`, scheme, path or query (or a URI over 64 KiB)
/// would panic. Handlers never read the URI (they route on the raw path), so it is built
/// from a sanitised path and query only; the raw path, query parameters, headers, domain
/// name and stage reach the handler unchanged.
pub fn into_request(mut event: ApiGatewayV2httpRequest) -> Request {
    let undecodable = event.is_base64_encoded
        && event.body.as_deref().is_some_and(|b| base64::engine::general_purpose::STANDARD.decode(b).is_err());
    if undecodable {
        event.body = None;
        event.is_base64_encoded = false;
    }
    let hosts: Vec<HeaderValue> = event.headers.get_all(header::HOST).iter().cloned().collect();
    event.headers.remove(header::HOST);
    let domain_name = event.request_context.domain_name.take();
    let stage = event.request_context.stage.take();
    let raw_path = event.raw_path.take().unwrap_or_default();
    let raw_query = event.raw_query_string.take();
    let parsed_query = event.query_string_parameters.clone();
    let (safe_path, safe_query) = safe_uri_parts(&raw_path, raw_query.as_deref().unwrap_or_default());
    event.raw_path = Some(safe_path);
    event.raw_query_string = Some(safe_query);

    let mut req: Request = LambdaRequest::ApiGatewayV2(event).into();

    for host in hosts {
        req.headers_mut().append(header::HOST, host);
    }
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.extensions_mut().get_mut::<RequestContext>() {
        ctx.domain_name = domain_name;
        ctx.stage = stage;
    }
    // As `lambda_http` does: parsed from rawQueryString, else the event's own map.
    let query: QueryMap = match raw_query {
        Some(q) => q.parse().unwrap_or_default(),
        None => parsed_query,
    };
    let mut req = req.with_raw_http_path(raw_path).with_query_string_parameters(query);
    if undecodable {
        req.extensions_mut().insert(UndecodableBody);
    }
    req
}

/// Longest URI `http::Uri` takes is `u16::MAX - 1` bytes; stay well below it.
const MAX_URI_BYTES: usize = 8 * 1024;

/// A path that starts with `/` and a query, both made only of characters that `url::Url` and
/// `http::Uri` accept as they are (everything else percent-encoded), so that `lambda_http`'s
/// `Url::parse("http://localhost{path}")` and `Uri` parsing cannot fail. Too long: `/` alone.
fn safe_uri_parts(path: &str, query: &str) -> (String, String) {
    fn encode(out: &mut String, text: &str, extra: &[u8]) {
        for &b in text.as_bytes() {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b) || extra.contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    let mut safe_path = String::from("/");
    encode(&mut safe_path, path.strip_prefix('/').unwrap_or(path), b"");
    let mut safe_query = String::new();
    encode(&mut safe_query, query, b"?");
    if safe_path.len() + safe_query.len() + 1 > MAX_URI_BYTES {
        return ("/".to_owned(), String::new());
    }
    (safe_path, safe_query)
}

/// The API Gateway v2 answer for a handler's response.
pub fn into_event_response(resp: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = resp.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = parts.status.as_u16() as i64;
    out.headers = parts.headers;
    out.body = match body {
        Body::Empty => None,
        Body::Text(t) => Some(EventBody::Text(t)),
        Body::Binary(b) => Some(EventBody::Text(String::from_utf8_lossy(&b).into_owned())),
        _ => None,
    };
    out.is_base64_encoded = false;
    out
}

/// Runs an HTTP API Lambda authorizer (payload 2.0, simple responses) on the Lambda runtime.
/// It decides every request itself (denying on any failure), so the runtime never sees an error.
pub async fn run_authorizer<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(ApiGatewayV2CustomAuthorizerV2Request) -> Fut,
    Fut: Future<Output = ApiGatewayV2CustomAuthorizerSimpleResponse>,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| {
        let fut = Box::pin(handler(event.payload));
        async move { Ok::<_, Infallible>(fut.await) }
    }))
    .await
}

/// Runs a handler on the Lambda runtime. Handlers answer every error themselves, so the
/// runtime never sees one.
pub async fn run<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayV2httpRequest>| {
        // Boxed: handler futures nest deep (SDK calls inside the story), and an unboxed
        // chain up to `main` exceeds the compiler's layout depth.
        let fut = Box::pin(handler(into_request(event.payload)));
        async move { Ok::<_, Infallible>(into_event_response(fut.await)) }
    }))
    .await
}
