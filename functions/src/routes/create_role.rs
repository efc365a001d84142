//! POST /api/v1/roles — a custom role in the caller's customer and environment. Only a key
//! holding every secret-key scope may (a role reaches every key that holds it). Budget: the
//! caller's key read, one transaction (the role, its audit event).

use hatched::domain::Scope;
use hatched::domain::role::RoleName;
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::json_body;
use hatched::lambda_http::{Body, Request, Response};
use hatched::roles::RoleScope;
use hatched::views::RoleView;
use hatched::{Access, ApiError, App, Caller, RequestCtx};
use serde::Deserialize;

pub const ENDPOINT: Endpoint = Endpoint {
    function: "create-role",
    method: "POST",
    path: "/api/v1/roles",
    access: Access::Managing(Scope::KeysWrite),
    browser: false,
    status: 201,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: RoleName,
    #[serde(default)]
    description: Option<String>,
    scopes: Vec<String>,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| create(app, caller, req)).await
}

async fn create(app: &App, caller: Caller, req: Request) -> Result<RoleView, ApiError> {
    let body: CreateRequest = json_body(&req)?;
    let by = caller.manager(&RequestCtx::of(&req));
    let at = RoleScope { customer: &caller.record.customer_id, env: caller.record.environment };
    let role = app.roles.create(at, body.name, body.description, &body.scopes, &by).await?;
    Ok(RoleView::from(&role))
}
