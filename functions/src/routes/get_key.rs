//! GET /api/v1/keys/{prefix} — one key of the caller's customer and environment (anyone
//! else's is `key_not_found`). Budget: the caller's key read and one read of the key.

use hatched::domain::{KeyPrefix, Scope};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{no_body, path_param};
use hatched::lambda_http::{Body, Request, Response};
use hatched::views::KeyView;
use hatched::{Access, ApiError, App, Caller, RequestCtx};

pub const ENDPOINT: Endpoint = Endpoint {
    function: "get-key",
    method: "GET",
    path: "/api/v1/keys/{prefix}",
    access: Access::Managing(Scope::KeysRead),
    browser: false,
    status: 200,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| get(app, caller, req)).await
}

async fn get(app: &App, caller: Caller, req: Request) -> Result<KeyView, ApiError> {
    no_body(&req)?;
    let prefix = path_param(&req, "prefix", KeyPrefix::parse_id)?;
    let record = app.keys.managed_key(&prefix, &caller.manager(&RequestCtx::of(&req))).await?;
    Ok(KeyView::from(&record))
}
