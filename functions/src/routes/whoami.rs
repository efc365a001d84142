//! GET /api/v1/whoami — the example route behind the platform authorizer: it echoes the
//! authorizer's context (`requestContext.authorizer.lambda`), which is all a protected route
//! needs to know about its caller. It calls no AWS service, so it builds no clients.

use hatched::auth::Access;
use hatched::endpoint::Endpoint;
use hatched::handler::{log_request, serving};
use hatched::http::{Reply, no_body};
use hatched::lambda_http::request::RequestContext;
use hatched::lambda_http::{Body, Request, RequestExt, Response};
use hatched::{ApiError, App, RequestCtx};

pub const ENDPOINT: Endpoint = Endpoint {
    function: "whoami",
    method: "GET",
    path: "/api/v1/whoami",
    access: Access::Authorized,
    browser: false,
    status: 200,
};

/// As the local API calls it (the function needs no [`App`]).
pub async fn handle(_app: &App, req: Request) -> Response<Body> {
    answer(req).await
}

pub async fn answer(req: Request) -> Response<Body> {
    serving(ENDPOINT.function, async move {
        let ctx = RequestCtx::of(&req);
        let context = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(c)) => c.authorizer.as_ref().map(|a| a.fields.clone()),
            _ => None,
        };
        let answer = no_body(&req).and_then(|()| match context {
            Some(context) if !context.is_empty() => Ok(context),
            // Deployed without the authorizer in front: a configuration bug, never an open door.
            _ => Err(ApiError::Internal("whoami called without the authorizer's context".into())),
        });
        let (response, code) = match answer {
            Ok(context) => (Reply::new(&ctx).json(ENDPOINT.status, &context), None),
            Err(error) => (Reply::new(&ctx).error(&error), Some(error.code())),
        };
        log_request(&ctx, ENDPOINT.function, None, response.status().as_u16(), code);
        response
    })
    .await
}
