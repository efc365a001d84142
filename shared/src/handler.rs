//! The glue every handler shares, so a handler's own code is only its endpoint's story:
//! authenticate (or count the anonymous caller), run the story, answer, log one line.

use std::future::Future;

use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use crate::App;
use crate::auth::{Access, Caller, Rejected};
use crate::error::ApiError;
use crate::http::{Reply, RequestCtx};

/// A keyed endpoint: `Authorization` is checked against `access` before `story` runs; the
/// answer carries the key's rate-limit headers.
pub async fn keyed<F, Fut, T>(app: &App, req: Request, access: Access, status: u16, story: F) -> Response<Body>
where
    F: FnOnce(Caller, Request) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
    T: Serialize,
{
    let ctx = RequestCtx::of(&req);
    let browser = !crate::routes::browser_methods(req.raw_http_path()).is_empty();
    let caller = match app.authenticate(&req, &ctx, access).await {
        Ok(caller) => caller,
        Err(rejected) => return finish(&ctx, None, Err(rejected), browser),
    };
    let (prefix, rate) = (caller.record.prefix.clone(), caller.rate.clone());
    let result = story(caller, req).await.map_err(|error| Rejected { error, rate: Some(rate.clone()) });
    let response = match result {
        Ok(body) => Ok(Reply::new(&ctx).with_rate(Some(&rate)).json(status, &body)),
        Err(rejected) => Err(rejected),
    };
    finish(&ctx, Some(prefix.as_str()), response, browser)
}

/// An endpoint without a key: the caller's IP is counted concurrently with the story.
pub async fn anonymous<F, Fut, T>(app: &App, req: Request, cache_control: &str, story: F) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
    T: Serialize,
{
    let ctx = RequestCtx::of(&req);
    let (window, result) = futures::join!(app.count_anonymous(&ctx), story(req));
    let response = match (window, result) {
        (Err(error), _) | (_, Err(error)) => Err(error.into()),
        (Ok(ip), _) if !ip.allowed => Err(ApiError::RateLimited { retry_after_secs: ip.reset_in_secs }.into()),
        (Ok(_), Ok(body)) => Ok(Reply::new(&ctx).json_cacheable(&body, cache_control)),
    };
    finish(&ctx, None, response, false)
}

fn finish(
    ctx: &RequestCtx,
    prefix: Option<&str>,
    response: Result<Response<Body>, Rejected>,
    browser: bool,
) -> Response<Body> {
    let mut response =
        response.unwrap_or_else(|Rejected { error, rate }| Reply::new(ctx).with_rate(rate.as_ref()).error(&error));
    if browser {
        crate::http::add_cors(&mut response);
    }
    tracing::info!(request_id = %ctx.request_id, prefix, status = response.status().as_u16(), "request");
    response
}
