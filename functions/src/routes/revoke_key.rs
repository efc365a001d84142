//! DELETE /api/v1/keys/{prefix} — revoke a key: refused from the very next request. Revoking
//! again answers the first `revoked_at` and writes nothing. Its widget sessions end only when
//! revoked in bulk (`POST /api/v1/widget-sessions/revoke` with its `key_prefix`).
//! Budget: the caller's key read, one read of the key, one transaction (both items + event).

use hatched::domain::time::rfc3339;
use hatched::domain::{KeyPrefix, Scope, UnixTime};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{no_body, path_param};
use hatched::lambda_http::{Body, Request, Response};
use hatched::{Access, ApiError, App, Caller, RequestCtx};
use serde::Serialize;

pub const ENDPOINT: Endpoint = Endpoint {
    function: "revoke-key",
    method: "DELETE",
    path: "/api/v1/keys/{prefix}",
    access: Access::Managing(Scope::KeysWrite),
    browser: false,
    status: 200,
};

#[derive(Serialize)]
struct Revoked {
    prefix: KeyPrefix,
    revoked: bool,
    #[serde(with = "rfc3339")]
    revoked_at: UnixTime,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| revoke(app, caller, req)).await
}

async fn revoke(app: &App, caller: Caller, req: Request) -> Result<Revoked, ApiError> {
    no_body(&req)?;
    let prefix = path_param(&req, "prefix", KeyPrefix::parse_id)?;
    let record = app.keys.revoke_key(&prefix, &caller.manager(&RequestCtx::of(&req))).await?;
    let revoked_at = record.revoked_at.ok_or_else(|| ApiError::Internal("revoked_at missing after revoke".into()))?;
    Ok(Revoked { prefix: record.prefix, revoked: true, revoked_at })
}
