//! POST /api/v1/widget-sessions — mint a scoped, revocable widget-session token.
//! Budget: the key read, then one transaction (buddy condition-check + session put).

use hatched::domain::time::rfc3339;
use hatched::domain::token::{SESSION_MODE, SESSION_TTL, Subject, TtlSeconds, WidgetScope, widget_scopes};
use hatched::domain::{BuddyId, Scope, SessionId, UnixTime, UserId};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::json_body;
use hatched::lambda_http::{Body, Request, Response};
use hatched::tokens::Minted;
use hatched::{Access, ApiError, App, Caller};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    buddy_id: BuddyId,
    user_id: UserId,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    ttl_seconds: Option<TtlSeconds>,
}

#[derive(Serialize)]
struct MintedSession {
    session_id: SessionId,
    token: String,
    #[serde(with = "rfc3339")]
    expires_at: UnixTime,
    buddy_id: BuddyId,
    user_id: UserId,
    scopes: Vec<WidgetScope>,
    mode: &'static str,
}

pub const ENDPOINT: Endpoint = Endpoint {
    function: "create-widget-session",
    method: "POST",
    path: "/api/v1/widget-sessions",
    access: Access::SecretOnly(Scope::WidgetSessionsWrite),
    browser: false,
    status: 201,
};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| mint(app, caller, req)).await
}

async fn mint(app: &App, caller: Caller, req: Request) -> Result<MintedSession, ApiError> {
    let body: MintRequest = json_body(&req)?;
    let scopes = widget_scopes(body.scopes.as_deref())?;
    let ttl = SESSION_TTL.pick(body.ttl_seconds)?;
    let who = Subject::of_key(&caller.record, body.buddy_id, body.user_id);
    let Minted { token, minted: session } = app.tokens.mint_session(who, scopes, ttl, &caller.record.prefix).await?;
    Ok(MintedSession {
        session_id: session.session_id,
        token,
        expires_at: session.expires_at,
        buddy_id: session.buddy_id,
        user_id: session.user_id,
        scopes: session.scopes,
        mode: SESSION_MODE,
    })
}
