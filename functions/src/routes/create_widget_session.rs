//! POST /api/v1/widget-sessions — mint a scoped, revocable widget-session token.
//! Budget: the key read, then one transaction (buddy condition-check + session put).

use hatched::domain::time::rfc3339;
use hatched::domain::token::{
    SESSION_MODE, SESSION_TTL, SessionClaims, Subject, WidgetScope, WidgetSession, widget_scopes,
};
use hatched::domain::{BuddyId, Scope, SessionId, UnixTime, UserId};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::json_body;
use hatched::lambda_http::{Body, Request, Response};
use hatched::store::CreateSessionError;
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
    ttl_seconds: Option<i64>,
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
    // The id names the minting key, so a bulk revocation by key finds its sessions.
    let (now, session_id) = (app.clock.now(), SessionId::minted_by(&caller.record.prefix));
    let who = Subject {
        customer: caller.record.customer_id,
        env: caller.record.environment,
        buddy: body.buddy_id,
        user: body.user_id,
    };
    // Sign before writing: a signing failure must leave no session behind.
    let claims = SessionClaims::new(&app.issuer, &who, &session_id, &scopes, now, ttl);
    let token = app.signer.ring().await?.current.sign(&claims)?;
    let session = WidgetSession {
        session_id,
        customer_id: who.customer,
        environment: who.env,
        buddy_id: who.buddy,
        user_id: who.user,
        scopes,
        created_at: now,
        expires_at: now.plus_secs(ttl),
        revoked_at: None,
        minted_by: Some(caller.record.prefix.clone()),
    };
    app.store.create_session(&session).await.map_err(|e| match e {
        CreateSessionError::BuddyNotFound => ApiError::BuddyNotFound,
        CreateSessionError::Store(e) => e.into(),
    })?;
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
