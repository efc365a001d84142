//! GET /api/v1/audit-events — every key change and bulk session revocation of the caller's
//! customer and environment, newest first (`?target=` one key's or subject's, `?limit=`,
//! `?cursor=`). Budget: the key read and one query.

use hatched::domain::role::RoleName;
use hatched::domain::token::SessionSubject;
use hatched::domain::{BuddyId, KeyPrefix, Scope, UserId};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{no_body, page_params, query_param};
use hatched::lambda_http::{Body, Request, Response};
use hatched::store::is_audit_sort_key;
use hatched::views::AuditEventView;
use hatched::{Access, ApiError, App, Caller};
use serde::Serialize;

pub const ENDPOINT: Endpoint = Endpoint {
    function: "list-audit-events",
    method: "GET",
    path: "/api/v1/audit-events",
    access: Access::Managing(Scope::KeysRead),
    browser: false,
    status: 200,
};

#[derive(Serialize)]
struct Events {
    events: Vec<AuditEventView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| list(app, caller, req)).await
}

/// A target is a key prefix or `user_id:` / `buddy_id:` / `key_prefix:` / `role:` and an id, as events
/// name them; nothing else may shape a database key.
fn parse_target(text: &str) -> Result<String, ApiError> {
    let valid = KeyPrefix::parse(text).is_some()
        || match text.split_once(':') {
            Some(("user_id", id)) => UserId::parse(id).is_ok(),
            Some(("buddy_id", id)) => BuddyId::parse(id).is_ok(),
            Some(("key_prefix", id)) => KeyPrefix::parse(id).is_some(),
            Some(("role", name)) => RoleName::parse(name).is_ok(),
            _ => false,
        };
    let example = SessionSubject::User(UserId::parse("user_1").map_err(ApiError::from)?);
    match valid {
        true => Ok(text.to_owned()),
        false => Err(ApiError::InvalidRequest(format!(
            "target must be a key prefix or e.g. {}:{}",
            example.field(),
            example.value()
        ))),
    }
}

async fn list(app: &App, caller: Caller, req: Request) -> Result<Events, ApiError> {
    no_body(&req)?;
    let (limit, after) = page_params(&req, is_audit_sort_key)?;
    let target = query_param(&req, "target").map(parse_target).transpose()?;
    let record = &caller.record;
    let page = app
        .keys
        .audit_page(&record.customer_id, record.environment, target.as_deref(), limit, after.as_deref())
        .await?;
    Ok(Events { events: page.events.into_iter().map(AuditEventView::from).collect(), next_cursor: page.next_cursor })
}
