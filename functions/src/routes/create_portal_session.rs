//! POST /api/v1/portal-sessions — a short-lived key portal session acting for the calling key.
//! Budget: the key read, then one transaction (the audit event's two copies); the signing key
//! comes from Secrets Manager once per instance.

use hatched::domain::portal::{PORTAL_TTL, PortalLabel};
use hatched::domain::time::rfc3339;
use hatched::domain::token::TtlSeconds;
use hatched::domain::{Scope, UnixTime};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{json_body, portal_url};
use hatched::lambda_http::{Body, Request, Response};
use hatched::tokens::Minted;
use hatched::{Access, ApiError, App, Caller, RequestCtx};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortalRequest {
    user_label: PortalLabel,
    #[serde(default)]
    ttl_seconds: Option<TtlSeconds>,
}

#[derive(Serialize)]
struct PortalSession {
    url: String,
    token: String,
    #[serde(with = "rfc3339")]
    expires_at: UnixTime,
}

pub const ENDPOINT: Endpoint = Endpoint {
    function: "create-portal-session",
    method: "POST",
    path: "/api/v1/portal-sessions",
    // Not `Managing`: a portal session never mints another.
    access: Access::SecretOnly(Scope::KeysWrite),
    browser: false,
    status: 201,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| mint(app, caller, req)).await
}

async fn mint(app: &App, caller: Caller, req: Request) -> Result<PortalSession, ApiError> {
    let body: PortalRequest = json_body(&req)?;
    let ttl = PORTAL_TTL.pick(body.ttl_seconds)?;
    let by = caller.actor(&RequestCtx::of(&req));
    let Minted { token, minted } = app.tokens.mint_portal(&caller.record, &body.user_label, ttl, &by).await?;
    Ok(PortalSession {
        url: portal_url(&req, app.portal_base_url.as_deref(), &token),
        token,
        expires_at: UnixTime::from_secs(minted.exp),
    })
}
