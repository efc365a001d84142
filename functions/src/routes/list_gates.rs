//! GET /api/v1/gates — the customer's gates, sorted by gate key.

use hatched::domain::Scope;
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::no_body;
use hatched::lambda_http::{Body, Request, Response};
use hatched::views::GateView;
use hatched::{Access, ApiError, App, Caller};
use serde::Serialize;

#[derive(Serialize)]
struct Gates {
    gates: Vec<GateView>,
}

pub const ENDPOINT: Endpoint = Endpoint {
    function: "list-gates",
    method: "GET",
    path: "/api/v1/gates",
    access: Access::Scoped(Scope::ReadBuddies),
    browser: true,
    status: 200,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| list(app, caller, req)).await
}

async fn list(app: &App, caller: Caller, req: Request) -> Result<Gates, ApiError> {
    no_body(&req)?;
    let gates = app.unlocks.gates(&caller.record.customer_id).await?;
    Ok(Gates { gates: gates.into_iter().map(GateView::from).collect() })
}
