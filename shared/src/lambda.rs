//! The Lambda side of every function: API Gateway v2 events in, responses out.
//! Shared by the Lambda binaries and the local API so both run the same conversion.

use std::convert::Infallible;
use std::future::Future;

use base64::Engine;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::aws_lambda_events::encodings::Body as EventBody;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request, Response};

use crate::http::UndecodableBody;

/// Turns an API Gateway HTTP API event into a request. A body flagged base64 that does not
/// decode is dropped and marked, so the handler answers 400 (`lambda_http` would panic).
pub fn into_request(mut event: ApiGatewayV2httpRequest) -> Request {
    let undecodable = event.is_base64_encoded
        && event.body.as_deref().is_some_and(|b| base64::engine::general_purpose::STANDARD.decode(b).is_err());
    if undecodable {
        event.body = None;
        event.is_base64_encoded = false;
    }
    let mut req: Request = LambdaRequest::ApiGatewayV2(event).into();
    if undecodable {
        req.extensions_mut().insert(UndecodableBody);
    }
    req
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
