//! Everything that is not an endpoint: CORS preflights (`OPTIONS` on browser routes), and
//! the `$default` route — 405 for a known path with the wrong method, 404 otherwise, in the
//! API.md error body (API Gateway's own `{"message":"Not Found"}` would break clients that
//! parse our errors). It needs no clients, so it builds none: a small binary, a fast start.

use hatched::http::{Reply, preflight};
use hatched::lambda_http::{Body, Request, RequestExt, Response};
use hatched::routes::{Resolution, browser_methods, resolve};
use hatched::{ApiError, RequestCtx};

pub async fn handle(req: Request) -> Response<Body> {
    let ctx = RequestCtx::of(&req);
    let path = req.raw_http_path().to_owned();
    let methods = browser_methods(&path);
    if req.method() == "OPTIONS" && !methods.is_empty() {
        return preflight(&ctx, &methods);
    }
    let error = match resolve(req.method().as_str(), &path) {
        Resolution::MethodNotAllowed => ApiError::MethodNotAllowed,
        // A matched route never reaches this function behind API Gateway.
        Resolution::Found(..) | Resolution::NotFound => ApiError::NotFound,
    };
    Reply::new(&ctx).error(&error)
}
