//! GET /api/v1/keys/{prefix}/usage — one key's requests by outcome, per minute, hour or day
//! (`granularity`, `from`, `to`: API.md). Dense and oldest first; another customer's or
//! environment's prefix is `key_not_found`. The counts come from the roll-up of the rate
//! windows (`hatched::usage`), seconds behind the requests.
//! Budget: the caller's key read, one read of the key, one query (≤ 3 items for minutes, ≤ 36
//! for hours, ≤ 8 for days).

use hatched::domain::{KeyPrefix, Scope};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{no_body, path_param, query_param};
use hatched::lambda_http::{Body, Request, Response};
use hatched::views::UsageView;
use hatched::{Access, ApiError, App, Caller, RequestCtx};

pub const ENDPOINT: Endpoint = Endpoint {
    function: "get-key-usage",
    method: "GET",
    path: "/api/v1/keys/{prefix}/usage",
    access: Access::Managing(Scope::KeysRead),
    browser: false,
    status: 200,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| usage(app, caller, req)).await
}

async fn usage(app: &App, caller: Caller, req: Request) -> Result<UsageView, ApiError> {
    no_body(&req)?;
    let prefix = path_param(&req, "prefix", KeyPrefix::parse_id)?;
    let query =
        app.usage.query(query_param(&req, "granularity"), query_param(&req, "from"), query_param(&req, "to"))?;
    let record = app.keys.managed_key(&prefix, &caller.manager(&RequestCtx::of(&req))).await?;
    let points = app.usage.series(&record.prefix, &query).await?;
    Ok(UsageView::new(&record.prefix, &query, &points))
}
