//! GET /portal — the key portal's page (API.md "The key portal"). Budget: no AWS call.

use hatched::endpoint::Endpoint;
use hatched::handler::public;
use hatched::http::{Reply, no_body};
use hatched::lambda_http::{Body, Request, Response};
use hatched::{Access, App};

use crate::portal::PAGE;

pub const ENDPOINT: Endpoint = Endpoint {
    function: "portal-page",
    method: "GET",
    path: "/portal",
    access: Access::Public,
    browser: false,
    status: 200,
};

pub async fn handle(_app: &App, req: Request) -> Response<Body> {
    public(req, &ENDPOINT, |req, ctx| {
        no_body(req)?;
        Ok(Reply::new(ctx).page(PAGE.content_type, PAGE.body, PAGE.cache_control))
    })
    .await
}
