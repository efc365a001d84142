//! GET /api/v1/roles/{name} — one role of the caller's customer and environment (a built-in
//! one always exists). Budget: the caller's key read, one read of the role.

use hatched::domain::Scope;
use hatched::domain::role::RoleName;
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{no_body, path_param};
use hatched::lambda_http::{Body, Request, Response};
use hatched::roles::RoleScope;
use hatched::views::RoleView;
use hatched::{Access, ApiError, App, Caller};

pub const ENDPOINT: Endpoint = Endpoint {
    function: "get-role",
    method: "GET",
    path: "/api/v1/roles/{name}",
    access: Access::Managing(Scope::KeysRead),
    browser: false,
    status: 200,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| get(app, caller, req)).await
}

async fn get(app: &App, caller: Caller, req: Request) -> Result<RoleView, ApiError> {
    no_body(&req)?;
    let name = path_param(&req, "name", RoleName::parse)?;
    let at = RoleScope { customer: &caller.record.customer_id, env: caller.record.environment };
    Ok(RoleView::from(&app.roles.get(at, &name).await?))
}
