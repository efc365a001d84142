//! DELETE /api/v1/roles/{name} — delete a custom role no unrevoked key holds (409 `role_in_use`
//! otherwise, from the holder count kept with every key change; built-in: 409). Budget: the
//! caller's key read, the role's read, one transaction (the delete, its audit event).

use hatched::domain::Scope;
use hatched::domain::role::RoleName;
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{no_body, path_param};
use hatched::lambda_http::{Body, Request, Response};
use hatched::roles::RoleScope;
use hatched::{Access, ApiError, App, Caller, RequestCtx};
use serde::Serialize;

pub const ENDPOINT: Endpoint = Endpoint {
    function: "delete-role",
    method: "DELETE",
    path: "/api/v1/roles/{name}",
    access: Access::Managing(Scope::KeysWrite),
    browser: false,
    status: 200,
};

#[derive(Serialize)]
struct Deleted {
    name: String,
    deleted: bool,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| delete(app, caller, req)).await
}

async fn delete(app: &App, caller: Caller, req: Request) -> Result<Deleted, ApiError> {
    no_body(&req)?;
    let name = path_param(&req, "name", RoleName::parse)?;
    let by = caller.manager(&RequestCtx::of(&req));
    let at = RoleScope { customer: &caller.record.customer_id, env: caller.record.environment };
    let gone = app.roles.delete(at, &name, &by).await?;
    Ok(Deleted { name: gone.name.as_str().to_owned(), deleted: true })
}
