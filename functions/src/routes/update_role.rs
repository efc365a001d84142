//! PATCH /api/v1/roles/{name} — change a custom role's description or scopes. Every key holding
//! it acts with the new scopes on its next request: one transaction (the role, its audit event),
//! no key touched. Built-in roles never change (409). Budget: the caller's key read, the role's
//! read, one transaction.

use hatched::domain::Scope;
use hatched::domain::role::RoleName;
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{double_option, json_body, path_param};
use hatched::lambda_http::{Body, Request, Response};
use hatched::roles::{RolePatch, RoleScope};
use hatched::views::RoleView;
use hatched::{Access, ApiError, App, Caller, RequestCtx};
use serde::Deserialize;

pub const ENDPOINT: Endpoint = Endpoint {
    function: "update-role",
    method: "PATCH",
    path: "/api/v1/roles/{name}",
    access: Access::Managing(Scope::KeysWrite),
    browser: false,
    status: 200,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchRequest {
    /// Absent: unchanged; `null`: removed.
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| update(app, caller, req)).await
}

async fn update(app: &App, caller: Caller, req: Request) -> Result<RoleView, ApiError> {
    let body: PatchRequest = json_body(&req)?;
    let name = path_param(&req, "name", RoleName::parse)?;
    let by = caller.manager(&RequestCtx::of(&req));
    let at = RoleScope { customer: &caller.record.customer_id, env: caller.record.environment };
    let patch = RolePatch { description: body.description, scopes: body.scopes };
    Ok(RoleView::from(&app.roles.update(at, &name, &patch, &by).await?))
}
