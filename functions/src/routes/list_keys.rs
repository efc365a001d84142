//! GET /api/v1/keys — the caller's customer's keys in its environment, newest first, a page at a
//! time (`?limit=` 1–100, `?cursor=` from the previous page). Budget: the key read and one query.

use hatched::domain::Scope;
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{no_body, page_params};
use hatched::lambda_http::{Body, Request, Response};
use hatched::store::is_keys_sort_key;
use hatched::views::KeyView;
use hatched::{Access, ApiError, App, Caller};
use serde::Serialize;

pub const ENDPOINT: Endpoint = Endpoint {
    function: "list-keys",
    method: "GET",
    path: "/api/v1/keys",
    access: Access::Managing(Scope::KeysRead),
    browser: false,
    status: 200,
};

#[derive(Serialize)]
struct Keys {
    keys: Vec<KeyView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| list(app, caller, req)).await
}

async fn list(app: &App, caller: Caller, req: Request) -> Result<Keys, ApiError> {
    no_body(&req)?;
    let (limit, after) = page_params(&req, is_keys_sort_key)?;
    let record = &caller.record;
    let page = app.keys.page(&record.customer_id, record.environment, limit, after.as_deref()).await?;
    Ok(Keys { keys: page.keys.iter().map(KeyView::from).collect(), next_cursor: page.next_cursor })
}
