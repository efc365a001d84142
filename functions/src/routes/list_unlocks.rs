//! GET /api/v1/buddies/{buddy_id}/unlocks — every unlock of a buddy, sorted by gate key,
//! read to the last page.

use hatched::domain::gate::BuddyRef;
use hatched::domain::{BuddyId, Scope};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{no_body, path_param};
use hatched::lambda_http::{Body, Request, Response};
use hatched::views::UnlockView;
use hatched::{Access, ApiError, App, Caller};
use serde::Serialize;

#[derive(Serialize)]
struct Unlocks {
    unlocks: Vec<UnlockView>,
}

pub const ENDPOINT: Endpoint = Endpoint {
    function: "list-unlocks",
    method: "GET",
    path: "/api/v1/buddies/{buddy_id}/unlocks",
    access: Access::Scoped(Scope::ReadBuddies),
    browser: true,
    status: 200,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| list(app, caller, req)).await
}

async fn list(app: &App, caller: Caller, req: Request) -> Result<Unlocks, ApiError> {
    no_body(&req)?;
    let buddy = path_param(&req, "buddy_id", BuddyId::parse)?;
    let buddy = BuddyRef { customer: caller.record.customer_id, env: caller.record.environment, buddy };
    let unlocks = app.unlocks.unlocks_of(&buddy).await?;
    Ok(Unlocks { unlocks: unlocks.into_iter().map(UnlockView::from).collect() })
}
