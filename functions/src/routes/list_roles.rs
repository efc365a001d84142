//! GET /api/v1/roles — the built-in roles and the customer's own in the caller's environment,
//! each with its scopes and holder count. Budget: the caller's key read, one query of the roles.

use hatched::domain::Scope;
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::no_body;
use hatched::lambda_http::{Body, Request, Response};
use hatched::roles::RoleScope;
use hatched::views::{RoleView, RolesView};
use hatched::{Access, ApiError, App, Caller};

pub const ENDPOINT: Endpoint = Endpoint {
    function: "list-roles",
    method: "GET",
    path: "/api/v1/roles",
    access: Access::Managing(Scope::KeysRead),
    browser: false,
    status: 200,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| list(app, caller, req)).await
}

async fn list(app: &App, caller: Caller, req: Request) -> Result<RolesView, ApiError> {
    no_body(&req)?;
    let at = RoleScope { customer: &caller.record.customer_id, env: caller.record.environment };
    let roles = app.roles.list(at).await?;
    Ok(RolesView { roles: roles.iter().map(RoleView::from).collect() })
}
