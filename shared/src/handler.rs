//! The glue every handler shares, so a handler's own code is only its endpoint's story:
//! authenticate (or count the anonymous caller), run the story, answer, log one line.

use std::future::Future;

use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::App;
use crate::auth::{AuthError, Caller, Rejected};
use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::http::{Reply, RequestCtx, bearer_key, portal_token};

tokio::task_local! {
    /// The function whose request this task is serving (its log lines and, in the tests, the
    /// AWS calls it makes are attributed to it).
    static FUNCTION: &'static str;
}

/// The function serving the current request, if any.
pub fn current_function() -> Option<&'static str> {
    FUNCTION.try_with(|f| *f).ok()
}

/// Runs `fut` as a request of `function`.
pub async fn serving<F: Future>(function: &'static str, fut: F) -> F::Output {
    FUNCTION.scope(function, fut).await
}

/// The one log line per request every function writes (never a key, only its prefix), with
/// its metrics (`Requests`, `Latency` by function and outcome) as EMF (`crate::telemetry`).
pub fn log_request(ctx: &RequestCtx, function: &str, prefix: Option<&str>, status: u16, code: Option<&str>) {
    let latency_ms = ctx.received.elapsed().as_secs_f64() * 1000.0;
    let outcome = code.unwrap_or("ok");
    tracing::info!(target: crate::telemetry::METRICS, request_id = %ctx.request_id, function, prefix, status, code,
        outcome, latency_ms, "request");
}

/// A keyed endpoint: `Authorization` is checked against the endpoint's access rule before
/// `story` runs; the answer carries the key's rate-limit headers.
pub async fn keyed<F, Fut, T>(app: &App, req: Request, endpoint: &Endpoint, story: F) -> Response<Body>
where
    F: FnOnce(Caller, Request) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
    T: Serialize,
{
    serving(endpoint.function, async move {
        let ctx = RequestCtx::of(&req);
        let caller = match portal_token(&req).filter(|_| endpoint.access.admits_portal()) {
            Some(token) => portal_caller(app, token, &ctx, endpoint.access).await,
            None => app.auth.authenticate(bearer_key(&req), &ctx, endpoint.access).await.map_err(Refusal::from),
        };
        let caller = match caller {
            Ok(caller) => caller,
            Err(refusal) => return finish(&ctx, endpoint, None, Err(refusal)),
        };
        let (prefix, rate) = (caller.record.prefix.clone(), caller.rate.clone());
        let count = caller.key_count();
        // Boxed, as the story's SDK futures are large: a handler's future stays small.
        let response = match Box::pin(story(caller, req)).await {
            Ok(body) => Ok(Reply::new(&ctx).with_rate(Some(&rate)).json(endpoint.status, &body)),
            // A refused signature must not spend the key's budget (API.md "Keys").
            Err(ApiError::InvalidUserSignature) => {
                Err(app.auth.refuse_for_key(&count, &ctx, AuthError::InvalidUserSignature).await.into())
            }
            Err(error) => Err(Refusal { error, rate: Some(rate.clone()) }),
        };
        finish(&ctx, endpoint, Some(prefix.as_str()), response)
    })
    .await
}

/// A key portal session's caller: the token's signature first (no read while the public keys
/// are cached), then its key as [`crate::auth::Auth::authenticate_portal`] checks it.
async fn portal_caller(
    app: &App,
    token: &str,
    ctx: &crate::http::RequestCtx,
    access: crate::auth::Access,
) -> Result<Caller, Refusal> {
    let claims = app.tokens.portal_claims(token).await.map_err(|e| Refusal::from(ApiError::from(e)))?;
    app.auth.authenticate_portal(claims, ctx, access).await.map_err(Refusal::from)
}

/// An endpoint without a key: the caller's IP is counted concurrently with the story.
pub async fn anonymous<F, Fut, T>(
    app: &App,
    req: Request,
    endpoint: &Endpoint,
    cache_control: &str,
    story: F,
) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
    T: Serialize,
{
    serving(endpoint.function, async move {
        let ctx = RequestCtx::of(&req);
        // An address already over its limit gets its 429 before any work is done.
        if let Some(ip) = app.auth.blocked(&ctx) {
            let error = ApiError::RateLimited { retry_after_secs: ip.reset_in_secs };
            return finish(&ctx, endpoint, None, Err(error.into()));
        }
        let (window, result) = futures::join!(app.auth.count_anonymous(&ctx), Box::pin(story(req)));
        let response = match (window, result) {
            (Err(error), _) => Err(ApiError::from(error).into()),
            (_, Err(error)) => Err(error.into()),
            (Ok(ip), _) if !ip.allowed => Err(ApiError::RateLimited { retry_after_secs: ip.reset_in_secs }.into()),
            (Ok(_), Ok(body)) => Ok(Reply::new(&ctx).json_cacheable(&body, cache_control)),
        };
        finish(&ctx, endpoint, None, response)
    })
    .await
}

/// An endpoint of static content: no key, no count, no AWS call; the story picks the content
/// (or refuses, e.g. an unknown asset). One request line, as every endpoint logs.
pub async fn public<F>(req: Request, endpoint: &Endpoint, story: F) -> Response<Body>
where
    F: FnOnce(&Request, &RequestCtx) -> Result<Response<Body>, ApiError>,
{
    serving(endpoint.function, async move {
        let ctx = RequestCtx::of(&req);
        let response = story(&req, &ctx).map_err(Refusal::from);
        finish(&ctx, endpoint, None, response)
    })
    .await
}

/// A refusal as answered: the API.md error, with the key's rate window where it was counted.
struct Refusal {
    error: ApiError,
    rate: Option<crate::domain::ratelimit::RateLimitStatus>,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Refusal {
        Refusal { error, rate: None }
    }
}

impl From<Rejected> for Refusal {
    fn from(r: Rejected) -> Refusal {
        Refusal { error: r.error.into(), rate: r.rate }
    }
}

fn finish(
    ctx: &RequestCtx,
    endpoint: &Endpoint,
    prefix: Option<&str>,
    response: Result<Response<Body>, Refusal>,
) -> Response<Body> {
    let (mut response, code) = match response {
        Ok(response) => (response, None),
        Err(Refusal { error, rate }) => (Reply::new(ctx).with_rate(rate.as_ref()).error(&error), Some(error.code())),
    };
    if endpoint.browser {
        crate::http::add_cors(&mut response);
    }
    log_request(ctx, endpoint.function, prefix, response.status().as_u16(), code);
    response
}
