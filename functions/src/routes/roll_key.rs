//! POST /api/v1/keys/{prefix}/roll — a new key with the same attributes; the old one expires
//! after `grace_seconds` (0–604800, default a day; never later than an expiry it had).
//! Budget: the caller's key read, one read of the key, one transaction (new key, old key, event).

use hatched::domain::{KeyPrefix, Scope};
use hatched::endpoint::Endpoint;
use hatched::handler::keyed;
use hatched::http::{optional_json_body, path_param};
use hatched::lambda_http::{Body, Request, Response};
use hatched::views::KeyView;
use hatched::{Access, ApiError, App, Caller, RequestCtx};
use serde::{Deserialize, Serialize};

pub const ENDPOINT: Endpoint = Endpoint {
    function: "roll-key",
    method: "POST",
    path: "/api/v1/keys/{prefix}/roll",
    access: Access::Managing(Scope::KeysWrite),
    browser: false,
    status: 201,
};

pub const DEFAULT_GRACE_SECS: i64 = 86_400;
pub const MAX_GRACE_SECS: i64 = 604_800;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RollRequest {
    #[serde(default)]
    grace_seconds: Option<i64>,
}

#[derive(Serialize)]
struct Rolled {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hmac_secret: Option<String>,
    record: KeyView,
    previous: KeyView,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    keyed(app, req, &ENDPOINT, |caller, req| roll(app, caller, req)).await
}

async fn roll(app: &App, caller: Caller, req: Request) -> Result<Rolled, ApiError> {
    let body: RollRequest = optional_json_body(&req)?.unwrap_or_default();
    let grace = body.grace_seconds.unwrap_or(DEFAULT_GRACE_SECS);
    if !(0..=MAX_GRACE_SECS).contains(&grace) {
        return Err(ApiError::InvalidRequest(format!("grace_seconds must be from 0 to {MAX_GRACE_SECS}")));
    }
    let prefix = path_param(&req, "prefix", KeyPrefix::parse_id)?;
    let by = caller.manager(&RequestCtx::of(&req));
    let (issued, previous) = app.keys.roll_key(&prefix, grace, &by).await?;
    Ok(Rolled {
        key: issued.key.expose().to_owned(),
        hmac_secret: issued.hmac_secret.map(|s| s.expose().to_owned()),
        record: KeyView::from(&issued.record),
        previous: KeyView::from(&previous),
    })
}
