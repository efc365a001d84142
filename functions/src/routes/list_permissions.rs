//! GET /api/v1/permissions — every scope with what it allows and the key types that may hold
//! it, from the one scope list in the code. No key needed (the source IP is counted); it reads
//! nothing. `no-store`, as every answer but the JWKS (API.md conventions).

use hatched::App;
use hatched::auth::Access;
use hatched::endpoint::Endpoint;
use hatched::handler::anonymous;
use hatched::http::no_body;
use hatched::lambda_http::{Body, Request, Response};
use hatched::views::PermissionsView;

pub const ENDPOINT: Endpoint = Endpoint {
    function: "list-permissions",
    method: "GET",
    path: "/api/v1/permissions",
    access: Access::Anonymous,
    browser: false,
    status: 200,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    anonymous(app, req, &ENDPOINT, "no-store", |req| async move {
        no_body(&req)?;
        Ok(PermissionsView::all())
    })
    .await
}
