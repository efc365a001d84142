//! GET /portal/{asset} — the key portal's stylesheet and module. Budget: no AWS call.

use hatched::endpoint::Endpoint;
use hatched::handler::public;
use hatched::http::{Reply, no_body};
use hatched::lambda_http::{Body, Request, RequestExt, Response};
use hatched::{Access, ApiError, App};

use crate::portal::asset;

pub const ENDPOINT: Endpoint = Endpoint {
    function: "portal-asset",
    method: "GET",
    path: "/portal/{asset}",
    access: Access::Public,
    browser: false,
    status: 200,
};

pub async fn handle(_app: &App, req: Request) -> Response<Body> {
    public(req, &ENDPOINT, |req, ctx| {
        no_body(req)?;
        let name = req.path_parameters_ref().and_then(|p| p.first("asset")).unwrap_or_default();
        let asset = asset(name).ok_or(ApiError::NotFound)?;
        Ok(Reply::new(ctx).page(asset.content_type, asset.body, asset.cache_control))
    })
    .await
}
