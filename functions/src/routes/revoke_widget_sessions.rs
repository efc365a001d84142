//! POST /api/v1/widget-sessions/revoke — end at once every session of the caller's customer
//! and environment that matches one subject (a user, a buddy, or the key that minted them) and
//! was issued until now; later sessions are unaffected. Idempotent in effect.
//! Budget: the key read, one read of the marker, one transaction (marker + audit event).

use hatched::domain::time::rfc3339;
use hatched::domain::token::SessionSubject;
use hatched::domain::{BuddyId, KeyPrefix, Scope, UnixTime, UserId};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::json_body;
use hatched::lambda_http::{Body, Request, Response};
use hatched::{Access, ApiError, App, Caller, RequestCtx};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const ENDPOINT: Endpoint = Endpoint {
    function: "revoke-widget-sessions",
    method: "POST",
    path: "/api/v1/widget-sessions/revoke",
    access: Access::SecretOnly(Scope::WidgetSessionsWrite),
    browser: false,
    status: 200,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    #[serde(default)]
    user_id: Option<UserId>,
    #[serde(default)]
    buddy_id: Option<BuddyId>,
    #[serde(default)]
    key_prefix: Option<String>,
}

#[derive(Serialize)]
struct Revoked {
    #[serde(with = "rfc3339")]
    revoked_before: UnixTime,
    #[serde(rename = "match")]
    matched: Map<String, Value>,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| revoke(app, caller, req)).await
}

async fn revoke(app: &App, caller: Caller, req: Request) -> Result<Revoked, ApiError> {
    let body: RevokeRequest = json_body(&req)?;
    let subject = match (body.user_id, body.buddy_id, body.key_prefix) {
        (Some(user), None, None) => SessionSubject::User(user),
        (None, Some(buddy), None) => SessionSubject::Buddy(buddy),
        (None, None, Some(prefix)) => SessionSubject::Key(KeyPrefix::parse_id(&prefix)?),
        _ => return Err(ApiError::InvalidRequest("give exactly one of user_id, buddy_id, key_prefix".into())),
    };
    let record = &caller.record;
    let by = caller.manager(&RequestCtx::of(&req));
    let revoked_before = app.keys.revoke_sessions(&record.customer_id, record.environment, &subject, &by).await?;
    let matched = Map::from_iter([(subject.field().to_owned(), Value::from(subject.value()))]);
    Ok(Revoked { revoked_before, matched })
}
