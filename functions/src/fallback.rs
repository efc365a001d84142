//! Everything that is not an endpoint: CORS preflights (`OPTIONS` on browser routes), and
//! the `$default` route — 405 for a known path with the wrong method, 404 otherwise, in the
//! API.md error body (API Gateway's own `{"message":"Not Found"}` would break clients that
//! parse our errors). It needs no clients, so it builds none: a small binary, a fast start.

use hatched::auth::Access;
use hatched::endpoint::{Endpoint, Resolution};
use hatched::handler::log_request;
use hatched::http::{Reply, preflight};
use hatched::lambda_http::{Body, Request, RequestExt, Response};
use hatched::{ApiError, RequestCtx};

pub const ENDPOINT: Endpoint = Endpoint {
    function: "fallback",
    method: "$default",
    path: "$default",
    access: Access::Anonymous,
    browser: false,
    status: 204,
};

pub async fn handle(req: Request) -> Response<Body> {
    let ctx = RequestCtx::of(&req);
    let error = match crate::route(req.method().as_str(), req.raw_http_path()) {
        Resolution::Preflight(_, methods) => {
            let response = preflight(&ctx, &methods);
            log_request(&ctx, ENDPOINT.function, None, response.status().as_u16(), None);
            return response;
        }
        Resolution::MethodNotAllowed => ApiError::MethodNotAllowed,
        // A matched route never reaches this function behind API Gateway.
        Resolution::Found(..) | Resolution::NotFound => ApiError::NotFound,
    };
    let response = Reply::new(&ctx).error(&error);
    log_request(&ctx, ENDPOINT.function, None, response.status().as_u16(), Some(error.code()));
    response
}
