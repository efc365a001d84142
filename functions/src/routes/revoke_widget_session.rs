//! DELETE /api/v1/widget-sessions/{session_id} — revoke, idempotently.
//! Budget: the key read, then one conditional update scoped to the caller's customer and
//! environment (someone else's session answers exactly like a missing one).

use hatched::domain::time::rfc3339;
use hatched::domain::{Scope, SessionId, UnixTime};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{no_body, path_param};
use hatched::lambda_http::{Body, Request, Response};
use hatched::{Access, ApiError, App, Caller};
use serde::Serialize;

#[derive(Serialize)]
struct Revoked {
    session_id: SessionId,
    revoked: bool,
    #[serde(with = "rfc3339")]
    revoked_at: UnixTime,
}

pub const ENDPOINT: Endpoint = Endpoint {
    function: "revoke-widget-session",
    method: "DELETE",
    path: "/api/v1/widget-sessions/{session_id}",
    access: Access::SecretOnly(Scope::WidgetSessionsWrite),
    browser: false,
    status: 200,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| revoke(app, caller, req)).await
}

async fn revoke(app: &App, caller: Caller, req: Request) -> Result<Revoked, ApiError> {
    no_body(&req)?;
    let session_id = path_param(&req, "session_id", SessionId::parse)?;
    let record = &caller.record;
    let session = app.tokens.revoke_session(&session_id, &record.customer_id, record.environment).await?;
    let revoked_at = session.revoked_at.ok_or_else(|| ApiError::Internal("revoked_at missing after revoke".into()))?;
    Ok(Revoked { session_id, revoked: true, revoked_at })
}
